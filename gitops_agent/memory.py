"""The memory log and the sessions' records, kept on the branch autonomous/memory.

Layout on the branch (never merged, so never a conflict):
- `memory/YYYY-MM-DD.md`: what happened, one file per day in the plan's time zone, append-only;
- `state/sessions/<session-id>.json`: each session's `SessionResult.to_record()`;
- `state/sessions.tsv`: one line per session (`started<TAB>session-id`), appended, so that
  `report` finds the records it needs without listing the tree.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gitops_agent import __version__
from gitops_agent.errors import UserError
from gitops_agent.git import RefMovedError, Repo
from gitops_agent.policy.masking import mask
from gitops_agent.render import parse_time, render
from gitops_agent.results import MEMORY_BRANCH, MEMORY_DIR, SESSIONS_DIR, Outcome, SessionResult

SESSIONS_INDEX = "state/sessions.tsv"
TEMPLATE = "memory.md.j2"
# Two sessions finishing together each re-read the branch and try again; more than a handful
# of writers at one instant means something is wrong, so give up loudly.
COMMIT_ATTEMPTS = 8


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
    entries = memory_entries(result, zone_of(timezone))
    # The record is not rendered from a template, so it is masked here; `report` reads it back.
    record = (mask(json.dumps(result.to_record(), indent=2, ensure_ascii=False)) + "\n").encode()
    record_at = session_path(result.session)
    zone_name = timezone or "UTC"
    for _attempt in range(COMMIT_ATTEMPTS):
        tip = repo.branch_tip(MEMORY_BRANCH)
        if tip is not None and repo.read_blob(tip, record_at) == record:
            return tip  # a write-back that was retried: recording it again would repeat it
        files: dict[str, bytes | None] = {record_at: record}
        for path, text in entries.items():
            old = None if tip is None else repo.read_blob(tip, path)
            if old is None:
                day = path.removeprefix(f"{MEMORY_DIR}/").removesuffix(".md")
                old = render(TEMPLATE, kind="day", day=day, zone=zone_name).encode()
            elif not old.endswith(b"\n"):
                old += b"\n"  # someone edited the file by hand; keep their bytes, start a line
            files[path] = old + text.encode()
        index = b"" if tip is None else (repo.read_blob(tip, SESSIONS_INDEX) or b"")
        if result.session not in {session for _started, session in _index_lines(index)}:
            files[SESSIONS_INDEX] = index + f"{result.started}\t{result.session}\n".encode()
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
    tip = repo.branch_tip(MEMORY_BRANCH)
    if tip is None:
        return []
    sessions: list[SessionResult] = []
    for started, session in _index_lines(repo.read_blob(tip, SESSIONS_INDEX) or b""):
        if since is not None and parse_time(started) < since:
            continue
        path = session_path(session)
        data = repo.read_blob(tip, path)
        if data is None:
            continue  # listed but not stored: the index and the records are written together
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
