"""Checkpoints: each state of the base where the tool's work entered it, tagged
`checkpoint/<YYYY-MM-DD>-<n>` and recorded as a CHECKPOINT event on autonomous/memory.

Work enters the base by a merge (the merged side adds commits with `Task-Id:`), or as commits
that carry `Task-Id:` themselves (a fast-forward, a rebase, a squash that kept the trailers).
Whoever moved the base (`merge`, a person on GitHub), `tag_merges` finds it afterwards from the
history alone; `rollback` calls it first, so the checkpoint it is given exists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from gitops_agent.errors import UserError
from gitops_agent.events import Event, EventKind
from gitops_agent.git import CommitInfo, RefMovedError, Repo
from gitops_agent.git.history import (
    HistoryCommit,
    brought_by,
    checkpoint_tags,
    create_checkpoint_tag,
    first_parent_history,
)
from gitops_agent.memory import load_events, record_event, zone_of

TAG_PREFIX = "checkpoint/"
# How far back `tag_merges` looks for untagged states on its first run in a repository, and how
# far `rollback` looks for a session's or a task's commits.
WALK_LIMIT = 1000
# Tries at a free number of the day, when another run takes the same one at the same instant.
TAG_ATTEMPTS = 20
TASK_TRAILER = "Task-Id"
SESSION_TRAILER = "Session"
_NAME = re.compile(rf"{TAG_PREFIX}\d{{4}}-\d\d-\d\d-[1-9]\d{{0,5}}")
_TASK_LINE = re.compile(rf"^{TASK_TRAILER}:[ \t]*(\S.*)$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class State:
    """A commit of the base where the tool's work entered it, and what that work was."""

    commit: str
    time: int  # its committer time (seconds since the epoch)
    tasks: tuple[str, ...]  # oldest first
    sessions: tuple[str, ...]


def checkpoint_name(name: str) -> str:
    """`checkpoint/<name>`, as the tag is called, whichever form it was given in."""
    return TAG_PREFIX + name.removeprefix(TAG_PREFIX)


def tag_merges(
    repo: Repo, base_branch: str, *, timezone: str | None, merged_at: datetime | None = None
) -> list[Event]:
    """Tag every state of `base_branch` (a branch, or a remote-tracking one) where the tool's
    work entered it since its newest checkpoint, oldest first, and record each as an event; a
    state tagged already is left alone, so running twice tags nothing new. Returns the events.

    `merged_at`: the caller just merged into the base, then: its tip is dated so (a
    fast-forward's commit keeps its own, older date)."""
    tip = repo.branch_tip(base_branch)
    if tip is None:
        try:  # a remote-tracking branch (`origin/main`), where the base moved on GitHub
            tip = repo.resolve_commit(base_branch)
        except UserError:
            return []
    tagged = checkpoint_tags(repo)
    history = first_parent_history(repo, tip, stop=set(tagged.values()), limit=WALK_LIMIT)
    tz = zone_of(timezone)
    found = states(repo, reversed(history))
    recorded = _recorded(repo) if found else {}
    events = []
    for state in found:
        if state.commit in recorded:  # by another machine: the same name here, no new event
            create_checkpoint_tag(repo, recorded[state.commit], state.commit)
            continue
        when = datetime.fromtimestamp(state.time, UTC)
        if merged_at is not None and state.commit == tip:
            when = merged_at
        day = when.astimezone(tz).strftime("%Y-%m-%d")
        name = _tag(repo, day, state.commit)
        if name is None:
            continue  # another run tagged it meanwhile
        event = Event.create(
            EventKind.CHECKPOINT,
            when,  # when it entered the base
            f"Checkpoint {name} of {base_branch}: {_listed(state.tasks)}",
            commit=state.commit,
            tasks=state.tasks,
            lines=[f"Sessions: {', '.join(f'`{s}`' for s in state.sessions)}"]
            if state.sessions
            else [],
            data={"checkpoint": name, "base": base_branch, "sessions": list(state.sessions)},
        )
        record_event(repo, event, timezone=timezone)
        events.append(event)
    return events


def states(repo: Repo, history: Iterable[HistoryCommit]) -> list[State]:
    """The states of a first-parent `history` (given oldest first) where the tool's work entered
    the base, oldest first. Consecutive commits of one session (a fast-forward) are one state,
    its newest."""
    found: list[State] = []
    run: list[CommitInfo] = []  # commits of one fast-forwarded session, oldest first
    run_session: str | None = None
    run_time = 0

    def close_run() -> None:
        if any(TASK_TRAILER in c.trailers for c in run):
            found.append(State(run[-1].id, run_time, *work_of(run)))
        run.clear()

    for commit in history:
        info = commit.info
        session = info.trailers.get(SESSION_TRAILER)
        if commit.is_merge:
            close_run()
            brought = list(reversed(brought_by(repo, commit)))
            if any(TASK_TRAILER in c.trailers for c in brought):
                found.append(State(info.id, commit.time, *work_of(brought)))
            continue
        if session is not None and run and session == run_session:
            run.append(info)
            run_time = commit.time
            continue
        close_run()
        if session is not None or TASK_TRAILER in info.trailers:
            run.append(info)
            run_session, run_time = session, commit.time
            if session is None:  # a squash with no session: a state of its own
                close_run()
    close_run()
    return found


def work_of(commits: Iterable[CommitInfo]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The task ids and the session ids that `commits` (oldest first) carry, each once."""
    tasks: dict[str, None] = {}
    sessions: dict[str, None] = {}
    for commit in commits:
        if TASK_TRAILER not in commit.trailers:
            continue
        # A squash merge keeps every squashed commit's `Task-Id:` line; the trailers only one.
        for value in [*_TASK_LINE.findall(commit.message), commit.trailers[TASK_TRAILER]]:
            for task in task_ids(value):
                tasks.setdefault(task, None)
        if SESSION_TRAILER in commit.trailers:
            sessions.setdefault(commit.trailers[SESSION_TRAILER], None)
    return tuple(tasks), tuple(sessions)


def task_ids(value: str) -> list[str]:
    """The task ids of a `Task-Id:` value: one, or several (`t1, t2`) where `merge` squashed."""
    return [task for task in re.split(r"[,\s]+", value) if task]


def _recorded(repo: Repo) -> dict[str, str]:
    """Commit -> checkpoint name (without `checkpoint/`) of the CHECKPOINT events recorded on
    the memory branch: another machine's too, whose tags a fetch does not bring."""
    found: dict[str, str] = {}
    for event in load_events(repo):
        name = event.data.get("checkpoint")
        if event.kind is not EventKind.CHECKPOINT or not event.commit or not isinstance(name, str):
            continue
        if _NAME.fullmatch(name):
            found.setdefault(event.commit, name.removeprefix(TAG_PREFIX))
    return found


def _tag(repo: Repo, day: str, commit: str) -> str | None:
    """Tag `commit` with the next free `checkpoint/<day>-<n>`; None when a checkpoint tag of
    it appeared meanwhile (another run's)."""
    for _attempt in range(TAG_ATTEMPTS):
        tags = checkpoint_tags(repo)
        if commit in tags.values():
            return None
        numbers = [int(m[1]) for t in tags if (m := re.fullmatch(rf"{day}-(\d+)", t))]
        name = f"{day}-{max(numbers, default=0) + 1}"
        if create_checkpoint_tag(repo, name, commit):
            return checkpoint_name(name)
    raise RefMovedError(f"no free checkpoint number for {day} after {TAG_ATTEMPTS} attempts")


def _listed(tasks: tuple[str, ...], most: int = 8) -> str:
    if len(tasks) <= most:
        return ", ".join(tasks)
    return f"{', '.join(tasks[:most])} and {len(tasks) - most} more"
