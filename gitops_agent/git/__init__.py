"""Everything the tool does with git, and the only place that imports pygit2."""

from __future__ import annotations

from .checkout import Checkout
from .metadata import MetadataSnapshot
from .repo import CommitInfo, RefMovedError, Repo, find_repo_root, init_repository

__all__ = [
    "Checkout",
    "CommitInfo",
    "MetadataSnapshot",
    "RefMovedError",
    "Repo",
    "find_repo_root",
    "init_repository",
]
