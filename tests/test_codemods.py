"""`Run:` codemods judged by their effect: real pyupgrade and ruff, which exit 1 when they
changed files, are kept; a command that fails or changes nothing is said to be the command's."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import testing.redteam
from testing.fixtures import git, make_repo

BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    return shutil.which(name) or str(BIN / name)


def project(tmp_path: Path, tasks: str, *, rules: str = "") -> Path:
    files = {
        "PROJECT_PLAN.md": '---\ngate:\n  - "python3 -m py_compile src/old.py"\n---\n'
        "# Plan\n\n### Ready for Autonomous Execution ✅\n\n" + tasks,
        "src/old.py": "import os\nnumbers = set([1, 2])\nname = '%s' % 'x'\n",
    }
    if rules:
        files["docs/autonomous-constraints.md"] = "# Rules\n\n```yaml\n" + rules + "```\n"
    return make_repo(tmp_path / "repo", files)


def task(task_id: str, run: str) -> str:
    return testing.redteam.task_block(task_id, f"Codemod {task_id}", run=run, lines=10)


def run(cli: Any, repo: Path) -> dict[str, dict[str, Any]]:
    result = cli("run", "--json", cwd=repo)
    assert result.returncode == 0, result.stderr
    return {t["id"]: t for t in json.loads(result.stdout)["tasks"]}


def test_pyupgrade_which_exits_1_when_it_rewrites_is_kept(tmp_path, cli) -> None:
    repo = project(tmp_path, task("up", f"{tool('pyupgrade')} --py311-plus src/old.py"))
    entry = run(cli, repo)["up"]
    assert entry["outcome"] == "committed", entry["reason"]
    text = git(repo, "show", f"{entry['commit']}:src/old.py")
    assert "numbers = {1, 2}" in text


def test_ruff_fix_with_findings_left_exits_1_and_its_fixes_are_kept(tmp_path, cli) -> None:
    # F401 (`os` unused) is fixed; E741-style findings it cannot fix keep its status at 1.
    source = "import os\nl = 1\n"
    repo = project(
        tmp_path, task("fix", f"{tool('ruff')} check --no-cache --fix --select F401,E741 src")
    )
    (repo / "src" / "old.py").write_text(source)
    git(repo, "commit", "-qam", "a finding ruff cannot fix")
    entry = run(cli, repo)["fix"]
    assert entry["outcome"] == "committed", entry["reason"]
    assert "import os" not in git(repo, "show", f"{entry['commit']}:src/old.py")


def test_a_command_that_exits_1_without_a_change_is_the_commands_failure(tmp_path, cli) -> None:
    repo = project(tmp_path, task("nothing", "echo 'cannot parse this file'; exit 1"))
    entry = run(cli, repo)["nothing"]
    assert entry["outcome"] == "rolled_back" and entry["attempts"] == 1
    assert entry["reason"] == "The command exited with status 1."
    day = next(
        f
        for f in git(repo, "ls-tree", "-r", "--name-only", "autonomous/memory").split()
        if f.startswith("memory/")
    )
    log = git(repo, "show", f"autonomous/memory:{day}")
    assert "Command output (the end of it)" in log and "cannot parse this file" in log
    entry_text = log.split("nothing rolled back")[1].split("## [")[0]
    assert "Gate output" not in entry_text and "agent" not in entry_text.replace("gitops-agent", "")


def test_run_ok_exit_codes_replaces_the_default_rule(tmp_path, cli) -> None:
    tasks = task("three", "echo 'V = 3' > src/v.py; exit 3") + task(
        "one", "echo 'V = 1' > src/w.py; exit 1"
    )
    repo = project(tmp_path, tasks, rules="run_ok_exit_codes: [0, 3]\n")
    found = run(cli, repo)
    assert found["three"]["outcome"] == "committed", found["three"]["reason"]
    assert found["one"]["outcome"] == "rolled_back"  # 1 is no longer a success


def test_a_codemod_with_nothing_to_do_marks_its_task_done_and_is_no_failure(tmp_path, cli) -> None:
    tasks = (
        task("a", "sed -i 's/no such text/x/' src/old.py")
        + task("b", "true")
        + task("c", "echo 'V = 1' > src/v.py")
    )
    repo = project(tmp_path, tasks, rules="max_consecutive_failures: 2\n")
    found = run(cli, repo)
    assert [found[t]["outcome"] for t in "abc"] == ["committed"] * 3
    assert "Nothing to do" in found["a"]["reason"]
    changed = git(repo, "show", "--name-only", "--format=", found["a"]["commit"]).split()
    assert changed == ["PROJECT_PLAN.md"]  # only its status, set to DONE
    plan = git(repo, "show", f"{found['a']['commit']}:PROJECT_PLAN.md")
    assert "[a]** Codemod a\n  - Alignment score: 90/100\n  - Estimated lines: 10\n" in plan
    assert plan.count("Status: DONE") == 1


def test_nothing_to_do_can_leave_the_task_for_a_person(tmp_path, cli) -> None:
    repo = project(tmp_path, task("a", "true"), rules="nothing_to_do: leave\n")
    entry = run(cli, repo)["a"]
    assert entry["outcome"] == "skipped" and "left for a person" in entry["reason"]
    assert git(repo, "branch", "--list", "autonomous/2*") == ""
