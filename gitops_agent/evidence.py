"""Every attempt kept for a person to judge in the morning: its diff, the agent's own output and
the gate's result, as a commit under `refs/gitops-agent/attempts/<session>/<task>/<n>` (never a
branch, so nothing a person would merge). `gitops-agent show` prints one.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from gitops_agent import __version__
from gitops_agent.errors import UserError
from gitops_agent.git import Repo
from gitops_agent.git.repo import TOOL_REF_PREFIX
from gitops_agent.render import render

ATTEMPTS_PREFIX = f"{TOOL_REF_PREFIX}attempts/"
_SAFE_COMPONENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


@dataclass(frozen=True, slots=True)
class Evidence:
    """What one attempt left, as the session saw it (every text already masked)."""

    session: str
    task_id: str
    number: int
    verdict: str  # passed | failed | stopped | limited
    failure: str
    details: tuple[str, ...]
    already_failing: tuple[str, ...]
    gate_output: str
    output_label: str  # "Gate output", or the agent's or command's when it failed itself
    transcript: str
    transcript_label: str  # "Agent output" or "Command output"
    tip: str  # the commit the attempt started from
    tree: str | None  # the tree it left; None when it could not be read (refused entries)


@dataclass(frozen=True, slots=True)
class KeptAttempt:
    ref: str
    commit: str
    message: str
    patch: str


def attempt_ref(session: str, task_id: str, number: int) -> str:
    return f"{ATTEMPTS_PREFIX}{session}/{_component(task_id)}/{number}"


def keep(repo: Repo, evidence: Evidence) -> str:
    """Store the attempt; returns the ref that holds it."""
    ref = attempt_ref(evidence.session, evidence.task_id, evidence.number)
    message = render("attempt.txt.j2", e=evidence)
    tree = evidence.tree or repo.tree_of(evidence.tip)
    repo.keep_commit(
        ref,
        tree,
        evidence.tip,
        message,
        {
            "Attempt-Of": evidence.task_id,
            "Session": evidence.session,
            "Gitops-Agent-Version": __version__,
        },
    )
    return ref


def prune(repo: Repo, keep_days: int, now: float | None = None) -> list[str]:
    """Delete kept attempts older than `keep_days` (by their commit time); returns their refs."""
    cutoff = (time.time() if now is None else now) - keep_days * 86400
    gone = []
    for ref, (commit, when) in sorted(repo.tool_refs(ATTEMPTS_PREFIX).items()):
        if when < cutoff and repo.delete_tool_ref(ref, commit):
            gone.append(ref)
    return gone


def find(repo: Repo, spec: str) -> list[KeptAttempt]:
    """The attempts `spec` names: `<session>/<task>/<n>` one, `<session>/<task>` every one of
    that task, in order. Raises UserError when there is none."""
    parts = spec.strip("/").split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UserError(f"`{spec}`: name an attempt as <session>/<task> or <session>/<task>/<n>")
    prefix = f"{ATTEMPTS_PREFIX}{parts[0]}/{_component(parts[1])}/"
    found = repo.tool_refs(prefix)
    if len(parts) == 3:
        found = {ref: value for ref, value in found.items() if ref == prefix + parts[2]}
    if not found:
        raise UserError(
            f"`{spec}`: no attempt is kept under that name (`gitops-agent report` lists the "
            "sessions; attempts older than `keep_attempts_days` are removed)"
        )
    kept = []
    for ref in sorted(found, key=lambda r: int(r.rsplit("/", 1)[1])):
        commit = found[ref][0]
        parent = repo.commit_parent(commit)
        patch = repo.patch(parent, commit) if parent is not None else ""
        kept.append(KeptAttempt(ref, commit, repo.commit_message(commit), patch))
    return kept


def _component(task_id: str) -> str:
    """A task id as one ref component: as it is when git allows it, else hex-encoded."""
    safe = _SAFE_COMPONENT.fullmatch(task_id) and ".." not in task_id
    if safe and not task_id.endswith((".", ".lock")):
        return task_id
    return "_x" + task_id.encode().hex()
