"""`gitops-agent check`: which tasks would run, and why the others would not."""

from __future__ import annotations

from typing import Any

from gitops_agent.policy.eligibility import Verdict
from gitops_agent.policy.eligibility import verdicts as check

__all__ = ["Verdict", "check", "to_json"]


def to_json(verdicts: list[Verdict]) -> dict[str, Any]:
    """The contract's `check --json` object."""
    return {
        "tasks": [
            {
                "id": v.task.id,
                "queue": v.task.queue.value if v.task.queue is not None else "not_ready",
                "eligible": v.eligible,
                "reasons": list(v.reasons),
            }
            for v in verdicts
        ]
    }
