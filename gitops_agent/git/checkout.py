"""The agent's own checkout: a separate repository borrowing the user's objects, reset per task."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pygit2
from pygit2.enums import CheckoutNotify, CheckoutStrategy, DeltaStatus, DiffFind, DiffOption
from pygit2.enums import FileMode as Mode

from gitops_agent.change import SYMLINK_MODE, Change, FileChange, FileStatus
from gitops_agent.errors import UserError
from gitops_agent.files import write_atomic

from ._files import remove_path, reset_dir, write_if_changed
from .repo import DEFAULT_IDENTITY, Repo, StoredBlob

_STATE = "gitops-agent"  # directory under the checkout's .git holding what reset() relies on
_EXCLUDE = b"# gitops-agent checkout: ignore rules come from the tree's .gitignore files\n"
_AGENT_CONFIG = {
    "user.name": DEFAULT_IDENTITY[0],
    "user.email": DEFAULT_IDENTITY[1],
    "gc.auto": "0",
}
_WIPE = CheckoutStrategy.FORCE | CheckoutStrategy.REMOVE_UNTRACKED | CheckoutStrategy.REMOVE_IGNORED
_WORKDIR_DIFF = (
    DiffOption.INCLUDE_UNTRACKED
    | DiffOption.RECURSE_UNTRACKED_DIRS
    | DiffOption.INCLUDE_TYPECHANGE
    | DiffOption.IGNORE_SUBMODULES
)
_STATUS = {
    DeltaStatus.ADDED: FileStatus.ADDED,
    DeltaStatus.MODIFIED: FileStatus.MODIFIED,
    DeltaStatus.DELETED: FileStatus.DELETED,
    DeltaStatus.RENAMED: FileStatus.RENAMED,
    DeltaStatus.TYPECHANGE: FileStatus.TYPECHANGE,
}


class Checkout:
    """A work tree for an agent, never the user's: its own refs, config and hooks, no remote.

    Its object store borrows the user's (objects/info/alternates, like `git clone --shared`).
    """

    def __init__(self, repo: Repo, path: Path, config: bytes) -> None:
        self._user = repo
        self.path = path
        self._git_dir = path / ".git"
        self._state = self._git_dir / _STATE
        self._config = config
        self._raw = pygit2.Repository(str(path))

    @classmethod
    def create(cls, repo: Repo, path: Path, commit: str) -> Checkout:
        """Make a checkout of `commit` in `path` (absent or empty); complete only once marked."""
        target = repo._commit(commit)
        if path.is_symlink() or (path.exists() and (not path.is_dir() or any(path.iterdir()))):
            raise UserError("the checkout directory exists and is not empty", str(path))
        existed = path.exists()
        try:
            raw = pygit2.init_repository(str(path))
            for key, value in _AGENT_CONFIG.items():
                raw.config[key] = value
            checkout = cls(repo, path, (path / ".git" / "config").read_bytes())
            checkout._state.mkdir()
            checkout._checkout(target)
            marker = {"objects": str(_objects_dir(repo)), "config": checkout._config.decode()}
            write_atomic(checkout._state / "complete.json", json.dumps(marker).encode())
        except BaseException:
            remove_path(path)
            if existed:
                path.mkdir()
            raise
        return checkout

    @classmethod
    def open(cls, repo: Repo, path: Path) -> Checkout | None:
        """The checkout in `path` if `create` finished it for `repo`; None for anything else."""
        try:
            marker = json.loads((path / ".git" / _STATE / "complete.json").read_text())
        except (FileNotFoundError, NotADirectoryError, ValueError):
            return None
        if not isinstance(marker, dict) or marker.get("objects") != str(_objects_dir(repo)):
            return None
        try:
            return cls(repo, path, str(marker["config"]).encode())
        except (KeyError, pygit2.GitError):
            return None

    def reset(self, commit: str) -> None:
        """Make the checkout exactly `commit`, whatever the agent did; cost follows what changed."""
        self._checkout(self._user._commit(commit))

    def capture(self, base: str) -> Change:
        """What the work tree holds now compared with `base`, stored in the user's objects.

        Like `git add -A`: ignored files are left out, and so are nested repositories.
        """
        base_commit = self._user._commit(base)
        raw = self._restore_control_files()
        index = raw.index
        saved_index, saved_head = self._state / "index", self._state / "HEAD"
        if saved_index.is_file() and saved_head.is_file():
            # Our own index from reset(): valid file stats, none of the agent's staging or flags.
            _copy_file(saved_index, self._git_dir / "index")
            index.read(True)
            start = self._user._commit(saved_head.read_text().strip()).tree
        else:  # slow path: every file compared by content
            start = base_commit.tree
            index.read_tree(raw[start.id].peel(pygit2.Tree))
        user = self._user._repo
        deleted: dict[str, None] = {}
        written: dict[str, StoredBlob] = {}
        for delta in index.diff_to_workdir(_WORKDIR_DIFF).deltas:
            path = delta.new_file.path
            if delta.status == DeltaStatus.DELETED:
                deleted[path] = None
            elif not path.endswith("/"):  # a trailing slash marks a nested repository
                index.add(path)  # hashes with the checkout's filters, into its own objects
                entry = index[path]
                if entry.id not in user.odb:
                    user.odb.write(*raw.odb.read(entry.id))
                written[path] = StoredBlob(entry.id, int(entry.mode))
        # Edit the tree the index holds: writing the whole index costs ~0.1 s at 5,000 files.
        # Deletions first, so that a file may become a directory and the reverse.
        emptied = user[self._user._edit_tree(start, deleted)].peel(pygit2.Tree)
        tree = self._user._edit_tree(emptied, written)
        files = _file_changes(user, base_commit.tree, user[tree].peel(pygit2.Tree))
        return Change(base=str(base_commit.id), tree=str(tree), files=files)

    def remove(self) -> None:
        """Delete the checkout's directory, read-only parts included."""
        remove_path(self.path)

    # -- internals -------------------------------------------------------------------------

    def _restore_control_files(self) -> pygit2.Repository:
        """Put back what steers git here (config, hooks, excludes, alternates); reopen."""
        git_dir = self._git_dir
        write_if_changed(git_dir / "config", self._config)
        reset_dir(git_dir / "hooks", {})
        reset_dir(git_dir / "info", {"exclude": _EXCLUDE})
        alternates = f"{_objects_dir(self._user)}\n".encode()
        write_if_changed(git_dir / "objects" / "info" / "alternates", alternates)
        for lock in git_dir.glob("*.lock"):  # index.lock and the like, left by a killed agent
            lock.unlink()
        self._raw = pygit2.Repository(str(self.path))
        return self._raw

    def _checkout(self, target: pygit2.Commit) -> None:
        git_dir = self._git_dir
        reset_dir(git_dir / "refs", {})
        (git_dir / "refs" / "heads").mkdir()
        (git_dir / "refs" / "tags").mkdir()
        remove_path(git_dir / "packed-refs")
        remove_path(git_dir / "logs")
        # Start from the index and HEAD of our last reset, never the agent's: its staging,
        # skip-worktree flags or commits must not decide what is kept.
        saved_index, saved_head = self._state / "index", self._state / "HEAD"
        if saved_index.is_file() and saved_head.is_file():
            _copy_file(saved_index, git_dir / "index")
            write_if_changed(git_dir / "HEAD", saved_head.read_bytes())
        else:  # slow path (every file compared by content), at creation or if state was lost
            remove_path(git_dir / "index")
            write_if_changed(git_dir / "HEAD", f"{target.id}\n".encode())
        raw = self._restore_control_files()
        raw.state_cleanup()
        leftovers = _Leftovers()
        tree = raw[target.id].peel(pygit2.Tree)
        raw.checkout_tree(tree, strategy=_WIPE, callbacks=leftovers)  # type: ignore[no-untyped-call]
        for rel in leftovers.paths:  # libgit2 keeps untracked nested repositories
            remove_path(self.path / rel)
        raw.set_head(target.id)
        _copy_file(git_dir / "index", saved_index)
        write_atomic(saved_head, f"{target.id}\n".encode(), fsync=False)


class _Leftovers(pygit2.CheckoutCallbacks):
    """Untracked and ignored paths a checkout saw, to delete those it left in place."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def checkout_notify_flags(self) -> CheckoutNotify:
        return CheckoutNotify.UNTRACKED | CheckoutNotify.IGNORED

    def checkout_notify(
        self,
        why: CheckoutNotify,
        path: str,
        baseline: pygit2.DiffFile | None,
        target: pygit2.DiffFile | None,
        workdir: pygit2.DiffFile | None,
    ) -> None:
        self.paths.append(path)


def _objects_dir(repo: Repo) -> Path:
    return repo.common_dir / "objects"


def _copy_file(src: Path, dst: Path) -> None:
    """Copy atomically, keeping the mtime: libgit2 trusts index entries older than the index."""
    st = src.stat()
    write_atomic(dst, src.read_bytes(), st.st_mode, fsync=False)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


def _file_changes(
    repo: pygit2.Repository, old: pygit2.Tree, new: pygit2.Tree
) -> tuple[FileChange, ...]:
    diff = old.diff_to_tree(new, flags=DiffOption.INCLUDE_TYPECHANGE)
    diff.find_similar(flags=DiffFind.FIND_RENAMES)
    changes = []
    for number, listed in enumerate(diff.deltas):
        patch = diff[number]  # None when there is no text to compare
        delta = listed if patch is None else patch.delta  # the patch's knows binary for sure
        status = _STATUS[delta.status]
        _context, added, deleted = (0, 0, 0) if patch is None else patch.line_stats
        lines = tuple(
            line.raw_content.decode("utf-8", "replace").rstrip("\r\n")
            for hunk in ([] if patch is None else patch.hunks)
            for line in hunk.lines
            if line.origin == "+"
        )
        mode = 0 if status is FileStatus.DELETED else int(delta.new_file.mode)
        size, link = 0, None
        if mode not in (0, Mode.COMMIT):
            blob = repo[delta.new_file.id].peel(pygit2.Blob)
            size = blob.size
            if mode == SYMLINK_MODE:
                link = blob.data.decode("utf-8", "replace")
        changes.append(
            FileChange(
                path=delta.new_file.path,
                status=status,
                old_path=delta.old_file.path if status is FileStatus.RENAMED else None,
                added=added,
                deleted=deleted,
                added_lines=lines,
                is_binary=bool(delta.is_binary),
                mode=mode,
                size=size,
                symlink_target=link,
            )
        )
    return tuple(changes)
