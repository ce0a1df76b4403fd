"""`gitops-agent report`: the morning brief from sessions recorded on a real repository."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gitops_agent.commands.report import parse_since
from gitops_agent.git import Repo
from gitops_agent.memory import record_session
from gitops_agent.report import Brief, ProblemKind, gather, load_at_base, to_html, to_markdown
from gitops_agent.results import Outcome, SessionResult, TaskResult
from testing.fixtures import git, make_repo
from testing.project import seed_repo
from testing.sessions import awaiting_branch, make_session

CHROMIUM = Path("/usr/bin/chromium")


def rolled_back(
    task_id: str, reason: str = "The quality gate failed after 3 attempts."
) -> TaskResult:
    return TaskResult(task_id, "Add password hashing function", Outcome.ROLLED_BACK, reason, 3)


def brief_at(root: Path, now: datetime, **options: object) -> Brief:
    repo = Repo.open(root)
    return gather(repo, load_at_base(repo), now=now, **options)  # type: ignore[arg-type]


NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
NIGHT = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture
def night(tmp_path: Path) -> tuple[Path, SessionResult]:
    """Three earlier nights in which task_5 failed, then last night: one task of each outcome."""
    root = seed_repo(tmp_path)
    repo = Repo.open(root)
    for days in (3, 2, 1):
        earlier = make_session(
            f"s-{days}", NIGHT - timedelta(days=days), (rolled_back("task_5"),), minutes=20
        )
        record_session(repo, earlier, timezone=None)
    commit = awaiting_branch(repo, "s-last", "task_3")
    last = make_session("s-last", NIGHT, stopped="2 consecutive failures")
    last = SessionResult.from_record(
        {
            **last.to_record(),
            "tasks": [
                {**last.tasks[0].to_record(), "commit": commit},
                *[t.to_record() for t in last.tasks[1:]],
            ],
        }
    )
    record_session(repo, last, timezone=None)
    return root, last


def test_the_brief_says_what_happened_to_every_task_and_why(
    night: tuple[Path, SessionResult],
) -> None:
    root, last = night
    text = to_markdown(brief_at(root, NOW))

    assert text.startswith("# 🌅 gitops-agent morning report, Monday 2026-11-23 07:00 UTC\n")
    assert "### Session `s-last`: 2026-11-23 02:00 to 02:50" in text
    commit = last.tasks[0].commit
    assert commit is not None
    assert (
        f"- **task_3** Add User model with email and password fields: `{commit[:7]}` "
        "(1 attempt, 7 min; 2 files)"
    ) in text
    assert (
        "- **task_5** Add password hashing function (3 attempts, 13 min): The quality gate "
        "failed after 3 attempts."
    ) in text
    assert "  - It changed `pyproject.toml`, a protected file." in text
    assert "  ```text\n  tests/test_hash.py::test_salt FAILED\n" in text
    assert (
        "- **task_4** Add password reset flow: Estimated lines 45 is over the limit of 30." in text
    )
    assert "- **task_8** Document the API: The session limit of 5 tasks was reached." in text
    assert "> Stopped early: 2 consecutive failures" in text
    assert (
        "**To review:** branch `autonomous/s-last`, PR description "
        "`.git/gitops-agent/sessions/s-last/pr-body.md`."
    ) in text
    assert "s-1" not in text.split("## 🔍")[0]  # yesterday's sessions are older than 24 h


def test_the_brief_has_the_track_record_queue_and_next_tasks(
    night: tuple[Path, SessionResult],
) -> None:
    root, _last = night
    text = to_markdown(brief_at(root, NOW))

    # 4 sessions: 1 committed, 4 rolled back
    assert "Success rate over the last 4 sessions: **20%** (1 committed, 4 rolled back;" in text
    assert "| 2 | 1 | 2 | 0 | 2 |" in text  # ready, pending, not ready, done, eligible
    assert "- `autonomous/s-last` at" in text and ": task_3 (1 commit)" in text
    # task_3 awaits review, so task_5 is the only one to run next
    next_up = text.split("## ⏭️ Next up", 1)[1]
    assert "1. **task_5** Add password hashing function" in next_up
    assert "task_3" not in next_up

    narrow = to_markdown(brief_at(root, NOW, window=1))
    assert "Success rate over the last session: **50%** (1 committed, 1 rolled back;" in narrow


def test_a_task_failing_three_nights_running_needs_a_person(
    night: tuple[Path, SessionResult],
) -> None:
    root, _last = night
    brief = brief_at(root, NOW)
    failing = [p for p in brief.problems if p.kind is ProblemKind.FAILING]
    assert [p.task for p in failing] == ["task_5"]
    text = to_markdown(brief)
    assert text.index("## ⚠️ Needs a person") < text.index("## Last session")
    assert "- task_5 was rolled back in each of the last 3 sessions it ran in;" in text


def test_a_task_that_succeeded_once_in_its_last_three_runs_is_not_flagged(tmp_path: Path) -> None:
    root = seed_repo(tmp_path)
    repo = Repo.open(root)
    committed = TaskResult("task_5", "Hashing", Outcome.COMMITTED, "Passed.", "c" * 40, 1)
    runs = [rolled_back("task_5"), committed, rolled_back("task_5"), rolled_back("task_5")]
    for n, task in enumerate(runs):
        session = make_session(f"s-{n}", NIGHT - timedelta(days=3 - n), (task,), branch=None)
        record_session(repo, session, timezone=None)
    assert not [p for p in brief_at(root, NOW).problems if p.kind is ProblemKind.FAILING]


def test_a_gate_failing_on_the_base_needs_a_person_and_is_no_success(tmp_path: Path) -> None:
    root = seed_repo(tmp_path)
    repo = Repo.open(root)
    good = make_session("s-good", NIGHT - timedelta(days=3), minutes=10)
    record_session(repo, good, timezone=None)
    for days in (2, 1, 0):
        broken = make_session(
            f"s-base-{days}",
            NIGHT - timedelta(days=days),
            (),
            gate_failed_on_base=True,
            stopped="The quality gate fails on main itself.",
        )
        record_session(repo, broken, timezone=None)

    brief = brief_at(root, NOW)
    kinds = [p.kind for p in brief.problems]
    assert ProblemKind.GATE_FAILED_ON_BASE in kinds
    assert ProblemKind.HEARTBEAT in kinds
    text = to_markdown(brief)
    assert "The quality gate fails on `main` itself (session s-base-0, at `05e1dc9`)" in text
    assert (
        "⚠️ No successful session for 3 days (the last finished 2026-11-20 02:10 UTC); "
        "the schedule `0 2 * * *` (UTC) expects one every day."
    ) in text


def test_the_heartbeat_is_quiet_when_the_last_night_succeeded(
    night: tuple[Path, SessionResult],
) -> None:
    root, _last = night
    brief = brief_at(root, NOW)
    assert not brief.heartbeat.overdue
    assert brief.heartbeat.message.startswith(
        "✅ The last successful session finished 2026-11-23 02:50 UTC, 4 h 10 min ago;"
    )
    # at 02:30 tonight's run may still be going (4-hour sessions): yesterday's is enough
    assert not brief_at(root, NIGHT + timedelta(days=1, minutes=30)).heartbeat.overdue
    # a week later, with nothing since, it is loud
    late = brief_at(root, NOW + timedelta(days=7))
    assert late.heartbeat.overdue
    assert late.heartbeat.message.startswith("⚠️ No successful session for 7 days")


def test_a_success_a_little_before_the_scheduled_time_counts(tmp_path: Path) -> None:
    # a cron line in local time (02:00 Warsaw is 01:00 UTC) or a run by hand before 02:00 UTC
    root = seed_repo(tmp_path)
    early = make_session("s-early", NIGHT - timedelta(hours=1), minutes=30)
    record_session(Repo.open(root), early, timezone=None)
    assert not brief_at(root, NOW).heartbeat.overdue
    # the day after, tonight's and last night's runs are both missing
    assert brief_at(root, NOW + timedelta(days=1)).heartbeat.overdue


def test_a_weekly_schedule_in_the_plan_expects_a_session_a_week(tmp_path: Path) -> None:
    root = seed_repo(tmp_path, "schedule: 0 3 * * 1\ntimezone: Europe/Warsaw\n")
    monday = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
    record_session(
        Repo.open(root), make_session("s-mon", monday - timedelta(days=7)), timezone=None
    )

    on_friday = brief_at(root, monday - timedelta(days=3))
    assert not on_friday.heartbeat.overdue
    assert "expects one every week" in on_friday.heartbeat.message
    assert "(the last" not in on_friday.heartbeat.message
    assert "2026-11-16 04:50 Europe/Warsaw" in on_friday.heartbeat.message
    assert brief_at(root, monday + timedelta(hours=8)).heartbeat.overdue


def test_no_session_yet_is_said_plainly(tmp_path: Path) -> None:
    root = seed_repo(tmp_path)
    brief = brief_at(root, NOW)
    assert brief.problems == () and not brief.heartbeat.overdue
    text = to_markdown(brief)
    assert "No session has run yet. `gitops-agent run`" in text
    assert "**Heartbeat:** No session has run yet; the schedule `0 2 * * *`" in text


def test_since_chooses_the_sessions_and_the_last_one_is_always_shown(
    night: tuple[Path, SessionResult],
) -> None:
    root, _last = night
    three = brief_at(root, NOW, since=NOW - timedelta(days=3))
    assert [s.session for s in three.sessions] == ["s-last", "s-1", "s-2"]
    later = brief_at(root, NOW + timedelta(days=2))
    assert [s.session for s in later.sessions] == ["s-last"] and later.older
    assert "No session since 2026-11-24 07:00; the most recent one:" in to_markdown(later)


def test_parse_since_reads_ages_days_and_times() -> None:
    from zoneinfo import ZoneInfo

    warsaw = ZoneInfo("Europe/Warsaw")
    assert parse_since("3d", NOW, UTC) == NOW - timedelta(days=3)
    assert parse_since("12h", NOW, UTC) == NOW - timedelta(hours=12)
    assert parse_since("2026-11-20", NOW, warsaw) == datetime(2026, 11, 19, 23, 0, tzinfo=UTC)
    assert parse_since("2026-11-20T06:00+00:00", NOW, warsaw) == datetime(
        2026, 11, 20, 6, 0, tzinfo=UTC
    )


def test_report_cli_markdown_json_and_bad_since(tmp_path: Path, cli) -> None:
    root = seed_repo(tmp_path)
    repo = Repo.open(root)
    now = datetime.now(UTC)
    commit = awaiting_branch(repo, "s-now", "task_3")
    session = make_session("s-now", now - timedelta(hours=2), minutes=30)
    session = SessionResult.from_record(
        {**session.to_record(), "tasks": [{**session.tasks[0].to_record(), "commit": commit}]}
    )
    record_session(repo, session, timezone=None)

    shown = cli("report", cwd=root)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("# 🌅 gitops-agent morning report")
    assert f"`{commit[:7]}`" in shown.stdout

    as_json = cli("report", "--json", "--sessions", "3", cwd=root)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert [s["session"] for s in data["sessions"]] == ["s-now"]
    assert data["sessions"][0]["tasks"][0] == {**session.tasks[0].to_record()}
    assert data["success_rate"] == {"sessions": 1, "committed": 1, "rolled_back": 0, "rate": 1.0}
    assert data["queue"] == {
        "ready": 2,
        "pending": 1,
        "not_ready": 2,
        "done": 0,
        "eligible": 2,
        "awaiting_review": 1,
        "can_run": 1,
    }
    assert data["next_tasks"] == [{"id": "task_5", "title": "Add password hashing function"}]
    assert data["awaiting_review"][0]["branch"] == "autonomous/s-now"
    assert data["awaiting_review"][0]["tasks"] == ["task_3"]
    assert data["heartbeat"]["overdue"] is False
    assert data["problems"] == []
    assert [t["id"] for t in data["plan"]["tasks"]] == [
        "task_3",
        "task_5",
        "task_4",
        "task_6",
        "task_7",
    ]

    bad = cli("report", "--since", "last tuesday", cwd=root)
    assert bad.returncode == 2 and bad.stdout == ""
    assert "--since: `last tuesday` is not a date (2026-11-20)" in bad.stderr


def test_a_plan_that_does_not_load_is_reported_not_fatal(tmp_path: Path, cli) -> None:
    root = make_repo(tmp_path / "repo", {"PROJECT_PLAN.md": "→ **[]** no id\n"})
    result = cli("report", cwd=root)
    assert result.returncode == 0, result.stderr
    assert "- The plan does not load: PROJECT_PLAN.md:1: task line has an empty ID" in result.stdout
    assert "The plan could not be read, so there are no queue figures" in result.stdout

    explicit = cli("report", "--plan", str(root / "missing.md"), cwd=root)
    assert explicit.returncode == 2
    assert "missing.md" in explicit.stderr


def test_the_html_page_is_self_contained_escaped_and_names_every_task(
    night: tuple[Path, SessionResult],
) -> None:
    root, _last = night
    brief = brief_at(root, NOW)
    page = to_html(brief)

    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=|<script|<link|@import|url\(""", page)
    for task_id in ("task_3", "task_5", "task_4", "task_8", "task_6", "task_7"):
        assert f'data-task="{task_id}"' in page
    assert page.index('id="problems"') < page.index('id="heartbeat"') < page.index("s-last")
    assert "<code>pyproject.toml</code>" in page
    assert '<span class="chip rolled_back">' in page


def test_html_escapes_what_people_and_agents_wrote(tmp_path: Path) -> None:
    root = seed_repo(tmp_path)
    evil = TaskResult(
        "task_x",
        "<script>alert(1)</script>",
        Outcome.ROLLED_BACK,
        "Output had `<img src=x onerror=alert(1)>`",
        attempts=1,
        gate_output="</pre><script>bad()</script>",
    )
    record_session(Repo.open(root), make_session("s-x", NIGHT, (evil,)), timezone=None)
    page = to_html(brief_at(root, NOW))
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<code>&lt;img src=x onerror=alert(1)&gt;</code>" in page


def test_report_html_option_writes_the_page(tmp_path: Path, cli) -> None:
    root = seed_repo(tmp_path)
    out = tmp_path / "report.html"
    result = cli("report", "--html", str(out), cwd=root)
    assert result.returncode == 0, result.stderr
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert f"wrote {out}" in result.stderr
    assert result.stdout == ""  # the page was asked for, not the markdown


@pytest.mark.parametrize(
    ("where", "said"),
    [
        ("missing/dir/report.html", "does not exist"),
        ("a-file/report.html", "is not a directory"),
        (".", "is a directory"),
    ],
)
def test_a_page_path_that_cannot_be_written_is_a_clear_error(
    tmp_path: Path, cli, where: str, said: str
) -> None:
    root = seed_repo(tmp_path)
    (tmp_path / "a-file").write_text("x")
    result = cli("report", "--html", str(tmp_path / where), cwd=root)
    assert result.returncode == 2
    assert said in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "missing").exists()  # no directory made for a mistyped path


def chromium(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    profile = tempfile.mkdtemp(prefix="gitops-agent-chromium-")
    try:
        return subprocess.run(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)"
)
def test_the_page_renders_in_a_real_browser(night: tuple[Path, SessionResult]) -> None:
    root, _last = night
    page = root.parent / "report.html"
    page.write_text(to_html(brief_at(root, NOW)), encoding="utf-8")

    dom = chromium("--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    for task_id in ("task_3", "task_5", "task_4", "task_8", "task_6", "task_7"):
        assert task_id in dom.stdout
    assert "Needs a person" in dom.stdout

    # Laid out by the browser at a phone's width and a desktop's: the track record is drawn,
    # and nothing is wider than the window (a long path or table would make it scroll).
    probe = root.parent / "probe.html"
    probe.write_text(
        page.read_text(encoding="utf-8").replace(
            "</body>",
            "<script>const chart = document.querySelector('svg.chart');"
            "document.body.dataset.wide = document.documentElement.scrollWidth;"
            "document.body.dataset.window = window.innerWidth;"
            "document.body.dataset.chart = chart ? chart.getBoundingClientRect().width : 0;"
            "document.body.dataset.bars = document.querySelectorAll('svg.chart rect').length;"
            "</script></body>",
        ),
        encoding="utf-8",
    )
    for width in (420, 1200):
        laid = chromium("--dump-dom", f"--window-size={width},900", probe.as_uri())
        assert laid.returncode == 0, laid.stderr[-2000:]
        found = dict(re.findall(r'data-(wide|window|chart|bars)="([0-9.]+)"', laid.stdout))
        assert float(found["chart"]) > 0.5 * float(found["window"]), found
        assert int(found["bars"]) >= 2
        assert float(found["wide"]) <= float(found["window"]), f"overflow at {width}: {found}"

    shot = root.parent / "report.png"
    taken = chromium(f"--screenshot={shot}", "--window-size=1200,1400", page.as_uri())
    assert taken.returncode == 0, taken.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000
    assert git(root, "status", "--porcelain") == ""


def test_a_night_that_committed_nothing_and_rolled_back_is_no_success(tmp_path: Path) -> None:
    root = seed_repo(tmp_path)
    repo = Repo.open(root)
    good = make_session("s-good", NIGHT - timedelta(days=3), minutes=10)
    record_session(repo, good, timezone=None)
    for days in (2, 1, 0):
        bad = make_session(f"s-bad-{days}", NIGHT - timedelta(days=days), (rolled_back("task_5"),))
        record_session(repo, bad, timezone=None)
    nothing = make_session("s-idle", NIGHT + timedelta(hours=1), (), branch=None)
    brief = brief_at(root, NOW + timedelta(hours=2))
    assert brief.heartbeat.overdue  # three nights of rolled-back work: no success since s-good
    record_session(repo, nothing, timezone=None)  # a night with nothing to do is a success
    assert not brief_at(root, NOW + timedelta(hours=2)).heartbeat.overdue


def test_without_a_schedule_the_heartbeat_says_so_and_is_never_loud(tmp_path: Path) -> None:
    root = seed_repo(tmp_path, "schedule: null\n")
    record_session(
        Repo.open(root), make_session("s-old", NIGHT - timedelta(days=30)), timezone=None
    )
    brief = brief_at(root, NOW)
    assert not brief.heartbeat.overdue
    assert "no schedule is set up" in brief.heartbeat.message
    assert "expects" not in brief.heartbeat.message


def test_commits_and_branches_link_to_github_where_the_remote_is_there(
    night: tuple[Path, SessionResult],
) -> None:
    root, last = night
    assert 'href="https://github.com/' not in to_html(brief_at(root, NOW))  # no remote: no link
    git(root, "remote", "add", "origin", "https://github.com/octo-org/widgets.git")
    page = to_html(brief_at(root, NOW))
    commit = last.tasks[0].commit
    assert f'href="https://github.com/octo-org/widgets/commit/{commit}"' in page
    assert 'href="https://github.com/octo-org/widgets/tree/autonomous/s-last"' in page
    assert "pulls?q=is%3Apr%20head%3Aautonomous/s-last" in page
