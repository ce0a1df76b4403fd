"""Scheduled runs as GitHub Actions makes them: every run in a fresh clone of one remote."""

from __future__ import annotations

import json
from pathlib import Path

from testing.fixtures import git
from testing.project import make_project, outcomes, task_block


def fresh_clone(remote: Path, path: Path) -> Path:
    git(remote.parent, "clone", "-q", str(remote), str(path))
    return path


def test_two_scheduled_runs_in_fresh_clones_do_each_task_once(tmp_path: Path, cli) -> None:
    tasks = task_block("t1", "First", "echo 'a = 1' > src/a.py") + task_block(
        "t2", "Second", "echo 'b = 2' > src/b.py"
    )
    source = make_project(tmp_path, tasks, rules="max_tasks_per_session: 1\n")
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(source), str(remote))

    first_clone = fresh_clone(remote, tmp_path / "night1")
    first = cli("run", "--push", "--json", cwd=first_clone)
    assert first.returncode == 0, first.stderr
    night1 = json.loads(first.stdout)
    assert outcomes(night1) == [("t1", "committed"), ("t2", "skipped")]
    assert set(night1["pushed"]) == {
        f"refs/heads/{night1['branch']}",
        "refs/heads/autonomous/memory",
    }
    assert night1["pull_request"] is None  # the remote is not on GitHub: pushed only

    second_clone = fresh_clone(remote, tmp_path / "night2")
    second = cli("run", "--push", "--json", cwd=second_clone)
    assert second.returncode == 0, second.stderr
    night2 = json.loads(second.stdout)
    assert outcomes(night2) == [("t1", "skipped"), ("t2", "committed")]
    assert f"origin/{night1['branch']}" in night2["tasks"][0]["reason"]

    # The remote now holds both sessions' branches and one memory branch with both sessions.
    heads = git(remote, "for-each-ref", "--format=%(refname:short)", "refs/heads/autonomous/")
    assert set(heads.split()) == {night1["branch"], night2["branch"], "autonomous/memory"}
    log = git(remote, "log", "--format=%s", "autonomous/memory")
    assert night1["session"] in log and night2["session"] in log
    assert git(remote, "rev-parse", "main") == git(source, "rev-parse", "main")
