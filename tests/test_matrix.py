"""`plan --matrix`: the tasks a matrix of runners takes, as JSON for strategy.matrix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from testing.fixtures import SEED_CONSTRAINTS, SEED_PLAN, git, make_repo
from testing.project import make_project, task_block

TASKS = "".join(task_block(f"t{n}", f"Task {n}", run=f"touch src/t{n}.py") for n in range(1, 5))


def matrix(cli: Any, repo: Path, *args: str) -> list[str]:
    result = cli("plan", "--matrix", *args, cwd=repo)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert list(data) == ["include"]
    return [entry["task"] for entry in data["include"]]


def test_seed_plan_lists_its_eligible_tasks_in_plan_order(tmp_path: Path, cli) -> None:
    repo = make_repo(tmp_path / "repo", {"README.md": "x\n"})
    shutil.copy(SEED_PLAN, repo / "PROJECT_PLAN.md")
    (repo / "docs").mkdir()
    shutil.copy(SEED_CONSTRAINTS, repo / "docs" / "autonomous-constraints.md")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "plan")
    assert matrix(cli, repo, "--agent-command", "true") == []  # no gate: nothing can commit
    (repo / ".ai-validation").mkdir()
    (repo / ".ai-validation" / "check_quality.sh").write_text("exit 0\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the seed's gate")
    assert matrix(cli, repo, "--agent-command", "true") == ["task_3", "task_5"]
    assert matrix(cli, repo) == []  # no agent configured: nothing can run


def test_the_matrix_holds_at_most_a_sessions_worth_of_tasks(tmp_path: Path, cli) -> None:
    repo = make_project(tmp_path, TASKS, rules="max_tasks_per_session: 3\n")
    assert matrix(cli, repo) == ["t1", "t2", "t3"]


def test_tasks_awaiting_review_here_or_on_the_remote_are_left_out(tmp_path: Path, cli) -> None:
    repo = make_project(tmp_path, TASKS)
    ran = cli("run", "--json", "--task", "t2", cwd=repo)
    assert ran.returncode == 0, ran.stderr
    assert matrix(cli, repo) == ["t1", "t3", "t4"]
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    branch = json.loads(ran.stdout)["branch"]
    git(repo, "push", "-q", str(remote), "main", branch)
    clone = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    assert matrix(cli, clone) == ["t1", "t3", "t4"]


def test_without_matrix_the_task_ids_are_printed_one_a_line(tmp_path: Path, cli) -> None:
    repo = make_project(tmp_path, TASKS)
    result = cli("plan", cwd=repo)
    assert result.stdout.split() == ["t1", "t2", "t3", "t4"]
