"""The time the lifecycle commands judge by: now, or the time GITOPS_AGENT_NOW names.

Quarantine is measured in hours. A drill (or a test) sets GITOPS_AGENT_NOW to an ISO 8601 time
instead of waiting for them (`report` reads it too, so its countdowns and windows move with it).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from gitops_agent.errors import UserError

NOW_VARIABLE = "GITOPS_AGENT_NOW"


def now() -> datetime:
    """The current time (UTC), or GITOPS_AGENT_NOW's (a time without an offset is UTC)."""
    given = os.environ.get(NOW_VARIABLE, "").strip()
    if not given:
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(given.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(
            f"{NOW_VARIABLE}={given!r} is not an ISO 8601 time, like 2026-12-01T02:00:00Z"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds")
