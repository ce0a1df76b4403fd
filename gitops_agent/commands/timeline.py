"""`gitops-agent timeline`: what changed the base, oldest first: checkpoints, merges and
rollbacks, from the events on autonomous/memory and the `checkpoint/*` tags.

It writes nothing. A checkpoint tag without its event (tagged on another machine, whose memory
did not come here) is listed from the tag and its commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from gitops_agent.checkpoints import checkpoint_name, work_of
from gitops_agent.clock import iso
from gitops_agent.console import err, shown
from gitops_agent.events import TIMELINE_KINDS, Event, EventKind
from gitops_agent.git import Repo
from gitops_agent.git.history import brought_by, checkpoint_tags, first_parent_history
from gitops_agent.memory import load_events
from gitops_agent.project import find_root
from gitops_agent.render import parse_time

_ORDER = {EventKind.MERGED: 0, EventKind.CHECKPOINT: 1, EventKind.ROLLBACK: 2}


@dataclass(frozen=True, slots=True)
class Entry:
    kind: EventKind
    time: str  # ISO 8601, UTC
    title: str
    checkpoint: str | None
    commit: str | None
    branch: str | None
    tasks: tuple[str, ...]
    pull_request: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "time": self.time,
            "title": self.title,
            "checkpoint": self.checkpoint,
            "commit": self.commit,
            "branch": self.branch,
            "tasks": list(self.tasks),
            "pull_request": self.pull_request,
        }


@dataclass(frozen=True, slots=True)
class Timeline:
    entries: tuple[Entry, ...]

    def to_json(self) -> dict[str, Any]:
        return {"events": [entry.to_json() for entry in self.entries]}


def timeline(repo_dir: Path | None) -> Timeline:
    """Every checkpoint, merge and rollback recorded or tagged here, oldest first."""
    repo = Repo.open(find_root(repo_dir))
    entries: list[Entry] = []
    recorded: set[str] = set()
    for event in load_events(repo):
        if event.kind not in TIMELINE_KINDS:
            continue
        entry = _from_event(event)
        if entry.kind is EventKind.CHECKPOINT and entry.checkpoint is not None:
            if entry.checkpoint in recorded:
                continue  # two machines recorded one checkpoint at once
            recorded.add(entry.checkpoint)
        entries.append(entry)
    for name, commit in checkpoint_tags(repo).items():
        if checkpoint_name(name) not in recorded:
            entries.append(_from_tag(repo, checkpoint_name(name), commit))
    entries.sort(
        key=lambda e: (parse_time(e.time), _ORDER.get(e.kind, 9), e.checkpoint or "", e.title)
    )
    return Timeline(tuple(entries))


def show_timeline(found: Timeline) -> None:
    """A table on standard error; every text in it came from records: escaped."""
    if not found.entries:
        err.print("No checkpoints, merges or rollbacks yet.")
        return
    table = Table(title="Timeline of the base, oldest first", title_justify="left")
    for name in ("When (UTC)", "What", "Checkpoint", "Commit", "Tasks", "Details"):
        table.add_column(name, no_wrap=name in ("When (UTC)", "What", "Commit"))
    for entry in found.entries:
        details = [entry.title]
        if entry.branch:
            details.append(f"branch {entry.branch}")
        if entry.pull_request:
            details.append(entry.pull_request)
        table.add_row(
            parse_time(entry.time).astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
            entry.kind.value,
            shown(entry.checkpoint or ""),
            (entry.commit or "")[:7],
            shown(", ".join(entry.tasks)),
            shown("\n".join(details)),
        )
    err.print(table)


def _from_event(event: Event) -> Entry:
    checkpoint = event.data.get("checkpoint")
    pull = event.data.get("pull_request")
    return Entry(
        event.kind,
        event.time,
        event.title,
        checkpoint if isinstance(checkpoint, str) else None,
        event.commit,
        event.branch,
        event.tasks,
        pull if isinstance(pull, str) else None,
    )


def _from_tag(repo: Repo, name: str, commit: str) -> Entry:
    """A checkpoint known only by its tag: when its commit was made, and the tasks it brought."""
    [tagged] = first_parent_history(repo, commit, limit=1)
    brought = list(reversed(brought_by(repo, tagged))) if tagged.is_merge else [tagged.info]
    tasks, _sessions = work_of(brought)
    return Entry(
        EventKind.CHECKPOINT,
        iso(datetime.fromtimestamp(tagged.time, UTC)),
        f"Checkpoint {name} (tag only, no event here): {tagged.title}",
        name,
        commit,
        None,
        tasks,
        None,
    )
