"""`gitops-agent verify ARTIFACT...`: check a result that came from a job we do not trust, then
take its branches in.

The job that ran the agent could have been led to change anything it uploads, so every commit
is judged again against the base branch's plan and constraints, as `run` judged it:
- a task commit names an eligible task (`Task-Id:`), passes every post-flight rule, and changes
  the plan only by setting that task's status to DONE;
- a status commit (`Task-Status: <id> NEEDS_HUMAN`, for a task whose pull request was closed
  unmerged) names an eligible task and changes nothing but that task's status line, to
  NEEDS_HUMAN;
- a merge commit (from `integrate`) adds nothing of its own to the clean merge of its parents;
- the memory branch holds nothing but plain files under memory/ and state/.
Only when all of it holds are the branches created here (the memory branch joined with ours).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gitops_agent.change import Change, FileStatus
from gitops_agent.commands.bundle import BUNDLE_FILE
from gitops_agent.errors import PlanError, UserError
from gitops_agent.files import decode
from gitops_agent.gate import resolve_gate
from gitops_agent.git import Repo
from gitops_agent.git.merge import commit_merge, merge
from gitops_agent.git.remote import (
    DEFAULT_REMOTE,
    IncomingCommit,
    adopt_remote_branch,
    bundle_heads,
    fetch_bundle,
    incoming_commits,
    merge_is_clean_of,
    move_branch,
)
from gitops_agent.plan import set_status
from gitops_agent.policy.eligibility import Verdict
from gitops_agent.policy.eligibility import verdicts as check
from gitops_agent.policy.inspect import inspect_change
from gitops_agent.policy.preflight import ProgramLookup
from gitops_agent.project import Base, load_base
from gitops_agent.rejected import NEEDS_HUMAN, STATUS_TRAILER, parse_status_trailer
from gitops_agent.results import MEMORY_BRANCH, MEMORY_DIR, SESSIONS_DIR

_HEADS = "refs/heads/"
_MEMORY_ROOTS = (f"{MEMORY_DIR}/", f"{SESSIONS_DIR.split('/')[0]}/")
_PLAIN_FILE = 0o100644
_ANY_AGENT = "(any agent)"  # eligibility here does not depend on which agent ran


@dataclass(frozen=True, slots=True)
class Taken:
    branch: str
    tip: str
    how: str  # "created", "already here", "fast-forwarded", "joined", "kept"


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
) -> list[Verified]:
    """Check every artifact; take in the branches of each that passes. Any failure is a
    UserError listing every problem, raised after all artifacts were looked at."""
    base = load_base(repo_dir, plan, constraints)
    # The publisher has none of the tools `Run:` commands use; the job that ran them had.
    anywhere = ProgramLookup(path="")
    verdicts = {v.task.id: v for v in check(base.project, _ANY_AGENT, programs=anywhere)}
    adopt_remote_branch(base.repo, remote, MEMORY_BRANCH)
    done: list[Verified] = []
    refused: list[str] = []
    for artifact in artifacts:
        path = bundle_path(artifact)
        if path is None:
            done.append(Verified(str(artifact), ()))
            continue
        problems, taken = _verify_one(base, verdicts, path)
        if problems:
            refused.append(f"{artifact}: refused:\n" + "\n".join(f"  - {p}" for p in problems))
        else:
            done.append(Verified(str(artifact), taken))
    if refused:
        raise UserError(
            "\n".join(refused) + "\nNothing from a refused artifact was taken in.",
            "verify",
        )
    return done


def _verify_one(
    base: Base, verdicts: dict[str, Verdict], path: Path
) -> tuple[list[str], tuple[Taken, ...]]:
    repo = base.repo
    heads = bundle_heads(repo, path)
    problems = [
        f"carries {ref}: only autonomous/ branches may come in"
        for ref in sorted(heads)
        if not ref.startswith(f"{_HEADS}autonomous/")
    ]
    if problems:
        return problems, ()
    fetch_bundle(repo, path, heads)
    branches = {ref.removeprefix(_HEADS): tip for ref, tip in heads.items()}
    for branch, tip in sorted(branches.items()):
        if branch == MEMORY_BRANCH:
            problems += _memory_problems(repo, tip)
            continue
        here = repo.branch_tip(branch)
        if here is not None and here != tip:
            problems.append(f"{branch} exists here already, at another commit ({here[:12]})")
            continue
        problems += _work_problems(base, verdicts, branch, tip)
    if problems:
        return problems, ()
    return [], tuple(_take(repo, branch, tip) for branch, tip in sorted(branches.items()))


def _work_problems(base: Base, verdicts: dict[str, Verdict], branch: str, tip: str) -> list[str]:
    """Why the commits `branch` adds to the base may not be pushed (none: they may)."""
    repo, project = base.repo, base.project
    gate = resolve_gate(repo, base.commit, project.plan.settings)
    protected = (*project.protected_paths, *(gate.paths if gate is not None else ()))
    problems: list[str] = []
    done: dict[str, str] = {}
    marked: dict[str, str] = {}  # task -> the status commit that set it NEEDS_HUMAN
    for commit in incoming_commits(repo, tip, [base.commit]):
        short = f"{branch} {commit.info.id[:12]}"
        parents = len(commit.info.parents)
        if parents == 2:
            if not merge_is_clean_of(repo, commit.info.id):
                problems.append(f"{short}: a merge commit that adds changes of its own")
            continue
        if parents != 1:
            problems.append(f"{short}: has {parents} parents; task commits have one")
            continue
        task_id = commit.info.trailers.get("Task-Id")
        if STATUS_TRAILER in commit.info.trailers:
            problem, marked_id = _status_problem(repo, verdicts, commit, project.plan.path)
            if problem:
                problems.append(f"{short}: {problem}")
            elif marked_id in done or marked_id in marked:
                problems.append(f"{short}: task `{marked_id}` has an earlier commit here already")
            else:
                marked[marked_id] = commit.info.id[:12]
            continue
        verdict = verdicts.get(task_id or "")
        if verdict is None:
            what = f"task `{task_id}`, which is not in the plan" if task_id else "no Task-Id"
            problems.append(f"{short}: names {what}")
            continue
        if not verdict.eligible:
            why = "; ".join(verdict.reasons)
            problems.append(f"{short}: task `{task_id}` may not run: {why}")
            continue
        if task_id in done:
            problems.append(f"{short}: task `{task_id}` was committed already ({done[task_id]})")
            continue
        if task_id in marked:
            problems.append(
                f"{short}: task `{task_id}` was set to {NEEDS_HUMAN} already ({marked[task_id]})"
            )
            continue
        done[verdict.task.id] = commit.info.id[:12]
        change, plan_problem = _without_status_edit(repo, commit, project.plan.path, task_id or "")
        if plan_problem:
            problems.append(f"{short}: {plan_problem}")
        for violation in inspect_change(
            change,
            project.constraints,
            estimated_lines=verdict.task.estimated_lines,
            protected_paths=protected,
            repo_files=frozenset(commit.paths),
        ):
            problems.append(f"{short} (task `{task_id}`): {violation}")
    return problems


def _without_status_edit(
    repo: Repo, commit: IncomingCommit, plan_path: str, task_id: str
) -> tuple[Change, str]:
    """The commit's change less the plan's status edit `run` makes; a problem when the plan
    changed in any other way."""
    change = commit.change
    touching = [f for f in change.files if plan_path in (f.path, f.old_path)]
    if not touching:
        return change, ""
    rest = tuple(f for f in change.files if f not in touching)
    kept = Change(change.base, change.tree, rest)
    if len(touching) != 1 or touching[0].status is not FileStatus.MODIFIED:
        return kept, f"the plan {plan_path} was {touching[0].status.value}"
    old = repo.read_blob(change.base, plan_path) or b""
    new = repo.read_blob(commit.info.id, plan_path) or b""
    try:
        expected = set_status(decode(old, plan_path), task_id, "DONE", plan_path).encode()
    except PlanError as err:
        return kept, f"the plan cannot be read: {err}"
    if new != expected:
        return kept, f"changes {plan_path} beyond setting task `{task_id}`'s status to DONE"
    return kept, ""


def _status_problem(
    repo: Repo, verdicts: dict[str, Verdict], commit: IncomingCommit, plan_path: str
) -> tuple[str, str]:
    """(problem, task id) for a commit with a `Task-Status:` trailer; the problem is "" when its
    only change is that task's status line set to NEEDS_HUMAN, as `run` writes it."""
    trailers = commit.info.trailers
    value = trailers[STATUS_TRAILER]
    parsed = parse_status_trailer(value)
    if parsed is None or parsed[1] != NEEDS_HUMAN:
        return f"its Task-Status is {value!r}, not `<task> {NEEDS_HUMAN}`", ""
    task_id = parsed[0]
    if "Task-Id" in trailers:
        return "carries both Task-Id and Task-Status; a status commit carries no result", task_id
    verdict = verdicts.get(task_id)
    if verdict is None:
        return f"names task `{task_id}`, which is not in the plan", task_id
    if not verdict.eligible:
        return f"task `{task_id}` may not be marked: {'; '.join(verdict.reasons)}", task_id
    files = commit.change.files
    others = sorted({f.path for f in files} - {plan_path})
    if others:
        return f"a status commit that changes more than {plan_path}: {', '.join(others)}", task_id
    beyond = f"changes {plan_path} beyond setting task `{task_id}`'s status to {NEEDS_HUMAN}"
    if len(files) != 1 or files[0].status is not FileStatus.MODIFIED:
        return beyond, task_id
    old = repo.read_blob(commit.change.base, plan_path) or b""
    new = repo.read_blob(commit.info.id, plan_path) or b""
    try:
        expected = set_status(decode(old, plan_path), task_id, NEEDS_HUMAN, plan_path).encode()
    except PlanError as err:
        return f"the plan cannot be read: {err}", task_id
    if new == old or new != expected:
        return beyond, task_id
    return "", task_id


def _memory_problems(repo: Repo, tip: str) -> list[str]:
    known = [t for t in (repo.branch_tip(MEMORY_BRANCH),) if t is not None]
    problems = []
    for commit in incoming_commits(repo, tip, known):
        bad = sorted(
            path
            for path, mode in commit.paths.items()
            if not path.startswith(_MEMORY_ROOTS) or mode != _PLAIN_FILE
        )
        if bad:
            shown = ", ".join(bad[:5]) + (" ..." if len(bad) > 5 else "")
            problems.append(
                f"{MEMORY_BRANCH} {commit.info.id[:12]}: holds more than plain files under "
                f"memory/ and state/: {shown}"
            )
    return problems


def _take(repo: Repo, branch: str, tip: str) -> Taken:
    here = repo.branch_tip(branch)
    if here == tip:
        return Taken(branch, tip, "already here")
    if here is None:
        repo.create_branch(branch, tip)
        return Taken(branch, tip, "created")
    if repo.is_merged(here, tip):
        move_branch(repo, branch, tip, expected=here)
        return Taken(branch, tip, "fast-forwarded")
    if repo.is_merged(tip, here):
        return Taken(branch, here, "kept")
    # Two runners wrote the memory at once: their logs are append-only, so keep both sides.
    joined = merge(repo, here, tip, union=True)
    if joined.tree is None:
        raise UserError(
            f"cannot join {branch} with the incoming one: {', '.join(joined.conflicts)}",
            str(repo.root),
        )
    commit = commit_merge(repo, joined.tree, [here, tip], f"Join {branch} from another runner")
    move_branch(repo, branch, commit, expected=here)
    return Taken(branch, commit, "joined")
