"""`gitops-agent verify ARTIFACT...`: check results that came from jobs we do not trust, then
take their branches in.

An artifact (`bundle`) holds at most one result branch, `autonomous/<session id>` or
`autonomous/integration-<id>`, and `autonomous/memory`, and a `result.json` that names the same
result branch (one whose `branch: null` hides a branch is refused). A branch the remote has
already (an open pull request's; the remote is asked first) is never added to. Every commit
and tree is judged by `verification`; a status commit stands only once GitHub confirms that a
pull request of its task was closed unmerged (without GitHub to ask, it is refused). Only when
every artifact passes are their branches created here, the memory branch joined with ours;
otherwise nothing is taken in.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_agent.artifact import BUNDLE_FILE, RESULT_FILE, own_branches, read_result
from gitops_agent.errors import UserError
from gitops_agent.gate import resolve_gate
from gitops_agent.git import Repo
from gitops_agent.git.remote import (
    DEFAULT_REMOTE,
    BranchUpdate,
    adopt_remote_branch,
    bundle_heads,
    fetch_autonomous,
    fetch_bundle,
    move_branch,
    remote_branches,
    remote_url,
    token_from_env,
)
from gitops_agent.github import repository_from_url
from gitops_agent.memory import join_memory
from gitops_agent.plan import TaskStatus
from gitops_agent.policy.eligibility import verdicts as check
from gitops_agent.policy.preflight import ProgramLookup
from gitops_agent.project import Base, load_base
from gitops_agent.rejected import rejected_tasks
from gitops_agent.results import BRANCH_PREFIX, INTEGRATION_PREFIX, MEMORY_BRANCH
from gitops_agent.verification import BranchKind, Check, awaiting_on_remote, branch_kind
from gitops_agent.verification.memory import memory_problems
from gitops_agent.verification.results import branch_problems

_HEADS = "refs/heads/"
_ANY_AGENT = "(any agent)"  # eligibility here does not depend on which agent ran


@dataclass(frozen=True, slots=True)
class Taken:
    branch: str
    tip: str
    how: BranchUpdate  # CREATED, ALREADY_HERE, FAST_FORWARDED, JOINED or KEPT


@dataclass(frozen=True, slots=True)
class Verified:
    artifact: str
    taken: tuple[Taken, ...]


def bundle_path(artifact: Path) -> Path | None:
    """The bundle of an artifact directory (None when the result carried no branch), or the
    bundle file itself."""
    if artifact.is_dir():
        inside = artifact / BUNDLE_FILE
        return inside if inside.is_file() else None
    if not artifact.exists():
        raise UserError("no such artifact (a directory or a .bundle file)", str(artifact))
    return artifact


def verify(
    repo_dir: Path | None,
    artifacts: list[Path],
    *,
    plan: Path | None = None,
    constraints: Path | None = None,
    remote: str = DEFAULT_REMOTE,
    env: Mapping[str, str] | None = None,
) -> list[Verified]:
    """Check every artifact; take in their branches only when all of them pass. A failure is a
    UserError listing every problem of every artifact."""
    env = os.environ if env is None else env
    base = load_base(repo_dir, plan, constraints)
    repo = base.repo
    # The publisher has none of the tools `Run:` commands use; the job that ran them had.
    anywhere = ProgramLookup(path="")
    gate = resolve_gate(repo, base.commit, base.project.plan.settings)
    origin = _remote_now(repo, remote)
    adopt_remote_branch(repo, remote, MEMORY_BRANCH)
    checking = Check(
        base=base,
        verdicts={v.task.id: v for v in check(base.project, _ANY_AGENT, programs=anywhere)},
        protected=(
            *base.project.protected_paths,
            *(gate.paths if gate is not None else ()),
        ),
        remote=remote,
        origin=origin,
        awaiting={},
        now=int(time.time()),
    )
    checking.awaiting = awaiting_on_remote(checking)
    found: list[tuple[Path, list[str], dict[str, str]]] = []
    results: dict[str, str] = {}  # result branch -> tip, over the artifacts so far
    for number, artifact in enumerate(artifacts):
        problems, branches = _check_artifact(checking, number, artifact)
        for branch, tip in branches.items():
            if results.setdefault(branch, tip) != tip and branch != MEMORY_BRANCH:
                problems.append(f"{branch} comes at another commit in an earlier artifact")
        found.append((artifact, problems, branches))
    for number, problem in _confirm_marks(checking, env):
        found[number][1].append(problem)
    refused = [
        f"{artifact}: refused:\n" + "\n".join(f"  - {p}" for p in problems)
        for artifact, problems, _ in found
        if problems
    ]
    if refused:
        raise UserError("\n".join(refused) + "\nNothing was taken in.", "verify")
    return _take(repo, [(str(a), branches) for a, _, branches in found], base)


def _remote_now(repo: Repo, remote: str) -> dict[str, str]:
    """The remote's autonomous branches: fetched now, so that a branch pushed since the checkout
    counts; as last fetched where the remote cannot be asked (no credentials here)."""
    try:
        return fetch_autonomous(repo, remote)
    except UserError:
        return remote_branches(repo, remote)


def _check_artifact(
    checking: Check, number: int, artifact: Path
) -> tuple[list[str], dict[str, str]]:
    """(problems, branch -> tip) of one artifact; its objects are fetched, no ref is made."""
    repo = checking.base.repo
    data: dict[str, Any] | None = None
    if artifact.is_dir():
        try:
            data = read_result(artifact / RESULT_FILE)
        except UserError as err:
            return [f"{RESULT_FILE}: {err.message}"], {}
    path = bundle_path(artifact)
    heads = bundle_heads(repo, path) if path is not None else {}
    problems: list[str] = []
    branches: dict[str, str] = {}
    for ref, tip in sorted(heads.items()):
        name = ref.removeprefix(_HEADS)
        if not ref.startswith(_HEADS) or branch_kind(name) is None:
            problems.append(
                f"carries {ref}: not a branch the tool makes (autonomous/<session id>, "
                f"autonomous/integration-<id> or {MEMORY_BRANCH})"
            )
        branches[name] = tip
    own = sorted(b for b in branches if branch_kind(b) is BranchKind.TASK)
    work = sorted(b for b in branches if b != MEMORY_BRANCH and b not in own)
    if len(work) > 1:
        problems.append(
            f"carries {len(work)} result branches ({', '.join(work)}); a result has one"
        )
    if data is not None and len(work) <= 1:
        problems += _json_names_problems(data, work[0] if work else None)
    problems += _own_branches_problems(data, own)
    if path is None:
        return problems, {}
    try:
        fetch_bundle(repo, path, heads)
    except UserError as err:
        return [err.message], {}
    for branch, tip in sorted(branches.items()):
        if branch == MEMORY_BRANCH:
            problems += memory_problems(checking, tip)
        else:
            problems += branch_problems(checking, number, branch, tip, data)
    return problems, branches


def _own_branches_problems(data: dict[str, Any] | None, own: list[str]) -> list[str]:
    """A task's own branch (approval per-task or auto) is carried only as its session's
    result names it: `run --json` gives each such task's `branch`."""
    named = own_branches(data or {})
    session = (data or {}).get("session")
    problems = []
    for branch in own:
        if branch not in named:
            problems.append(f"carries {branch}, which {RESULT_FILE} does not name")
        elif not (isinstance(session, str) and branch.startswith(f"{BRANCH_PREFIX}{session}-")):
            problems.append(f"{RESULT_FILE}: session {session!r} did not make {branch}")
    return problems


def _json_names_problems(data: dict[str, Any], work: str | None) -> list[str]:
    """`result.json` must name the branch the bundle carries: `publish` pushes what it names."""
    named = data.get("branch")
    if named is None and work is not None:
        return [
            f"{RESULT_FILE} says `branch: null`, but the bundle carries {work}: a result may not "
            "hide a branch"
        ]
    if named != work:
        return [f"{RESULT_FILE} names the branch {named}, but the bundle carries {work or 'none'}"]
    session, ident = data.get("session"), data.get("id")
    if work is not None and isinstance(session, str) and work != f"{BRANCH_PREFIX}{session}":
        return [f"{RESULT_FILE}: session {session!r} did not make {work}"]
    if work is not None and isinstance(ident, str) and work != f"{INTEGRATION_PREFIX}{ident}":
        return [f"{RESULT_FILE}: integration {ident!r} did not make {work}"]
    return []


def _confirm_marks(checking: Check, env: Mapping[str, str]) -> list[tuple[int, str]]:
    """(artifact, problem) for each status commit GitHub does not confirm: a pull request of
    its task closed without merging. Without GitHub to ask, none is confirmed."""
    if not checking.marks:
        return []
    repo, remote = checking.base.repo, checking.remote
    repository = repository_from_url(remote_url(repo, remote)) or env.get("GITHUB_REPOSITORY")
    cannot = ""
    found: dict[str, Any] = {}
    if not repository or token_from_env(env) is None:
        cannot = (
            "no GitHub API to ask (set GITHUB_TOKEN, with pull-requests: read, and "
            "GITHUB_REPOSITORY)"
        )
    else:
        try:
            found = rejected_tasks(repo, {task for _, task, _ in checking.marks}, env=env)
        except UserError as err:  # GitHub refused, or its answer could not be read
            cannot = f"GitHub could not be asked ({err})"
    problems = []
    for number, task_id, short in checking.marks:
        if cannot:
            problems.append(
                (
                    number,
                    f"{short}: sets task `{task_id}` to {TaskStatus.NEEDS_HUMAN}, which cannot be "
                    f"confirmed: {cannot}",
                )
            )
        elif task_id not in found:
            problems.append(
                (
                    number,
                    f"{short}: sets task `{task_id}` to {TaskStatus.NEEDS_HUMAN}, but no pull "
                    f"request of it was closed without merging on {repository}",
                )
            )
    return problems


def _take(repo: Repo, found: list[tuple[str, dict[str, str]]], base: Base) -> list[Verified]:
    """Create the artifacts' result branches and bring our memory branch up to theirs. Every
    commit is made first (a join may still fail), the refs are moved last."""
    timezone = base.project.plan.settings.timezone
    start = memory = repo.branch_tip(MEMORY_BRANCH)
    made: dict[str, str] = {}  # result branch -> tip, as taken so far
    done: list[Verified] = []
    for artifact, branches in found:
        taken = []
        for branch, tip in sorted(branches.items()):
            if branch != MEMORY_BRANCH:
                here = made.get(branch, repo.branch_tip(branch))
                taken.append(
                    Taken(
                        branch,
                        tip,
                        BranchUpdate.ALREADY_HERE if here == tip else BranchUpdate.CREATED,
                    )
                )
                made[branch] = tip
                continue
            if memory is None or memory == tip or repo.is_merged(memory, tip):
                how = BranchUpdate.CREATED if memory is None else BranchUpdate.FAST_FORWARDED
                how = BranchUpdate.ALREADY_HERE if memory == tip else how
                memory = tip
            elif repo.is_merged(tip, memory):
                how = BranchUpdate.KEPT
            else:  # two runners wrote the memory at once: ours stays, theirs is appended
                memory, how = join_memory(repo, tip, memory, timezone=timezone), BranchUpdate.JOINED
            taken.append(Taken(branch, memory, how))
        done.append(Verified(artifact, tuple(taken)))
    for branch, tip in made.items():
        if repo.branch_tip(branch) is None:
            repo.create_branch(branch, tip)
    if memory is not None and start is None:
        repo.create_branch(MEMORY_BRANCH, memory)
    elif memory is not None and start is not None and memory != start:
        move_branch(repo, MEMORY_BRANCH, memory, expected=start)
    return done
