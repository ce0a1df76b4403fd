"""Findings of linters and type checkers (`path:line: message`), matched across a change by a
fingerprint that survives lines moving, so only the findings a change introduces count."""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from gitops_agent.terminal import strip_ansi

FINGERPRINT_CHARS = 16

# The path runs to the first colon and may not start with a space, which rejects ruff's
# "  --> a.py:1:8" pointer lines; the message must follow whitespace, which rejects a bare
# "a.py:1:8".
_FINDING = re.compile(r"(?P<path>[^\s:][^:]*):(?P<line>\d+):(?:\d+:)?\s+(?P<message>\S.*)")
# Numbers that name a line or column inside a message ("defined on line 12", "line 3, column
# 4", "lines 10-12"), which move when lines are inserted above. Rule codes (E501) stay.
_LINE_WORDS = re.compile(
    r"\b(?P<word>lines?|line\s+no\.?|ln|columns?|col)(?P<sep>\s*[:#]?\s*)\d+"
    r"(?:(?P<range>\s*(?:-|to|:)\s*)\d+)?",
    re.IGNORECASE,
)
# "defined at a.py:12" or "a.py:12:5" inside a message.
_FILE_POSITION = re.compile(r"(?P<file>\.\w+):\d+(?::\d+)?\b")


@dataclass(frozen=True, slots=True)
class Finding:
    """One reported problem; `fingerprint` ignores where it sits, so it matches after a move."""

    path: str  # POSIX, relative to the checkout root when it was under it
    line: int
    message: str
    fingerprint: str


def parse_findings(
    output: str, *, root: str | None, source_line: Callable[[str, int], str | None]
) -> tuple[Finding, ...]:
    """Every `path:line[:col]: message` line of a tool's output, in order; other lines
    (summaries, context, notes' continuation) are ignored. `source_line(path, line)` gives the
    text of the flagged line in the same checkout, or None when it cannot be read."""
    findings: list[Finding] = []
    for raw in strip_ansi(output).splitlines():
        match = _FINDING.fullmatch(raw.rstrip())
        if match is None:
            continue
        message = match["message"].strip()
        if message.startswith("note:"):
            # mypy's notes explain an error beside them or come alone with exit status 0
            # ("annotation-unchecked"); either way they are not findings of their own.
            continue
        path = _relative(match["path"], root)
        line = int(match["line"])
        text = source_line(path, line)
        findings.append(Finding(path, line, message, _fingerprint(path, message, text or "")))
    return tuple(findings)


def introduced(base: Iterable[Finding], new: Iterable[Finding]) -> tuple[Finding, ...]:
    """The new findings the base lacks, as a multiset: a finding the base has once and the change
    has twice is introduced once. Kept in the new output's order."""
    remaining = Counter(finding.fingerprint for finding in base)
    result: list[Finding] = []
    for finding in new:
        if remaining[finding.fingerprint] > 0:
            remaining[finding.fingerprint] -= 1
        else:
            result.append(finding)
    return tuple(result)


def normalise_message(message: str) -> str:
    """The message with the line and column numbers it names replaced by N."""
    message = _LINE_WORDS.sub(_line_words_replacement, message)
    return _FILE_POSITION.sub(lambda match: f"{match['file']}:N", message)


def _line_words_replacement(match: re.Match[str]) -> str:
    tail = f"{match['range']}N" if match["range"] is not None else ""
    return f"{match['word']}{match['sep']}N{tail}"


def _fingerprint(path: str, message: str, source: str) -> str:
    key = "\0".join((path, normalise_message(message), source.strip()))
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:FINGERPRINT_CHARS]


def _relative(path: str, root: str | None) -> str:
    """POSIX and relative to `root` when the tool printed it absolute under `root`."""
    candidate = PurePosixPath(posixpath.normpath(path))
    if candidate.is_absolute() and root is not None:
        base = PurePosixPath(posixpath.normpath(root))
        if candidate.is_relative_to(base):
            candidate = candidate.relative_to(base)
    return candidate.as_posix()
