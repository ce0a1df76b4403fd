"""Command-line conventions a person expects of any tool: quiet mode, progress words."""

from __future__ import annotations

import json
from pathlib import Path

from testing.fixtures import make_repo
from testing.redteam import plan_text, task_block


def test_quiet_prints_nothing_but_errors_and_keeps_json_and_status(tmp_path: Path, cli) -> None:
    plan = plan_text(task_block("t1", "Add a", run="echo 'a = 1' > src/a.py"))
    repo = make_repo(tmp_path / "repo", {"PROJECT_PLAN.md": plan, "src/x.py": "x\n"})
    checked = cli("-q", "check", cwd=repo)
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, "", "")
    ran = cli("-q", "run", "--json", cwd=repo)
    assert ran.returncode == 0 and ran.stderr == ""
    assert [t["outcome"] for t in json.loads(ran.stdout)["tasks"]] == ["committed"]
    bad = cli("-q", "check", "--repo", str(tmp_path / "nowhere"), cwd=repo)
    assert bad.returncode == 2 and "no such directory" in bad.stderr


def test_a_run_command_is_said_to_be_running_not_an_agent(tmp_path: Path, cli) -> None:
    plan = plan_text(task_block("t1", "Add a", run="echo 'a = 1' > src/a.py"))
    repo = make_repo(tmp_path / "repo", {"PROJECT_PLAN.md": plan, "src/x.py": "x\n"})
    ran = cli("run", cwd=repo)
    assert ran.returncode == 0, ran.stderr
    assert "t1 attempt 1 of 3: running the command" in ran.stderr
    assert "agent" not in ran.stderr.split("Session ")[0].lower()


def test_verbose_shows_every_line_the_agent_prints(tmp_path: Path, cli) -> None:
    plan = plan_text(task_block("t1", "Add a"))
    repo = make_repo(tmp_path / "repo", {"PROJECT_PLAN.md": plan, "src/x.py": "x\n"})
    agent = "echo 'first step'; echo 'second step'; echo 'a = 1' > src/a.py"
    ran = cli("-v", "run", "--agent-command", agent, cwd=repo)
    assert ran.returncode == 0, ran.stderr
    assert "t1 │ first step" in ran.stderr and "t1 │ second step" in ran.stderr
    other = make_repo(tmp_path / "other", {"PROJECT_PLAN.md": plan, "src/x.py": "x\n"})
    plain = cli("run", "--agent-command", agent, cwd=other)
    assert plain.returncode == 0 and "committed" in plain.stderr
    assert "first step" not in plain.stderr  # without -v, a line a minute at most


def test_verify_on_a_folder_with_no_artifact_is_an_error(tmp_path: Path, cli) -> None:
    repo = make_repo(tmp_path / "repo", {"PROJECT_PLAN.md": plan_text(task_block("t1", "A"))})
    empty = tmp_path / "artifact"
    empty.mkdir()
    result = cli("verify", str(empty), cwd=repo)
    assert result.returncode == 2
    assert "result.json: no such file" in result.stderr and "Nothing was taken in." in result.stderr
