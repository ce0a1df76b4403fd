"""A result branch from an artifact: the commits it adds to the base, by the rules `run` and
`integrate` obey.

- a task commit names an eligible task (`Task-Id:`) not done already here or awaiting review on
  the remote, passes every post-flight rule (the tests' guard included) and the ones
  `provenance` adds (long lines, bidirectional controls, CODEOWNERS, submodules, symlinks out
  of the approved dirs), changes something, and sets that task's status to DONE in the plan and
  changes nothing else there.
  Only the tool's own "nothing to do" commit of a `Run:` task (`Nothing-To-Do: yes`) sets the
  status alone. A branch holds no more task commits than `max_tasks_per_session`;
- a status commit (`Task-Status: <id> NEEDS_HUMAN`) changes nothing but that status line; it
  stands only once GitHub confirms it (`Check.marks`, for `verify` to ask);
- a merge commit (from `integrate`, on an integration branch only) adds nothing of its own;
- `result.json` tells the same story of which task was committed where.
"""

from __future__ import annotations

from typing import Any

from gitops_agent.change import Change, FileStatus
from gitops_agent.constraints import NothingToDo
from gitops_agent.errors import PlanError
from gitops_agent.files import decode
from gitops_agent.git import Repo
from gitops_agent.git.remote import IncomingCommit, incoming_commits, merge_is_clean_of
from gitops_agent.plan import Approval, Task, TaskStatus, set_status
from gitops_agent.policy.eligibility import Verdict
from gitops_agent.policy.inspect import inspect_change
from gitops_agent.policy.provenance import change_problems, session_start, trailer_problems
from gitops_agent.policy.tests_guard import guard_tests
from gitops_agent.rejected import STATUS_TRAILER, parse_status_trailer
from gitops_agent.results import BRANCH_PREFIX, Outcome
from gitops_agent.session.attempt import tests_may_change

from . import BranchKind, Check, branch_kind, raw_problems, task_branch

RESULT_FILE = "result.json"  # as `bundle` names it
_NOTHING_TO_DO = "Nothing-To-Do"  # the trailer of `run`'s commit for a codemod with nothing to do
_TASK_TRAILERS = ("Task-Id", "Agent", "Session", "Gitops-Agent-Version")
_STATUS_TRAILERS = (STATUS_TRAILER, "Session", "Gitops-Agent-Version")
_MERGE_TRAILER = "Integrates"
_APPROVAL = "Approval"  # on a task's own branch (approval per-task or auto)


def branch_problems(
    checking: Check,
    number: int,
    branch: str,
    tip: str,
    data: dict[str, Any] | None,
) -> list[str]:
    """Why the commits `branch` adds to the base may not be pushed (none: they may)."""
    repo = checking.base.repo
    on_remote = checking.origin.get(branch)
    if on_remote == tip:
        return []  # the remote has exactly this already: nothing comes in
    if on_remote is not None:
        return [
            f"{branch} is on {checking.remote} already (at {on_remote[:12]}): an artifact may "
            "not add to or rewrite a branch that awaits review, nor its pull request"
        ]
    here = repo.branch_tip(branch)
    if here is not None and here != tip:
        return [f"{branch} exists here already, at another commit ({here[:12]})"]
    problems, malformed = raw_problems(checking, branch, tip, [checking.base.commit], memory=False)
    if malformed:
        return problems  # libgit2 is not given objects that are not well formed
    commits = incoming_commits(repo, tip, [checking.base.commit])
    problems += _commits_problems(checking, number, branch, commits)
    if data is not None:
        problems += _json_tasks_problems(data, branch, commits)
    return problems


def _commits_problems(
    checking: Check, number: int, branch: str, commits: list[IncomingCommit]
) -> list[str]:
    """The rules `run` (and `integrate`) obey, commit by commit, oldest first."""
    base, verdicts = checking.base, checking.verdicts
    project = base.project
    kind = branch_kind(branch)
    integration = kind is BranchKind.INTEGRATION
    problems: list[str] = []
    done: dict[str, str] = {}  # task -> its commit on this branch
    marked: dict[str, str] = {}  # task -> the status commit that set it NEEDS_HUMAN
    for commit in commits:
        short = f"{branch} {commit.info.id[:12]}"
        message, trailers = commit.info.message, commit.info.trailers
        parents = len(commit.info.parents)
        if parents == 2 and integration:
            said = trailer_problems(message, [_MERGE_TRAILER], [_MERGE_TRAILER])
            problems += [f"{short}: {p}" for p in said]
            if not merge_is_clean_of(base.repo, commit.info.id):
                problems.append(f"{short}: a merge commit that adds changes of its own")
            continue
        if parents != 1:
            where = "" if integration else " (a session branch holds no merges)"
            problems.append(f"{short}: has {parents} parents; task commits have one{where}")
            continue
        session = trailers.get("Session")
        if session is not None and (
            session_start(session) is None
            or (kind is BranchKind.SESSION and branch != f"{BRANCH_PREFIX}{session}")
            or (
                kind is BranchKind.TASK
                and branch != task_branch(session, trailers.get("Task-Id", ""))
            )
        ):
            problems.append(f"{short}: its Session trailer {session!r} is not this branch's")
        if STATUS_TRAILER in trailers:
            said = trailer_problems(message, _STATUS_TRAILERS, _STATUS_TRAILERS)
            problem, task_id = _status_problem(base.repo, verdicts, commit, project.plan.path)
            problems += [f"{short}: {p}" for p in [*said, *([problem] if problem else [])]]
            if said or problem:
                continue
            if task_id in done or task_id in marked:
                problems.append(f"{short}: task `{task_id}` has an earlier commit here already")
            else:
                marked[task_id] = commit.info.id[:12]
                checking.marks.append((number, task_id, short))
                claimed = _claim(checking, branch, task_id, commit.info.id, result=False)
                problems += [f"{short}: {p}" for p in claimed]
            continue
        allowed = (*_TASK_TRAILERS, _NOTHING_TO_DO, _APPROVAL)
        said = trailer_problems(message, allowed, _TASK_TRAILERS)
        problems += [f"{short}: {p}" for p in said]
        named = trailers.get("Task-Id")
        verdict = verdicts.get(named or "")
        if verdict is None:
            if named or not said:  # a missing Task-Id is said already
                what = f"task `{named}`, which is not in the plan" if named else "no Task-Id"
                problems.append(f"{short}: names {what}")
            continue
        if not verdict.eligible:
            why = "; ".join(verdict.reasons)
            problems.append(f"{short}: task `{named}` may not run: {why}")
            continue
        task = verdict.task
        earlier = done.get(task.id) or marked.get(task.id)
        if earlier is not None:
            problems.append(f"{short}: task `{task.id}` has an earlier commit here ({earlier})")
            continue
        approval = _approval_problem(checking, kind, task, trailers.get(_APPROVAL))
        if approval is not None:
            problems.append(f"{short}: {approval}")
            continue
        done[task.id] = commit.info.id[:12]
        if len(done) == project.constraints.max_tasks_per_session + 1:
            problems.append(
                f"{short}: more task commits than the session limit of "
                f"{project.constraints.max_tasks_per_session} (max_tasks_per_session)"
            )
        claimed = _claim(checking, branch, task.id, commit.info.id, result=True)
        problems += [f"{short}: {p}" for p in claimed]
        problems += _task_problems(checking, short, task, commit)
    return problems


def _approval_problem(
    checking: Check, kind: BranchKind | None, task: Task, said: str | None
) -> str | None:
    """A task's own branch carries the approval the base gives the task (per-task, or auto
    where the constraints let the tool merge); a session branch carries none. An `auto` the
    base does not give would have the tool merge what a person must review."""
    settings, rules = checking.base.project.plan.settings, checking.base.project.constraints
    wanted = task.approval_in(settings)
    if wanted is Approval.AUTO and not rules.auto_merge:
        wanted = Approval.PER_TASK
    if kind is BranchKind.TASK:
        if wanted is Approval.FINAL or said != wanted.value:
            return (
                f"says `{_APPROVAL}: {said}`, but the base gives task `{task.id}` approval "
                f"{wanted.value}"
            )
        return None
    if said is not None and kind is BranchKind.SESSION:
        return f"a session branch's commit says `{_APPROVAL}: {said}`; only a task's own has one"
    if said is not None and kind is BranchKind.INTEGRATION and said != wanted.value:
        return f"says `{_APPROVAL}: {said}`, but the base gives task `{task.id}` {wanted.value}"
    return None


def _task_problems(checking: Check, short: str, task: Task, commit: IncomingCommit) -> list[str]:
    """A task commit's change: the plan's status set to DONE, and every post-flight rule."""
    base = checking.base
    project, constraints = base.project, base.project.constraints
    change, plan_problem = _without_status_edit(base.repo, commit, project.plan.path, task.id)
    problems = [f"{short}: {plan_problem}"] if plan_problem else []
    nothing = commit.info.trailers.get(_NOTHING_TO_DO)
    if nothing is not None:
        if (
            nothing != "yes"
            or task.run is None
            or constraints.nothing_to_do is not NothingToDo.DONE
        ):
            problems.append(
                f"{short}: a `{_NOTHING_TO_DO}` commit, but task `{task.id}` "
                + ("has no Run: command" if task.run is None else "may not be closed that way")
            )
        elif not change.is_empty:
            problems.append(f"{short}: a `{_NOTHING_TO_DO}` commit that changes files")
        return problems
    if change.is_empty and not plan_problem:
        problems.append(
            f"{short}: only sets task `{task.id}`'s status to DONE, with no change to show for it"
        )
    repo_files = frozenset(commit.paths)
    violations = inspect_change(
        change,
        constraints,
        estimated_lines=task.estimated_lines,
        protected_paths=checking.protected,
        repo_files=repo_files,
    )
    violations += change_problems(change, constraints, repo_files)
    if not tests_may_change(task, constraints):
        repo = base.repo
        violations += guard_tests(
            change,
            read_base=lambda path: repo.read_blob(change.base, path),
            read_new=lambda path: repo.read_tree_blob(change.tree, path),
        )
    problems += [f"{short} (task `{task.id}`): {v}" for v in violations]
    return problems


def _claim(checking: Check, branch: str, task_id: str, commit: str, *, result: bool) -> list[str]:
    """The same task on two branches: of two artifacts, or (for a `result`, not a status) here
    and on the remote, where it awaits review."""
    other = checking.claims.setdefault(task_id, (branch, commit))
    problems = []
    if other[1] != commit:
        problems.append(f"task `{task_id}` has another commit on {other[0]} ({other[1][:12]})")
    waiting = checking.awaiting.get(task_id) if result else None
    if waiting is not None and waiting[1] != commit:
        problems.append(
            f"task `{task_id}` already awaits review on {checking.remote}/{waiting[0]} "
            f"({waiting[1][:12]})"
        )
    return problems


def _json_tasks_problems(
    data: dict[str, Any], branch: str, commits: list[IncomingCommit]
) -> list[str]:
    """`result.json` and the branch tell the same story of which task was committed where."""
    on_branch = {
        c.info.trailers["Task-Id"]: c.info.id for c in commits if "Task-Id" in c.info.trailers
    }
    tasks, merged = data.get("tasks"), data.get("merged")
    if isinstance(tasks, list):
        said = {
            str(t.get("id")): str(t.get("commit"))
            for t in tasks
            if isinstance(t, dict)
            and t.get("outcome") == Outcome.COMMITTED.value
            # a task on its own branch (per-task, auto) is told of there, not on the session's
            and (t.get("branch") or data.get("branch")) == branch
        }
    elif isinstance(merged, list):
        said = {
            str(task): on_branch.get(str(task), "")
            for entry in merged
            if isinstance(entry, dict) and isinstance(entry.get("tasks"), list)
            for task in entry["tasks"]
        }
    else:
        return []
    if said == on_branch:
        return []
    return [
        f"{RESULT_FILE} says the committed tasks are {_tasks(said)}, but {branch} holds "
        f"{_tasks(on_branch)}"
    ]


def _tasks(claimed: dict[str, str]) -> str:
    return ", ".join(f"{t} ({c[:12] or 'no commit'})" for t, c in sorted(claimed.items())) or "none"


def _without_status_edit(
    repo: Repo, commit: IncomingCommit, plan_path: str, task_id: str
) -> tuple[Change, str]:
    """The commit's change less the plan's status edit `run` makes; a problem when the plan
    changed in any other way, or not at all."""
    change = commit.change
    touching = [f for f in change.files if plan_path in (f.path, f.old_path)]
    if not touching:
        return change, f"never sets task `{task_id}`'s status to DONE in {plan_path}"
    rest = tuple(f for f in change.files if f not in touching)
    kept = Change(change.base, change.tree, rest)
    if len(touching) != 1 or touching[0].status is not FileStatus.MODIFIED:
        return kept, f"the plan {plan_path} was {touching[0].status.value}"
    old = repo.read_blob(change.base, plan_path) or b""
    new = repo.read_blob(commit.info.id, plan_path) or b""
    try:
        expected = set_status(decode(old, plan_path), task_id, TaskStatus.DONE, plan_path).encode()
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
    if parsed is None or parsed[1] != TaskStatus.NEEDS_HUMAN:
        return f"its Task-Status is {value!r}, not `<task> {TaskStatus.NEEDS_HUMAN}`", ""
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
    beyond = (
        f"changes {plan_path} beyond setting task `{task_id}`'s status to {TaskStatus.NEEDS_HUMAN}"
    )
    if len(files) != 1 or files[0].status is not FileStatus.MODIFIED:
        return beyond, task_id
    old = repo.read_blob(commit.change.base, plan_path) or b""
    new = repo.read_blob(commit.info.id, plan_path) or b""
    try:
        expected = set_status(
            decode(old, plan_path), task_id, TaskStatus.NEEDS_HUMAN, plan_path
        ).encode()
    except PlanError as err:
        return f"the plan cannot be read: {err}", task_id
    if new == old or new != expected:
        return beyond, task_id
    return "", task_id
