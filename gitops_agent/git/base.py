"""Moving the base branch: only `gitops-agent merge` does it, for a result a person approved in
advance (`approval: auto`) and that stayed green through its quarantine.

It moves as `git merge` would move it: compare-and-swap on the ref, and where the branch is
checked out, the files of that checkout updated first, safely. A change of the person's in a
file the merge changes (or an untracked file in its way) stops it before anything moves.
"""

from __future__ import annotations

import pygit2
from pygit2.enums import CheckoutStrategy

from gitops_agent.errors import RefMovedError, UserError

from .repo import Repo


class CheckoutInTheWay(UserError):
    """The base is checked out and the person's own changes are where the merge writes."""


def advance_base(repo: Repo, branch: str, new: str, *, expected: str) -> None:
    """Move `refs/heads/<branch>` from `expected` to `new`; update its checkout if it has one.

    Raises RefMovedError when the branch moved since it was read, CheckoutInTheWay when the
    checked-out files hold changes the merge would overwrite (nothing is moved then).
    """
    raw = repo.raw
    refname = f"refs/heads/{branch}"
    ref = raw.references.get(refname)
    if ref is None or str(repo.direct_target(ref)) != expected:
        raise RefMovedError(f"{branch} moved since it was read; left as it is")
    target = repo.lookup_commit(new)
    checked_out = repo.is_checked_out(refname) and not raw.is_bare
    if checked_out:
        if raw.head_is_detached or raw.head.name != refname:
            raise UserError(
                f"{branch} is checked out in another work tree; merge it there, or check out "
                "another branch in that work tree",
                str(repo.root),
            )
        try:
            raw.checkout_tree(target.tree, strategy=CheckoutStrategy.SAFE)  # type: ignore[no-untyped-call]
        except pygit2.GitError as err:
            raise CheckoutInTheWay(
                f"{branch} is checked out and your changes are in the way of the merge ({err}); "
                "commit or stash them, and the next `gitops-agent merge` merges it",
                str(repo.root),
            ) from None
    try:
        ref.set_target(target.id, f"gitops-agent: merge {new[:12]} into {branch}")
    except (pygit2.GitError, OSError) as err:
        if checked_out:  # put the files back as the branch still has them
            old = repo.lookup_commit(expected)
            raw.checkout_tree(old.tree, strategy=CheckoutStrategy.SAFE)  # type: ignore[no-untyped-call]
        raise RefMovedError(f"{branch} changed while merging; left as it is") from err


def changed_paths(repo: Repo, old: str, new: str) -> list[str]:
    """The paths whose content differs between two commits' trees (renames as two paths)."""
    diff = repo.lookup_commit(old).tree.diff_to_tree(repo.lookup_commit(new).tree)
    found: set[str] = set()
    for delta in diff.deltas:
        found.update(p for p in (delta.old_file.path, delta.new_file.path) if p)
    return sorted(found)


def merge_base(repo: Repo, one: str, other: str) -> str | None:
    found = repo.raw.merge_base(repo.lookup_commit(one).id, repo.lookup_commit(other).id)
    return None if found is None else str(found)
