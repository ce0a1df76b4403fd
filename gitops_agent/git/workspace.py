"""A directory the tool keeps equal to one tree: where an agent works, or where a gate runs.

It lives outside the user's repository. Everything the tool relies on (which tree it holds,
each file's blob id and its stat signature at the moment the tool wrote or hashed it) lives in
this process, out of reach of what runs in the directory. The directory's `.git` is a fresh,
throw-away repository made for the command that runs there (so an agent can use git); the tool
never reads it, and replaces it before every use.

A file counts as unchanged only when its full stat signature (inode, size, mode, mtime, ctime)
is what the tool recorded and it was not "racy": written in the same clock tick as the record
was taken (git's rule: such a file is compared by content). Any write, chmod, rename or link
changes ctime, which no process can set, so nothing can look unchanged without being so.
Everything else is hashed by the tool from the file itself, read once, without following links.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pygit2
from pygit2.enums import DeltaStatus, DiffFind, DiffOption
from pygit2.enums import FileMode as Mode

from gitops_agent.change import SYMLINK_MODE, Change, FileChange, FileStatus, Refusal
from gitops_agent.files import remove_tree as remove_path

from .repo import DEFAULT_IDENTITY, Repo, StoredBlob

_GITLINK = int(Mode.COMMIT)
_EXECUTABLE = int(Mode.BLOB_EXECUTABLE)
_STATUS = {
    DeltaStatus.ADDED: FileStatus.ADDED,
    DeltaStatus.MODIFIED: FileStatus.MODIFIED,
    DeltaStatus.DELETED: FileStatus.DELETED,
    DeltaStatus.RENAMED: FileStatus.RENAMED,
    DeltaStatus.TYPECHANGE: FileStatus.TYPECHANGE,
}
_WORK_BRANCH = "work"
_CONFIG = (
    "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n"
    f"[user]\n\tname = {DEFAULT_IDENTITY[0]}\n\temail = {DEFAULT_IDENTITY[1]}\n"
    "[gc]\n\tauto = 0\n"
)

Signature = tuple[int, int, int, int, int]  # inode, mode, size, mtime, ctime (ns)


@dataclass(frozen=True, slots=True)
class _Captured:
    files: dict[str, tuple[pygit2.Oid, int]]  # what the directory holds, by path
    extras: list[str]  # left out (ignored, refused): deleted by the next reset
    dirs: set[str]  # every directory it holds


@dataclass(frozen=True, slots=True)
class _Known:
    """A file (or symlink) as the tool last saw it: its blob, git mode and stat signature."""

    oid: pygit2.Oid
    mode: int
    sig: Signature


def _signature(st: os.stat_result) -> Signature:
    return (st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _git_mode(st: os.stat_result) -> int:
    if stat.S_ISLNK(st.st_mode):
        return SYMLINK_MODE
    return _EXECUTABLE if st.st_mode & 0o100 else int(Mode.BLOB)


_CONTROL = re.compile("[\x00-\x1f\x7f]")
_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # os.fsdecode's stand-ins for undecodable bytes


def _refusal(name: str) -> str | None:
    """Why a path component may not be committed; None when it may."""
    if _CONTROL.search(name):
        return "its name holds a control character"
    if _NOT_UTF8.search(name):
        return "its name is not valid UTF-8"
    if name[:1] in ".gG" and name.casefold().rstrip(". ") in (".git", "git~1"):
        return "it is named like git's own directory (.git), which git refuses to check out"
    return None


class Workspace:
    """A work tree of the user's repository, outside it, reset to any commit's tree on demand."""

    def __init__(self, repo: Repo, path: Path, *, ignored: Sequence[str] = ()) -> None:
        """`ignored`: gitignore patterns of files never part of a change here, besides the
        tree's own .gitignore files (what an agent's CLI leaves behind, e.g. aider's cache)."""
        self._user = repo
        self.path = path
        self._stamp_file = path.parent / f".{path.name}.stamp"
        self._tree: pygit2.Tree | None = None
        self._commit = ""  # the commit HEAD names (the tree's parent, when they differ)
        self._flat: dict[str, tuple[pygit2.Oid, int]] = {}  # the tree's files: path -> (id, mode)
        self._dirs: set[str] = set()  # the tree's directories (and submodules)
        self._known: dict[str, _Known] = {}
        self._stamp = 0
        # Set by capture(), when it saw everything the directory holds and nothing has run there
        # since: the files as they are, and what reset() must delete. reset() can then skip
        # its walk.
        self._captured: _Captured | None = None
        # For ignore rules only: a private repository whose work tree is ours. Nothing of the
        # directory's own .git is read (its config or info/exclude would be the agent's).
        path.mkdir(parents=True, exist_ok=True)
        private = path.parent / f".{path.name}.git"
        if not private.exists():
            pygit2.init_repository(str(private), bare=True)
        if ignored:
            exclude = private / "info" / "exclude"
            exclude.parent.mkdir(exist_ok=True)
            exclude.write_text("".join(f"{pattern}\n" for pattern in ignored))
        self._ignores = pygit2.Repository(str(private))
        self._ignores.workdir = str(path)

    # -- making the directory equal to a tree -----------------------------------------------

    def reset(self, commit: str, *, tree: str | None = None) -> None:
        """Make the directory exactly `commit`'s tree, or `tree` (whatever ran in it), with a
        fresh `.git` whose HEAD is `commit`.

        Only what differs is rewritten; a changed file is replaced, never written through.
        """
        target = self._user.lookup_commit(commit)
        tree_obj = target.tree if tree is None else self._user.raw[tree].peel(pygit2.Tree)
        flat = self._flat_of(tree_obj)
        self.path.mkdir(parents=True, exist_ok=True)
        same_paths = flat.keys() == self._flat.keys()
        dirs = self._dirs if same_paths and self._tree is not None else _parent_dirs(flat)
        self._known = {k: v for k, v in self._known.items() if k in flat}
        captured, self._captured = self._captured, None
        if captured is not None:
            self._apply(captured, flat, dirs)
        else:
            self._sync(flat, dirs)
        self._tree, self._flat, self._dirs, self._commit = tree_obj, flat, dirs, str(target.id)
        self._fresh_git_dir(target)
        self._take_stamp()

    def untouched(self) -> None:
        """Say that nothing was written in the directory since reset() (a command ran there
        only through a throw-away overlay): the next reset needs no walk."""
        assert self._tree is not None, "reset() first"
        self._captured = _Captured(dict(self._flat), [], set(self._dirs))

    def _apply(
        self, captured: _Captured, flat: dict[str, tuple[pygit2.Oid, int]], dirs: set[str]
    ) -> None:
        """Reset from what capture() saw, with no walk: delete what differs, write the rest."""
        for rel in captured.extras:
            remove_path(self.path / rel)
        for rel, held in captured.files.items():
            if flat.get(rel) != held:
                remove_path(self.path / rel)
        for rel in sorted(captured.dirs - dirs, reverse=True):
            remove_path(self.path / rel)
        for rel, wanted in flat.items():
            oid, mode = wanted
            if mode == _GITLINK:
                (self.path / rel).mkdir(parents=True, exist_ok=True)
            elif captured.files.get(rel) != wanted:
                _make_parents(self.path, rel)
                self._write(rel, oid, mode)

    def _sync(self, flat: dict[str, tuple[pygit2.Oid, int]], dirs: set[str]) -> None:
        """Reset by walking the directory: whatever ran in it, make it exactly `flat`."""
        seen: set[str] = set()
        gitlinks = frozenset(p for p, (_, mode) in flat.items() if mode == _GITLINK)
        for rel, where, st in self._walk(self.path, "", dirs, gitlinks):
            wanted = flat.get(rel)
            if rel in dirs and wanted is None:
                if stat.S_ISDIR(st.st_mode):
                    if stat.S_IMODE(st.st_mode) != 0o755:
                        os.chmod(where, 0o755)
                    continue
                remove_path(Path(where))
                os.mkdir(where)
                continue
            if wanted is None:
                remove_path(Path(where))
                continue
            seen.add(rel)
            oid, mode = wanted
            if mode == _GITLINK:
                if not stat.S_ISDIR(st.st_mode):
                    remove_path(Path(where))
                    os.mkdir(where)
                continue
            if self._still(rel, st, oid, mode, where):
                continue
            remove_path(Path(where))
            self._write(rel, oid, mode)
        for rel, (oid, mode) in flat.items():
            if rel not in seen:
                _make_parents(self.path, rel)
                if mode == _GITLINK:
                    (self.path / rel).mkdir(exist_ok=True)
                else:
                    self._write(rel, oid, mode)

    def _still(self, rel: str, st: os.stat_result, oid: pygit2.Oid, mode: int, path: str) -> bool:
        """Whether the file at `rel` is the blob `oid` with `mode`, reading it only if need be."""
        known = self._known.get(rel)
        if _git_mode(st) != mode or not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            return False
        if stat.S_ISREG(st.st_mode) and st.st_nlink != 1:
            return False  # shared with another file: replace it, never write through it
        if (
            known is not None
            and (known.oid, known.mode) == (oid, mode)
            and known.sig == _signature(st)
            and known.sig[4] < self._stamp
        ):
            return True
        if st.st_size != self._user.raw[oid].peel(pygit2.Blob).size:
            return False
        data = _read(path, st)
        if data is None or pygit2.hash(data) != oid:
            return False
        self._known[rel] = _Known(oid, mode, _signature(st))
        return True

    def _write(self, rel: str, oid: pygit2.Oid, mode: int) -> None:
        path = self.path / rel
        data = self._user.raw[oid].peel(pygit2.Blob).data
        if mode == SYMLINK_MODE:
            os.symlink(os.fsdecode(data), path)
        else:
            perms = 0o755 if mode == _EXECUTABLE else 0o644
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, perms)
            try:
                os.write(fd, data) if len(data) < 1 << 30 else _write_all(fd, data)
                os.fchmod(fd, perms)  # exactly, whatever the umask
            finally:
                os.close(fd)
        self._known[rel] = _Known(oid, mode, _signature(os.lstat(path)))

    def _fresh_git_dir(self, commit: pygit2.Commit) -> None:
        """A new repository in `.git` for whoever works here: HEAD on `work` at `commit`."""
        git_dir = self.path / ".git"
        remove_path(git_dir)
        for sub in ("refs/heads", "refs/tags", "objects/info", "objects/pack"):
            (git_dir / sub).mkdir(parents=True)
        (git_dir / "HEAD").write_text(f"ref: refs/heads/{_WORK_BRANCH}\n")
        (git_dir / "refs" / "heads" / _WORK_BRANCH).write_text(f"{commit.id}\n")
        (git_dir / "config").write_text(_CONFIG)
        objects = self._user.common_dir / "objects"
        (git_dir / "objects" / "info" / "alternates").write_text(f"{objects}\n")
        # An index of the tree, so `git status` and `git diff` show the work, not every file.
        raw = pygit2.Repository(str(self.path))
        raw.index.read_tree(commit.tree)
        raw.index.write()

    def _take_stamp(self) -> None:
        """Note the file system's present time: files changed at or after it count as racy."""
        self._stamp_file.write_bytes(b"")
        self._stamp = self._stamp_file.stat().st_mtime_ns

    # -- reading what the directory holds ---------------------------------------------------

    def capture(self, *, max_bytes: int) -> tuple[dict[str, StoredBlob | None], list[Refusal]]:
        """What the directory holds now against its tree: edits by path, and refused entries.

        Like `git add -A` on the files alone: ignored new files are left out; nothing of `.git`
        is read. Files are hashed into the user's object database. A file over `max_bytes` is
        refused unread. Call it once nothing runs in the directory any more; until the next
        reset() nothing may run there (reset then relies on what capture saw).
        """
        assert self._tree is not None, "reset() first"
        flat, dirs = self._flat, self._dirs
        gitlinks = frozenset(p for p, (_, mode) in flat.items() if mode == _GITLINK)
        refusals: list[Refusal] = []
        edits: dict[str, StoredBlob | None] = {}
        seen: set[str] = set()
        held: dict[str, tuple[pygit2.Oid, int]] = {}
        extras: list[str] = []
        held_dirs: set[str] = set()
        exact = True  # everything seen, in a state reset() can undo without a walk
        for rel, where, st in self._walk(
            self.path, "", dirs, gitlinks, refusals, capture=True, skipped=extras
        ):
            if stat.S_ISDIR(st.st_mode):
                held_dirs.add(rel)
                if st.st_mode & stat.S_IRWXU != stat.S_IRWXU:
                    exact = False  # a directory the next reset must open up and look into
                continue  # _walk descends into directories it keeps
            tracked = flat.get(rel)
            if tracked is not None and tracked[1] == _GITLINK:
                if not stat.S_ISDIR(st.st_mode):
                    refusals.append(Refusal(rel, "it replaces a submodule"))
                    extras.append(rel)
                continue
            if tracked is None and self._ignores.path_is_ignored(rel):
                extras.append(rel)
                continue
            seen.add(rel)
            extras.append(rel)  # until it is known to be a file the tree can hold
            if stat.S_ISREG(st.st_mode) and st.st_nlink != 1:
                refusals.append(
                    Refusal(rel, f"it is a hard link ({st.st_nlink} names share its content)")
                )
                continue
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                refusals.append(Refusal(rel, f"it is a {_kind(st)}, not a file or a symlink"))
                continue
            mode = _git_mode(st)
            known = self._known.get(rel)
            unchanged = (
                known is not None and known.sig == _signature(st) and known.sig[4] < self._stamp
            )
            # The limit is on what a change brings: a file the base already holds at that size,
            # left as it was, is no change (else a repository with one large file commits nothing).
            if st.st_size > max_bytes and not unchanged:
                refusals.append(
                    Refusal(rel, f"it is {st.st_size} bytes, over the limit of {max_bytes}")
                )
                continue
            if unchanged:
                assert known is not None
                oid = known.oid
            else:
                data = _read(where, st)
                if data is None:
                    refusals.append(Refusal(rel, "it changed while it was read"))
                    continue
                oid = self._user.create_blob(data)
                self._known[rel] = _Known(oid, mode, _signature(st))
            extras.pop()
            held[rel] = (oid, mode)
            if tracked != (oid, mode):
                edits[rel] = StoredBlob(oid, mode)
        for rel, (_, mode) in flat.items():
            if rel not in seen and mode != _GITLINK:
                edits[rel] = None
        extras += [r.path for r in refusals]
        self._captured = _Captured(held, extras, held_dirs) if exact else None
        self._take_stamp()
        return edits, refusals

    def change(self, edits: dict[str, StoredBlob | None]) -> Change:
        """The tree with `edits` applied to the directory's tree, and what differs, per file."""
        assert self._tree is not None, "reset() first"
        raw = self._user.raw
        deleted = {p: None for p, e in edits.items() if e is None}
        written = {p: e for p, e in edits.items() if e is not None}
        # Deletions first, so that a file may become a directory and the reverse.
        emptied = raw[self._user.edit_tree(self._tree, deleted)].peel(pygit2.Tree)
        tree = raw[self._user.edit_tree(emptied, written)].peel(pygit2.Tree)
        files = file_changes(raw, self._tree, tree)
        return Change(base=self._commit, tree=str(tree.id), files=files)

    def remove(self) -> None:
        """Delete the directory and the tool's files beside it."""
        remove_path(self.path)
        remove_path(self._stamp_file)
        remove_path(Path(self._ignores.path))

    # -- internals -------------------------------------------------------------------------

    def _flat_of(self, tree: pygit2.Tree) -> dict[str, tuple[pygit2.Oid, int]]:
        """Every file of `tree`, from the last one's list and a diff when there is one."""
        if self._tree is None:
            return dict(_list_tree(tree, ""))
        if self._tree.id == tree.id:
            return self._flat
        flat = dict(self._flat)
        diff = self._tree.diff_to_tree(tree, flags=DiffOption.INCLUDE_TYPECHANGE)
        for delta in diff.deltas:
            if delta.status in (DeltaStatus.DELETED, DeltaStatus.TYPECHANGE):
                flat.pop(delta.old_file.path, None)
            if delta.status != DeltaStatus.DELETED:
                flat[delta.new_file.path] = (delta.new_file.id, int(delta.new_file.mode))
        return flat

    def _walk(
        self,
        top: Path | str,
        prefix: str,
        dirs: set[str],
        gitlinks: frozenset[str],
        refusals: list[Refusal] | None = None,
        *,
        capture: bool = False,
        skipped: list[str] | None = None,
    ) -> Iterator[tuple[str, str, os.stat_result]]:
        """(relative path, path, lstat) of every entry under `top`, but the top `.git`.

        Yields a directory before its entries, and descends only into directories that stay
        (reset: the tree's; capture: all but ignored new ones, and none with a refused name).
        Never into a submodule's directory: capture refuses anything found there.
        """
        try:
            entries = list(os.scandir(top))
        except PermissionError:
            os.chmod(top, 0o755)
            entries = list(os.scandir(top))
        for entry in entries:
            if not prefix and entry.name == ".git":
                continue
            rel = prefix + entry.name
            st = entry.stat(follow_symlinks=False)
            if capture:
                assert refusals is not None
                problem = _refusal(entry.name)
                if problem is not None:
                    refusals.append(Refusal(rel, problem))
                    continue
            yield rel, entry.path, st
            if not stat.S_ISDIR(st.st_mode):
                continue
            if rel in gitlinks:
                if capture and os.listdir(entry.path):
                    assert refusals is not None
                    refusals.append(Refusal(rel, "it puts files in place of a submodule"))
                continue
            if capture:
                if rel in dirs or not self._ignores.path_is_ignored(rel + "/"):
                    yield from self._walk(
                        entry.path,
                        rel + "/",
                        dirs,
                        gitlinks,
                        refusals,
                        capture=True,
                        skipped=skipped,
                    )
                elif skipped is not None:
                    skipped.append(rel)  # an ignored directory: the next reset deletes it
            elif rel in dirs:
                yield from self._walk(entry.path, rel + "/", dirs, gitlinks)


def _kind(st: os.stat_result) -> str:
    if stat.S_ISFIFO(st.st_mode):
        return "named pipe"
    if stat.S_ISSOCK(st.st_mode):
        return "socket"
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        return "device"
    return "special file"


def _read(path: Path | str, st: os.stat_result) -> bytes | None:
    """A file's bytes (a symlink's target), never following a link; None if it changed."""
    if stat.S_ISLNK(st.st_mode):
        return os.fsencode(os.readlink(path))
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if _signature(os.fstat(fd)) != _signature(st):
            return None
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _list_tree(tree: pygit2.Tree, prefix: str) -> Iterator[tuple[str, tuple[pygit2.Oid, int]]]:
    for entry in tree:
        path = prefix + str(entry.name)
        if entry.filemode == Mode.TREE:
            yield from _list_tree(entry.peel(pygit2.Tree), path + "/")
        else:
            yield path, (entry.id, int(entry.filemode))


def _parent_dirs(flat: dict[str, tuple[pygit2.Oid, int]]) -> set[str]:
    dirs: set[str] = set()
    for path, (_, mode) in flat.items():
        if mode == _GITLINK:
            dirs.add(path)
        parts = path.split("/")[:-1]
        for end in range(len(parts), 0, -1):
            parent = "/".join(parts[:end])
            if parent in dirs:
                break
            dirs.add(parent)
    return dirs


def _make_parents(root: Path, rel: str) -> None:
    parent = os.path.dirname(rel)
    if parent:
        (root / parent).mkdir(parents=True, exist_ok=True)


def file_changes(
    repo: pygit2.Repository, old: pygit2.Tree, new: pygit2.Tree
) -> tuple[FileChange, ...]:
    """What differs from `old` to `new`, per file (renames found), as a Change lists it."""
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
