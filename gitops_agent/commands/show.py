"""`gitops-agent show <session>/<task>[/<n>]`: what an attempt did, as a person reviews it."""

from __future__ import annotations

from pathlib import Path

from gitops_agent import evidence
from gitops_agent.git import Repo
from gitops_agent.project import find_root


def show(repo: Path | None, spec: str) -> str:
    """The kept attempts `spec` names, each as its account and then its diff."""
    found = evidence.find(Repo.open(find_root(repo)), spec)
    parts = []
    for kept in found:
        diff = kept.patch or "(the attempt changed no file)\n"
        parts.append(f"{kept.ref}\n\n{kept.message.rstrip()}\n\n{diff}")
    return "\n".join(parts)
