"""Results from a job we do not trust, judged again before any ref points at them.

The job that ran the agent could have been led to change anything it uploads. `verify` reads
what an artifact brings from the objects' own bytes (`git.objects`, never git's fsck, which
differs by version) and judges it against the base branch's plan and constraints: the result
branch (`results`) and the memory branch (`memory`) each by their own rules, every new commit
and tree (`raw_problems`) by the ones the tool's own objects obey (`policy.provenance`).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from gitops_agent.git.objects import RawCommit, new_commits, new_trees, read_commit
from gitops_agent.git.repo import DEFAULT_IDENTITY
from gitops_agent.policy.eligibility import Verdict
from gitops_agent.policy.provenance import (
    commit_problems,
    header_problem,
    parse_person,
    session_start,
    trailer_lines,
    tree_problems,
)
from gitops_agent.project import Base
from gitops_agent.results import BRANCH_PREFIX, INTEGRATION_PREFIX, MEMORY_BRANCH

_INTEGRATION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_TASK_BRANCH = re.compile(r"(?P<session>\d{8}-\d{6}-[0-9a-f]{4})-(?P<task>[A-Za-z0-9_.-]+)")
_MAX_COMMITS = 500  # far beyond any session or integration; a bound on the work of a walk


@dataclass
class Check:
    """What every artifact of one `verify` is judged against, and what they claim together."""

    base: Base
    verdicts: dict[str, Verdict]
    protected: tuple[str, ...]
    remote: str
    origin: dict[str, str]  # the remote's autonomous branches -> tips, as fetched
    awaiting: dict[str, tuple[str, str]]  # task -> (remote branch, commit) awaiting review there
    now: int
    claims: dict[str, tuple[str, str]] = field(default_factory=dict)  # task -> (branch, commit)
    # status commits for GitHub to confirm: (artifact's number, task, "<branch> <commit>")
    marks: list[tuple[int, str, str]] = field(default_factory=list)
    times: dict[str, int] = field(default_factory=dict)  # commit -> committer time


class BranchKind(enum.Enum):
    """The branches the tool makes, each judged by its own rules."""

    MEMORY = "memory"  # MEMORY_BRANCH
    SESSION = "session"  # autonomous/<session id>
    TASK = "task"  # autonomous/<session id>-<task id>: approval per-task or auto
    INTEGRATION = "integration"  # autonomous/integration-<id>


def branch_kind(branch: str) -> BranchKind | None:
    """Which of the tool's branches a name is (None: not a name the tool gives)."""
    if branch == MEMORY_BRANCH:
        return BranchKind.MEMORY
    if branch.startswith(INTEGRATION_PREFIX):
        ident = branch.removeprefix(INTEGRATION_PREFIX)
        return BranchKind.INTEGRATION if _INTEGRATION_ID.fullmatch(ident) else None
    if branch.startswith(BRANCH_PREFIX):
        name = branch.removeprefix(BRANCH_PREFIX)
        if session_start(name) is not None:
            return BranchKind.SESSION
        own = _TASK_BRANCH.fullmatch(name)
        if own is not None and session_start(own["session"]) is not None:
            return BranchKind.TASK
    return None


def task_branch(session: str, task_id: str) -> str:
    """The branch of a task with approval per-task or auto, as `run` names it."""
    return f"{BRANCH_PREFIX}{session}-{task_id}"


def awaiting_on_remote(checking: Check) -> dict[str, tuple[str, str]]:
    """Task -> (branch, commit) of each result on the remote's unmerged autonomous branches."""
    repo, base = checking.base.repo, checking.base.commit
    found: dict[str, tuple[str, str]] = {}
    for branch, tip in checking.origin.items():
        if branch == MEMORY_BRANCH or repo.is_merged(tip, base):
            continue
        for commit in repo.commits_between(tip, base):
            task_id = commit.trailers.get("Task-Id")
            if task_id:
                found.setdefault(task_id, (branch, commit.id))
    return found


def raw_problems(
    checking: Check, branch: str, tip: str, known: list[str], *, memory: bool
) -> tuple[list[str], bool]:
    """Every new commit and tree, read from its bytes: identities, dates, names, modes; and
    whether any is malformed, so that libgit2 must not be given it."""
    repo = checking.base.repo
    commits, stopped = new_commits(repo, tip, known, limit=_MAX_COMMITS)
    if stopped:
        return [f"{branch}: {stopped}"], True
    problems: list[str] = []
    malformed = False
    seen: set[str] = set()
    limit = checking.base.project.constraints.max_session_minutes * 60
    for commit in commits:
        short = f"{branch} {commit.id[:12]}"
        header = header_problem(commit)
        if header:
            problems.append(f"{short}: {header}")
            malformed = True
            continue
        session = _session_of(commit)
        found = commit_problems(
            commit,
            identity=DEFAULT_IDENTITY,
            parent_times=[_time(checking, p) for p in commit.parents],
            session=None if session is None else session_start(session),
            session_seconds=limit,
            now=checking.now,
        )
        problems += [f"{short}: {p}" for p in found]
        if not commit.parents and (not memory or MEMORY_BRANCH in checking.origin):
            problems.append(f"{short}: a root commit; it does not build on the history here")
        old = read_commit(repo, commit.parents[0]).tree if commit.parents else None
        for tree in new_trees(repo, commit.tree, old, seen):
            found = tree_problems(tree)
            problems += [f"{short}: {p}" for p in found]
            malformed = malformed or bool(found)
    return problems, malformed


def _session_of(commit: RawCommit) -> str | None:
    message = commit.message.decode("utf-8", "replace")
    return next((v for k, v in trailer_lines(message) if k.casefold() == "session"), None)


def _time(checking: Check, commit: str) -> int:
    if commit not in checking.times:
        committer = read_commit(checking.base.repo, commit).header("committer")
        person = parse_person(committer[0]) if committer else None
        checking.times[commit] = person.time if person is not None else 0
    return checking.times[commit]
