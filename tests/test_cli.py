"""End-to-end: the installed console script on real files, as a person would run it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testing.fixtures import CLI, SEED_CONSTRAINTS, SEED_PLAN, git, make_repo
from testing.redteam import plan_text, task_block

EXAMPLE = Path(__file__).parent.parent / "examples" / "python-project"


def seed_repo(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "repo")
    shutil.copy(SEED_PLAN, repo / "PROJECT_PLAN.md")
    (repo / "docs").mkdir()
    shutil.copy(SEED_CONSTRAINTS, repo / "docs" / "autonomous-constraints.md")
    # The seed's executor runs this script as the quality gate; without a gate no task is
    # eligible (a run could commit nothing).
    (repo / ".ai-validation").mkdir()
    (repo / ".ai-validation" / "check_quality.sh").write_text("exit 0\n", encoding="utf-8")
    return repo


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.parts
    }


def test_check_json_on_the_seed_is_exactly_the_contract(tmp_path: Path, cli) -> None:
    repo = seed_repo(tmp_path)
    result = cli("check", "--json", "--agent-command", "true", cwd=repo)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert list(data) == ["tasks"]
    assert [(t["id"], t["queue"], t["eligible"]) for t in data["tasks"]] == [
        ("task_3", "ready", True),
        ("task_5", "ready", True),
        ("task_4", "pending", False),
        ("task_6", "not_ready", False),
        ("task_7", "not_ready", False),
    ]
    for task in data["tasks"]:
        assert set(task) == {"id", "queue", "eligible", "reasons"}
        assert task["eligible"] == (task["reasons"] == [])
    assert any("Pending Approval" in r for r in data["tasks"][2]["reasons"])


def test_check_without_agent_says_why_nothing_can_run(tmp_path: Path, cli) -> None:
    repo = seed_repo(tmp_path)
    result = cli("check", "--json", cwd=repo)
    task_3 = json.loads(result.stdout)["tasks"][0]
    assert task_3["eligible"] is False
    assert any("no agent is configured" in r for r in task_3["reasons"])


def test_check_table_goes_to_stderr_and_names_every_task(tmp_path: Path, cli) -> None:
    repo = seed_repo(tmp_path)
    result = cli("check", "--agent-command", "claude", cwd=repo, env={"COLUMNS": "160"})
    assert result.returncode == 0
    assert result.stdout == ""
    for task_id in ("task_3", "task_5", "task_4", "task_6", "task_7"):
        assert task_id in result.stderr
    summary = (
        "5 tasks: 2 ready, 1 pending, 2 not ready, 0 done; "
        "2 eligible (0 awaiting review, 2 can run)."
    )
    assert summary in result.stderr
    assert "Constraints: docs/autonomous-constraints.md" in result.stderr


def test_check_from_a_subdirectory_finds_the_repository(tmp_path: Path, cli) -> None:
    repo = seed_repo(tmp_path)
    (repo / "src").mkdir()
    result = cli("check", "--json", cwd=repo / "src")
    assert result.returncode == 0 and len(json.loads(result.stdout)["tasks"]) == 5


# The PATH a `Run:` command gets is the tool's own (allow-listed): pinned here to be sure of it.
RUN_PATH = f"{Path(sys.executable).parent}:/usr/bin:/bin"
MISSING = (
    "Its `Run:` command's program `nosuchtool-xyz` is not on the PATH the command gets "
    f"({RUN_PATH})."
)


def run_program_repo(tmp_path: Path) -> Path:
    tasks = (
        task_block("missing", "Tidy the sources", run="nosuchtool-xyz --fix src")
        + task_block("sed", "Rename a", run="sed -i s/a/b/ src/x.py")
        + task_block("assign", "Run python", run="FOO=1 python3 -c pass")
        + task_block("cd", "Rename a in src", run="cd src && sed -i s/a/b/ x.py")
        + task_block("script", "Run our codemod", run="./codemods/fix.sh src")
    )
    return make_repo(
        tmp_path / "repo",
        {"PROJECT_PLAN.md": plan_text(tasks), "src/app.py": "", "src/x.py": "a = 1\n"},
    )


def check_json(cli, repo: Path) -> list[dict]:
    result = cli("check", "--json", cwd=repo, env={"PATH": RUN_PATH})
    assert result.returncode == 0, result.stderr
    tasks: list[dict] = json.loads(result.stdout)["tasks"]
    return tasks


def test_check_refuses_a_run_task_whose_program_is_not_on_its_path(tmp_path: Path, cli) -> None:
    repo = run_program_repo(tmp_path)
    result = cli("check", "--json", cwd=repo, env={"PATH": RUN_PATH})
    assert result.returncode == 0, result.stderr
    verdicts = {t["id"]: (t["eligible"], t["reasons"]) for t in json.loads(result.stdout)["tasks"]}
    assert verdicts == {
        "missing": (False, [MISSING]),
        "sed": (True, []),
        "assign": (True, []),
        "cd": (True, []),
        "script": (
            False,
            [
                "Its `Run:` command's program `./codemods/fix.sh` is not an executable file in "
                "the repository (the command runs at its root)."
            ],
        ),
    }
    table = cli("check", cwd=repo, env={"PATH": RUN_PATH, "COLUMNS": "300"})
    assert (
        "nosuchtool-xyz" in table.stderr
        and "3 eligible (0 awaiting review, 3 can run)" in table.stderr
    )


def test_a_script_of_the_repository_is_found_from_its_root(tmp_path: Path, cli) -> None:
    repo = run_program_repo(tmp_path)
    script = repo / "codemods" / "fix.sh"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n", encoding="utf-8")
    eligible = {t["id"]: t["eligible"] for t in check_json(cli, repo)}
    assert eligible["script"] is False  # not executable: bash could not start it
    script.chmod(0o755)
    assert {t["id"]: t["eligible"] for t in check_json(cli, repo)}["script"] is True


def test_run_blocks_the_task_check_refuses_with_the_same_reason(tmp_path: Path, cli) -> None:
    repo = run_program_repo(tmp_path)
    result = cli("run", "--json", "--task", "missing", cwd=repo, env={"PATH": RUN_PATH})
    assert result.returncode == 0, result.stderr
    [task] = json.loads(result.stdout)["tasks"]
    assert (task["id"], task["outcome"], task["reason"]) == ("missing", "blocked", MISSING)


def test_missing_constraints_means_defaults_and_check_says_so(tmp_path: Path, cli) -> None:
    repo = make_repo(tmp_path / "repo")
    shutil.copy(SEED_PLAN, repo / "PROJECT_PLAN.md")
    result = cli("check", cwd=repo)
    assert result.returncode == 0
    assert "No docs/autonomous-constraints.md: the default rules apply." in result.stderr


def test_missing_plan_suggests_init(tmp_path: Path, cli) -> None:
    repo = make_repo(tmp_path / "repo")
    result = cli("check", cwd=repo)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "PROJECT_PLAN.md: no plan found; create one with `gitops-agent init`"
    )


def test_bad_plan_is_path_line_message_exit_2_no_traceback(tmp_path: Path, cli) -> None:
    repo = seed_repo(tmp_path)
    text = SEED_PLAN.read_text(encoding="utf-8").replace("[task_5]", "[task_3]")
    (repo / "PROJECT_PLAN.md").write_text(text, encoding="utf-8")
    before = snapshot(repo)
    result = cli("check", "--json", cwd=repo)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "PROJECT_PLAN.md:14: duplicate task ID `task_3` (first used on line 6)\n"
    )
    assert snapshot(repo) == before


def test_non_utf8_plan_is_refused_with_its_line(tmp_path: Path, cli) -> None:
    repo = seed_repo(tmp_path)
    (repo / "PROJECT_PLAN.md").write_bytes(b"# Plan\n\n\xe9t\xe9\n")
    result = cli("check", cwd=repo)
    assert result.returncode == 2
    assert result.stderr.startswith("PROJECT_PLAN.md:3: not valid UTF-8")


def test_malformed_constraints_are_refused(tmp_path: Path, cli) -> None:
    repo = seed_repo(tmp_path)
    rules = repo / "docs" / "autonomous-constraints.md"
    rules.write_text("---\nmax_tasks: 3\n---\n# Rules\n", encoding="utf-8")
    result = cli("check", cwd=repo)
    assert result.returncode == 2
    assert result.stderr.startswith("docs/autonomous-constraints.md:2: unknown setting `max_tasks`")


def test_constraints_named_in_front_matter_must_exist(tmp_path: Path, cli) -> None:
    repo = seed_repo(tmp_path)
    plan = repo / "PROJECT_PLAN.md"
    plan.write_text("---\nconstraints: rules/agent.md\n---\n" + plan.read_text(), encoding="utf-8")
    result = cli("check", cwd=repo)
    assert (result.returncode, result.stderr) == (2, "rules/agent.md: file not found\n")


def test_init_writes_a_plan_that_checks_and_never_overwrites(tmp_path: Path, cli) -> None:
    repo = make_repo(tmp_path / "repo")
    result = cli("init", cwd=repo)
    assert result.returncode == 0, result.stderr
    plan = repo / "PROJECT_PLAN.md"
    assert (repo / "docs" / "autonomous-constraints.md").is_file()
    checked = cli("check", "--json", cwd=repo)
    assert checked.returncode == 0, checked.stderr
    assert {t["id"] for t in json.loads(checked.stdout)["tasks"]} == {"example-1", "example-2"}

    plan.write_text("mine\n", encoding="utf-8")
    again = cli("init", cwd=repo)
    assert again.returncode == 2
    assert again.stderr.startswith("PROJECT_PLAN.md: already exists")
    assert plan.read_text(encoding="utf-8") == "mine\n"

    forced = cli("init", "--force", cwd=repo)
    assert forced.returncode == 0
    assert plan.read_text(encoding="utf-8") != "mine\n"


def test_init_refuses_when_only_the_constraints_exist_and_writes_nothing(
    tmp_path: Path, cli
) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "docs").mkdir()
    (repo / "docs" / "autonomous-constraints.md").write_text("mine\n", encoding="utf-8")
    result = cli("init", cwd=repo)
    assert result.returncode == 2
    assert not (repo / "PROJECT_PLAN.md").exists()


def test_bundled_example_checks(cli) -> None:
    result = cli("check", "--json", "--repo", str(EXAMPLE), cwd=EXAMPLE.parent)
    assert result.returncode == 0, result.stderr
    verdicts = {t["id"]: t["eligible"] for t in json.loads(result.stdout)["tasks"]}
    assert verdicts == {"inv-1": True, "inv-2": True, "inv-3": True, "inv-4": False, "inv-5": False}


def test_usage_error_is_exit_2(tmp_path: Path, cli) -> None:
    assert cli("check", "--no-such-flag", cwd=tmp_path).returncode == 2
    assert cli("check", "--repo", str(tmp_path / "missing"), cwd=tmp_path).returncode == 2


def test_python_dash_m_is_the_same_program(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gitops_agent", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("gitops-agent ")


def test_a_large_plan_lists_every_task_without_a_rich_table(tmp_path: Path, cli) -> None:
    repo = make_repo(tmp_path / "repo")
    tasks = "".join(
        f"→ **[t{i}]** Add helper {i}\n  - Alignment score: {60 + i % 40}/100\n"
        "  - Estimated lines: 5\n  - Tests defined: ✅ Yes\n  - Status: READY\n\n"
        for i in range(400)
    )
    (repo / "PROJECT_PLAN.md").write_text(
        '---\ngate: ["true"]\n---\n### Ready for Autonomous Execution\n\n' + tasks,
        encoding="utf-8",
    )
    result = cli("check", "--agent-command", "true", cwd=repo)
    assert result.returncode == 0
    rows = [line.split() for line in result.stderr.splitlines() if line.startswith("t")]
    assert [row[0] for row in rows] == [f"t{i}" for i in range(400)]
    assert rows[0][:3] == ["t0", "ready", "no"] and rows[39][:3] == ["t39", "ready", "yes"]


def test_init_writes_files_with_the_usual_permissions(tmp_path: Path, cli) -> None:
    repo = make_repo(tmp_path / "repo")
    old = os.umask(0o022)
    try:
        assert cli("init", cwd=repo).returncode == 0
    finally:
        os.umask(old)
    for name in ("PROJECT_PLAN.md", "docs/autonomous-constraints.md"):
        assert stat.S_IMODE((repo / name).stat().st_mode) == 0o644, name


def test_help_and_version_have_their_short_forms_and_flags_take_no_value(
    tmp_path: Path, cli
) -> None:
    short, long = cli("-V", cwd=tmp_path), cli("--version", cwd=tmp_path)
    assert short.stdout == long.stdout and short.stdout.startswith("gitops-agent ")
    helped = cli("run", "-h", cwd=tmp_path)
    assert helped.returncode == 0 and "--fail-on" in helped.stdout
    flags = [line for line in helped.stdout.splitlines() if line.strip().startswith("--json")]
    assert flags and "<bool>" not in flags[0]


@pytest.mark.parametrize(("fail_on", "status"), [("rolled-back", 3), ("blocked", 0), ("any", 3)])
def test_fail_on_turns_a_bad_night_into_a_failing_exit_status(
    tmp_path: Path, cli, fail_on: str | None, status: int
) -> None:
    plan = (
        '---\ngate: ["test ! -f src/a.py"]\n---\n### Ready for Autonomous Execution\n\n'
        "→ **[t1]** Add a\n  - Alignment score: 90\n  - Estimated lines: 5\n"
        "  - Tests defined: ✅ Yes\n  - Status: READY\n  - Run: `echo a > src/a.py`\n"
    )
    repo = make_repo(tmp_path / "repo", {"PROJECT_PLAN.md": plan, "src/x.py": "x\n"})
    args = ["run", "--json"] + (["--fail-on", fail_on] if fail_on else [])
    result = cli(*args, cwd=repo)
    assert result.returncode == status, result.stderr
    assert [t["outcome"] for t in json.loads(result.stdout)["tasks"]] == ["rolled_back"]


def start_run_until_agent(repo: Path, agent: str) -> subprocess.Popen[str]:
    """`run --json` with `agent`, returned once its agent has started."""
    process = subprocess.Popen(
        [*CLI, "run", "--json", "--agent-command", agent],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    state = repo / ".git" / "gitops-agent" / "run.json"
    deadline = time.monotonic() + 60
    while '"phase": "agent"' not in (state.read_text() if state.exists() else ""):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)
    return process


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_says_so_stops_its_agent_and_records_the_session(
    tmp_path: Path, signum: int
) -> None:
    plan = '---\ngate: ["true"]\n---\n### Ready for Autonomous Execution\n\n' + "".join(
        f"→ **[{t}]** Task {t}\n  - Alignment score: 90\n  - Estimated lines: 5\n"
        "  - Tests defined: ✅ Yes\n  - Status: READY\n\n"
        for t in ("t1", "t2")
    )
    repo = make_repo(tmp_path / "repo", {"PROJECT_PLAN.md": plan, "src/x.py": "x\n"})
    nap = f"sleep {40 + signum}.{os.getpid()}"  # a command line no other test runs
    process = start_run_until_agent(repo, nap)
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    name = signal.Signals(signum).name
    assert process.returncode == 128 + signum, err
    assert err.rstrip().endswith(f"gitops-agent: interrupted ({name})")
    assert out == ""  # no half a JSON object
    running = subprocess.run(["pgrep", "-f", nap], capture_output=True, text=True)
    assert running.stdout == ""  # the agent did not outlive the run
    sessions = git(repo, "show", "autonomous/memory:state/sessions.tsv").split()
    session = json.loads(git(repo, "show", f"autonomous/memory:state/sessions/{sessions[1]}.json"))
    assert session["stopped"].startswith(f"interrupted ({name})")
    assert [(t["id"], t["outcome"]) for t in session["tasks"]] == [
        ("t1", "rolled_back"),
        ("t2", "skipped"),
    ]
    assert "interrupted" in session["tasks"][0]["reason"]
    assert git(repo, "branch", "--list", "autonomous/2*") == ""  # nothing committed


def test_a_killed_session_is_recorded_by_the_next_run_and_reported(tmp_path: Path, cli) -> None:
    plan = (
        '---\ngate: ["true"]\n---\n### Ready for Autonomous Execution\n\n'
        "→ **[t1]** Task t1\n  - Alignment score: 90\n  - Estimated lines: 5\n"
        "  - Tests defined: ✅ Yes\n  - Status: READY\n"
    )
    repo = make_repo(tmp_path / "repo", {"PROJECT_PLAN.md": plan, "src/x.py": "x\n"})
    process = start_run_until_agent(repo, f"sleep 47.{os.getpid()}")
    process.kill()  # SIGKILL: no handler runs, no record is written
    process.communicate(timeout=30)
    time.sleep(0.5)
    left = subprocess.run(["pgrep", "-f", f"sleep 47.{os.getpid()}"], capture_output=True)
    assert left.stdout == b""  # the agent died with the run (its parent-death signal)
    again = cli("run", "--json", "--agent-command", "echo 'y = 1' > src/y.py", cwd=repo)
    assert again.returncode == 0, again.stderr
    assert "Cleared what a killed run left behind" in again.stderr
    report = cli("report", "--json", cwd=repo)
    stopped = [s["stopped"] for s in json.loads(report.stdout)["sessions"]]
    assert stopped[0] is None and stopped[1].startswith("killed: ")
    assert "during agent of task t1 (attempt 1)" in stopped[1]


def test_plan_json_and_a_repo_option_inside_the_repository(tmp_path: Path, cli) -> None:
    repo = make_repo(
        tmp_path / "repo",
        {"PROJECT_PLAN.md": plan_text(task_block("t1", "Add a", run="true")), "src/x.py": "x\n"},
    )
    listed = cli("plan", "--json", "--repo", str(repo / "src"), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == {"base": "main", "tasks": [{"id": "t1", "title": "Add a"}]}


def test_piped_output_does_not_wrap_and_splits_no_path(tmp_path: Path, cli) -> None:
    deep = "src/" + "/".join(f"level{i}" for i in range(12)) + "/codemod.sh"
    plan = plan_text(task_block("t1", "Run the deep codemod", run=f"./{deep}"))
    repo = make_repo(tmp_path / "repo", {"PROJECT_PLAN.md": plan})
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    result = subprocess.run(
        [*CLI, "check"], cwd=repo, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert f"./{deep}" in result.stderr  # on one line: not cut at 80 columns


def test_a_long_task_shows_its_elapsed_time_and_last_output_line_in_a_log(
    tmp_path: Path, cli
) -> None:
    plan = plan_text(task_block("t1", "Take a while"), gate="true")
    repo = make_repo(tmp_path / "repo", {"PROJECT_PLAN.md": plan, "src/x.py": "x\n"})
    agent = "echo 'reading the code'; sleep 1.2; echo 'writing the change'; sleep 1.2; echo done"
    result = cli(
        "run", "--agent-command", agent, cwd=repo, env={"GITOPS_AGENT_PROGRESS_SECONDS": "1"}
    )
    assert result.returncode == 0, result.stderr
    progress = [
        line for line in result.stderr.splitlines() if "t1 attempt 1 of 3: agent working, " in line
    ]
    assert progress, result.stderr
    assert any(
        line.endswith(": writing the change") or line.endswith(": done") for line in progress
    )
