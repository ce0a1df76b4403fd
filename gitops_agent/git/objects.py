"""Commits and trees exactly as their bytes say, read by us rather than through git's checks.

`verify` judges objects that a job we do not trust wrote. git's own fsck of what a fetch brings
differs by version (2.39 does not check what comes from a bundle), and libgit2 reads a tree with
duplicate or ill-named entries without a word; so the raw bytes are parsed here and judged by
`policy.provenance`, the same on every machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pygit2

from .repo import Repo

TREE_MODE = b"40000"


@dataclass(frozen=True, slots=True)
class RawCommit:
    """A commit's headers in the order written (continuation lines joined) and its message."""

    id: str
    headers: tuple[tuple[str, bytes], ...]
    message: bytes

    def header(self, key: str) -> list[bytes]:
        return [value for name, value in self.headers if name == key]

    @property
    def parents(self) -> list[str]:
        return [value.decode("ascii", "replace") for value in self.header("parent")]

    @property
    def tree(self) -> str:
        trees = self.header("tree")
        return trees[0].decode("ascii", "replace") if trees else ""


@dataclass(frozen=True, slots=True)
class RawEntry:
    """One entry of a tree as written: its mode and name bytes, and what its id names here."""

    name: bytes
    mode: bytes
    oid: str
    kind: str | None  # "blob", "tree", "commit", "tag"; None when the object is not here


@dataclass(frozen=True, slots=True)
class RawTree:
    path: str  # the directory it was found at ("" for the root, else ending in "/")
    id: str
    entries: tuple[RawEntry, ...]
    malformed: str  # why its bytes do not parse as a tree ("" when they do)


def new_commits(
    repo: Repo, tip: str, known: Sequence[str], *, limit: int
) -> tuple[list[RawCommit], str]:
    """The commits reachable from `tip` but from none of the `known` commits, read by us; and
    why the walk stopped short ("" when it did not).

    libgit2 is asked only whether a commit is known, never to parse one that is not.
    """
    found: list[RawCommit] = []
    visited: set[str] = set()
    pending = [tip]
    while pending:
        commit = pending.pop()
        if commit in visited:
            continue
        visited.add(commit)
        if _kind(repo, commit) != "commit":
            return found, f"{commit[:12]} is {_kind(repo, commit) or 'missing'}, not a commit"
        if any(_reaches(repo, k, commit) for k in known):
            continue
        if len(found) == limit:
            return found, f"it brings more than {limit} commits"
        raw = read_commit(repo, commit)
        found.append(raw)
        for named in [raw.tree, *raw.parents]:
            # libgit2 would take an abbreviated id as a prefix to look up; git never writes one.
            if len(named) != len(tip) or named.strip("0123456789abcdef"):
                return found, f"{commit[:12]} names {named!r}, which is no full object id"
        pending.extend(reversed(raw.parents))
    return found, ""


def files_of(repo: Repo, commit: str) -> dict[str, tuple[str, int]]:
    """Every file of a (well-formed) commit's tree: path -> (blob id, mode)."""
    found: dict[str, tuple[str, int]] = {}
    pending = [("", repo.lookup_commit(commit).tree)]
    while pending:
        prefix, tree = pending.pop()
        for entry in tree:
            if entry.filemode == pygit2.enums.FileMode.TREE:
                pending.append((f"{prefix}{entry.name}/", entry.peel(pygit2.Tree)))
            else:
                found[f"{prefix}{entry.name}"] = (str(entry.id), int(entry.filemode))
    return found


def _reaches(repo: Repo, known: str, commit: str) -> bool:
    """Whether `commit` is `known` or one of its ancestors."""
    if known == commit:
        return True
    try:
        return bool(repo.raw.descendant_of(known, commit))
    except (pygit2.GitError, KeyError, ValueError):
        return False  # not a commit libgit2 can read: not one of ours


def read_commit(repo: Repo, commit: str) -> RawCommit:
    """The commit `commit` (which must be in the object database) as its bytes say."""
    _kind, data = repo.raw.odb.read(commit)
    head, _sep, message = data.partition(b"\n\n")
    headers: list[tuple[str, bytes]] = []
    for line in head.split(b"\n"):
        if line.startswith(b" ") and headers:  # a continuation (a signature's lines)
            name, value = headers[-1]
            headers[-1] = (name, value + b"\n" + line[1:])
            continue
        key, _space, rest = line.partition(b" ")
        headers.append((key.decode("utf-8", "replace"), rest))
    return RawCommit(commit, tuple(headers), message)


def new_trees(repo: Repo, tree: str, old: str | None, seen: set[str]) -> list[RawTree]:
    """Every tree reachable from `tree` that is not `old`'s tree at the same path and not in
    `seen` (which grows): what a commit brings that its parent (`old`) did not have."""
    found: list[RawTree] = []
    pending: list[tuple[str, str, str | None]] = [("", tree, old)]
    while pending:
        path, tree_id, old_id = pending.pop()
        if tree_id == old_id or tree_id in seen:
            continue
        seen.add(tree_id)
        raw = _read_tree(repo, path, tree_id)
        found.append(raw)
        before = {} if old_id is None else _subtrees(_read_tree(repo, path, old_id))
        for entry in raw.entries:
            if entry.mode == TREE_MODE and entry.kind == "tree":
                name = entry.name.decode("utf-8", "replace")
                pending.append((f"{path}{name}/", entry.oid, before.get(entry.name)))
    return found


def _subtrees(tree: RawTree) -> dict[bytes, str]:
    return {e.name: e.oid for e in tree.entries if e.mode == TREE_MODE and e.kind == "tree"}


def _read_tree(repo: Repo, path: str, tree_id: str) -> RawTree:
    odb = repo.raw.odb
    try:
        kind, data = odb.read(tree_id)
    except (KeyError, ValueError):  # ValueError: not an object id at all
        return RawTree(path, tree_id, (), "the object is missing")
    if kind.name != "TREE":
        return RawTree(path, tree_id, (), f"a {kind.name.lower()}, not a tree")
    width = len(tree_id) // 2  # 20 bytes for SHA-1, 32 for SHA-256
    entries: list[RawEntry] = []
    at = 0
    while at < len(data):
        space = data.find(b" ", at)
        end = data.find(b"\0", space + 1) if space >= 0 else -1
        if space < 0 or end < 0 or end + 1 + width > len(data):
            return RawTree(path, tree_id, tuple(entries), "its bytes do not parse as a tree")
        oid = data[end + 1 : end + 1 + width].hex()
        entries.append(RawEntry(data[space + 1 : end], data[at:space], oid, _kind(repo, oid)))
        at = end + 1 + width
    return RawTree(path, tree_id, tuple(entries), "")


def _kind(repo: Repo, oid: str) -> str | None:
    try:
        kind, _size = repo.raw.odb.read_header(oid)
    except (KeyError, ValueError):  # ValueError: not an object id at all
        return None
    return str(kind.name).lower()
