"""The base's history as checkpoints and rollbacks need it: its first-parent line, the
`checkpoint/*` tags on it, and reverts computed in memory (no checkout, no index touched).

A checkpoint tag is created, never moved: `create_checkpoint_tag` makes the ref only where there
is none, so two runs tagging at once cannot overwrite each other's tag.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import pygit2

from .merge import MergeResult
from .repo import CommitInfo, Repo

CHECKPOINT_REFS = "refs/tags/checkpoint/"


@dataclass(frozen=True, slots=True)
class HistoryCommit:
    """A commit of the base's history with its committer time (seconds since the epoch)."""

    info: CommitInfo
    time: int

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def title(self) -> str:
        return self.info.message.strip().split("\n", 1)[0]

    @property
    def is_merge(self) -> bool:
        return len(self.info.parents) > 1


def first_parent_history(
    repo: Repo, tip: str, *, stop: Collection[str] = (), limit: int
) -> list[HistoryCommit]:
    """The commits of `tip`'s first-parent line, newest first, up to (not including) the first
    one in `stop`, and at most `limit` of them."""
    found: list[HistoryCommit] = []
    commit = repo.lookup_commit(tip)
    while len(found) < limit and str(commit.id) not in stop:
        found.append(_history_commit(commit))
        if not commit.parent_ids:
            break
        commit = commit.parents[0]
    return found


def brought_by(repo: Repo, merge: HistoryCommit) -> list[CommitInfo]:
    """The commits a merge took in from its other parents (none from its first), newest first."""
    parents = merge.info.parents
    if len(parents) < 2:
        return []
    found: dict[str, CommitInfo] = {}
    for other in parents[1:]:
        for commit in repo.commits_between(other, parents[0]):
            found.setdefault(commit.id, commit)
    return list(found.values())


def checkpoint_tags(repo: Repo) -> dict[str, str]:
    """Every `checkpoint/<name>` tag: name (without `checkpoint/`) -> the commit it tags."""
    raw = repo.raw
    found: dict[str, str] = {}
    for refname in raw.references:
        if refname.startswith(CHECKPOINT_REFS):
            try:
                commit = raw.references[refname].peel(pygit2.Commit)
            except (KeyError, ValueError):  # a tag of something that is no commit
                continue
            found[refname.removeprefix(CHECKPOINT_REFS)] = str(commit.id)
    return dict(sorted(found.items()))


def create_checkpoint_tag(repo: Repo, name: str, commit: str) -> bool:
    """Make the lightweight tag `checkpoint/<name>` at `commit`; False (nothing changed) when a
    tag of that name exists already, wherever it points."""
    refname = f"{CHECKPOINT_REFS}{name}"
    if not pygit2.reference_is_valid_name(refname):
        raise ValueError(f"not a valid checkpoint name: {name!r}")
    oid = repo.lookup_commit(commit).id
    try:
        repo.raw.create_reference(refname, oid, False, "gitops-agent: checkpoint")
    except pygit2.AlreadyExistsError:
        return False
    return True


def revert(repo: Repo, commit: str, onto: str, *, mainline: int = 0) -> MergeResult:
    """The tree of `onto` with `commit`'s change undone (a merge's against its parent number
    `mainline`, 1-based), or the paths that conflicted; computed in memory."""
    raw = repo.raw
    index = raw.revert_commit(repo.lookup_commit(commit), repo.lookup_commit(onto), mainline)
    if index.conflicts is not None:
        paths: set[str] = set()
        for ancestor, ours, theirs in index.conflicts:
            paths.update(e.path for e in (ancestor, ours, theirs) if e is not None)
        return MergeResult(None, tuple(sorted(paths)))
    return MergeResult(str(index.write_tree(raw)), ())


def _history_commit(commit: pygit2.Commit) -> HistoryCommit:
    info = CommitInfo(
        id=str(commit.id),
        message=commit.message,
        trailers=dict(commit.message_trailers),
        parents=tuple(str(p) for p in commit.parent_ids),
    )
    return HistoryCommit(info, int(commit.commit_time))
