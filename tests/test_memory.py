"""The memory log and session records on autonomous/memory, written with real commits."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import EllipsisType
from zoneinfo import ZoneInfo

import pytest

from gitops_agent.errors import UserError
from gitops_agent.git import Repo
from gitops_agent.git.repo import NO_TRAILERS
from gitops_agent.memory import (
    COMMIT_ATTEMPTS,
    SESSIONS_INDEX,
    load_sessions,
    memory_entries,
    record_session,
)
from gitops_agent.results import MEMORY_BRANCH, Outcome, SessionResult, TaskResult
from testing.fixtures import git, make_repo
from testing.sessions import iso, make_session


def blob(repo: Repo, path: str) -> str:
    data = repo.read_blob(MEMORY_BRANCH, path)
    assert data is not None, f"{path} is not on {MEMORY_BRANCH}"
    return data.decode("utf-8")


NIGHT = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo.open(make_repo(tmp_path / "repo"))


def test_a_session_is_recorded_in_one_commit_and_the_checkout_is_untouched(repo: Repo) -> None:
    before = git(repo.root, "status", "--porcelain", "--untracked-files=all")
    head = git(repo.root, "rev-parse", "HEAD")
    result = make_session("20261123-020000-aaaa", NIGHT)

    commit = record_session(repo, result, timezone=None)

    assert repo.branch_tip(MEMORY_BRANCH) == commit
    log = git(repo.root, "log", "--format=%H %P", MEMORY_BRANCH).split("\n")
    assert log[0].split() == [commit]  # one commit, an orphan: nothing of main's history
    changed = git(repo.root, "show", "--name-only", "--format=", commit).split()
    assert sorted(changed) == [
        "memory/2026-11-23.md",
        SESSIONS_INDEX,
        "state/sessions/20261123-020000-aaaa.json",
    ]
    assert json.loads(blob(repo, "state/sessions/20261123-020000-aaaa.json")) == result.to_record()
    assert load_sessions(repo) == [result]
    assert git(repo.root, "rev-parse", "HEAD") == head
    assert git(repo.root, "status", "--porcelain", "--untracked-files=all") == before
    assert git(repo.root, "branch", "--show-current").strip() == "main"


def test_the_memory_log_names_every_task_with_its_outcome_and_why(repo: Repo) -> None:
    result = make_session("20261123-020000-aaaa", NIGHT, stopped="2 consecutive failures")
    record_session(repo, result, timezone=None)
    log = blob(repo, "memory/2026-11-23.md")

    assert log.startswith("# Memory log: 2026-11-23 (UTC)\n")
    assert "## [02:00] Autonomous: Session 20261123-020000-aaaa started" in log
    assert "- Tasks taken (2): task_3, task_5" in log
    assert "- Agent: claude" in log
    # task entries are dated at the start plus the durations so far
    assert "## [02:07] Autonomous: task_3 committed" in log
    assert "- Commit: `4f59eea` on `autonomous/20261123-020000-aaaa`" in log
    assert "`src/models/user.py`, `tests/test_user.py`" in log
    assert "## [02:20] Autonomous: task_5 rolled back" in log
    assert "- Why: The quality gate failed after 3 attempts." in log
    assert "  - It changed `pyproject.toml`, a protected file." in log
    assert "```text\ntests/test_hash.py::test_salt FAILED\nE   assert b'x' != b'x'\n```" in log
    assert "## [02:20] Autonomous: task_4 blocked" in log
    assert "- Rule: Estimated lines 45 is over the limit of 30." in log
    assert "## [02:20] Autonomous: task_8 skipped" in log
    assert "- Why: The session limit of 5 tasks was reached." in log
    assert "## [02:50] Autonomous: Session 20261123-020000-aaaa finished" in log
    assert "1 committed, 1 rolled back, 1 blocked, 1 skipped (50 min)" in log
    assert "- Branch to review: `autonomous/20261123-020000-aaaa`" in log
    assert "- PR description: `.git/gitops-agent/sessions/20261123-020000-aaaa/pr-body.md`" in log
    assert "- Stopped early: 2 consecutive failures" in log


def test_a_second_session_on_the_same_day_appends_and_keeps_the_first_bytes(repo: Repo) -> None:
    record_session(repo, make_session("s-first", NIGHT), timezone=None)
    first = repo.read_blob(MEMORY_BRANCH, "memory/2026-11-23.md")
    assert first is not None

    later = make_session("s-second", NIGHT + timedelta(hours=3), minutes=10)
    record_session(repo, later, timezone=None)
    both = repo.read_blob(MEMORY_BRANCH, "memory/2026-11-23.md")

    assert both is not None and both.startswith(first)
    added = both[len(first) :].decode()
    assert added.startswith("\n## [05:00] Autonomous: Session s-second started")
    assert "# Memory log" not in added  # the day's heading is written once
    assert [s.session for s in load_sessions(repo)] == ["s-second", "s-first"]
    assert blob(repo, SESSIONS_INDEX).splitlines() == [
        f"{iso(NIGHT)}\ts-first",
        f"{iso(NIGHT + timedelta(hours=3))}\ts-second",
    ]


def test_a_session_over_midnight_writes_each_event_into_its_own_days_file(repo: Repo) -> None:
    # 23:40 to 00:40 in Warsaw (UTC+1 in November); task_3 ends at 23:47, task_5 at 00:00.
    started = datetime(2026, 11, 22, 22, 40, tzinfo=UTC)
    record_session(repo, make_session("s-midnight", started, minutes=60), timezone="Europe/Warsaw")

    evening = blob(repo, "memory/2026-11-22.md")
    morning = blob(repo, "memory/2026-11-23.md")
    assert evening.startswith("# Memory log: 2026-11-22 (Europe/Warsaw)")
    assert "## [23:40] Autonomous: Session s-midnight started" in evening
    assert "## [23:47] Autonomous: task_3 committed" in evening
    assert "task_5 rolled back" not in evening
    assert morning.startswith("# Memory log: 2026-11-23 (Europe/Warsaw)")
    assert "## [00:00] Autonomous: task_5 rolled back" in morning
    assert "## [00:00] Autonomous: task_4 blocked" in morning
    assert "## [00:40] Autonomous: Session s-midnight finished" in morning
    assert "task_3 committed" not in morning
    entries = memory_entries(
        make_session("s-midnight", started, minutes=60), ZoneInfo("Europe/Warsaw")
    )
    assert list(entries) == ["memory/2026-11-22.md", "memory/2026-11-23.md"]


def test_the_plans_time_zone_decides_the_day(repo: Repo) -> None:
    started = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)  # 05:00 the next day in Tokyo
    record_session(repo, make_session("s-tokyo", started, minutes=5), timezone="Asia/Tokyo")

    log = blob(repo, "memory/2026-11-24.md")
    assert "## [05:00] Autonomous: Session s-tokyo started" in log
    assert repo.read_blob(MEMORY_BRANCH, "memory/2026-11-23.md") is None


def test_recording_the_same_session_again_changes_nothing(repo: Repo) -> None:
    result = make_session("s-once", NIGHT)
    first = record_session(repo, result, timezone=None)
    assert record_session(repo, result, timezone=None) == first
    assert blob(repo, "memory/2026-11-23.md").count("Session s-once started") == 1


class InterleavedRepo(Repo):
    """A repository where another session lands its record just before ours commits.

    Not a fake: the other record is a real commit on the real branch, written at the one moment
    a race can hurt (after we read the branch, before we move it).
    """

    other: SessionResult | None = None

    def commit_files(
        self,
        branch: str,
        files: Mapping[str, bytes | None],
        message: str,
        *,
        expected_tip: str | EllipsisType | None = ...,
        trailers: Mapping[str, str] = NO_TRAILERS,
    ) -> str:
        if self.other is not None:
            other, self.other = self.other, None
            record_session(Repo.open(self.root), other, timezone=None)
        return super().commit_files(
            branch, files, message, expected_tip=expected_tip, trailers=trailers
        )


def test_a_session_landing_meanwhile_is_kept_and_ours_is_retried_on_top(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    record_session(Repo.open(root), make_session("s-0", NIGHT - timedelta(hours=1)), timezone=None)
    repo = InterleavedRepo.open(root)
    repo.other = make_session("s-other", NIGHT)

    record_session(repo, make_session("s-ours", NIGHT + timedelta(minutes=5)), timezone=None)

    sessions = [s.session for s in load_sessions(Repo.open(root))]
    assert sessions == ["s-ours", "s-other", "s-0"]
    log = blob(Repo.open(root), "memory/2026-11-23.md")
    assert log.index("Session s-other started") < log.index("Session s-ours started")
    assert log.count("# Memory log") == 1


def test_sessions_finishing_together_in_threads_all_land(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    results = [make_session(f"s-{n}", NIGHT + timedelta(minutes=n)) for n in range(4)]
    barrier = threading.Barrier(len(results))
    errors: list[BaseException] = []

    def finish(result: SessionResult) -> None:
        repo = Repo.open(root)
        barrier.wait()
        try:
            record_session(repo, result, timezone=None)
        except BaseException as err:  # collected: a thread's failure must fail the test
            errors.append(err)

    threads = [threading.Thread(target=finish, args=(r,)) for r in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    repo = Repo.open(root)
    assert sorted(s.session for s in load_sessions(repo)) == [r.session for r in results]
    log = blob(repo, "memory/2026-11-23.md")
    for result in results:
        assert log.count(f"Session {result.session} started") == 1
        assert log.count(f"Session {result.session} finished") == 1
    assert len(blob(repo, SESSIONS_INDEX).splitlines()) == len(results)
    assert len(results) <= COMMIT_ATTEMPTS


def test_load_sessions_without_the_branch_is_empty_and_since_filters(repo: Repo) -> None:
    assert load_sessions(repo) == []
    for days in (3, 2, 1):
        record_session(repo, make_session(f"s-{days}", NIGHT - timedelta(days=days)), timezone=None)

    assert [s.session for s in load_sessions(repo)] == ["s-1", "s-2", "s-3"]
    since = NIGHT - timedelta(days=2)
    assert [s.session for s in load_sessions(repo, since=since)] == ["s-1", "s-2"]


def test_gate_output_with_backticks_cannot_break_out_of_its_fence(repo: Repo) -> None:
    nasty = TaskResult(
        "t-ticks",
        "Quote code",
        Outcome.ROLLED_BACK,
        "The gate failed.",
        attempts=1,
        gate_output="```\n## [99:99] Autonomous: fake entry\n````\n",
    )
    record_session(repo, make_session("s-ticks", NIGHT, (nasty,)), timezone=None)
    log = blob(repo, "memory/2026-11-23.md")
    assert "`````text\n```\n## [99:99] Autonomous: fake entry\n````\n`````" in log


def test_a_corrupt_record_is_an_error_that_names_it(repo: Repo) -> None:
    record_session(repo, make_session("s-bad", NIGHT), timezone=None)
    repo.commit_files(MEMORY_BRANCH, {"state/sessions/s-bad.json": b"{not json"}, "Break it")
    with pytest.raises(UserError, match=r"autonomous/memory:state/sessions/s-bad.json"):
        load_sessions(repo)
