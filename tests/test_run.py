"""End-to-end sessions: real repositories, the installed console script, stand-in agents."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from testing.editable import EDITABLE_PACKAGE, editable_venv
from testing.fixtures import CLI, git
from testing.project import (
    STAND_INS,
    agent_script,
    make_project,
    outcomes,
    run,
    session_branches,
    show,
    task_block,
    user_state,
)


def test_passing_task_is_one_commit_with_trailers_and_its_status_done(tmp_path, cli) -> None:
    repo = make_project(
        tmp_path, task_block("t1", "Add a greeting module", "echo 'X = 1' > src/greet.py")
    )
    data = run(cli, repo)
    assert outcomes(data) == [("t1", "committed")]
    branch, commit = data["branch"], data["tasks"][0]["commit"]
    assert branch.startswith("autonomous/") and data["session"] in branch
    assert git(repo, "rev-parse", branch).strip() == commit
    assert git(repo, "rev-parse", f"{commit}^").strip() == git(repo, "rev-parse", "main").strip()
    message = git(repo, "log", "-1", "--format=%B", commit)
    assert message.startswith("Add a greeting module\n")
    trailers = git(repo, "log", "-1", "--format=%(trailers:only,unfold)", commit)
    assert f"Task-Id: t1\nAgent: shell\nSession: {data['session']}\n" in trailers
    assert "Gitops-Agent-Version: " in trailers
    assert show(repo, commit, "src/greet.py") == "X = 1\n"
    # The commit changes the plan's status line and nothing else of the plan.
    diff = git(repo, "diff", "-U0", "main", commit, "--", "PROJECT_PLAN.md")
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in "+++---"]
    assert changed == ["-  - Status: READY", "+  - Status: DONE"]
    assert Path(data["pr_body"]).read_text(encoding="utf-8").count("t1") >= 1


def test_gate_failure_is_retried_with_feedback_then_rolled_back(tmp_path, cli) -> None:
    # A different broken change each time: every attempt is worth making.
    agent = agent_script(tmp_path, 'echo "BROKEN $(date +%s%N)" >> src/app.py\n')
    repo = make_project(
        tmp_path,
        task_block("t1", "Add a thing"),
        gate="echo GATE SAYS NO; ! grep -q BROKEN src/app.py",
    )
    data = run(cli, repo, "--agent-command", agent)
    assert outcomes(data) == [("t1", "rolled_back")]
    task = data["tasks"][0]
    assert task["attempts"] == 3 and task["commit"] is None
    assert "quality gate failed" in task["reason"]
    assert session_branches(repo) == []


def test_an_attempt_that_changes_nothing_new_stops_the_retries(tmp_path, cli) -> None:
    agent = agent_script(tmp_path, 'echo "BROKEN" >> src/app.py\n')
    repo = make_project(
        tmp_path,
        task_block("t1", "Add a thing"),
        gate="! grep -q BROKEN src/app.py",
    )
    data = run(cli, repo, "--agent-command", agent)
    task = data["tasks"][0]
    assert task["outcome"] == "rolled_back" and task["attempts"] == 2
    assert "changed nothing new" in task["reason"]


def test_a_failing_run_command_is_not_run_again_on_the_same_tree(tmp_path, cli) -> None:
    repo = make_project(
        tmp_path,
        task_block("t1", "Break it", "echo BROKEN >> src/app.py"),
        gate="! grep -q BROKEN src/app.py",
    )
    data = run(cli, repo)
    task = data["tasks"][0]
    assert task["outcome"] == "rolled_back" and task["attempts"] == 1


def test_the_second_attempt_gets_the_first_ones_failure_as_feedback(tmp_path, cli) -> None:
    agent = agent_script(
        tmp_path,
        """
        if grep -q "GATE SAYS NO" "$GITOPS_AGENT_PROMPT_FILE"; then
          echo "fixed = True" > src/fixed.py
        else
          echo "BROKEN" >> src/app.py
        fi
        """,
    )
    repo = make_project(
        tmp_path,
        task_block("t1", "Add a thing"),
        gate="echo GATE SAYS NO; ! grep -q BROKEN src/app.py",
    )
    data = run(cli, repo, "--agent-command", agent)
    assert outcomes(data) == [("t1", "committed")]
    assert data["tasks"][0]["attempts"] == 2
    assert show(repo, data["tasks"][0]["commit"], "src/fixed.py") == "fixed = True\n"


def test_two_consecutive_failures_stop_the_session(tmp_path, cli) -> None:
    tasks = (
        task_block("a", "First", "echo BROKEN >> src/app.py")
        + task_block("b", "Second", "echo BROKEN >> src/app.py")
        + task_block("c", "Third", "echo 'ok = 1' > src/c.py")
    )
    repo = make_project(tmp_path, tasks, gate="! grep -q BROKEN src/app.py")
    data = run(cli, repo)
    assert outcomes(data) == [("a", "rolled_back"), ("b", "rolled_back"), ("c", "skipped")]
    assert "2 consecutive failures" in data["tasks"][2]["reason"]


def test_timeout_kills_an_agent_that_ignores_sigterm(tmp_path, cli) -> None:
    marker = f"hang-{os.getpid()}-{tmp_path.name}"
    agent = agent_script(
        tmp_path,
        f"""
        trap '' TERM
        (trap '' TERM; exec -a {marker} sleep 300) &
        exec -a {marker} sleep 300
        """,
    )
    repo = make_project(
        tmp_path, task_block("t1", "Hang"), rules="task_timeout_minutes: 0.03\nmax_attempts: 1\n"
    )
    data = run(cli, repo, "--agent-command", agent)
    assert outcomes(data) == [("t1", "rolled_back")]
    assert "timeout" in data["tasks"][0]["reason"]
    assert processes_named(marker) == []


def processes_named(marker: str) -> list[int]:
    """Live processes whose command line holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "cmdline").read_bytes():
                stat = (entry / "stat").read_text()
                if stat[stat.rfind(")") + 2] not in "ZX":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


RULE_BREAKERS = [
    ("outside-approved-dirs", "echo x > README.md"),
    ("protected-file", "echo 'A=1' > src/.env"),
    ("forbidden-content", "echo 'q = \"DROP TABLE users\"' >> src/app.py"),
    ("line-budget", "seq 1 200 > src/big.txt"),
    ("deleted-file", "rm src/app.py && echo 'x = 1' > src/other.py"),
    ("symlink-outside", "ln -s /etc/passwd src/passwd"),
    ("binary-file", "printf '\\x00\\x01\\x02binary' > src/blob.bin"),
    ("oversized-file", "head -c 2000 /dev/zero | tr '\\0' 'a' > src/huge.txt"),
    ("secret", "echo 'AWS_KEY = \"AKIAIOSFODNN7EXAMPLE\"' >> src/app.py"),
]


@pytest.mark.parametrize(("rule", "command"), RULE_BREAKERS, ids=[r for r, _ in RULE_BREAKERS])
def test_each_post_flight_rule_rolls_back_an_agent_that_breaks_it(
    tmp_path, cli, rule: str, command: str
) -> None:
    agent = agent_script(tmp_path, command + "\n")
    gate = "true"
    repo = make_project(
        tmp_path,
        task_block("t1", "Do it", lines=30),
        gate=gate,
        rules="max_attempts: 1\nmax_file_bytes: 1000\n",
    )
    before = user_state(repo)
    data = run(cli, repo, "--agent-command", agent)
    assert outcomes(data) == [("t1", "rolled_back")]
    assert "broke a rule" in data["tasks"][0]["reason"]
    record = data["tasks"][0]["reason"]
    assert record, rule
    assert user_state(repo) == before
    assert session_branches(repo) == []


def test_a_tracked_file_over_the_size_limit_does_not_block_other_changes(tmp_path, cli) -> None:
    big = "a" * 2000 + "\n"
    repo = make_project(
        tmp_path,
        task_block("t1", "Add bye") + task_block("t2", "Grow the big file"),
        rules="max_attempts: 1\nmax_file_bytes: 1000\n",
        extra_files={"data/big.txt": big},
    )
    agent = agent_script(
        tmp_path,
        """
        if [ "$GITOPS_AGENT_TASK_ID" = t1 ]; then echo 'x = 1' > src/bye.py
        else echo more >> data/big.txt; fi
        """,
    )
    data = run(cli, repo, "--agent-command", agent)
    assert outcomes(data) == [("t1", "committed"), ("t2", "rolled_back")]
    assert show(repo, data["tasks"][0]["commit"], "data/big.txt") == big
    assert "data/big.txt" in data["tasks"][1]["reason"]
    assert "over the limit of 1000" in data["tasks"][1]["reason"]


def test_the_rule_that_was_broken_is_named(tmp_path, cli) -> None:
    agent = agent_script(tmp_path, "echo 'A=1' > src/.env\n")
    repo = make_project(tmp_path, task_block("t1", "Do it"), rules="max_attempts: 1\n")
    data = run(cli, repo, "--agent-command", agent)
    assert "src/.env" in data["tasks"][0]["reason"]
    assert "protected" in data["tasks"][0]["reason"]


def test_an_agent_that_commits_by_itself_is_captured_and_recommitted(tmp_path, cli) -> None:
    agent = agent_script(
        tmp_path,
        """
        echo 'def bye():\n    return 1' > src/bye.py
        git add -A && git commit -qm "agent's own commit"
        echo '# more' >> src/bye.py
        """,
    )
    repo = make_project(tmp_path, task_block("t1", "Add bye"))
    data = run(cli, repo, "--agent-command", agent)
    assert outcomes(data) == [("t1", "committed")]
    commit = data["tasks"][0]["commit"]
    assert show(repo, commit, "src/bye.py").endswith("# more\n")
    assert (
        git(repo, "log", "--format=%s", "main..autonomous/" + data["session"]).strip() == "Add bye"
    )


@pytest.mark.parametrize(
    "misdeed",
    [
        'git -C "$USER_REPO" update-ref refs/heads/main HEAD~0^{tree} 2>/dev/null || '
        'git -C "$USER_REPO" update-ref refs/heads/main "$(git -C "$USER_REPO" commit-tree '
        '-m evil "$(git -C "$USER_REPO" rev-parse HEAD^{tree})")"',
        'printf "#!/bin/sh\\necho owned\\n" > "$USER_REPO/.git/hooks/pre-commit"; '
        'chmod +x "$USER_REPO/.git/hooks/pre-commit"',
        'git -C "$USER_REPO" config core.hooksPath /tmp/evil',
        'git -C "$USER_REPO" tag evil-tag',
    ],
    ids=["moves-main", "adds-hook", "changes-config", "adds-tag"],
)
def test_an_agent_cannot_touch_the_users_git_metadata(tmp_path, cli, misdeed: str) -> None:
    # The user's repository is read-only to the agent: the misdeed fails where it happens, and
    # nothing needs repairing afterwards. (The repository's path reaches the agent through
    # its checkout's alternates file, as an attacker would find it.)
    find = 'USER_REPO=$(dirname "$(dirname "$(cat .git/objects/info/alternates)")")\n'
    agent = agent_script(tmp_path, f"echo 'x = 1' > src/x.py\n{find}( {misdeed} ) || true\n")
    repo = make_project(tmp_path, task_block("t1", "Sneaky"), rules="max_attempts: 1\n")
    before = user_state(repo)
    data = run(cli, repo, "--agent-command", agent)
    assert outcomes(data) == [("t1", "committed")]  # its honest work, inside its checkout
    assert user_state(repo) == before


def test_users_uncommitted_untracked_and_ignored_work_stays_byte_identical(tmp_path, cli) -> None:
    repo = make_project(
        tmp_path, task_block("t1", "Add", "echo 'y = 2' > src/y.py; echo BROKEN > src/app.py")
    )
    (repo / "src" / "app.py").write_text("work in progress\n", encoding="utf-8")
    (repo / "untracked.txt").write_text("mine\n", encoding="utf-8")
    (repo / "debug.log").write_text("ignored\n", encoding="utf-8")
    git(repo, "add", "README.md")
    (repo / "README.md").write_text("staged then edited\n", encoding="utf-8")
    status_before = git(repo, "status", "--porcelain", "--ignored")
    before = user_state(repo)
    data = run(cli, repo)
    assert outcomes(data) == [("t1", "committed")]
    assert user_state(repo) == before
    assert git(repo, "status", "--porcelain", "--ignored") == status_before


def test_a_second_run_skips_the_task_awaiting_review(tmp_path, cli) -> None:
    repo = make_project(tmp_path, task_block("t1", "Add", "echo 'y = 2' > src/y.py"))
    first = run(cli, repo)
    second = run(cli, repo)
    assert outcomes(second) == [("t1", "skipped")]
    assert first["branch"] in second["tasks"][0]["reason"]
    # Once merged, the task is DONE on main and is not run again either.
    git(repo, "merge", "-q", "--ff-only", first["branch"])
    third = run(cli, repo)
    assert third["tasks"] == []


def test_without_a_gate_nothing_is_committed(tmp_path, cli) -> None:
    repo = make_project(tmp_path, task_block("t1", "Add", "echo 'y = 2' > src/y.py"), gate=None)
    data = run(cli, repo)
    assert outcomes(data) == [("t1", "rolled_back")]
    assert "no quality gate" in data["tasks"][0]["reason"]


def test_gate_script_on_the_base_is_used_and_its_failure_there_is_not_held_against_tasks(
    tmp_path, cli
) -> None:
    repo = make_project(
        tmp_path,
        task_block("t1", "Add", "echo 'y = 2' > src/y.py"),
        gate=None,
        extra_files={".ai-validation/check_quality.sh": "exit 3\n"},
    )
    data = run(cli, repo)
    # No test report: exit statuses are compared, and 3 is what the base does too.
    assert outcomes(data) == [("t1", "committed")]
    body = Path(data["pr_body"]).read_text()
    assert "Already failing on `main`" in body and "exits with status 3" in body


def test_blocked_and_named_tasks(tmp_path, cli) -> None:
    tasks = task_block("a", "Add", "echo 'y = 2' > src/y.py") + task_block(
        "b", "Add stripe payments", "echo 1 > src/pay.py"
    )
    repo = make_project(tmp_path, tasks)
    data = run(cli, repo, "--task", "b")
    assert outcomes(data) == [("b", "blocked")]
    assert "stripe" in data["tasks"][0]["reason"]
    missing = cli("run", "--task", "nope", cwd=repo)
    assert missing.returncode == 2 and "no task `nope`" in missing.stderr


def test_usage_limit_stops_the_session_without_failing_the_task(tmp_path, cli) -> None:
    tasks = task_block("a", "First") + task_block("b", "Second")
    # Agents get only the variables named for them: the constraints name the stand-in's.
    repo = make_project(tmp_path, tasks, rules="agent_env: [STAND_IN_RATE_LIMIT]\n")
    env = {
        "PATH": f"{STAND_INS}{os.pathsep}{os.environ['PATH']}",
        "STAND_IN_RATE_LIMIT": "1",
    }
    data = run(cli, repo, "--agent-command", "claude", env=env)
    assert outcomes(data) == [("a", "skipped"), ("b", "skipped")]
    assert "usage limit" in data["tasks"][0]["reason"]


def test_a_preset_agent_edits_files_and_its_work_is_committed(tmp_path, cli) -> None:
    repo = make_project(
        tmp_path, task_block("t1", "Write something"), rules="approved_dirs: ['.']\n"
    )
    env = {"PATH": f"{STAND_INS}{os.pathsep}{os.environ['PATH']}"}
    data = run(cli, repo, "--agent-command", "codex", env=env)
    assert outcomes(data) == [("t1", "committed")], data
    files = git(repo, "show", "--name-only", "--format=", data["tasks"][0]["commit"]).split()
    assert "PROJECT_PLAN.md" in files and len(files) == 2


@pytest.mark.parametrize("preset", ["claude", "gemini"])
def test_max_agent_turns_bounds_the_agents_that_can_be_bounded(tmp_path, cli, preset) -> None:
    repo = make_project(
        tmp_path,
        task_block("t1", "Write something"),
        rules="approved_dirs: ['.']\nmax_agent_turns: 4\n",
    )
    env = {"PATH": f"{STAND_INS}{os.pathsep}{os.environ['PATH']}"}
    data = run(cli, repo, "--agent-command", preset, env=env)
    assert outcomes(data) == [("t1", "committed")], data
    shown = cli("show", f"{data['session']}/t1", cwd=repo)
    assert f"stand-in {preset}: at most 4 turns" in shown.stdout


def start_run(tmp_path: Path, repo: Path, agent: str) -> subprocess.Popen[bytes]:
    """A `run` in the background, returned once its agent has touched `started` in its checkout.

    The workspaces go to tmp_path/work (GITOPS_AGENT_WORK_DIR), where the test can see them.
    """
    work = tmp_path / "work"
    process = subprocess.Popen(
        [*CLI, "run", "--agent-command", agent],
        cwd=repo,
        env={**os.environ, "GITOPS_AGENT_WORK_DIR": str(work)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(400):
        if list(work.glob("*/*/tree/started")):
            return process
        subprocess.run(["sleep", "0.05"], check=True)
    process.kill()
    raise AssertionError("the agent never started")


def test_a_second_run_while_one_holds_the_lock_is_refused(tmp_path, cli) -> None:
    agent = agent_script(tmp_path, "touch started; sleep 5; rm started; echo 'x = 1' > src/x.py\n")
    repo = make_project(tmp_path, task_block("t1", "Slow"))
    first = start_run(tmp_path, repo, agent)
    try:
        second = cli("run", cwd=repo)
        assert second.returncode == 2
        assert "another gitops-agent run is in progress" in second.stderr
    finally:
        first.wait(timeout=60)


def test_a_killed_run_leaves_nothing_that_blocks_the_next(tmp_path, cli) -> None:
    marker = f"slow-agent-{os.getpid()}-{tmp_path.name}"
    agent = agent_script(tmp_path, f"touch started; exec -a {marker} sleep 30\n")
    repo = make_project(tmp_path, task_block("t1", "Slow"))
    first = start_run(tmp_path, repo, agent)
    first.kill()  # SIGKILL: no cleanup of its own
    first.wait()
    for _ in range(100):  # the sandbox dies with the run: its agent does not linger
        if not processes_named(marker):
            break
        subprocess.run(["sleep", "0.05"], check=True)
    assert processes_named(marker) == []
    next_run = cli(
        "run",
        "--json",
        "--agent-command",
        "echo 'x = 1' > src/x.py",
        cwd=repo,
        env={"GITOPS_AGENT_WORK_DIR": str(tmp_path / "work")},
    )
    assert next_run.returncode == 0, next_run.stderr
    assert "Cleared what a killed run left behind" in next_run.stderr
    assert outcomes(json.loads(next_run.stdout)) == [("t1", "committed")]


def test_session_limits_on_tasks_and_time_skip_the_rest(tmp_path, cli) -> None:
    tasks = "".join(
        task_block(f"t{i}", f"Task {i}", f"echo 'v = {i}' > src/m{i}.py") for i in range(3)
    )
    repo = make_project(tmp_path, tasks, rules="max_tasks_per_session: 2\n")
    data = run(cli, repo)
    assert outcomes(data) == [("t0", "committed"), ("t1", "committed"), ("t2", "skipped")]
    assert "limit is 2 tasks" in data["tasks"][2]["reason"]

    slow = task_block("s0", "Slow", "sleep 30; echo 'v = 0' > src/s0.py") + task_block(
        "s1", "Next", "echo 'v = 1' > src/s1.py"
    )
    other = make_project(tmp_path / "other", slow, rules="max_session_minutes: 0.03\n")
    data = run(cli, other)
    # The session's budget ends the task that reaches it, cleanly, and skips the rest.
    assert outcomes(data) == [("s0", "rolled_back"), ("s1", "skipped")]
    assert "ran past its timeout" in data["tasks"][0]["reason"]
    assert "time limit" in data["tasks"][1]["reason"]


def test_a_preset_whose_cli_is_missing_is_refused_before_anything_runs(tmp_path, cli) -> None:
    repo = make_project(tmp_path, task_block("t1", "Write something"))
    result = cli("run", "--agent-command", "aider", cwd=repo, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert "needs `aider` on PATH" in result.stderr
    assert session_branches(repo) == []


def test_the_memory_log_and_the_pr_description_tell_every_task_and_why(tmp_path, cli) -> None:
    tasks = (
        task_block("good", "Add a module", "echo 'v = 1' > src/v.py")
        + task_block("bad", "Break the app", "echo BROKEN >> src/app.py")
        + task_block("pay", "Add payment page", "echo 1 > src/pay.py")
    )
    repo = make_project(tmp_path, tasks, gate="! grep -q BROKEN src/app.py")
    first = run(cli, repo)
    assert outcomes(first) == [("good", "committed"), ("bad", "rolled_back"), ("pay", "blocked")]
    files = git(repo, "ls-tree", "-r", "--name-only", "autonomous/memory").split()
    day = next(f for f in files if f.startswith("memory/"))
    log = show(repo, "autonomous/memory", day)
    assert "Autonomous: " in log and first["session"] in log
    for task_id, words in (("good", "committed"), ("bad", "gate failed"), ("pay", "payment")):
        entry = log[log.index(f"Autonomous: {task_id} ") :]
        assert words in entry[:600].lower() or words in entry[:600], (task_id, entry[:600])
    body = Path(first["pr_body"]).read_text(encoding="utf-8")
    assert "**good**" in body and "**bad**" in body and "quality gate failed" in body
    # A second session on the same day appends; the first one's entries stay byte for byte.
    second = run(cli, repo)
    again = show(repo, "autonomous/memory", day)
    assert again.startswith(log) and second["session"] in again[len(log) :]


def test_ref_locks_of_a_killed_run_are_cleared_by_the_next(tmp_path, cli) -> None:
    repo = make_project(tmp_path, task_block("t1", "Add", "echo 'y = 2' > src/y.py"))
    first = run(cli, repo)
    # What kill -9 in the middle of moving refs leaves: a ref lock and the live state file.
    lock = repo / ".git" / "refs" / "heads" / "autonomous" / "memory.lock"
    lock.write_text("")
    state = repo / ".git" / "gitops-agent" / "run.json"
    state.write_text('{"session": "killed", "pid": 999999, "updated": "then"}')
    git(repo, "merge", "-q", "--ff-only", first["branch"])
    (repo / "PROJECT_PLAN.md").write_text(
        (repo / "PROJECT_PLAN.md").read_text() + task_block("t2", "More", "echo 1 > src/z.py")
    )
    git(repo, "commit", "-qam", "queue t2")
    result = cli("run", "--json", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert "Removed refs/heads/autonomous/memory.lock" in result.stderr
    assert outcomes(json.loads(result.stdout)) == [("t2", "committed")]
    assert not lock.exists() and not state.exists()


def test_required_confinement_that_cannot_be_had_stops_check_and_run_alike(tmp_path, cli) -> None:
    repo = make_project(
        tmp_path,
        task_block("t1", "Add", "echo 'x = 1' > src/x.py"),
        rules="confinement: required\n",
    )
    env = {"GITOPS_AGENT_SANDBOX": "none"}
    for command in (["check"], ["run", "--json"]):
        result = cli(*command, cwd=repo, env=env)
        assert result.returncode == 2, result.stderr
        assert "docs/autonomous-constraints.md:4: `confinement: required`" in result.stderr
        assert "Traceback" not in result.stderr
    assert session_branches(repo) == []
    assert "autonomous/memory" not in git(repo, "branch", "--list")


def test_best_effort_runs_unconfined_where_nothing_works_and_says_so(tmp_path, cli) -> None:
    repo = make_project(
        tmp_path,
        task_block("t1", "Add", "echo 'x = 1' > src/x.py"),
        rules="confinement: best-effort\n",
    )
    data = run(cli, repo, env={"GITOPS_AGENT_SANDBOX": "none"})
    assert outcomes(data) == [("t1", "committed")]
    body = Path(data["pr_body"]).read_text()
    assert "Confinement: none available on this machine" in body
    memory = git(repo, "log", "-p", "autonomous/memory")
    assert "UNCONFINED" in memory
    html = tmp_path / "report.html"
    report = cli("report", "--html", str(html), cwd=repo)
    assert report.returncode == 0, report.stderr
    assert "Unconfined: none available on this machine" in html.read_text()
    markdown = cli("report", cwd=repo).stdout
    assert "Unconfined: none available on this machine" in markdown


@pytest.mark.parametrize("mechanisms", ["bwrap,landlock", "landlock"])
def test_what_a_gate_leaves_in_its_tree_never_reaches_a_later_commit(
    tmp_path, cli, mechanisms: str
) -> None:
    tasks = task_block("a", "First", "echo 'a = 1' > src/a.py") + task_block(
        "b", "Second", "echo 'b = 1' > src/b.py"
    )
    gate = "echo junk > src/junk.py; echo tampered >> src/app.py; mkdir -p out; touch out/x"
    repo = make_project(tmp_path, tasks, gate=gate)
    data = run(cli, repo, env={"GITOPS_AGENT_SANDBOX": mechanisms})
    assert outcomes(data) == [("a", "committed"), ("b", "committed")]
    tip = data["tasks"][1]["commit"]
    files = git(repo, "ls-tree", "-r", "--name-only", tip).split()
    assert "src/junk.py" not in files and "out/x" not in files
    assert show(repo, tip, "src/app.py") == "def hello():\n    return 'hello'\n"


def test_workspaces_never_go_to_a_shared_directory_someone_else_made(tmp_path) -> None:
    from gitops_agent.session.places import private_dir

    # In /dev/shm anyone may create our directory's name first: a link or a file there is
    # refused (the workspaces then go to the cache directory); our own is made private.
    os.symlink(tmp_path, tmp_path / "link")
    (tmp_path / "file").write_text("")
    assert not private_dir(tmp_path / "link") and not private_dir(tmp_path / "file")
    (tmp_path / "open").mkdir(mode=0o777)
    os.chmod(tmp_path / "open", 0o777)
    assert private_dir(tmp_path / "open") and private_dir(tmp_path / "new")
    for name in ("open", "new"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("mechanisms", ["bwrap,landlock", "landlock"])
def test_a_gate_importing_an_editable_install_judges_the_change_not_the_users_copy(
    tmp_path, cli, mechanisms: str
) -> None:
    venv = tmp_path / "venv"
    tasks = task_block(
        "reword", "Reword a comment", "sed -i 's/Words that mean yes/Yes words/' src/pkg/*.py"
    ) + task_block("break", "Break to_bool", "sed -i 's/return True/return False/' src/pkg/*.py")
    gate = f"{venv}/bin/python -m pytest -q tests"
    repo = make_project(tmp_path, tasks, gate=gate, extra_files=EDITABLE_PACKAGE)
    python = editable_venv(venv, repo)
    # The trap is set: outside the repository, pkg is the user's own copy. A gate that read
    # it would pass the broken change (the user's copy is fine).
    found = subprocess.run(
        [python, "-c", "import pkg; print(pkg.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == str(repo / "src" / "pkg" / "__init__.py")

    data = run(cli, repo, env={"GITOPS_AGENT_SANDBOX": mechanisms})

    results = {t["id"]: t for t in data["tasks"]}
    if mechanisms == "landlock":
        # Landlock alone cannot show the gate its tree at the repository's path: the user's
        # copy is unreadable to it, so the gate fails, loudly, on the base as on every change,
        # rather than judge that copy. A gate that cannot import what it tests on the base
        # vouches for no change: nothing is committed.
        assert {t["outcome"] for t in data["tasks"]} == {"skipped"}
        assert "cannot judge a change" in data["tasks"][0]["reason"]
        assert session_branches(repo) == []
    else:
        # The gate sees the tree it judges at the repository's path: the harmless change
        # passes (the control), the breaking one fails.
        assert results["break"]["outcome"] == "rolled_back"
        assert "quality gate failed" in results["break"]["reason"]
        assert results["reword"]["outcome"] == "committed"
        tip = git(repo, "rev-parse", data["branch"]).strip()
        assert tip == results["reword"]["commit"]
        text = show(repo, tip, "src/pkg/__init__.py")
        assert "Yes words" in text and "return True" in text
    assert (repo / "src" / "pkg" / "__init__.py").read_text() == EDITABLE_PACKAGE[
        "src/pkg/__init__.py"
    ]


def test_the_sessions_attempt_budget_ends_retries_and_skips_the_rest(tmp_path, cli) -> None:
    agent = agent_script(tmp_path, 'echo "BROKEN $(date +%s%N)" >> src/app.py\n')
    tasks = task_block("a", "First") + task_block("b", "Second")
    repo = make_project(
        tmp_path,
        tasks,
        gate="! grep -q BROKEN src/app.py",
        rules="max_session_attempts: 2\nmax_consecutive_failures: 5\n",
    )
    data = run(cli, repo, "--agent-command", agent)
    first, second = data["tasks"]
    assert first["outcome"] == "rolled_back" and first["attempts"] == 2
    assert "budget of 2 attempts is spent" in first["reason"]
    assert second["outcome"] == "skipped" and "budget of 2 attempts" in second["reason"]


def test_a_task_failing_session_after_session_is_set_to_needs_human_and_frees_the_queue(
    tmp_path, cli
) -> None:
    repo = make_project(
        tmp_path,
        task_block("t1", "Break it") + task_block("t2", "Add bye"),
        gate="test ! -f src/broken.py",
        rules="max_attempts: 1\nmax_failed_sessions: 2\n",
    )
    agent = agent_script(
        tmp_path,
        """
        if [ "$GITOPS_AGENT_TASK_ID" = t1 ]; then echo 'x' > src/broken.py
        else echo 'def bye(): pass' > src/bye.py; fi
        """,
    )
    for _ in range(2):  # t1 fails twice; t2's result then awaits review
        data = run(cli, repo, "--agent-command", agent, "--task", "t1")
        assert outcomes(data) == [("t1", "rolled_back")]
    data = run(cli, repo, "--agent-command", agent)
    assert outcomes(data) == [("t1", "blocked"), ("t2", "committed")]
    assert "rolled back in each of the last 2 sessions" in data["tasks"][0]["reason"]
    branch = "autonomous/" + data["session"]
    status = git(repo, "log", "--format=%(trailers:key=Task-Status,valueonly)", f"main..{branch}")
    assert status.split() == ["t1", "NEEDS_HUMAN"]
    assert "Status: NEEDS_HUMAN" in show(repo, branch, "PROJECT_PLAN.md")
    # The next session neither runs t1 again nor marks it twice.
    again = run(cli, repo, "--agent-command", agent, "--task", "t1")
    assert outcomes(again) == [("t1", "blocked")]
    assert again["branch"] is None
    report = cli("report", cwd=repo).stdout
    needs = report.split("## ⚠️ Needs a person", 1)[1].split("\n## ", 1)[0]
    assert "t1 needs a person: It was rolled back in each of the last 2 sessions" in needs
