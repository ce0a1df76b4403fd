"""gitops_agent.git against real repositories built with the git CLI."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops_agent.change import SYMLINK_MODE, Change, FileStatus
from gitops_agent.errors import UserError
from gitops_agent.git import RefMovedError, Repo, Workspace, find_repo_root

GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
}


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True
    )
    return result.stdout


def write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)


@pytest.fixture
def user(tmp_path: Path) -> Path:
    """A user's repository: main with a few files, an ignore rule and one executable."""
    root = tmp_path / "user"
    git(tmp_path, "init", "-q", "-b", "main", str(root))
    git(root, "config", "user.name", "Some One")
    git(root, "config", "user.email", "someone@example.com")
    write(root / "README.md", "# project\n")
    write(root / "src" / "app.py", "def main():\n    return 1\n")
    write(root / "src" / "util" / "text.py", "A = 1\nB = 2\nC = 3\n")
    write(root / "run.sh", "#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    write(root / ".gitignore", "*.log\nbuild/\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


@pytest.fixture
def repo(user: Path) -> Repo:
    return Repo.open(user)


class Checkout:
    """A workspace as a session uses it: reset to a commit, then captured against it."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.path = workspace.path

    def reset(self, rev: str) -> None:
        self.workspace.reset(rev)

    def capture(self) -> Change:
        edits, refusals = self.workspace.capture(max_bytes=10_000_000)
        assert refusals == []
        return self.workspace.change(edits)


@pytest.fixture
def checkout(repo: Repo, tmp_path: Path) -> Iterator[Checkout]:
    workspace = Workspace(repo, tmp_path / "work" / "tree")
    workspace.reset("main")
    yield Checkout(workspace)


def head(root: Path, rev: str = "HEAD") -> str:
    return git(root, "rev-parse", rev).strip()


# -- Repo ------------------------------------------------------------------------------------


def test_find_repo_root_from_a_subdirectory_and_none_outside(user: Path, tmp_path: Path) -> None:
    assert find_repo_root(user / "src" / "util") == user
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert find_repo_root(outside) is None


def test_open_outside_a_repository_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a git repository"):
        Repo.open(tmp_path)


def test_head_branch_names_unborn_branch_and_is_none_when_detached(
    repo: Repo, user: Path, tmp_path: Path
) -> None:
    assert repo.head_branch() == "main"
    git(user, "checkout", "-q", "--detach")
    assert repo.head_branch() is None
    git(tmp_path, "init", "-q", "-b", "trunk", str(tmp_path / "empty"))
    assert Repo.open(tmp_path / "empty").head_branch() == "trunk"


def test_resolve_commit_prefers_the_branch_over_a_tag_and_rejects_unknown(
    repo: Repo, user: Path
) -> None:
    first = head(user)
    git(user, "commit", "-q", "--allow-empty", "-m", "second")
    git(user, "tag", "main", first)  # a tag named like the branch
    assert repo.resolve_commit("main") == head(user)
    assert repo.resolve_commit(first[:10]) == first
    assert repo.branch_tip("main") == head(user)
    assert repo.branch_tip("nope") is None
    with pytest.raises(UserError, match="unknown commit or branch"):
        repo.resolve_commit("nope")


def test_read_blob_returns_content_and_none_for_missing_paths_or_directories(
    repo: Repo,
) -> None:
    assert repo.read_blob("main", "src/util/text.py") == b"A = 1\nB = 2\nC = 3\n"
    assert repo.read_blob("main", "src/missing.py") is None
    assert repo.read_blob("main", "src") is None


def test_create_branch_only_under_autonomous_and_never_overwrites(repo: Repo, user: Path) -> None:
    with pytest.raises(UserError, match="autonomous/"):
        repo.create_branch("feature", "main")
    repo.create_branch("autonomous/t1", "main")
    assert head(user, "autonomous/t1") == head(user)
    git(user, "commit", "-q", "--allow-empty", "-m", "second")
    with pytest.raises(UserError, match="already exists"):
        repo.create_branch("autonomous/t1", "main")
    assert repo.autonomous_branches() == {"autonomous/t1": head(user, "main~1")}


def test_is_merged_follows_ancestry(repo: Repo, user: Path) -> None:
    first = head(user)
    git(user, "commit", "-q", "--allow-empty", "-m", "second")
    assert repo.is_merged(first, "main")
    assert repo.is_merged("main", "main")
    assert not repo.is_merged("main", first)


def test_replace_in_tree_writes_nested_paths_deletes_and_keeps_the_executable_bit(
    repo: Repo, user: Path
) -> None:
    tree = head(user, "main^{tree}")
    new = repo.replace_in_tree(
        tree, {"a/b/c.txt": b"deep\n", "src/util/text.py": None, "run.sh": b"#!/bin/sh\n"}
    )
    listing = git(user, "ls-tree", "-r", new)
    assert "a/b/c.txt" in listing
    assert "src/util" not in listing  # the emptied directory is gone
    assert "100755 blob" in next(line for line in listing.splitlines() if "run.sh" in line)
    with pytest.raises(UserError, match="invalid path"):
        repo.replace_in_tree(tree, {"../escape": b"x"})


def test_commit_tree_writes_trailers_that_git_reads(repo: Repo, user: Path) -> None:
    repo.create_branch("autonomous/t1", "main")
    tree = repo.replace_in_tree(head(user, "main^{tree}"), {"NEW.md": b"new\n"})
    commit = repo.commit_tree(
        "autonomous/t1", tree, head(user), "Add NEW.md", {"Task": "t1", "Agent-Run": "42"}
    )
    assert head(user, "autonomous/t1") == commit
    trailers = git(user, "log", "-1", "--format=%(trailers:only,unfold)", commit)
    assert trailers.strip().splitlines() == ["Task: t1", "Agent-Run: 42"]
    assert git(user, "log", "-1", "--format=%an <%ae>", commit).strip() == (
        "gitops-agent <gitops-agent@localhost>"
    )
    [info] = repo.commits_between("autonomous/t1", "main")
    assert (info.id, info.trailers, info.parents) == (
        commit,
        {"Task": "t1", "Agent-Run": "42"},
        (head(user),),
    )


def test_commit_tree_refuses_when_the_branch_moved_meanwhile(repo: Repo, user: Path) -> None:
    repo.create_branch("autonomous/t1", "main")
    base = head(user)
    git(user, "commit", "-q", "--allow-empty", "-m", "elsewhere")
    git(user, "update-ref", "refs/heads/autonomous/t1", "main")
    with pytest.raises(RefMovedError) as moved:
        repo.commit_tree("autonomous/t1", head(user, "main^{tree}"), base, "late", {})
    assert head(user, "autonomous/t1") == head(user, "main")
    assert isinstance(moved.value, UserError)  # the user's doing: a message, not a crash


def test_commit_tree_refuses_branches_that_are_not_ours_or_checked_out(
    repo: Repo, user: Path
) -> None:
    tree = head(user, "main^{tree}")
    with pytest.raises(UserError, match="only branches under autonomous/"):
        repo.commit_tree("main", tree, head(user), "no", {})
    repo.create_branch("autonomous/t1", "main")
    git(user, "checkout", "-q", "autonomous/t1")
    with pytest.raises(UserError, match="checked out"):
        repo.commit_tree("autonomous/t1", tree, head(user), "no", {})


def test_commit_files_creates_an_orphan_branch_then_appends_keeping_earlier_files(
    repo: Repo, user: Path
) -> None:
    first = repo.commit_files("autonomous/memory", {"log.md": b"one\n"}, "Start the log")
    assert git(user, "rev-list", "--parents", first).split() == [first]  # no parent
    second = repo.commit_files(
        "autonomous/memory",
        {"notes/two.md": b"two\n"},
        "Add notes",
        expected_tip=first,
        trailers={"Session": "s1"},
    )
    assert git(user, "ls-tree", "-r", "--name-only", second).split() == ["log.md", "notes/two.md"]
    assert head(user, "autonomous/memory~1") == first
    assert repo.commits_between("autonomous/memory", first)[0].trailers == {"Session": "s1"}


def test_commit_files_refuses_a_stale_expected_tip(repo: Repo, user: Path) -> None:
    first = repo.commit_files("autonomous/memory", {"log.md": b"one\n"}, "Start")
    repo.commit_files("autonomous/memory", {"log.md": b"two\n"}, "Again")
    with pytest.raises(RefMovedError):
        repo.commit_files("autonomous/memory", {"log.md": b"3\n"}, "Late", expected_tip=first)
    with pytest.raises(RefMovedError):
        repo.commit_files("autonomous/memory", {"log.md": b"3\n"}, "New", expected_tip=None)
    with pytest.raises(UserError, match="only branches under autonomous/"):
        repo.commit_files("notes", {"log.md": b"3\n"}, "Not ours")


# -- Checkout: capture -----------------------------------------------------------------------


def test_capture_sees_edits_new_deleted_symlink_binary_and_executable_files(
    checkout: Checkout, user: Path
) -> None:
    ck = checkout.path
    write(ck / "src" / "app.py", "def main():\n    return 2\n\nprint('x')\n")
    write(ck / "docs" / "new.md", "hello\nworld\n")
    (ck / "README.md").unlink()
    os.symlink("/etc/passwd", ck / "secrets")
    write(ck / "logo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00binary")
    write(ck / "tool.py", "print(1)\n")
    (ck / "tool.py").chmod(0o755)

    change = checkout.capture()

    files = {f.path: f for f in change.files}
    assert set(files) == {
        "src/app.py",
        "docs/new.md",
        "README.md",
        "secrets",
        "logo.png",
        "tool.py",
    }
    assert files["README.md"].status is FileStatus.DELETED
    assert files["docs/new.md"].added_lines == ("hello", "world")
    assert files["secrets"].mode == SYMLINK_MODE
    assert files["secrets"].symlink_target == "/etc/passwd"
    assert files["logo.png"].is_binary
    assert files["logo.png"].size == len(b"\x89PNG\r\n\x1a\n\x00\x00\x00binary")
    assert files["tool.py"].mode == 0o100755
    assert files["src/app.py"].added_lines == ("    return 2", "", "print('x')")
    numstat = git(user, "diff", "--numstat", change.base, change.tree)
    for line in numstat.splitlines():
        added, deleted, path = line.split("\t")
        expected = (0, 0) if added == "-" else (int(added), int(deleted))
        assert (files[path].added, files[path].deleted) == expected, path


def test_capture_counts_the_agents_own_commits_plus_uncommitted_edits(
    checkout: Checkout, user: Path
) -> None:
    ck = checkout.path
    write(ck / "src" / "app.py", "def main():\n    return 3\n")
    git(ck, "commit", "-q", "-am", "agent commit")
    write(ck / "README.md", "# project\nmore\n")
    git(ck, "add", "README.md")  # staged, then edited again
    write(ck / "README.md", "# project\nmore and more\n")

    change = checkout.capture()

    assert {f.path: f.status for f in change.files} == {
        "src/app.py": FileStatus.MODIFIED,
        "README.md": FileStatus.MODIFIED,
    }
    # The tree lives in the user's object database, ready to be committed there.
    assert git(user, "show", f"{change.tree}:README.md") == "# project\nmore and more\n"


def test_capture_detects_a_rename(checkout: Checkout) -> None:
    os.rename(checkout.path / "src" / "util" / "text.py", checkout.path / "src" / "words.py")
    [moved] = checkout.capture().files
    assert (moved.status, moved.old_path, moved.path) == (
        FileStatus.RENAMED,
        "src/util/text.py",
        "src/words.py",
    )


def test_capture_leaves_out_ignored_files(checkout: Checkout) -> None:
    ck = checkout.path
    write(ck / "debug.log", "noise\n")
    write(ck / "build" / "out.bin", b"\x00")
    write(ck / "kept.txt", "kept\n")
    assert [f.path for f in checkout.capture().files] == ["kept.txt"]


def test_capture_refuses_nested_repositories_hard_links_git_names_and_special_files(
    checkout: Checkout,
) -> None:
    ck = checkout.path
    git(ck, "init", "-q", "vendor/lib")
    write(ck / "src" / ".GIT" / "config", "[core]\n")
    write(ck / "src" / "line\nbreak.py", "x = 1\n")
    os.link(ck / "src" / "app.py", ck / "src" / "twin.py")
    os.mkfifo(ck / "src" / "pipe")
    _edits, refusals = checkout.workspace.capture(max_bytes=10_000_000)
    refused = {r.path: r.reason for r in refusals}
    assert set(refused) == {
        "vendor/lib/.git",
        "src/.GIT",
        "src/line\nbreak.py",
        "src/app.py",
        "src/twin.py",
        "src/pipe",
    }
    assert "hard link" in refused["src/twin.py"] and "pipe" in refused["src/pipe"]
    assert "control character" in refused["src/line\nbreak.py"]


def test_capture_ignores_the_agents_skip_worktree_tricks_and_config(checkout: Checkout) -> None:
    ck = checkout.path
    git(ck, "update-index", "--skip-worktree", "README.md")
    write(ck / "README.md", "hidden edit\n")
    git(ck, "config", "core.fileMode", "false")
    write(ck / ".git" / "info" / "exclude", "*.py\n")
    write(ck / "new.py", "x = 1\n")
    (ck / "run.sh").chmod(0o644)
    paths = {f.path for f in checkout.capture().files}
    assert paths == {"README.md", "new.py", "run.sh"}


def test_capture_of_an_untouched_checkout_is_empty(checkout: Checkout, user: Path) -> None:
    change = checkout.capture()
    assert change.is_empty
    assert change.tree == head(user, "main^{tree}")


def test_capture_handles_a_file_becoming_a_directory_and_a_directory_a_file(
    checkout: Checkout, user: Path
) -> None:
    ck = checkout.path
    (ck / "README.md").unlink()
    write(ck / "README.md" / "index.md", "now a directory\n")
    (ck / "src" / "util" / "text.py").unlink()
    (ck / "src" / "util").rmdir()
    write(ck / "src" / "util", "now a file\n")
    change = checkout.capture()
    assert git(user, "ls-tree", "-r", "--name-only", change.tree).split() == [
        ".gitignore",
        "README.md/index.md",
        "run.sh",
        "src/app.py",
        "src/util",
    ]


def test_capture_sees_same_size_edits_made_right_after_a_reset(checkout: Checkout) -> None:
    target = checkout.path / "src" / "app.py"
    for _ in range(20):
        checkout.reset("main")
        target.write_text(target.read_text().replace("1", "7"))  # same size, same instant
        assert [f.path for f in checkout.capture().files] == ["src/app.py"]


def test_capture_and_reset_never_read_or_follow_the_checkouts_git(
    checkout: Checkout, user: Path
) -> None:
    """An agent that points its .git at the user's: nothing of the user's is read or written."""
    before = {p: p.read_bytes() for p in (user / ".git").rglob("*") if p.is_file()}
    remove = checkout.path / ".git"
    subprocess.run(["rm", "-rf", str(remove)], check=True)
    os.symlink(user / ".git", checkout.path / ".git")
    write(checkout.path / "src" / "app.py", "changed\n")
    assert [f.path for f in checkout.capture().files] == ["src/app.py"]
    checkout.reset("main")
    assert not (checkout.path / ".git").is_symlink()
    assert git(checkout.path, "status", "--porcelain", "--ignored") == ""
    after = {p: p.read_bytes() for p in (user / ".git").rglob("*") if p.is_file()}
    assert {p: after.get(p) for p in before} == before  # only objects were added
    assert all("objects" in p.parts for p in after.keys() - before.keys())


def test_reset_replaces_a_hard_linked_file_instead_of_writing_through_it(
    checkout: Checkout, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    (checkout.path / "src" / "app.py").unlink()
    os.link(outside, checkout.path / "src" / "app.py")
    checkout.reset("main")
    assert outside.read_text() == "precious\n"
    assert (checkout.path / "src" / "app.py").read_text() == "def main():\n    return 1\n"


# -- Checkout: reset -------------------------------------------------------------------------


def test_reset_returns_to_the_commit_after_commits_junk_config_and_hooks(
    checkout: Checkout, user: Path
) -> None:
    ck = checkout.path
    config_before = (ck / ".git" / "config").read_bytes()
    git(ck, "checkout", "-q", "-b", "agent-branch")
    write(ck / "src" / "app.py", "changed\n")
    write(ck / "committed.txt", "c\n")
    git(ck, "add", "-A")
    git(ck, "commit", "-q", "-m", "agent")
    git(ck, "tag", "agent-tag")
    write(ck / "README.md", "dirty\n")
    (ck / "run.sh").unlink()
    write(ck / "untracked" / "deep" / "file.txt", "u\n")
    write(ck / "build" / "cache" / "x.o", b"\x00")
    write(ck / "debug.log", "log\n")
    git(ck, "init", "-q", "nested")
    os.link(ck / ".gitignore", ck / "linked")
    git(ck, "config", "core.autocrlf", "true")
    write(ck / ".git" / "hooks" / "pre-commit", "#!/bin/sh\nexit 1\n")
    write(ck / ".git" / "index.lock", "")

    checkout.reset("main")

    assert git(ck, "status", "--porcelain", "--ignored") == ""
    assert head(ck) == head(user)
    assert git(ck, "for-each-ref", "--format=%(refname)") == "refs/heads/work\n"
    assert (ck / ".git" / "config").read_bytes() == config_before
    assert not (ck / ".git" / "hooks").exists()
    assert (ck / "src" / "app.py").read_text() == "def main():\n    return 1\n"
    assert os.access(ck / "run.sh", os.X_OK)
    assert sorted(p.name for p in ck.iterdir()) == [
        ".git",
        ".gitignore",
        "README.md",
        "run.sh",
        "src",
    ]


def test_reset_moves_the_checkout_to_another_commit(checkout: Checkout, user: Path) -> None:
    write(user / "src" / "app.py", "v2\n")
    git(user, "commit", "-q", "-am", "v2")
    checkout.reset("main")
    assert (checkout.path / "src" / "app.py").read_text() == "v2\n"
    assert git(checkout.path, "status", "--porcelain", "--ignored") == ""
    checkout.reset("main~1")
    assert (checkout.path / "src" / "app.py").read_text() == "def main():\n    return 1\n"
    write(checkout.path / "src" / "app.py", "agent\n")
    assert [f.path for f in checkout.capture().files] == ["src/app.py"]


def test_reset_removes_read_only_directories(checkout: Checkout) -> None:
    cache = checkout.path / "gocache" / "mod"
    write(cache / "a.go", "package a\n")
    (cache / "a.go").chmod(0o444)
    cache.chmod(0o555)
    checkout.reset("main")
    assert not (checkout.path / "gocache").exists()


# -- The user's checkout is never touched ----------------------------------------------------


def user_state(root: Path) -> dict[str, bytes]:
    """Every file of the work tree (untracked and ignored too) and the .git files we promise."""
    state: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(".git/") and not rel.startswith((".git/hooks/", ".git/refs/tags")):
            continue
        if path.is_file():
            state[rel] = path.read_bytes() + f" mode={stat.S_IMODE(path.stat().st_mode)}".encode()
    for name in ("HEAD", "index", "config"):
        state[f".git/{name}"] = (root / ".git" / name).read_bytes()
    refs = git(root, "for-each-ref", "--format=%(refname) %(objectname)")
    own = ("autonomous/", "refs/gitops-agent/")
    state["refs"] = "\n".join(r for r in refs.splitlines() if not any(o in r for o in own)).encode()
    return state


def test_users_checkout_is_byte_identical_after_every_operation(
    repo: Repo, user: Path, tmp_path: Path
) -> None:
    write(user / "src" / "app.py", "uncommitted work\n")
    write(user / "staged.txt", "staged\n")
    git(user, "add", "staged.txt")
    write(user / "notes.txt", "untracked\n")
    write(user / "build" / "artifact", "ignored\n")
    write(user / ".git" / "hooks" / "pre-commit", "#!/bin/sh\n")
    before = user_state(user)

    workspace = Workspace(repo, tmp_path / "work" / "tree")
    workspace.reset("main")
    checkout = Checkout(workspace)
    write(checkout.path / "README.md", "agent\n")
    change = checkout.capture()
    repo.create_branch("autonomous/t1", "main")
    repo.commit_tree("autonomous/t1", change.tree, change.base, "Task", {"Task": "t1"})
    repo.commit_files("autonomous/memory", {"m.md": b"m\n"}, "Memory")
    checkout.reset("main")
    workspace.remove()

    assert user_state(user) == before


def test_reset_after_a_capture_removes_what_capture_left_out_without_a_walk(
    checkout: Checkout, user: Path
) -> None:
    ck = checkout.path
    write(ck / "src" / "app.py", "changed\n")
    write(ck / "build" / "cache" / "x.o", b"\x00")  # an ignored directory
    write(ck / "debug.log", "log\n")  # an ignored file
    (ck / "empty" / "deeper").mkdir(parents=True)  # new directories, nothing in them
    write(ck / "src" / "bad\x1bname.py", "x\n")  # refused
    os.link(ck / "README.md", ck / "twin.md")  # refused, and a tracked file shares it
    (ck / "run.sh").unlink()
    write(ck / "run.sh" / "now-a-dir.txt", "d\n")  # a file became a directory
    _edits, refusals = checkout.workspace.capture(max_bytes=10_000_000)
    assert {r.path for r in refusals} == {"src/bad\x1bname.py", "twin.md", "README.md"}
    checkout.reset("main")
    assert git(ck, "status", "--porcelain", "--ignored") == ""
    assert sorted(p.name for p in ck.iterdir()) == [
        ".git",
        ".gitignore",
        "README.md",
        "run.sh",
        "src",
    ]
    assert os.access(ck / "run.sh", os.X_OK) and (ck / "README.md").stat().st_nlink == 1
