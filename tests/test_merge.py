"""`merge`: auto-approved results wait out their quarantine, re-tested, and are merged by the
tool only when they stayed green; the clock is moved with GITOPS_AGENT_NOW, never slept."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from testing.fixtures import bare_remote, git
from testing.github_api import serve
from testing.inbox import Inbox
from testing.lifecycle import lifecycle_project
from testing.project import run, task_block


def at(hours: float) -> str:
    """The time `hours` from now, as GITOPS_AGENT_NOW takes it."""
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat(timespec="seconds")


def merge(
    cli: Any, repo: Path, hours: float, env: dict[str, str] | None = None, *args: str
) -> dict:
    clock = {"GITOPS_AGENT_NOW": at(hours), **(env or {})}
    done = cli("merge", "--json", *args, cwd=repo, env=clock)
    assert done.returncode == 0, done.stderr
    data: dict = json.loads(done.stdout)
    return data


def titles(inbox: Inbox) -> list[str]:
    """The lifecycle's notifications (a session's own summary is another test's)."""
    return [body["title"] for _path, body in inbox.received if body["title"][0] in "🔬✅❌"]


def auto_project(tmp_path: Path, inbox: Inbox, *, gate: str = "test -f src/app.py") -> Path:
    front = f'approval: auto\nquarantine_hours: 48\nnotify: "json://127.0.0.1:{inbox.port}/n"\n'
    return lifecycle_project(
        tmp_path, task_block("t1", "Add a", "echo 'A = 1' > src/a.py"), front=front, gate=gate
    )


def test_an_auto_result_is_merged_only_after_a_green_quarantine(tmp_path, cli, inbox) -> None:
    repo = auto_project(tmp_path, inbox)
    main = git(repo, "rev-parse", "main").strip()
    data = run(cli, repo)
    task = data["tasks"][0]
    assert (task["outcome"], task["approval"]) == ("committed", "auto")
    assert titles(inbox)[-1] == "🔬 gitops-agent: t1 in quarantine"

    early = merge(cli, repo, 47)
    assert [r["state"] for r in early["results"]] == ["waiting"]
    assert "1.0 h of quarantine left" in early["results"][0]["reason"]
    assert git(repo, "rev-parse", "main").strip() == main  # not yet

    done = merge(cli, repo, 49)
    result = done["results"][0]
    assert (result["state"], result["commit"]) == ("merged", task["commit"])
    assert git(repo, "rev-parse", "main").strip() == task["commit"]  # a fast-forward
    assert (repo / "src" / "a.py").read_text() == "A = 1\n"  # the checkout followed
    assert git(repo, "status", "--porcelain") == ""
    assert "Status: DONE" in git(repo, "show", "main:PROJECT_PLAN.md")
    # Tagged and in the timeline.
    assert result["checkpoint"] == git(repo, "tag", "--points-at", "main").strip()
    listed = json.loads(cli("timeline", "--json", cwd=repo).stdout)["events"]
    assert {e["kind"] for e in listed} == {"checkpoint", "merged"}
    # One notification for each state change, never twice.
    assert merge(cli, repo, 60)["results"] == []
    assert titles(inbox) == [
        "🔬 gitops-agent: t1 in quarantine",
        "✅ gitops-agent merged t1 into main",
    ]
    day = (datetime.now(UTC) + timedelta(hours=47)).strftime("%Y-%m-%d")  # the re-test's day
    log = git(repo, "show", f"autonomous/memory:memory/{day}.md")
    assert "Re-test of autonomous/" in log and "passed" in log and "1.0 h (until" in log


def test_a_failed_retest_cancels_the_merge_and_says_so_once(tmp_path, cli, inbox) -> None:
    # Green alone; red once a person's later commit on main meets it.
    gate = "test -f src/app.py && ! { test -f src/a.py && test -f src/block; }"
    repo = auto_project(tmp_path, inbox, gate=gate)
    run(cli, repo)
    (repo / "src" / "block").write_text("x\n")
    git(repo, "add", "src/block")
    git(repo, "commit", "-q", "-m", "A person's commit")
    main = git(repo, "rev-parse", "main").strip()

    first = merge(cli, repo, 1)
    assert first["results"][0]["state"] == "cancelled"
    assert "the re-test failed: the gate failed" in first["results"][0]["reason"]
    assert merge(cli, repo, 50)["results"] == []  # a person decides now
    assert git(repo, "rev-parse", "main").strip() == main
    assert titles(inbox) == ["🔬 gitops-agent: t1 in quarantine", "❌ gitops-agent: not merging t1"]


def test_changes_the_constraints_keep_for_people_are_never_merged(tmp_path, cli, inbox) -> None:
    front = "approval: auto\n"
    repo = lifecycle_project(
        tmp_path,
        task_block("t1", "Add a", "echo 'A = 1' > src/a.py"),
        front=front,
        rules="no_auto_merge: [src/a.py]\n",
    )
    run(cli, repo)
    done = merge(cli, repo, 100)
    assert done["results"][0]["state"] == "cancelled"
    assert "no_auto_merge: src/a.py" in done["results"][0]["reason"]


def test_local_changes_in_the_way_hold_the_merge_until_they_are_gone(tmp_path, cli, inbox) -> None:
    repo = auto_project(tmp_path, inbox)
    data = run(cli, repo)
    (repo / "src" / "a.py").write_text("mine\n")  # untracked, where the merge writes
    (repo / "README.md").write_text("my edit\n")  # elsewhere: it stays
    held = merge(cli, repo, 49)
    assert held["results"][0]["state"] == "held"
    assert "your changes are in the way" in held["results"][0]["reason"]
    assert (repo / "src" / "a.py").read_text() == "mine\n"
    (repo / "src" / "a.py").unlink()
    done = merge(cli, repo, 50)
    assert done["results"][0]["state"] == "merged"
    assert git(repo, "rev-parse", "main").strip() == data["tasks"][0]["commit"]
    assert (repo / "README.md").read_text() == "my edit\n"


def test_a_merge_commit_when_the_base_moved_on(tmp_path, cli, inbox) -> None:
    repo = auto_project(tmp_path, inbox)
    data = run(cli, repo)
    git(repo, "commit", "-q", "--allow-empty", "-m", "A person's commit")
    person = git(repo, "rev-parse", "main").strip()
    done = merge(cli, repo, 49)
    assert done["results"][0]["state"] == "merged"
    parents = git(repo, "log", "-1", "--format=%P", "main").split()
    assert parents == [person, data["tasks"][0]["commit"]]


def test_on_github_the_pull_request_is_merged_and_the_local_base_is_left(
    tmp_path, cli, inbox
) -> None:
    repo = auto_project(tmp_path, inbox)
    remote = bare_remote(tmp_path, repo)
    merged_in: list[str] = []

    def merger(pull: dict[str, Any], body: dict[str, Any]) -> str:
        """Do what GitHub does: fast-forward main on the remote to the head."""
        git(remote, "update-ref", "refs/heads/main", body["sha"])
        merged_in.append(body["merge_method"])
        return str(body["sha"])

    with serve() as github:
        github.merger = merger
        done = cli("run", "--push", "--json", cwd=repo, env=github.env())
        assert done.returncode == 0, done.stderr
        main = git(repo, "rev-parse", "main").strip()
        waiting = merge(cli, repo, 10, env=github.env())
        assert waiting["results"][0]["state"] == "waiting"
        assert github.pulls[0]["state"] == "open"
        merged = merge(cli, repo, 49, github.env(), "--push")
        assert merged["results"][0]["state"] == "merged", merged
        assert github.pulls[0]["state"] == "closed" and merged_in == ["merge"]
        assert git(repo, "rev-parse", "main").strip() == main  # GitHub's base moved, not ours
        checkpoint = merged["results"][0]["checkpoint"]
        assert checkpoint.startswith("checkpoint/")
        assert git(remote, "tag", "--list").split() == [checkpoint]  # pushed, as tags go


def test_on_github_a_failed_retest_labels_the_pull_request_once(tmp_path, cli, inbox) -> None:
    gate = "test -f src/app.py && ! { test -f src/a.py && test -f src/block; }"
    repo = auto_project(tmp_path, inbox, gate=gate)
    bare_remote(tmp_path, repo)
    with serve() as github:
        assert cli("run", "--push", "--json", cwd=repo, env=github.env()).returncode == 0
        (repo / "src" / "block").write_text("x\n")
        git(repo, "add", "src/block")
        git(repo, "commit", "-q", "-m", "A person's commit")
        git(repo, "push", "-q", "origin", "main")
        cancelled = merge(cli, repo, 1, env=github.env())
        assert cancelled["results"][0]["state"] == "cancelled"
        assert merge(cli, repo, 7, env=github.env())["results"] == []
        number = github.pulls[0]["number"]
        assert "gitops-agent: re-test failed" in github.labels[number]
        assert len(github.comments[number]) == 1
        assert "the re-test failed" in github.comments[number][0]
        assert github.pulls[0]["state"] == "open"  # a person's to close or fix
    assert titles(inbox) == ["🔬 gitops-agent: t1 in quarantine", "❌ gitops-agent: not merging t1"]


def test_a_branch_that_only_says_auto_is_never_merged(tmp_path, cli, inbox) -> None:
    # Someone pushes a branch whose commit claims `Approval: auto` for a task the plan gives
    # per-task: the trailer alone must not get it merged.
    repo = lifecycle_project(
        tmp_path,
        task_block("t1", "Add a", "echo 'A = 1' > src/a.py"),
        front="approval: per-task\n",
    )
    branch = "autonomous/20261130-010203-abcd-t1"
    git(repo, "checkout", "-q", "-b", branch)
    (repo / "src" / "a.py").write_text("A = 1\n")
    git(repo, "add", "src/a.py")
    trailers = "Task-Id: t1\nAgent: shell\nSession: 20261130-010203-abcd\nApproval: auto"
    git(repo, "commit", "-q", "-m", f"Add a\n\n{trailers}")
    git(repo, "checkout", "-q", "main")
    main = git(repo, "rev-parse", "main").strip()
    done = merge(cli, repo, 1000)
    assert done["results"][0]["state"] == "cancelled"
    assert "does not give task `t1` approval auto" in done["results"][0]["reason"]
    assert git(repo, "rev-parse", "main").strip() == main


def test_a_persons_merge_of_a_session_is_tagged_by_the_next_run(tmp_path, cli, inbox) -> None:
    repo = lifecycle_project(tmp_path, task_block("t1", "Add a", "echo 'A = 1' > src/a.py"))
    data = run(cli, repo)
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge the night's work", data["branch"])
    run(cli, repo)
    tags = git(repo, "tag", "--list", "checkpoint/*").split()
    assert len(tags) == 1
    assert (
        git(repo, "rev-parse", f"{tags[0]}^{{commit}}").strip()
        == git(repo, "rev-parse", "main").strip()
    )
    listed = json.loads(cli("timeline", "--json", cwd=repo).stdout)["events"]
    assert [(e["kind"], e["checkpoint"], e["tasks"]) for e in listed] == [
        ("checkpoint", tags[0], ["t1"])
    ]
