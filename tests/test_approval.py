"""Approval modes: one pull request a session (final), a branch and PR per task (per-task), and
results the tool merges itself after quarantine (auto)."""

from __future__ import annotations

import json
from pathlib import Path

from testing.fixtures import bare_remote, git
from testing.github_api import serve
from testing.lifecycle import lifecycle_project
from testing.project import outcomes, run, session_branches, task_block


def trailers(repo, commit: str) -> str:
    return git(repo, "log", "-1", "--format=%(trailers:only,unfold)", commit)


def test_per_task_gives_each_task_its_own_branch_on_the_base(tmp_path, cli) -> None:
    tasks = task_block("t1", "One", "echo 'A = 1' > src/a.py") + task_block(
        "t2", "Two", "echo 'B = 2' > src/b.py"
    )
    repo = lifecycle_project(tmp_path, tasks, front="approval: per-task\n")
    data = run(cli, repo)
    assert outcomes(data) == [("t1", "committed"), ("t2", "committed")]
    assert data["branch"] is None  # no session branch: nothing is final
    main = git(repo, "rev-parse", "main").strip()
    branches = {t["id"]: t["branch"] for t in data["tasks"]}
    assert branches == {
        "t1": f"autonomous/{data['session']}-t1",
        "t2": f"autonomous/{data['session']}-t2",
    }
    assert sorted(session_branches(repo)) == sorted(branches.values())
    for task in data["tasks"]:
        # Stacked on nothing: a person can merge one and leave the other.
        assert git(repo, "rev-parse", f"{task['branch']}^").strip() == main
        assert git(repo, "rev-parse", task["branch"]).strip() == task["commit"]
        assert f"Task-Id: {task['id']}" in trailers(repo, task["commit"])
        assert "Approval: per-task" in trailers(repo, task["commit"])
        assert task["approval"] == "per-task"
    # t2's branch does not carry t1's file.
    assert "src/a.py" not in git(repo, "ls-tree", "-r", "--name-only", branches["t2"])
    again = run(cli, repo)  # both await review
    assert outcomes(again) == [("t1", "skipped"), ("t2", "skipped")]


def test_a_task_line_overrides_the_plans_approval(tmp_path, cli) -> None:
    tasks = task_block("t1", "One", "echo 'A = 1' > src/a.py") + task_block(
        "t2", "Two", "echo 'B = 2' > src/b.py"
    ).replace("  - Status: READY\n", "  - Status: READY\n  - Approval: per-task\n")
    repo = lifecycle_project(tmp_path, tasks)
    data = run(cli, repo)
    assert outcomes(data) == [("t1", "committed"), ("t2", "committed")]
    session_commit = data["tasks"][0]["commit"]
    assert git(repo, "rev-parse", data["branch"]).strip() == session_commit
    assert "branch" not in data["tasks"][0]
    assert data["tasks"][1]["branch"] == f"autonomous/{data['session']}-t2"
    body = Path(data["pr_body"]).read_text(encoding="utf-8")
    assert "### On their own branches" in body and f"{data['session']}-t2" in body


def test_auto_is_per_task_where_the_constraints_forbid_the_tool_to_merge(tmp_path, cli) -> None:
    repo = lifecycle_project(
        tmp_path,
        task_block("t1", "One", "echo 'A = 1' > src/a.py"),
        front="approval: auto\n",
        rules="auto_merge: false\n",
    )
    data = run(cli, repo)
    task = data["tasks"][0]
    assert task["approval"] == "per-task"
    assert "Approval: per-task" in trailers(repo, task["commit"])


def test_an_unknown_approval_is_refused_with_its_line(tmp_path, cli) -> None:
    tasks = task_block("t1", "One", "true").replace(
        "  - Status: READY\n", "  - Status: READY\n  - Approval: whenever\n"
    )
    repo = lifecycle_project(tmp_path, tasks)
    done = cli("check", cwd=repo)
    assert done.returncode == 2
    assert "PROJECT_PLAN.md:" in done.stderr and "`Approval` must be one of final" in done.stderr
    bad = lifecycle_project(tmp_path / "other", "", front="approval: sometimes\n")
    done = cli("check", cwd=bad)
    assert done.returncode == 2 and "PROJECT_PLAN.md:4:" in done.stderr


def test_per_task_run_push_opens_one_pull_request_per_task(tmp_path, cli) -> None:
    tasks = task_block("t1", "One", "echo 'A = 1' > src/a.py") + task_block(
        "t2", "Two", "echo 'B = 2' > src/b.py"
    )
    repo = lifecycle_project(tmp_path, tasks, front="approval: per-task\n")
    bare_remote(tmp_path, repo)
    with serve() as github:
        done = cli("run", "--push", "--json", cwd=repo, env=github.env())
        assert done.returncode == 0, done.stderr
        data = json.loads(done.stdout)
        heads = sorted(p["head"]["ref"] for p in github.pulls)
        assert heads == sorted(t["branch"] for t in data["tasks"])
        for pull in github.pulls:
            task = next(t for t in data["tasks"] if t["branch"] == pull["head"]["ref"])
            assert f"**{task['id']}**" in pull["body"]
            other = "t2" if task["id"] == "t1" else "t1"
            assert f"**{other}**" not in pull["body"]
        assert len(data["pull_requests"]) == 2


def test_a_task_that_failed_the_gate_leaves_a_draft_when_the_plan_asks(tmp_path, cli) -> None:
    tasks = task_block("t1", "Break it", "echo 'BROKEN = 1' > src/a.py") + task_block(
        "t2", "Touch the pipeline", "mkdir -p .github && echo x > .github/ci.yml"
    )
    repo = lifecycle_project(
        tmp_path,
        tasks,
        front="approval: per-task\non_failure: draft-pr\n",
        gate="! grep -rq BROKEN src",
    )
    bare_remote(tmp_path, repo)
    with serve() as github:
        done = cli("run", "--push", "--json", cwd=repo, env=github.env())
        assert done.returncode == 0, done.stderr
        data = json.loads(done.stdout)
        assert outcomes(data) == [("t1", "rolled_back"), ("t2", "rolled_back")]
        t1, t2 = data["tasks"]
        assert t1["draft"] == f"autonomous/draft-{data['session']}-t1"
        assert "draft" not in t2  # it broke a safety rule: never shown as a draft
        # The last attempt, on the base, and no result: no Task-Id, no DONE.
        assert git(repo, "show", f"{t1['draft']}:src/a.py") == "BROKEN = 1\n"
        message = git(repo, "log", "-1", "--format=%B", t1["draft"])
        assert "Task-Id:" not in message and "Draft-Of: t1" in message
        assert "Status: DONE" not in git(repo, "show", f"{t1['draft']}:PROJECT_PLAN.md")
        drafts = [p for p in github.pulls if p["head"]["ref"] == t1["draft"]]
        assert len(drafts) == 1 and drafts[0]["draft"] is True
        assert "failed the quality gate" in drafts[0]["body"]
    again = run(cli, repo)  # a draft is not a result awaiting review: the task runs again
    assert ("t1", "rolled_back") in outcomes(again)


def test_no_draft_without_on_failure(tmp_path, cli) -> None:
    repo = lifecycle_project(
        tmp_path,
        task_block("t1", "Break it", "echo 'BROKEN = 1' > src/a.py"),
        front="approval: per-task\n",
        gate="! grep -rq BROKEN src",
    )
    data = run(cli, repo)
    assert "draft" not in data["tasks"][0]
    assert session_branches(repo) == []
