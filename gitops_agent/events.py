"""What happens to the tool's work after its session: quarantine, re-tests, merges, checkpoints,
rollbacks, proposals and scans. Each is an `Event`, stored on autonomous/memory as
`state/events/<id>.json` beside a line in that day's memory log (`memory.record_event`);
`timeline` and `report` read them back (`memory.load_events`).
"""

from __future__ import annotations

import enum
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gitops_agent.clock import iso

EVENTS_DIR = "state/events"  # on MEMORY_BRANCH


class EventKind(enum.StrEnum):
    QUARANTINED = "quarantined"  # an auto-approved result began its quarantine
    RETESTED = "retested"  # the gate ran again on its merge with the latest base
    CANCELLED = "cancelled"  # its auto-merge is off: a re-test failed, or a rule forbids it
    MERGED = "merged"  # the tool merged a result into the base
    CHECKPOINT = "checkpoint"  # a merge of the tool's work into the base, tagged
    ROLLBACK = "rollback"  # revert commits on an autonomous/rollback-... branch
    PROPOSED = "proposed"  # tasks proposed for the plan (propose, scan)
    SCANNED = "scanned"  # a problem scan ran


# The kinds `timeline` lists: what changed (or would change) the base.
TIMELINE_KINDS = (EventKind.CHECKPOINT, EventKind.MERGED, EventKind.ROLLBACK)


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    kind: EventKind
    time: str  # ISO 8601, UTC
    title: str  # one line for people (escaped where it is shown)
    branch: str | None = None
    commit: str | None = None
    tasks: tuple[str, ...] = ()
    lines: tuple[str, ...] = ()  # more for people: the memory log's bullet points
    data: dict[str, Any] = field(default_factory=dict)  # kind-specific facts, JSON values

    @classmethod
    def create(cls, kind: EventKind, when: datetime, title: str, **fields: Any) -> Event:
        """A new event with a fresh id that sorts by time."""
        ident = f"{when:%Y%m%dT%H%M%S}-{kind.value}-{secrets.token_hex(3)}"
        if "tasks" in fields:
            fields["tasks"] = tuple(fields["tasks"])
        if "lines" in fields:
            fields["lines"] = tuple(fields["lines"])
        return cls(ident, kind, iso(when), title, **fields)

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "time": self.time,
            "title": self.title,
            "branch": self.branch,
            "commit": self.commit,
            "tasks": list(self.tasks),
            "lines": list(self.lines),
            "data": self.data,
        }

    @classmethod
    def from_record(cls, raw: Any) -> Event:
        """Raises KeyError, TypeError or ValueError for what is no event record."""
        if not isinstance(raw, dict):
            raise TypeError("not a JSON object")
        data = raw.get("data") or {}
        if not isinstance(data, dict):
            raise TypeError("`data` is not an object")
        return cls(
            id=str(raw["id"]),
            kind=EventKind(raw["kind"]),
            time=str(raw["time"]),
            title=str(raw["title"]),
            branch=_text_or_none(raw.get("branch")),
            commit=_text_or_none(raw.get("commit")),
            tasks=tuple(str(t) for t in raw.get("tasks") or ()),
            lines=tuple(str(line) for line in raw.get("lines") or ()),
            data=data,
        )

    def to_json(self) -> dict[str, Any]:
        return self.to_record()


def event_path(event_id: str) -> str:
    return f"{EVENTS_DIR}/{event_id}.json"


def encode(event: Event) -> bytes:
    return (json.dumps(event.to_record(), indent=2, ensure_ascii=False) + "\n").encode()


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)
