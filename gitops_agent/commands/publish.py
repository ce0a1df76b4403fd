"""`gitops-agent publish`: push a result's branches and open (or update) its pull request.

The work is `gitops_agent.publication`'s, which `run --push` uses too.
"""

from __future__ import annotations

from gitops_agent.publication import Publication, publish

__all__ = ["Publication", "publish"]
