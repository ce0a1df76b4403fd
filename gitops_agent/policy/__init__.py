"""Pure rules: from data (a task, the constraints, a change) to violations. No I/O."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule, in words a person understands."""

    rule: str  # short stable name, e.g. "protected-file", "alignment"
    message: str  # a full sentence
    path: str | None = None  # the file it concerns, for post-flight rules

    def __str__(self) -> str:
        return self.message
