"""The user's repository as the rest of the tool sees it: commits, trees and our own branches."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import EllipsisType, MappingProxyType
from typing import NamedTuple, TypeAlias

import pygit2
from pygit2.enums import FileMode, ReferenceType, SortMode

from gitops_agent.errors import RefMovedError, UserError
from gitops_agent.results import BRANCH_PREFIX

OWN_PREFIX = f"refs/heads/{BRANCH_PREFIX}"  # our branches: the only ones we write
TOOL_REF_PREFIX = "refs/gitops-agent/"  # our other refs (attempts, claims, incoming, fetched)
DEFAULT_IDENTITY = ("gitops-agent", "gitops-agent@localhost")
NO_TRAILERS: Mapping[str, str] = MappingProxyType({})
_TRAILER_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")

# libgit2 maps a pack in windows of 1 GiB, and what it reads stays in this process's resident
# memory while mapped: 16 MB of a 387 MB pack for a checkout of its tip, 43 MB for an older
# commit. At most 16 MiB mapped at once bounds that; those checkouts took no longer (measured).
pygit2.settings.mwindow_size = 8 << 20
pygit2.settings.mwindow_mapped_limit = 16 << 20


class StoredBlob(NamedTuple):
    """A blob already in the user's object database, with the mode to give its tree entry."""

    id: pygit2.Oid
    mode: int


# New content by path: bytes to write, a stored blob, None to delete.
Edits: TypeAlias = Mapping[str, bytes | StoredBlob | None]
# The same, nested by path component.
_Nested: TypeAlias = "dict[str, bytes | StoredBlob | _Nested | None]"


@dataclass(frozen=True, slots=True)
class CommitInfo:
    """One commit of a branch's history, with the trailers our commits carry."""

    id: str
    message: str
    trailers: dict[str, str]
    parents: tuple[str, ...]


def find_repo_root(start: Path) -> Path | None:
    """Work tree root of the repository containing `start`; None outside one (or in a bare one)."""
    git_dir = pygit2.discover_repository(str(start))
    if git_dir is None:
        return None
    try:
        workdir = pygit2.Repository(git_dir).workdir
    except pygit2.GitError as err:  # e.g. owned by another user
        raise UserError(f"cannot open the git repository: {err}", git_dir) from err
    return None if workdir is None else Path(workdir)


class Repo:
    """The user's repository; every write goes to objects or to refs under `autonomous/`.

    The methods in the "for this package" section speak pygit2 (commits, trees, object ids):
    `merge`, `objects`, `remote` and `workspace` build on them; nothing outside the package may.
    """

    def __init__(self, raw: pygit2.Repository, identity: tuple[str, str]) -> None:
        if raw.workdir is None:
            raise UserError("a bare repository has no work tree to run in", raw.path)
        self._repo = raw
        self._identity = identity
        self.root = Path(raw.workdir)
        self.git_dir = Path(raw.path).resolve()
        commondir = self.git_dir / "commondir"  # set in linked worktrees only
        common = commondir.read_text().strip() if commondir.is_file() else "."
        self.common_dir = (self.git_dir / common).resolve()
        # Reflog entries of refs we move name us rather than the user's configured identity.
        raw.set_ident(*identity)

    @classmethod
    def open(cls, root: Path, *, identity: tuple[str, str] = DEFAULT_IDENTITY) -> Repo:
        """Open the repository containing `root`, as `git` would find it from there."""
        if pygit2.discover_repository(str(root)) is None:
            raise UserError(
                "not a git repository (run `git init` first)",
                str(root),
                fix="run `git init` and `gitops-agent init` here, commit both files, and run "
                "doctor again (or give --repo the repository)",
            )
        try:
            raw = pygit2.Repository(str(root))
        except pygit2.GitError as err:  # e.g. owned by another user
            raise UserError(f"cannot open the git repository: {err}", str(root)) from err
        return cls(raw, identity)

    def head_branch(self) -> str | None:
        """Short name of the branch HEAD names (even before its first commit); None if detached."""
        head = self._repo.lookup_reference("HEAD")
        if head.type != ReferenceType.SYMBOLIC:
            return None
        return str(head.target).removeprefix("refs/heads/")

    def head_commit(self) -> str | None:
        """The commit HEAD points at, branch or detached; None before the first commit."""
        if self._repo.head_is_unborn:
            return None
        return str(self._repo.head.peel(pygit2.Commit).id)

    def branch_tip(self, name: str) -> str | None:
        """Commit id of `refs/heads/<name>`, or None when there is no such branch."""
        ref = self._repo.references.get(self._branch_ref(name))
        if ref is None:
            return None
        try:
            return str(ref.peel(pygit2.Commit).id)
        except KeyError:  # a symbolic ref to a missing branch
            return None

    def resolve_commit(self, rev: str) -> str:
        """Commit id for a branch name (preferred over a tag of the same name) or any revision."""
        return str(self.lookup_commit(rev).id)

    def read_blob(self, commit: str, path: str) -> bytes | None:
        """Content of a file (or a symlink's target) at `commit`; None when no file is there."""
        try:
            entry = self.lookup_commit(commit).tree[path]
        except KeyError:
            return None
        return entry.data if isinstance(entry, pygit2.Blob) else None

    def create_branch(self, name: str, target: str) -> None:
        """Create one of our branches; never overwrites, so a name already in use is an error."""
        refname = self.own_branch_ref(name)
        oid = self.lookup_commit(target).id
        try:
            self._repo.create_reference(refname, oid, False, "gitops-agent: branch created")
        except pygit2.AlreadyExistsError as err:
            raise UserError(f"branch {name} already exists", str(self.root)) from err

    def autonomous_branches(self) -> dict[str, str]:
        """Our branches (short name -> tip id), sorted by name."""
        tips: dict[str, str] = {}
        for refname in self._repo.references:
            if refname.startswith(OWN_PREFIX):
                name = refname.removeprefix("refs/heads/")
                tip = self.branch_tip(name)
                if tip is not None:
                    tips[name] = tip
        return dict(sorted(tips.items()))

    def clear_own_ref_locks(self, older_than: float = 0.0) -> list[str]:
        """Remove `*.lock` files of our refs (autonomous branches, their remote-tracking copies,
        refs/gitops-agent/): what a process killed while moving one leaves behind.

        Call it only while holding the run lock, so that no run of ours is writing. A lock file
        blocks every later write to its ref; a live writer holds one for milliseconds, so one
        that has been there `older_than` seconds belongs to a process that died (or froze).
        """
        places = [
            self.common_dir / OWN_PREFIX,
            self.common_dir / TOOL_REF_PREFIX,
            *self.common_dir.glob(f"refs/remotes/*/{BRANCH_PREFIX.rstrip('/')}"),
        ]
        now = time.time()
        cleared = []
        for lock in sorted(lock for place in places for lock in place.rglob("*.lock")):
            try:
                if now - lock.stat().st_mtime < older_than:
                    continue
                lock.unlink()
            except FileNotFoundError:  # its writer finished meanwhile
                continue
            cleared.append(lock.relative_to(self.common_dir).as_posix())
        return cleared

    def has_commit(self, commit: str) -> bool:
        """Whether this repository holds the commit `commit` (a full id) names."""
        try:
            return self._repo[commit].type == pygit2.enums.ObjectType.COMMIT
        except (KeyError, ValueError):  # absent, or not an object id
            return False

    def is_merged(self, commit: str, into: str) -> bool:
        """Whether `commit` is reachable from `into` (equal counts)."""
        oid, into_oid = self.lookup_commit(commit).id, self.lookup_commit(into).id
        return oid == into_oid or self._repo.descendant_of(into_oid, oid)

    def commits_between(self, tip: str, base: str | Sequence[str]) -> list[CommitInfo]:
        """Commits reachable from `tip` but from no `base` commit (one or several), newest first."""
        walker = self._repo.walk(self.lookup_commit(tip).id, SortMode.TOPOLOGICAL | SortMode.TIME)
        for known in [base] if isinstance(base, str) else base:
            walker.hide(self.lookup_commit(known).id)
        return [
            CommitInfo(
                id=str(c.id),
                message=c.message,
                trailers=dict(c.message_trailers),
                parents=tuple(str(p) for p in c.parent_ids),
            )
            for c in walker
        ]

    def replace_in_tree(self, tree: str, files: Mapping[str, bytes | None]) -> str:
        """Id of a new tree: `tree` with `files` written (None deletes); nothing is checked out."""
        return str(self.edit_tree(self.lookup_tree(tree), files))

    def commit_files(
        self,
        branch: str,
        files: Mapping[str, bytes | None],
        message: str,
        *,
        expected_tip: str | EllipsisType | None = ...,
        trailers: Mapping[str, str] = NO_TRAILERS,
    ) -> str:
        """Commit `files` on top of our branch's tip without any checkout; creates it as an orphan.

        `expected_tip` (a full id, or None for "must not exist") guards against a concurrent writer.
        """
        refname = self.own_branch_ref(branch)
        ref = self._repo.references.get(refname)
        tip = None if ref is None else self.direct_target(ref)
        if expected_tip is not ... and expected_tip != (None if tip is None else str(tip)):
            raise RefMovedError(f"branch {branch} is at {tip}, expected {expected_tip}")
        base = None if tip is None else self._repo[tip].peel(pygit2.Tree)
        tree = self.edit_tree(base, files)
        return self._commit_and_move(
            refname, ref, tree, [] if tip is None else [tip], message, trailers
        )

    def commit_tree(
        self, branch: str, tree: str, parent: str, message: str, trailers: Mapping[str, str]
    ) -> str:
        """Commit `tree` on our existing branch, moving it only if its tip is still `parent`."""
        refname = self.own_branch_ref(branch)
        ref = self._repo.references.get(refname)
        if ref is None:
            raise UserError(f"branch {branch} does not exist", str(self.root))
        parent_id = self.lookup_commit(parent).id
        tip = self.direct_target(ref)
        if tip != parent_id:
            raise RefMovedError(f"branch {branch} is at {tip}, expected {parent_id}")
        tree_id = self.lookup_tree(tree).id
        return self._commit_and_move(refname, ref, tree_id, [parent_id], message, trailers)

    def tree_bytes(self, commit: str) -> int:
        """The size of every file of `commit`'s tree together: what a checkout of it takes."""
        odb = self._repo.odb
        total = 0
        pending = [self.lookup_commit(commit).tree]
        while pending:
            for entry in pending.pop():
                if entry.filemode == FileMode.TREE:
                    pending.append(entry.peel(pygit2.Tree))
                elif entry.filemode != FileMode.COMMIT:
                    total += odb.read_header(entry.id)[1]
        return total

    def read_tree_blob(self, tree: str, path: str) -> bytes | None:
        """Content of a file (or a symlink's target) in `tree`; None when no file is there."""
        try:
            entry = self._repo[tree].peel(pygit2.Tree)[path]
        except KeyError:
            return None
        return entry.data if isinstance(entry, pygit2.Blob) else None

    def tree_names(self, tree: str, directory: str) -> list[str]:
        """The names of the files directly in `directory` of `tree`, sorted; [] when none."""
        try:
            entry = self._repo[tree].peel(pygit2.Tree)[directory]
        except KeyError:
            return []
        if not isinstance(entry, pygit2.Tree):
            return []
        return sorted(e.name for e in entry if e.type == pygit2.GIT_OBJECT_BLOB and e.name)

    # -- the tool's own refs, outside refs/heads (attempts kept as evidence) -------------------

    def keep_commit(
        self, refname: str, tree: str, parent: str, message: str, trailers: Mapping[str, str]
    ) -> str:
        """Commit `tree` on `parent` and point the new ref `refname` (under refs/gitops-agent/)
        at it; refuses (RefMovedError) when the ref already exists."""
        if not refname.startswith(TOOL_REF_PREFIX) or not pygit2.reference_is_valid_name(refname):
            raise ValueError(f"not one of the tool's own refs: {refname!r}")
        parent_id = self.lookup_commit(parent).id
        tree_id = self._repo[tree].peel(pygit2.Tree).id
        oid = self.write_commit(tree_id, [parent_id], message, trailers)
        try:
            self._repo.create_reference(refname, oid, False, "gitops-agent: keep attempt")
        except (pygit2.AlreadyExistsError, ValueError) as err:
            raise RefMovedError(f"{refname} exists already; left as it is") from err
        return str(oid)

    def tool_refs(self, prefix: str) -> dict[str, tuple[str, int]]:
        """Ref name -> (commit id, commit time) of every ref under `prefix` (refs/gitops-agent/)."""
        found: dict[str, tuple[str, int]] = {}
        for name in self._repo.references:
            if name.startswith(prefix):
                commit = self._repo.references[name].peel(pygit2.Commit)
                found[name] = (str(commit.id), commit.commit_time)
        return found

    def delete_tool_ref(self, refname: str, expected: str) -> bool:
        """Delete our ref if it still points at `expected`; False when it moved or is gone."""
        if not refname.startswith(TOOL_REF_PREFIX):
            raise ValueError(f"not one of the tool's own refs: {refname!r}")
        ref = self._repo.references.get(refname)
        if ref is None or str(ref.target) != expected:
            return False
        ref.delete()
        return True

    def delete_branch(self, name: str, expected: str) -> bool:
        """Delete our branch `name` (under autonomous/) if it still points at `expected` and is
        not checked out; False when it moved, is gone or is checked out."""
        refname = self.own_branch_ref(name)
        ref = self._repo.references.get(refname)
        if ref is None or self.is_checked_out(refname) or str(ref.target) != expected:
            return False
        ref.delete()
        return True

    def commit_time(self, commit: str) -> int:
        """The committer time of `commit` (seconds since the epoch)."""
        return int(self.lookup_commit(commit).commit_time)

    def tree_of(self, commit: str) -> str:
        return str(self.lookup_commit(commit).tree_id)

    def commit_message(self, commit: str) -> str:
        return str(self.lookup_commit(commit).message)

    def commit_parent(self, commit: str) -> str | None:
        parents = self.lookup_commit(commit).parent_ids
        return str(parents[0]) if parents else None

    def patch(self, old: str, new: str) -> str:
        """The unified diff from commit `old` to commit `new`, as `git diff` prints it."""
        diff = self.lookup_commit(old).tree.diff_to_tree(self.lookup_commit(new).tree)
        return str(diff.patch or "")

    # -- for this package: pygit2 objects, for merge, objects, remote and workspace ----------

    @property
    def raw(self) -> pygit2.Repository:
        """The pygit2 repository itself, for the other modules of this package only.

        `merge`, `objects`, `remote` and `workspace` use remotes, references, the object
        database, diffs and in-memory merges in more ways than a method each would be worth.
        What carries a rule of ours (which commit a name means, which refs are ours, who
        commits) is a method below: use that instead. Outside this package, use neither.
        """
        return self._repo

    def lookup_commit(self, rev: str) -> pygit2.Commit:
        """The commit a branch name (preferred over a tag of the same name) or any revision
        names; UserError when there is none."""
        refname = f"refs/heads/{rev}"
        is_branch = pygit2.reference_is_valid_name(refname) and refname in self._repo.references
        try:
            return self._repo.revparse_single(refname if is_branch else rev).peel(pygit2.Commit)
        except (KeyError, ValueError) as err:  # unknown, invalid, ambiguous, or not a commit
            raise UserError(f"unknown commit or branch {rev!r}", str(self.root)) from err

    def lookup_tree(self, tree: str) -> pygit2.Tree:
        """The tree with id `tree` (a commit's id gives its tree); UserError when there is none."""
        try:
            return self._repo[tree].peel(pygit2.Tree)
        except (KeyError, ValueError) as err:
            raise UserError(f"unknown tree {tree!r}", str(self.root)) from err

    def create_blob(self, data: bytes) -> pygit2.Oid:
        """Store `data` in the object database as a blob (no ref points at it yet)."""
        return self._repo.create_blob(data)

    def edit_tree(self, base: pygit2.Tree | None, files: Edits) -> pygit2.Oid:
        """A new tree: `base` (None: an empty one) with `files` written, stored or deleted."""
        edits: _Nested = {}
        for path, data in files.items():
            parts = _split_path(path, str(self.root))
            node = edits
            for part in parts[:-1]:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise UserError(f"{path}: its directory is written as a file", str(self.root))
                node = child
            if parts[-1] in node:
                raise UserError(f"{path}: written as a file and a directory", str(self.root))
            node[parts[-1]] = data
        return self._edit(base, edits, "") or self._repo.TreeBuilder().write()

    def write_commit(
        self,
        tree: pygit2.Oid,
        parents: Sequence[pygit2.Oid],
        message: str,
        trailers: Mapping[str, str] = NO_TRAILERS,
    ) -> pygit2.Oid:
        """A commit of `tree` on `parents` by the tool's identity, on no ref yet."""
        sig = self._signature()
        text = full_message(message, trailers)
        return self._repo.create_commit(None, sig, sig, text, tree, list(parents))

    def own_branch_ref(self, name: str) -> str:
        """`refs/heads/<name>` for one of our branches; UserError for any other name."""
        refname = self._branch_ref(name)
        if not refname.startswith(OWN_PREFIX):
            raise UserError(
                f"refusing to write branch {name!r}: only branches under {BRANCH_PREFIX} are ours",
                str(self.root),
            )
        return refname

    def direct_target(self, ref: pygit2.Reference) -> pygit2.Oid:
        """The commit `ref` points at; UserError for a symbolic ref, which we never move."""
        if ref.type != ReferenceType.DIRECT or not isinstance(ref.target, pygit2.Oid):
            raise UserError(f"{ref.name} is a symbolic ref; refusing to move it", str(self.root))
        return ref.target

    def is_checked_out(self, refname: str) -> bool:
        """Whether HEAD of the main work tree or of a linked one names `refname`."""
        heads = [self.git_dir / "HEAD", *self.common_dir.glob("worktrees/*/HEAD")]
        return any(h.read_text().strip() == f"ref: {refname}" for h in heads if h.is_file())

    # -- internals -------------------------------------------------------------------------

    def _branch_ref(self, name: str) -> str:
        refname = f"refs/heads/{name}"
        if not pygit2.reference_is_valid_name(refname):
            raise UserError(f"invalid branch name {name!r}", str(self.root))
        return refname

    def _signature(self) -> pygit2.Signature:
        # Explicit: `default_signature` raises where no user.name is configured (CI).
        return pygit2.Signature(*self._identity)

    def _commit_and_move(
        self,
        refname: str,
        ref: pygit2.Reference | None,
        tree: pygit2.Oid,
        parents: list[pygit2.Oid],
        message: str,
        trailers: Mapping[str, str],
    ) -> str:
        if self.is_checked_out(refname):
            # Moving a checked-out branch shows the user the reverse change as staged.
            raise UserError(f"{refname} is checked out; refusing to move it", str(self.root))
        oid = self.write_commit(tree, parents, message, trailers)
        log = f"gitops-agent: {message.strip().splitlines()[0]}"  # the commit's title
        try:
            if ref is None:
                self._repo.create_reference(refname, oid, False, log)
            else:
                ref.set_target(oid, log)  # fails if the ref moved since `ref` was read
        except (pygit2.GitError, OSError) as err:  # OSError: its lock file is there
            raise RefMovedError(f"{refname} changed while committing; left as it is") from err
        return str(oid)

    def _edit(self, tree: pygit2.Tree | None, edits: _Nested, prefix: str) -> pygit2.Oid | None:
        """Apply `edits` to `tree`; None when the result is empty (git keeps no empty dirs)."""
        builder = self._repo.TreeBuilder() if tree is None else self._repo.TreeBuilder(tree)
        for name, edit in edits.items():
            current = tree[name] if tree is not None and name in tree else None
            is_dir = current is not None and current.filemode == FileMode.TREE
            if isinstance(edit, dict):
                if current is not None and not is_dir:
                    raise UserError(f"{prefix}{name} is a file, not a directory", str(self.root))
                sub = self._edit(
                    None if current is None else current.peel(pygit2.Tree), edit, f"{prefix}{name}/"
                )
                if sub is not None:
                    builder.insert(name, sub, FileMode.TREE)
                elif current is not None:
                    builder.remove(name)
            elif is_dir:
                raise UserError(f"{prefix}{name} is a directory, not a file", str(self.root))
            elif edit is None:
                if current is not None:
                    builder.remove(name)
            elif isinstance(edit, StoredBlob):
                builder.insert(name, edit.id, edit.mode)
            else:
                keep_x = current is not None and current.filemode == FileMode.BLOB_EXECUTABLE
                mode = FileMode.BLOB_EXECUTABLE if keep_x else FileMode.BLOB
                builder.insert(name, self.create_blob(edit), mode)
        return builder.write() if len(builder) else None


def full_message(message: str, trailers: Mapping[str, str]) -> str:
    """The message, a blank line, then `Key: value` lines that `git interpret-trailers` reads."""
    body = message.strip()
    if not body:
        raise ValueError("a commit message must not be empty")
    for key, value in trailers.items():
        if not _TRAILER_KEY.fullmatch(key) or "\n" in value or not value.strip():
            raise ValueError(f"invalid trailer {key!r}: {value!r}")
    lines = [f"{key}: {value.strip()}" for key, value in trailers.items()]
    return "\n\n".join([body, "\n".join(lines)] if lines else [body]) + "\n"


def _split_path(path: str, where: str) -> list[str]:
    parts = path.split("/")
    if any(p in ("", ".", "..") or p.lower() == ".git" or "\0" in p for p in parts):
        raise UserError(f"invalid path in the repository: {path!r}", where)
    return parts


def init_repository(path: Path, message: str, *, branch: str = "main") -> Repo:
    """A new repository at `path` whose first commit on `branch` holds every file already there."""
    raw = pygit2.init_repository(str(path), initial_head=branch)
    index = raw.index
    index.add_all()
    index.write()
    signature = pygit2.Signature(*DEFAULT_IDENTITY)
    raw.create_commit("HEAD", signature, signature, message, index.write_tree(), [])
    return Repo(raw, DEFAULT_IDENTITY)
