"""What became of results in the brief's period: the quarantine, merges, rollbacks, scans.

These are read from the lifecycle events on the memory branch (`memory.load_events`), which
other machines write too, so every value is checked before it is trusted. Records and builders
only; `report.build_brief` puts them in the brief and decides what needs a person.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gitops_agent.clock import iso
from gitops_agent.events import Event, EventKind
from gitops_agent.quarantine import Candidate, state_of
from gitops_agent.render import parse_time

# What the brief lists of what became of results in its period (the quarantine: as it is now).
CHANGE_KINDS = (EventKind.MERGED, EventKind.CANCELLED, EventKind.ROLLBACK, EventKind.CHECKPOINT)


@dataclass(frozen=True, slots=True)
class Quarantined:
    """An auto-approved result waiting out its quarantine now, before `merge` takes it."""

    branch: str
    tip: str
    tasks: tuple[str, ...]
    ends: datetime | None  # None: its quarantine starts at the next `merge`
    left: float | None  # seconds of it left at the brief's time (0: over, merged next time)
    retested: datetime | None  # when it was last re-tested; None: not yet
    passed: bool | None  # whether that re-test passed

    def to_json(self) -> dict[str, Any]:
        return {
            "branch": self.branch,
            "tip": self.tip,
            "tasks": list(self.tasks),
            "ends": None if self.ends is None else iso(self.ends),
            "hours_left": None if self.left is None else round(self.left / 3600, 2),
            "last_retest": None
            if self.retested is None
            else {"time": iso(self.retested), "passed": self.passed},
        }


@dataclass(frozen=True, slots=True)
class Change:
    """A merge, a cancelled auto-merge, a rollback or a checkpoint, from its event."""

    kind: EventKind  # one of CHANGE_KINDS
    time: datetime
    branch: str | None
    tasks: tuple[str, ...]
    commit: str | None  # merged: the base's new commit; else the event's (a tip, a tag's)
    checkpoint: str | None = None
    reason: str | None = None  # cancelled: why the tool will not merge it
    target: str | None = None  # rollback: the checkpoint, session or task it undoes
    pull_request: str | None = None  # rollback: its pull request, when one was opened

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "time": iso(self.time),
            "branch": self.branch,
            "tasks": list(self.tasks),
            "commit": self.commit,
            "checkpoint": self.checkpoint,
            "reason": self.reason,
            "target": self.target,
            "pull_request": self.pull_request,
        }


@dataclass(frozen=True, slots=True)
class NewFinding:
    """A finding a scan had not seen before, and the Pending task it became."""

    task: str | None  # None where the event does not say (a record edited by hand)
    fingerprint: str
    path: str
    line: int | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.task,
            "fingerprint": self.fingerprint,
            "path": self.path,
            "line": self.line,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class Scan:
    """One `scan`, from its SCANNED event (and the PROPOSED one of its new findings)."""

    time: datetime
    commit: str | None  # the base commit scanned
    findings: int
    new: tuple[NewFinding, ...]
    branch: str | None  # where the new findings were proposed
    problems: tuple[str, ...]  # commands that said nothing of the base (failed, too long)

    def to_json(self) -> dict[str, Any]:
        return {
            "time": iso(self.time),
            "commit": self.commit,
            "findings": self.findings,
            "new": [f.to_json() for f in self.new],
            "branch": self.branch,
            "problems": list(self.problems),
        }


@dataclass(frozen=True, slots=True)
class Proposed:
    """Tasks `propose` added under Pending Approval, on a branch of their own."""

    time: datetime
    branch: str | None
    tasks: tuple[str, ...]
    by: str

    def to_json(self) -> dict[str, Any]:
        return {
            "time": iso(self.time),
            "branch": self.branch,
            "tasks": list(self.tasks),
            "by": self.by,
        }


def in_quarantine(
    waiting: Sequence[Candidate], events: Sequence[Event], hours: float, now: datetime
) -> tuple[Quarantined, ...]:
    """The auto-approved results `merge` will still re-test and merge: neither merged nor
    cancelled at their tip."""
    shown = []
    for candidate in waiting:
        state = state_of(events, candidate.branch, candidate.tip)
        if state.merged is not None or state.cancelled is not None:
            continue
        ends = state.ends(hours)
        last = state.last_retest
        shown.append(
            Quarantined(
                candidate.branch,
                candidate.tip,
                candidate.tasks,
                ends,
                None if ends is None else max((ends - now).total_seconds(), 0.0),
                None if last is None else parse_time(last.time),
                None if last is None else last.data.get("passed") is True,
            )
        )
    return tuple(shown)


def changes_since(events: Sequence[Event], start: datetime) -> tuple[Change, ...]:
    """Merges, cancelled auto-merges, rollbacks and checkpoints since `start`, newest first;
    a checkpoint only where no merge in the list names it (nor an earlier entry: two machines
    can record one checkpoint)."""
    recent = [e for e in events if e.kind in CHANGE_KINDS and parse_time(e.time) >= start]
    shown = {_text(e.data, "checkpoint") for e in recent if e.kind is EventKind.MERGED}
    changes = []
    for event in reversed(recent):
        checkpoint = _text(event.data, "checkpoint")
        if event.kind is EventKind.CHECKPOINT and checkpoint is not None:
            if checkpoint in shown:
                continue
            shown.add(checkpoint)
        changes.append(
            Change(
                event.kind,
                parse_time(event.time),
                event.branch,
                event.tasks,
                event.commit,
                checkpoint,
                _text(event.data, "reason"),
                _text(event.data, "target"),
                _text(event.data, "pull_request"),
            )
        )
    return tuple(changes)


def scans_since(
    events: Sequence[Event], start: datetime
) -> tuple[tuple[Scan, ...], tuple[Proposed, ...]]:
    """The scans since `start`, and the proposals but those of the scans listed, newest
    first."""
    recent = [e for e in reversed(events) if parse_time(e.time) >= start]
    proposed = [e for e in recent if e.kind is EventKind.PROPOSED]
    scanned = {e.id: _proposal_of(e, proposed) for e in recent if e.kind is EventKind.SCANNED}
    scans = tuple(_scan(e, scanned[e.id]) for e in recent if e.id in scanned)
    taken = {p.id for p in scanned.values() if p is not None}
    proposals = tuple(
        Proposed(parse_time(p.time), p.branch, p.tasks, str(p.data.get("by") or ""))
        for p in proposed
        if p.id not in taken
    )
    return scans, proposals


def _proposal_of(scanned: Event, proposed: Sequence[Event]) -> Event | None:
    """The PROPOSED event of a scan's new findings: `scan` records it with their fingerprints
    (and only `scan` records fingerprints)."""
    fresh = scanned.data.get("new")
    if not fresh:
        return None
    return next((p for p in proposed if p.data.get("fingerprints") == fresh), None)


def _scan(event: Event, proposal: Event | None) -> Scan:
    records = [f for f in _list(event.data.get("findings")) if isinstance(f, dict)]
    fresh = [f for f in _list(event.data.get("new")) if isinstance(f, str)]
    by_print: dict[object, dict[str, Any]] = {}
    for record in records:
        by_print.setdefault(record.get("fingerprint"), record)
    # `scan` records the new findings' task ids in the order of their fingerprints.
    ids = event.tasks if len(event.tasks) == len(fresh) else (None,) * len(fresh)
    new = tuple(
        _new_finding(task, fingerprint, by_print.get(fingerprint, {}))
        for task, fingerprint in zip(ids, fresh, strict=True)
    )
    return Scan(
        parse_time(event.time),
        event.commit,
        len(records),
        new,
        None if proposal is None else proposal.branch,
        tuple(p for p in _list(event.data.get("problems")) if isinstance(p, str)),
    )


def _new_finding(task: str | None, fingerprint: str, record: Mapping[str, Any]) -> NewFinding:
    line = record.get("line")
    return NewFinding(
        task,
        fingerprint,
        _text(record, "path") or "",
        line if isinstance(line, int) and not isinstance(line, bool) else None,
        _text(record, "message") or "",
    )


def _text(data: Mapping[str, Any], key: str) -> str | None:
    """A text value of an event's data: what another machine wrote is not trusted to be one."""
    value = data.get(key)
    return value if isinstance(value, str) and value else None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
