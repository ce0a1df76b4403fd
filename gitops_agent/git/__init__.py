"""Everything the tool does with git, and the only place that imports pygit2."""

from __future__ import annotations

from gitops_agent.errors import RefMovedError

from .repo import CommitInfo, Repo, find_repo_root, init_repository
from .workspace import Workspace

__all__ = [
    "CommitInfo",
    "RefMovedError",
    "Repo",
    "Workspace",
    "find_repo_root",
    "init_repository",
]
