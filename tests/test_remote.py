"""Our branches and a remote: a bare repository on disk stands in for GitHub's."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_agent.errors import UserError
from gitops_agent.git import Repo
from gitops_agent.git.remote import (
    adopt_remote_branch,
    bundle_heads,
    create_bundle,
    fetch_autonomous,
    fetch_bundle,
    push,
    remote_branches,
)
from testing.fixtures import git, make_repo


def with_remote(tmp_path: Path) -> tuple[Path, Path]:
    """A repository on main, and a bare remote `origin` that has main."""
    repo = make_repo(tmp_path / "repo", {"src/app.py": "x = 1\n"})
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    return repo, remote


def task_commit(repo: Path, branch: str, task_id: str, path: str, text: str) -> str:
    """A commit on `branch` (made from main when new) carrying a Task-Id trailer."""
    if branch not in git(repo, "branch", "--list", branch):
        git(repo, "branch", branch, "main")
    git(repo, "checkout", "-q", branch)
    target = repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"Do {task_id}", "-m", f"Task-Id: {task_id}")
    git(repo, "checkout", "-q", "main")
    return git(repo, "rev-parse", branch).strip()


def tip(repo: Path, ref: str) -> str:
    return git(repo, "rev-parse", "--verify", "-q", ref).strip()


def test_push_sends_our_branch_to_a_bare_remote(tmp_path: Path) -> None:
    repo, remote = with_remote(tmp_path)
    commit = task_commit(repo, "autonomous/s1", "t1", "src/a.py", "a\n")
    assert push(Repo.open(repo), "origin", ["autonomous/s1"]) == ["refs/heads/autonomous/s1"]
    assert tip(remote, "refs/heads/autonomous/s1") == commit


def test_push_by_path_needs_no_remote_configured(tmp_path: Path) -> None:
    repo, remote = with_remote(tmp_path)
    git(repo, "remote", "remove", "origin")
    commit = task_commit(repo, "autonomous/s1", "t1", "src/a.py", "a\n")
    push(Repo.open(repo), str(remote), ["autonomous/s1"])
    assert tip(remote, "refs/heads/autonomous/s1") == commit


def test_push_never_overwrites_a_branch_the_remote_moved(tmp_path: Path) -> None:
    repo, remote = with_remote(tmp_path)
    task_commit(repo, "autonomous/s1", "t1", "src/a.py", "a\n")
    push(Repo.open(repo), "origin", ["autonomous/s1"])
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(remote), str(other))
    git(other, "config", "user.name", "Other")
    git(other, "config", "user.email", "other@example.com")
    theirs = task_commit(other, "autonomous/s1", "t9", "src/z.py", "z\n")  # from main: diverges
    git(other, "push", "-q", "--force", "origin", "autonomous/s1")
    task_commit(repo, "autonomous/s1", "t2", "src/b.py", "b\n")
    with pytest.raises(UserError, match=r"refused|failed"):
        push(Repo.open(repo), "origin", ["autonomous/s1"])
    assert tip(remote, "refs/heads/autonomous/s1") == theirs


def test_push_refuses_branches_that_are_not_ours(tmp_path: Path) -> None:
    repo, _ = with_remote(tmp_path)
    with pytest.raises(UserError, match="only branches under autonomous/"):
        push(Repo.open(repo), "origin", ["main"])


def test_fetch_prunes_a_branch_deleted_on_the_remote(tmp_path: Path) -> None:
    repo, remote = with_remote(tmp_path)
    task_commit(repo, "autonomous/s1", "t1", "src/a.py", "a\n")
    git(repo, "push", "-q", "origin", "autonomous/s1")
    clone = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    opened = Repo.open(clone)
    assert list(remote_branches(opened)) == ["autonomous/s1"]
    git(remote, "branch", "-D", "autonomous/s1")  # the PR was merged and its branch deleted
    fetch_autonomous(opened, "origin")
    assert remote_branches(opened) == {}
    assert tip(clone, "refs/remotes/origin/main")  # nothing else was touched


def test_a_fresh_clone_adopts_the_remote_memory_branch(tmp_path: Path) -> None:
    repo, remote = with_remote(tmp_path)
    first = task_commit(repo, "autonomous/memory", "log", "memory/a.md", "a\n")
    git(repo, "push", "-q", "origin", "autonomous/memory")
    clone = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    opened = Repo.open(clone)
    assert adopt_remote_branch(opened, "origin", "autonomous/memory") == "created"
    assert opened.branch_tip("autonomous/memory") == first
    assert adopt_remote_branch(opened, "origin", "autonomous/memory") == "kept"
    second = task_commit(repo, "autonomous/memory", "log", "memory/b.md", "b\n")
    git(repo, "push", "-q", "origin", "autonomous/memory")
    git(clone, "fetch", "-q", "origin")
    assert adopt_remote_branch(opened, "origin", "autonomous/memory") == "fast-forwarded"
    assert opened.branch_tip("autonomous/memory") == second
    assert adopt_remote_branch(opened, "origin", "autonomous/nothing") == "absent"


def test_a_bundle_carries_only_what_the_remote_lacks_and_comes_in_checked(tmp_path) -> None:
    repo, remote = with_remote(tmp_path)
    commit = task_commit(repo, "autonomous/s1", "t1", "src/a.py", "a\n")
    git(repo, "fetch", "-q", "origin")
    bundle = tmp_path / "out" / "result.bundle"
    assert create_bundle(Repo.open(repo), bundle, ["autonomous/s1"]) == ["autonomous/s1"]
    clone = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    opened = Repo.open(clone)
    heads = bundle_heads(opened, bundle)
    assert heads == {"refs/heads/autonomous/s1": commit}
    fetch_bundle(opened, bundle, heads)
    assert git(clone, "cat-file", "-t", commit).strip() == "commit"
    assert git(clone, "for-each-ref", "refs/gitops-agent") == ""  # no ref left behind
    assert opened.branch_tip("autonomous/s1") is None  # taking it in is verify's decision


def test_a_bundle_with_nothing_new_is_not_written(tmp_path: Path) -> None:
    repo, _ = with_remote(tmp_path)
    task_commit(repo, "autonomous/s1", "t1", "src/a.py", "a\n")
    git(repo, "push", "-q", "origin", "autonomous/s1")
    git(repo, "fetch", "-q", "origin")
    bundle = tmp_path / "result.bundle"
    assert create_bundle(Repo.open(repo), bundle, ["autonomous/s1"]) == []
    assert not bundle.exists()


def test_a_damaged_bundle_or_one_needing_unknown_commits_is_refused(tmp_path: Path) -> None:
    repo, remote = with_remote(tmp_path)
    task_commit(repo, "autonomous/s1", "t1", "src/a.py", "a\n")
    git(repo, "fetch", "-q", "origin")
    bundle = tmp_path / "result.bundle"
    create_bundle(Repo.open(repo), bundle, ["autonomous/s1"])
    unrelated = make_repo(tmp_path / "unrelated")  # lacks the base the bundle builds on
    with pytest.raises(UserError, match="not a bundle this repository can read"):
        bundle_heads(Repo.open(unrelated), bundle)
    damaged = tmp_path / "damaged.bundle"
    damaged.write_bytes(bundle.read_bytes()[:-40])
    clone = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    with pytest.raises(UserError):
        opened = Repo.open(clone)
        fetch_bundle(opened, damaged, bundle_heads(opened, damaged))
