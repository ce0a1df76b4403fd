"""The texts people read, kept as golden files: tests/fixtures/golden/<case>.md.

Each case is data alone (SessionResult and TaskResult records, a plan's text, fixed times and
commit ids; no git, no clock) rendered through the real templates, and compared byte for byte
with its golden file. `python -m pytest --regen-golden tests/test_golden.py` rewrites them;
read the diff as the person who gets the pull request, the memory log or the morning report.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gitops_agent.constraints import DEFAULTS
from gitops_agent.memory import memory_entries
from gitops_agent.plan import parse_plan
from gitops_agent.policy.eligibility import verdicts
from gitops_agent.policy.preflight import ProgramLookup
from gitops_agent.project import Project
from gitops_agent.render import render
from gitops_agent.report import build_brief, to_markdown
from gitops_agent.results import Outcome, SessionResult, TaskResult
from gitops_agent.review import Awaiting, Kept, Place
from testing.golden import Golden

VERSION = "0.1.0"  # not __version__: a release must not change every golden file
CONSTRAINTS = "docs/autonomous-constraints.md"
SECRET = "golden-secret-0123456789abcdef"  # set as GOLDEN_TEST_TOKEN by the `secret` fixture
AWS_EXAMPLE_KEY = "AKIAIOSFODNN7EXAMPLE"  # AWS's documented example: masked by its shape

BASE = "05e1dc93dbf7cdadb6b1928685252c0f9f230053"
COMMIT_3 = "4f59eeacbc2e516f917717d803baaaca2ecade45"
COMMIT_9 = "9c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d"
INTEGRATION_TIP = "b7e4a1c09d3f5e2a8b6c4d1e0f9a8b7c6d5e4f3a"
OLD_TIP = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"

BWRAP = "bubblewrap (PID, mount and network namespaces) + Landlock ABI 4"
NONE_AVAILABLE = (
    "none available on this machine (`confinement: best-effort`): agents and gates run unconfined"
)

PYTEST_FAILURE = "\n".join(
    [
        "============================= test session starts ==============================",
        "collected 42 items",
        "",
        *[f"tests/unit/test_models.py::test_field_{n} PASSED" for n in range(30)],
        "tests/unit/test_auth.py::test_hash_roundtrip PASSED",
        "tests/unit/test_auth.py::test_salt FAILED",
        "",
        "=================================== FAILURES ===================================",
        "___________________________________ test_salt __________________________________",
        "    def test_salt():",
        ">       assert hash_password('x') != hash_password('x')",
        "E       AssertionError: assert '$2b$12$abc' != '$2b$12$abc'",
        "tests/unit/test_auth.py:14: AssertionError",
        "=========================== short test summary info ============================",
        "FAILED tests/unit/test_auth.py::test_salt - AssertionError",
        "========================= 1 failed, 41 passed in 1.92s =========================",
    ]
)


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> str:
    """An ISO time in November 2026, UTC, as a session record keeps it."""
    return datetime(2026, 11, day, hour, minute, second, tzinfo=UTC).isoformat()


def pr_body_path(session: str) -> str:
    return f".git/gitops-agent/sessions/{session}/pr-body.md"


def attempts_of(session: str, task: str, count: int) -> tuple[str, ...]:
    return tuple(f"refs/gitops-agent/attempts/{session}/{task}/{n}" for n in range(1, count + 1))


# -- sessions --------------------------------------------------------------------------------


def night() -> SessionResult:
    """One task of each outcome, evidence kept, a base that already fails, confined."""
    sid = "20261123-020000-a1b2"
    return SessionResult(
        session=sid,
        branch=f"autonomous/{sid}",
        base="main",
        base_commit=BASE,
        started=at(23, 2),
        finished=at(23, 2, 52, 30),
        agent="claude",
        tasks=(
            TaskResult(
                "task_3",
                "Add User model with email and password fields",
                Outcome.COMMITTED,
                "Passed every rule and the quality gate (`python -m pytest -q`).",
                commit=COMMIT_3,
                attempts=1,
                duration=420,
                changed_files=(
                    "src/models/user.py",
                    "tests/unit/test_models.py",
                    "PROJECT_PLAN.md",
                ),
                evidence=attempts_of(sid, "task_3", 1),
            ),
            TaskResult(
                "task_5",
                "Add password hashing function",
                Outcome.ROLLED_BACK,
                "The quality gate failed after 3 attempts: `python -m pytest -q` exited with "
                "status 1.",
                attempts=3,
                duration=780,
                violations=(
                    "It changed `pyproject.toml`, a protected file.",
                    "It added `src/vendor/bcrypt.py`, outside the approved directories "
                    "`src/auth/`.",
                ),
                gate_output=PYTEST_FAILURE,
                evidence=attempts_of(sid, "task_5", 3),
            ),
            TaskResult(
                "task_4",
                "Implement login endpoint",
                Outcome.BLOCKED,
                "Estimated lines 45 is over the limit of 30.",
            ),
            TaskResult(
                "task_8",
                "Document the API",
                Outcome.SKIPPED,
                "The session limit of 3 tasks was reached.",
            ),
        ),
        pr_body=pr_body_path(sid),
        confinement=BWRAP,
        base_failures=(
            "`python -m pytest -q`: tests/test_legacy.py::test_parse_dates fails",
            "`ruff check .`: 3 findings",
        ),
    )


def unconfined() -> SessionResult:
    """Nothing could be confined, one task committed, one rolled back for a single rule, and
    the session stopped early."""
    sid = "20261124-213000-u9c0"
    return SessionResult(
        session=sid,
        branch=f"autonomous/{sid}",
        base="develop",
        base_commit=BASE,
        started=at(24, 21, 30),
        finished=at(24, 21, 48, 10),
        agent="codex",
        tasks=(
            TaskResult(
                "task_9",
                "Add a --version flag",
                Outcome.COMMITTED,
                "Passed every rule and the quality gate (`python -m pytest -q`).",
                commit=COMMIT_9,
                attempts=2,
                duration=610,
                changed_files=("src/cli.py",),
            ),
            TaskResult(
                "task_10",
                "Cache the parsed plan",
                Outcome.ROLLED_BACK,
                "It broke a rule of the constraints.",
                attempts=1,
                duration=300,
                violations=("It deleted `tests/test_plan.py`, an existing test.",),
                gate_output="",
            ),
        ),
        stopped="2 consecutive failures (`max_consecutive_failures: 2`)",
        pr_body=pr_body_path(sid),
        confinement=NONE_AVAILABLE,
        unconfined=True,
    )


def hostile() -> SessionResult:
    """Names, reasons and output an agent, a gate or a plan's author could have written, each
    trying to add structure, ping someone, hide text or leak a secret."""
    sid = "20261123-030000-h0st"
    return SessionResult(
        session=sid,
        branch=f"autonomous/{sid}",
        base="main",
        base_commit=BASE,
        started=at(23, 3),
        finished=at(23, 3, 40),
        agent="claude",
        tasks=(
            TaskResult(
                "t1",
                "Add the parser <!-- @security-team approve --> **LGTM** [docs](http://evil.example/)",
                Outcome.COMMITTED,
                "Passed every rule and the quality gate (`gate:` in the plan's front matter).",
                commit=COMMIT_3,
                attempts=1,
                duration=300,
                changed_files=(
                    "src/ok.py",
                    "src/x.py\n### Approved by @security-team\n<!--",
                    "src/`tick`.py",
                    "src/\u202egnp.exe",
                    f"src/{SECRET}.py",
                    "\x1b[31mred\x1b[0m.py",
                ),
            ),
            TaskResult(
                "t2",
                f"Rotate the key {SECRET} \u2066hidden\u2069 cc @octocat",
                Outcome.ROLLED_BACK,
                "The quality gate failed: `npm test`.\n## Merged by @octocat\n"
                f"[ok](http://evil.example/) <img src=x> {SECRET} \x1b[1mbold\x1b[0m",
                attempts=3,
                duration=600,
                violations=(
                    "src/\u202eevil: added, but it is outside the approved directories src/",
                    "x.py\n-->\n# Heading: <!-- hidden @org/team",
                ),
                gate_output=(
                    f"```\n### Approved\n\x1b[31mFAIL\x1b[0m @octocat\ntoken={SECRET}\n"
                    f"aws={AWS_EXAMPLE_KEY}\n<!--\n\u202eright-to-left\r\n"
                ),
            ),
            TaskResult(
                "t3",
                "Document it | with a pipe",
                Outcome.BLOCKED,
                "It mentions a forbidden operation: “rm -rf”.\n### Approved\n| a | b |",
            ),
            TaskResult(
                "t4",
                "- [x] done already\n> quoted",
                Outcome.SKIPPED,
                "@channel the session limit was reached\u2028<script>alert(1)</script>",
            ),
        ),
        stopped="the agent hit its usage limit: 5-hour limit reached ∙ resets 3am\n<!--",
        pr_body=pr_body_path(sid),
        confinement=BWRAP,
        base_failures=(
            "`npm test`: test/\u202eevil.js \u203a @octocat <!-- fails",
            "`eslint .`: 1 finding\n# Fixed",
        ),
    )


def over_midnight() -> SessionResult:
    """A session in New York that starts at 23:40 and finishes at 00:31 the next day."""
    sid = "20261124-044000-m1dn"
    return SessionResult(
        session=sid,
        branch=f"autonomous/{sid}",
        base="main",
        base_commit=BASE,
        started=at(24, 4, 40),
        finished=at(24, 5, 31),
        agent="claude",
        tasks=(
            TaskResult(
                "task_3",
                "Add User model with email and password fields",
                Outcome.COMMITTED,
                "Passed every rule and the quality gate (`python -m pytest -q`).",
                commit=COMMIT_3,
                attempts=1,
                duration=900,
                changed_files=("src/models/user.py",),
            ),
            TaskResult(
                "task_5",
                "Add password hashing function",
                Outcome.ROLLED_BACK,
                "The agent ran past its time limit (25 min).",
                attempts=1,
                duration=1500,
                gate_output="Thinking...\nEditing src/auth/hash.py\n",
                output_of="agent",
            ),
            TaskResult(
                "task_8",
                "Document the API",
                Outcome.SKIPPED,
                "The session's time limit would be passed before it could finish.",
            ),
        ),
        pr_body=pr_body_path(sid),
        confinement=BWRAP,
    )


# -- the texts -------------------------------------------------------------------------------


def pr_body(result: SessionResult) -> str:
    """As session.pr_body renders it (which takes a Constraints only for its path)."""
    return render(
        "pr-body.md.j2",
        result=result,
        committed=[t for t in result.tasks if t.outcome is Outcome.COMMITTED],
        others=[t for t in result.tasks if t.outcome is not Outcome.COMMITTED],
        constraints=CONSTRAINTS,
        version=VERSION,
    )


def day_files(result: SessionResult, zone: str) -> dict[str, str]:
    """Each day file the session writes to, as it reads on a branch that had none yet: the
    day's first lines, then the session's entries."""
    return {
        path: render(
            "memory.md.j2",
            kind="day",
            day=path.removeprefix("memory/").removesuffix(".md"),
            zone=zone,
        )
        + entries
        for path, entries in memory_entries(result, ZoneInfo(zone)).items()
    }


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    """A secret in the process's environment, as the tool would have it."""
    monkeypatch.setenv("GOLDEN_TEST_TOKEN", SECRET)
    return SECRET


PR_BODIES: dict[str, Callable[[], SessionResult]] = {
    "pr-body-night": night,
    "pr-body-unconfined": unconfined,
}


@pytest.mark.parametrize("case", PR_BODIES)
def test_pr_body(case: str, golden: Golden) -> None:
    golden(case, pr_body(PR_BODIES[case]()))


def test_pr_body_of_a_hostile_session(secret: str, golden: Golden) -> None:
    body = pr_body(hostile())
    assert secret not in body and AWS_EXAMPLE_KEY not in body
    golden("pr-body-hostile", body)


def test_memory_log_of_a_night(golden: Golden) -> None:
    files = day_files(night(), "UTC")
    assert list(files) == ["memory/2026-11-23.md"]
    golden("memory-night-2026-11-23", files["memory/2026-11-23.md"])


def test_memory_log_of_an_unconfined_session_that_stopped_early(golden: Golden) -> None:
    files = day_files(unconfined(), "UTC")
    assert list(files) == ["memory/2026-11-24.md"]
    golden("memory-unconfined-2026-11-24", files["memory/2026-11-24.md"])


def test_memory_log_of_a_session_over_midnight_is_in_two_day_files(golden: Golden) -> None:
    files = day_files(over_midnight(), "America/New_York")
    assert list(files) == ["memory/2026-11-23.md", "memory/2026-11-24.md"]
    golden("memory-midnight-2026-11-23", files["memory/2026-11-23.md"])
    golden("memory-midnight-2026-11-24", files["memory/2026-11-24.md"])


def test_memory_log_of_a_hostile_session(secret: str, golden: Golden) -> None:
    files = day_files(hostile(), "UTC")
    text = files["memory/2026-11-23.md"]
    assert secret not in text and AWS_EXAMPLE_KEY not in text
    golden("memory-hostile-2026-11-23", text)


# -- the morning report ----------------------------------------------------------------------

PLAN = """\
---
objective: A small web service with user accounts.
agent: claude
timezone: Europe/Berlin
schedule: "0 2 * * *"
gate:
  - python -m pytest -q
---
# Project Plan

## 📋 Task Queue

### Ready for Autonomous Execution ✅

→ **[task_3]** Add User model with email and password fields
  - Alignment score: 95/100
  - Estimated lines: 10
  - Tests defined: ✅ Yes (tests/unit/test_models.py)
  - Status: READY

→ **[task_5]** Add password hashing function
  - Alignment score: 92/100
  - Estimated lines: 15
  - Tests defined: ✅ Yes (tests/unit/test_auth.py)
  - Status: READY

→ **[task_6]** Add rate limiting to the login endpoint
  - Alignment score: 90/100
  - Estimated lines: 25
  - Tests defined: ✅ Yes (tests/unit/test_limits.py)
  - Status: NEEDS_HUMAN

→ **[task_9]** Add a --version flag
  - Alignment score: 85/100
  - Estimated lines: 8
  - Tests defined: ✅ Yes (tests/test_cli.py)
  - Status: READY

### Pending Approval ⏳

- **[task_4]** Implement login endpoint
  - Alignment score: 88/100
  - Estimated lines: 45
  - Tests defined: ⏳ Needs definition
  - Status: PENDING

### Not Ready ❌

- **[task_7]** Add Stripe integration
  - Reason: Requires external credentials
"""

NOW = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)
INTEGRATION = "autonomous/integration-20261125"


def project() -> Project:
    return Project(
        root=Path("/srv/shop"),
        plan_path=Path("/srv/shop/PROJECT_PLAN.md"),
        plan=parse_plan(PLAN, "PROJECT_PLAN.md"),
        constraints=DEFAULTS,
        notes=(),
    )


def failing_night(day: int, sid: str, *, needs_human: bool = False) -> SessionResult:
    """A night in which task_5 and task_6 were rolled back; `needs_human`: task_6 now is."""
    limit = (
        "It was rolled back in 3 sessions running (`max_failed_sessions: 3`); its status is "
        "now NEEDS_HUMAN."
    )
    return SessionResult(
        session=sid,
        branch=None,
        base="main",
        base_commit=BASE,
        started=at(day, 2),
        finished=at(day, 2, 41),
        agent="claude",
        tasks=(
            TaskResult(
                "task_5",
                "Add password hashing function",
                Outcome.ROLLED_BACK,
                "The quality gate failed after 3 attempts: `python -m pytest -q` exited with "
                "status 1.",
                attempts=3,
                duration=1320,
                gate_output=PYTEST_FAILURE,
                evidence=attempts_of(sid, "task_5", 3),
            ),
            TaskResult(
                "task_6",
                "Add rate limiting to the login endpoint",
                Outcome.ROLLED_BACK,
                limit if needs_human else "The agent changed nothing.",
                attempts=1,
                duration=480,
                needs_human=needs_human,
            ),
        ),
        confinement=BWRAP,
    )


def by_hand() -> SessionResult:
    """A run started by hand in the morning, unconfined, on a base whose gate fails."""
    sid = "20261126-050000-e5e5"
    return SessionResult(
        session=sid,
        branch=None,
        base="main",
        base_commit=BASE,
        started=at(26, 5),
        finished=at(26, 5, 3, 20),
        agent="claude",
        tasks=(
            TaskResult(
                "task_9",
                "Add a --version flag",
                Outcome.SKIPPED,
                "The quality gate fails on the base, so no task ran.",
            ),
        ),
        stopped="The quality gate cannot judge a change on `main`: none of its tests pass.",
        gate_failed_on_base=True,
        confinement=NONE_AVAILABLE,
        unconfined=True,
        base_failures=(
            "`python -m pytest -q`: tests/test_db.py::test_connect fails",
            "`python -m pytest -q`: tests/test_db.py::test_migrate fails",
        ),
    )


def test_morning_report(golden: Golden) -> None:
    """Four nights and a run by hand: task_5 rolled back every night, task_6 set to
    NEEDS_HUMAN, no success since the first night (the heartbeat is overdue), and the first
    night's commit awaiting review on its branch and in an integration."""
    shop = project()
    sessions = [
        by_hand(),
        failing_night(26, "20261126-020000-d4d4", needs_human=True),
        failing_night(25, "20261125-020000-c3c3"),
        failing_night(24, "20261124-020000-b2b2"),
        night(),
    ]
    first = night()
    awaiting = (
        Awaiting(INTEGRATION, INTEGRATION_TIP, ("task_3", "task_2"), 3),
        Awaiting(first.branch or "", COMMIT_3, ("task_3",), 1),
        Awaiting("autonomous/20261120-020000-z9z9", OLD_TIP, (), 2),
    )
    brief = build_brief(
        sessions=sessions,
        project=shop,
        verdicts=verdicts(shop, "claude", programs=ProgramLookup("/usr/bin:/bin"), has_gate=True),
        awaiting=awaiting,
        base="main",
        plan_problem=None,
        places={COMMIT_3: Place(Kept.AWAITING, INTEGRATION)},
        repository="shop",
        since=datetime(2026, 11, 23, tzinfo=UTC),
        window=7,
        now=NOW,
    )
    assert brief.heartbeat.overdue
    assert {p.task for p in brief.problems} >= {"task_5", "task_6"}
    golden("report-morning", to_markdown(brief))


def test_morning_report_of_a_hostile_session_without_a_plan(secret: str, golden: Golden) -> None:
    awaiting = (Awaiting("autonomous/x`\n# Approved @octocat", COMMIT_3, ("t1", "<!--t2"), 1),)
    brief = build_brief(
        sessions=[hostile()],
        project=None,
        verdicts=None,
        awaiting=awaiting,
        base=None,
        plan_problem="The plan does not load: PROJECT_PLAN.md:3: `schedule` is not a cron line",
        repository="shop",
        since=None,
        window=7,
        now=datetime(2026, 11, 23, 7, 0, tzinfo=UTC),
    )
    text = to_markdown(brief)
    assert secret not in text and AWS_EXAMPLE_KEY not in text
    golden("report-hostile", text)
