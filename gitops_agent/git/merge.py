"""Merges in memory: no checkout, no MERGE_HEAD, no working tree touched (pygit2 merge_commits).

`integrate` uses them to put task branches together; `verify` to join memory branches that two
runners wrote at once (their logs are append-only, so a union of both sides is right there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pygit2.enums import MergeFavor

from .repo import NO_TRAILERS, Repo


@dataclass(frozen=True, slots=True)
class MergeResult:
    """A merge's tree, or the paths that clashed (then there is no tree)."""

    tree: str | None
    conflicts: tuple[str, ...]


def merge(repo: Repo, ours: str, theirs: str, *, union: bool = False) -> MergeResult:
    """Merge commit `theirs` into commit `ours` in memory.

    `union` keeps both sides' lines where they clash (right for append-only logs only).
    """
    raw = repo.raw
    favor = MergeFavor.UNION if union else MergeFavor.NORMAL
    index = raw.merge_commits(
        repo.lookup_commit(ours).id, repo.lookup_commit(theirs).id, favor=favor
    )
    if index.conflicts is not None:
        paths: set[str] = set()
        for ancestor, mine, other in index.conflicts:
            paths.update(e.path for e in (ancestor, mine, other) if e is not None)
        return MergeResult(None, tuple(sorted(paths)))
    return MergeResult(str(index.write_tree(raw)), ())


def commit_merge(
    repo: Repo,
    tree: str,
    parents: Sequence[str],
    message: str,
    trailers: Mapping[str, str] = NO_TRAILERS,
) -> str:
    """A commit of `tree` with `parents`, on no branch yet (a branch is made or moved after)."""
    tree_id = repo.lookup_tree(tree).id
    parent_ids = [repo.lookup_commit(p).id for p in parents]
    return str(repo.write_commit(tree_id, parent_ids, message, trailers))
