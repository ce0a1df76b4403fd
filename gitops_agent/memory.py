"""The memory log and the sessions' records, kept on the branch autonomous/memory.

Layout on the branch (never merged, so never a conflict):
- `memory/YYYY-MM-DD.md`: what happened, one file per day in the plan's time zone, append-only;
- `state/sessions/<session-id>.json`: each session's `SessionResult.to_record()`;
- `state/sessions.tsv`: one line per session (`started<TAB>session-id`), appended, so that
  `report` finds the records it needs without listing the tree;
- `state/events/<event-id>.json`: what happened after sessions (`events.Event`: quarantine,
  merges, checkpoints, rollbacks, proposals, scans), each also a memory log entry.

Runs on other machines write their own copies of the branch; `publish_memory` pushes ours
without losing theirs (fetch, join, compare-and-swap push, again), so every record lands.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gitops_agent import __version__
from gitops_agent.errors import UserError
from gitops_agent.events import EVENTS_DIR, Event, encode, event_path
from gitops_agent.files import write_atomic
from gitops_agent.git import RefMovedError, Repo
from gitops_agent.git.merge import commit_merge
from gitops_agent.git.remote import (
    DEFAULT_REMOTE,
    BranchUpdate,
    adopt_remote_branch,
    fetch_autonomous,
    move_branch,
    push_cas,
    remote_branches,
    remote_url,
)
from gitops_agent.policy.masking import mask
from gitops_agent.render import parse_time, render
from gitops_agent.results import MEMORY_BRANCH, MEMORY_DIR, SESSIONS_DIR, Outcome, SessionResult
from gitops_agent.runstate import STALE_REF_LOCK

SESSIONS_INDEX = "state/sessions.tsv"
TEMPLATE = "memory.md.j2"
# Two sessions finishing together each re-read the branch and try again; more than a handful
# of writers at one instant means something is wrong, so give up loudly.
COMMIT_ATTEMPTS = 8
MEMORY_REF = f"refs/heads/{MEMORY_BRANCH}"
# Pushing: each attempt fetches, joins and pushes again; runs that finish within the same
# seconds take turns, so a few attempts with a growing pause are plenty.
PUSH_ATTEMPTS = 6
PUSH_BACKOFF = 0.5  # seconds, times the attempt's number
PENDING_DIR = "pending"  # under the state directory: records the branch could not take yet


def zone_of(name: str | None) -> tzinfo:
    """The plan's `timezone` setting as a tzinfo (UTC when unset)."""
    if name is None:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(f"`timezone`: unknown time zone `{name}`") from None


def session_path(session: str) -> str:
    return f"{SESSIONS_DIR}/{session}.json"


def day_path(day: str) -> str:
    return f"{MEMORY_DIR}/{day}.md"


def record_session(repo: Repo, result: SessionResult, *, timezone: str | None) -> str:
    """Append the session's events to the memory log and store its record, in one commit.

    The commit goes on autonomous/memory only if the branch is still where it was read; when
    another session moved it meanwhile, everything is re-read and tried again, so two sessions
    finishing together both land. Returns the commit id (the tip, when already recorded).
    """
    # The record is not rendered from a template, so it is masked here; `report` reads it back.
    record = (mask(json.dumps(result.to_record(), indent=2, ensure_ascii=False)) + "\n").encode()
    record_at = session_path(result.session)
    for _attempt in range(COMMIT_ATTEMPTS):
        tip = repo.branch_tip(MEMORY_BRANCH)
        if tip is not None and repo.read_blob(tip, record_at) == record:
            return tip  # a write-back that was retried: recording it again would repeat it
        tree = None if tip is None else repo.tree_of(tip)
        files = _session_files(repo, tree, result, record, timezone)
        message = render(TEMPLATE, kind="commit", result=result, counts=_counts(result))
        try:
            return repo.commit_files(
                MEMORY_BRANCH,
                files,
                message,
                expected_tip=tip,
                trailers={"Session": result.session, "Gitops-Agent-Version": __version__},
            )
        except RefMovedError:
            continue
    raise RefMovedError(
        f"{MEMORY_BRANCH} kept moving while session {result.session} was recorded "
        f"({COMMIT_ATTEMPTS} attempts); its record is not stored"
    )


def _session_files(
    repo: Repo, tree: str | None, result: SessionResult, record: bytes, timezone: str | None
) -> dict[str, bytes | None]:
    """What recording `result` on top of `tree` (None: a branch still empty) writes: its
    record, its entries appended to each day's log, its line appended to the index."""
    zone_name = timezone or "UTC"
    files: dict[str, bytes | None] = {session_path(result.session): record}
    for path, text in memory_entries(result, zone_of(timezone)).items():
        old = None if tree is None else repo.read_tree_blob(tree, path)
        if old is None:
            day = path.removeprefix(f"{MEMORY_DIR}/").removesuffix(".md")
            old = render(TEMPLATE, kind="day", day=day, zone=zone_name).encode()
        elif not old.endswith(b"\n"):
            old += b"\n"  # someone edited the file by hand; keep their bytes, start a line
        files[path] = old + text.encode()
    index = b"" if tree is None else (repo.read_tree_blob(tree, SESSIONS_INDEX) or b"")
    if result.session not in {session for _started, session in _index_lines(index)}:
        files[SESSIONS_INDEX] = index + f"{result.started}\t{result.session}\n".encode()
    return files


def record_event(repo: Repo, event: Event, *, timezone: str | None) -> str:
    """Store an event and its memory log entry on autonomous/memory in one commit (compare
    and swap, re-read and tried again when another writer moved the branch)."""
    record = mask(encode(event).decode()).encode()
    for _attempt in range(COMMIT_ATTEMPTS):
        tip = repo.branch_tip(MEMORY_BRANCH)
        if tip is not None and repo.read_blob(tip, event_path(event.id)) == record:
            return tip
        tree = None if tip is None else repo.tree_of(tip)
        try:
            return repo.commit_files(
                MEMORY_BRANCH,
                _event_files(repo, tree, event, record, timezone),
                render(TEMPLATE, kind="event_commit", event=event),
                expected_tip=tip,
                trailers={"Gitops-Agent-Version": __version__},
            )
        except RefMovedError:
            continue
    raise RefMovedError(
        f"{MEMORY_BRANCH} kept moving while an event was recorded ({COMMIT_ATTEMPTS} attempts)"
    )


def _event_files(
    repo: Repo, tree: str | None, event: Event, record: bytes, timezone: str | None
) -> dict[str, bytes | None]:
    tz = zone_of(timezone)
    when = parse_time(event.time)
    path = day_path(when.astimezone(tz).strftime("%Y-%m-%d"))
    old = None if tree is None else repo.read_tree_blob(tree, path)
    if old is None:
        day = path.removeprefix(f"{MEMORY_DIR}/").removesuffix(".md")
        old = render(TEMPLATE, kind="day", day=day, zone=timezone or "UTC").encode()
    elif not old.endswith(b"\n"):
        old += b"\n"
    entry = _entry("event", when, tz, event=event).encode()
    return {event_path(event.id): record, path: old + entry}


def load_events(repo: Repo) -> list[Event]:
    """Every recorded event, oldest first (by time, then id), from each memory tip."""
    found: dict[str, Event] = {}
    for tip in memory_tips(repo):
        for name in repo.tree_names(repo.tree_of(tip), EVENTS_DIR):
            path = f"{EVENTS_DIR}/{name}"
            if name.removesuffix(".json") in found:
                continue
            data = repo.read_blob(tip, path)
            if data is not None:
                event = _parse_event(data, path)
                found[event.id] = event
    return sorted(found.values(), key=lambda e: (parse_time(e.time), e.id))


def _parse_event(data: bytes, path: str) -> Event:
    where = f"{MEMORY_BRANCH}:{path}"
    try:
        return Event.from_record(json.loads(data.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise UserError(f"not an event record ({err}); fix or delete it", where) from None


# -- two runners, one memory --------------------------------------------------------------------


def join_memory(repo: Repo, ours: str, theirs: str, *, timezone: str | None) -> str:
    """A commit on top of `theirs` (its first parent) and `ours` whose tree is theirs with every
    session that only ours recorded appended, as `record_session` appends one.

    Two runs that recorded their sessions on copies of one memory branch both keep their
    record: nothing of theirs changes (its history stays an ancestor, its files only grow), and
    ours comes after. Each joined session's record file is kept byte for byte.
    """
    known = {session for _started, session in _index_lines(_blob(repo, theirs, SESSIONS_INDEX))}
    tree = repo.tree_of(theirs)
    joined: list[str] = []
    for _started, session in _index_lines(_blob(repo, ours, SESSIONS_INDEX)):
        record_at = session_path(session)
        data = repo.read_blob(ours, record_at)
        if session in known or session in joined or data is None:
            continue
        result = _parse_record(data, record_at)
        tree = repo.replace_in_tree(tree, _session_files(repo, tree, result, data, timezone))
        joined.append(session)
    theirs_events = set(repo.tree_names(tree, EVENTS_DIR))
    for name in repo.tree_names(repo.tree_of(ours), EVENTS_DIR):
        if name in theirs_events:
            continue
        path = f"{EVENTS_DIR}/{name}"
        data = repo.read_blob(ours, path)
        if data is not None:
            event = _parse_event(data, path)
            tree = repo.replace_in_tree(tree, _event_files(repo, tree, event, data, timezone))
    message = render(TEMPLATE, kind="join", sessions=joined)
    return commit_merge(repo, tree, [theirs, ours], message, {"Gitops-Agent-Version": __version__})


def catch_up_memory(repo: Repo, remote: str, *, timezone: str | None) -> BranchUpdate:
    """Bring autonomous/memory up to the remote's as last fetched: created, fast-forwarded,
    kept, or (when both moved) joined with it. Returns which (ABSENT: the remote has none)."""
    how = adopt_remote_branch(repo, remote, MEMORY_BRANCH)
    if how is not BranchUpdate.DIVERGED:
        return how
    ours = repo.branch_tip(MEMORY_BRANCH)
    theirs = remote_branches(repo, remote).get(MEMORY_BRANCH)
    assert ours is not None and theirs is not None  # both exist, or they could not diverge
    move_branch(
        repo, MEMORY_BRANCH, join_memory(repo, ours, theirs, timezone=timezone), expected=ours
    )
    return BranchUpdate.JOINED


def publish_memory(
    repo: Repo, remote: str, *, timezone: str | None, token: str | None = None
) -> str | None:
    """Push autonomous/memory to `remote` without ever losing a record already there.

    Fetch the remote's memory; when ours lacks some of it, join the two (`join_memory`); push
    with a lease on what was fetched (`push_cas`); when another run pushed meanwhile, start
    over, a bounded number of times. Returns the ref pushed, or None when the remote had it all.
    """
    for attempt in range(PUSH_ATTEMPTS):
        theirs = fetch_autonomous(repo, remote, token=token).get(MEMORY_BRANCH)
        ours = repo.branch_tip(MEMORY_BRANCH)
        if ours is None or (theirs is not None and repo.is_merged(ours, theirs)):
            if theirs is not None and remote_url(repo, remote) is not None:
                catch_up_memory(repo, remote, timezone=timezone)
            return None
        if theirs is None or repo.is_merged(theirs, ours):
            new = ours
        else:
            new = join_memory(repo, ours, theirs, timezone=timezone)
        try:
            push_cas(repo, remote, MEMORY_REF, new, expected=theirs, token=token)
        except RefMovedError:
            time.sleep(PUSH_BACKOFF * (attempt + 1))
            continue
        if new != ours:
            with contextlib.suppress(RefMovedError):  # a session recorded meanwhile: next time
                move_branch(repo, MEMORY_BRANCH, new, expected=ours)
        return MEMORY_REF
    raise UserError(
        f"{MEMORY_BRANCH} on {remote} kept moving ({PUSH_ATTEMPTS} attempts); it is left as "
        "it is, and the next run pushes this memory again (nothing of it is lost)"
    )


# -- records the memory branch could not take yet -----------------------------------------------


def record_or_keep(
    repo: Repo, result: SessionResult, *, timezone: str | None, state_dir: Path
) -> list[str]:
    """`record_session`, for a run that holds the run lock; returns notes for people.

    A ref lock that a dead process left on the branch is cleared (as the run lock's leftovers
    are); if the branch still cannot be written, the record waits in the state directory and
    the next run stores it (`record_pending`): a session's record is never lost.
    """
    notes: list[str] = []
    problem: RefMovedError | None = None
    for attempt in range(2):
        try:
            record_session(repo, result, timezone=timezone)
            return notes
        except RefMovedError as err:
            problem = err
        if attempt == 0:
            time.sleep(STALE_REF_LOCK)  # a live writer's lock is gone by now; a dead one's not
            for lock in repo.clear_own_ref_locks(older_than=STALE_REF_LOCK):
                notes.append(f"Removed {lock}, left by a process that died while writing it.")
    path = state_dir / PENDING_DIR / f"{result.session}.json"
    kept = {"timezone": timezone, "record": result.to_record()}
    write_atomic(path, mask(json.dumps(kept, ensure_ascii=False)).encode())
    notes.append(
        f"{MEMORY_BRANCH} could not be written ({problem}); the session's record waits in "
        f"{path} and the next run stores it."
    )
    return notes


def record_pending(repo: Repo, state_dir: Path) -> list[str]:
    """Store the records earlier runs could not (`record_or_keep`); returns notes for people."""
    notes: list[str] = []
    for path in sorted((state_dir / PENDING_DIR).glob("*.json")):
        try:
            kept = json.loads(path.read_text(encoding="utf-8"))
            result = SessionResult.from_record(kept["record"])
            record_session(repo, result, timezone=kept.get("timezone"))
        except (OSError, ValueError, KeyError, TypeError, RefMovedError) as err:
            notes.append(f"A waiting session record could not be stored yet ({err}): {path}")
            continue
        path.unlink()
        notes.append(f"Stored session {result.session}'s record, which an earlier run could not.")
    return notes


def memory_tips(repo: Repo, remote: str = DEFAULT_REMOTE) -> list[str]:
    """Where the memory is to be read: our branch, and the remote's as last fetched where it
    holds what ours does not. A fresh clone (each CI job, a teammate's checkout) has only the
    remote's; two that diverged are both read, never joined here (reading writes nothing)."""
    ours = repo.branch_tip(MEMORY_BRANCH)
    theirs = remote_branches(repo, remote).get(MEMORY_BRANCH)
    if ours is None or theirs is None:
        return [tip for tip in (ours, theirs) if tip is not None]
    if ours == theirs or repo.is_merged(theirs, ours):
        return [ours]
    if repo.is_merged(ours, theirs):
        return [theirs]
    return [ours, theirs]


def load_session(repo: Repo, session: str) -> SessionResult | None:
    """One recorded session, or None when the memory branch has no record of it."""
    for tip in memory_tips(repo):
        data = repo.read_blob(tip, session_path(session))
        if data is not None:
            return _parse_record(data, session_path(session))
    return None


def memory_entries(result: SessionResult, tz: tzinfo) -> dict[str, str]:
    """Markdown to append, by day file (memory/YYYY-MM-DD.md), in the order things happened.

    A record keeps only the session's start and finish times, so a task's entry is dated at the
    start plus the durations of the tasks before it and its own (close enough for a log, and
    never later than the finish). A session that spans midnight writes to two files.
    """
    started, finished = parse_time(result.started), parse_time(result.finished)
    finished = max(finished, started)
    counts = _counts(result)
    ran = [t.id for t in result.tasks if t.outcome in (Outcome.COMMITTED, Outcome.ROLLED_BACK)]
    others = [t.id for t in result.tasks if t.id not in ran]
    events: list[tuple[datetime, str]] = [
        (started, _entry("start", started, tz, result=result, planned=ran, others=others))
    ]
    clock = started
    for task in result.tasks:
        clock = min(clock + timedelta(seconds=max(task.duration, 0.0)), finished)
        events.append((clock, _entry("task", clock, tz, result=result, task=task)))
    elapsed = (finished - started).total_seconds()
    events.append(
        (
            finished,
            _entry("finish", finished, tz, result=result, counts=counts, elapsed=elapsed),
        )
    )
    by_day: dict[str, str] = {}
    for when, text in events:
        path = day_path(when.astimezone(tz).strftime("%Y-%m-%d"))
        by_day[path] = by_day.get(path, "") + text
    return by_day


def load_sessions(repo: Repo, *, since: datetime | None = None) -> list[SessionResult]:
    """The recorded sessions, newest first; only those started at or after `since` if given."""
    sessions: list[SessionResult] = []
    seen: set[str] = set()
    for tip in memory_tips(repo):
        for started, session in _index_lines(repo.read_blob(tip, SESSIONS_INDEX) or b""):
            if session in seen or (since is not None and parse_time(started) < since):
                continue
            path = session_path(session)
            data = repo.read_blob(tip, path)
            if data is None:
                continue  # listed but not stored: the index and the records are written together
            seen.add(session)
            sessions.append(_parse_record(data, path))
    sessions.sort(key=lambda s: (parse_time(s.started), s.session), reverse=True)
    return sessions


def _parse_record(data: bytes, path: str) -> SessionResult:
    where = f"{MEMORY_BRANCH}:{path}"
    try:
        raw: Any = json.loads(data.decode("utf-8"))
        if not isinstance(raw, dict):
            raise TypeError("not a JSON object")
        return SessionResult.from_record(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise UserError(f"not a session record ({err}); fix or delete it", where) from None


def _blob(repo: Repo, commit: str, path: str) -> bytes:
    return repo.read_blob(commit, path) or b""


def _index_lines(data: bytes) -> Iterator[tuple[str, str]]:
    for line in data.decode("utf-8", errors="replace").splitlines():
        started, _tab, session = line.partition("\t")
        if session.strip():
            yield started.strip(), session.strip()


def _counts(result: SessionResult) -> dict[str, int]:
    found = Counter(t.outcome.value for t in result.tasks)
    return {outcome.value: found[outcome.value] for outcome in Outcome}


def _entry(kind: str, when: datetime, tz: tzinfo, **context: Any) -> str:
    return render(TEMPLATE, kind=kind, time=when.astimezone(tz).strftime("%H:%M"), **context)
