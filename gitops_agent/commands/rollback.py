"""`gitops-agent rollback TARGET`: undo a checkpoint's, a session's or a task's work with revert
commits on a new `autonomous/rollback-...` branch, for a person to merge.

The base is never moved and nothing is force-pushed: a rollback is a change like any other,
reviewed and merged. The reverts are computed in memory on the base's tip; a conflict stops it
before anything is written. The tasks whose work is reverted get `Status: NEEDS_HUMAN` in a last
commit, so that merging the rollback does not queue them again.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_agent import __version__
from gitops_agent.checkpoints import (
    SESSION_TRAILER,
    TAG_PREFIX,
    TASK_TRAILER,
    WALK_LIMIT,
    checkpoint_name,
    tag_merges,
    task_ids,
)
from gitops_agent.clock import now
from gitops_agent.errors import UserError
from gitops_agent.events import Event, EventKind
from gitops_agent.files import decode
from gitops_agent.git import CommitInfo, Repo
from gitops_agent.git.history import (
    HistoryCommit,
    brought_by,
    checkpoint_tags,
    first_parent_history,
    revert,
)
from gitops_agent.git.merge import commit_merge
from gitops_agent.git.remote import DEFAULT_REMOTE, push_checkpoints
from gitops_agent.memory import publish_memory, record_event
from gitops_agent.plan import TaskStatus, parse_plan, set_status
from gitops_agent.policy.masking import mask
from gitops_agent.project import Base, load_base
from gitops_agent.publication import offer_branch
from gitops_agent.rejected import STATUS_TRAILER, parse_status_trailer
from gitops_agent.render import render
from gitops_agent.results import BRANCH_PREFIX

ROLLBACK_PREFIX = f"{BRANCH_PREFIX}rollback-"
ROLLBACK_TRAILER = "Rollback-Of"
TEMPLATE = "rollback-pr.md.j2"


class TargetKind(enum.StrEnum):
    CHECKPOINT = "checkpoint"
    SESSION = "session"
    TASK = "task"


@dataclass(frozen=True, slots=True)
class Undo:
    """One commit of the base to revert (a merge against its first parent, `mainline` 1)."""

    commit: str
    title: str
    mainline: int  # 0 for a commit with one parent
    tasks: tuple[str, ...]  # whose plan status its revert changes back


@dataclass(frozen=True, slots=True)
class Reverted:
    undo: Undo
    revert: str  # the revert commit on the rollback branch


@dataclass(frozen=True, slots=True)
class Rollback:
    target: str
    kind: TargetKind
    base: str
    base_commit: str
    branch: str
    reverted: tuple[Reverted, ...]
    tasks: tuple[str, ...]  # whose work (or status mark) is reverted
    marked: tuple[str, ...]  # the ones of them the plan has: set to NEEDS_HUMAN on the branch
    pushed: bool
    pull_request: str | None
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "kind": self.kind.value,
            "branch": self.branch,
            "reverted": [r.undo.commit for r in self.reverted],
            "tasks": list(self.tasks),
            "pull_request": self.pull_request,
        }

    def lines(self) -> list[str]:
        said = [
            f"Rollback of {self.kind.value} {self.target}: {_count(len(self.reverted))} reverted "
            f"on {self.branch} (from {self.base} at {self.base_commit[:7]}; {self.base} itself "
            "is unchanged).",
            *(f"  reverted {r.undo.commit[:7]} {r.undo.title}" for r in self.reverted),
        ]
        if self.marked:
            said.append(
                f"Merging it sets {', '.join(self.marked)} to {TaskStatus.NEEDS_HUMAN} in the "
                f"plan, so no run takes {'it' if len(self.marked) == 1 else 'them'} again."
            )
        said += self.notes
        if self.pull_request:
            said.append(f"Pull request: {self.pull_request}")
        elif self.pushed:
            said.append(f"Pushed {self.branch}; open its pull request by hand.")
        else:
            said.append(
                f"Review it, then merge it into {self.base} (or run again with --push to open "
                "its pull request)."
            )
        return [mask(line) for line in said]


def rollback(
    repo_dir: Path | None,
    target: str,
    *,
    plan: Path | None = None,
    constraints: Path | None = None,
    push: bool = False,
    remote: str = DEFAULT_REMOTE,
) -> Rollback:
    """Make the rollback branch of `target` (a checkpoint, else a session id, else a task id),
    record it, and with `push` push it and open its pull request."""
    base = load_base(repo_dir, plan, constraints)
    repo = base.repo
    timezone = base.project.plan.settings.timezone
    tag_merges(repo, base.branch, timezone=timezone)  # so that the checkpoint named exists
    kind, target, undo = _resolve(repo, base, target.strip())
    started = now()
    trailers = {ROLLBACK_TRAILER: target, "Gitops-Agent-Version": __version__}
    tip = base.commit
    reverted: list[Reverted] = []
    for item in undo:
        result = revert(repo, item.commit, tip, mainline=item.mainline)
        if result.tree is None:
            raise UserError(
                f"reverting {item.commit[:7]} ({item.title}) conflicts with later changes on "
                f"{base.branch} in: {', '.join(result.conflicts)}. Nothing was written; revert "
                "it by hand.",
                str(repo.root),
            )
        if result.tree == repo.tree_of(tip):
            continue  # undone already (an earlier rollback, a person's revert)
        message = mask(f'Revert "{item.title}"\n\nThis reverts commit {item.commit}.')
        tip = commit_merge(repo, result.tree, [tip], message, trailers)
        reverted.append(Reverted(item, tip))
    if not reverted:
        raise UserError(
            f"nothing to revert for {kind.value} {target}: its changes are not on "
            f"{base.branch} any more",
            str(repo.root),
        )
    tasks = tuple(dict.fromkeys(t for r in reverted for t in r.undo.tasks))
    tip, marked = _mark_needs_human(repo, base, tip, tasks, target, trailers)
    branch = f"{ROLLBACK_PREFIX}{_slug(target)}-{started:%Y%m%d-%H%M%S}"
    repo.create_branch(branch, tip)  # never an existing one: the name is new or it is an error
    title = f"gitops-agent: roll back {target}"
    body = render(
        TEMPLATE,
        target=target,
        kind=kind.value,
        branch=branch,
        base=base.branch,
        base_commit=base.commit,
        reverted=[
            {"commit": r.undo.commit, "title": r.undo.title, "merge": r.undo.mainline > 0}
            for r in reverted
        ],
        tasks=list(marked),
        plan=base.project.plan.path,
    )
    offer = offer_branch(base, branch, title, body, push_it=push, remote=remote)
    pull = offer.pull.url if offer.pull is not None else None
    event = Event.create(
        EventKind.ROLLBACK,
        now(),
        f"Rollback of {kind.value} {target}: {_count(len(reverted))} reverted",
        branch=branch,
        commit=tip,
        tasks=tasks,
        lines=[f"Reverted `{r.undo.commit[:7]}` {r.undo.title}" for r in reverted],
        data={
            "target": target,
            "kind": kind.value,
            "base": base.branch,
            "reverted": [r.undo.commit for r in reverted],
            "pull_request": pull,
        },
    )
    record_event(repo, event, timezone=timezone)
    if offer.pushed:  # the memory went with the branch, before this event was in it
        publish_memory(repo, remote, timezone=timezone)
        push_checkpoints(repo, remote)
    return Rollback(
        target,
        kind,
        base.branch,
        base.commit,
        branch,
        tuple(reverted),
        tasks,
        marked,
        offer.pushed,
        pull,
        offer.notes,
    )


def _resolve(repo: Repo, base: Base, target: str) -> tuple[TargetKind, str, list[Undo]]:
    """What `target` names, in this order: a checkpoint, a session, a task; and the commits of
    the base to revert for it, newest first."""
    if not target:
        raise UserError("name a checkpoint, a session or a task to roll back")
    tags = checkpoint_tags(repo)
    name = target.removeprefix(TAG_PREFIX)
    if name in tags:
        return TargetKind.CHECKPOINT, checkpoint_name(name), _since(repo, base, name, tags[name])
    history = first_parent_history(repo, base.commit, limit=WALK_LIMIT)

    def of_session(commit: CommitInfo) -> bool:
        return commit.trailers.get(SESSION_TRAILER) == target

    def of_task(commit: CommitInfo) -> bool:
        return target in task_ids(commit.trailers.get(TASK_TRAILER, ""))

    for kind, wanted in ((TargetKind.SESSION, of_session), (TargetKind.TASK, of_task)):
        undo = _matching(repo, history, wanted)
        if undo:
            return kind, target, undo
    raise UserError(
        f"no checkpoint, session or task {target!r} on {base.branch} (checkpoints are tags "
        f"`checkpoint/<date>-<n>`; sessions and tasks are found by the `Session:` and "
        f"`Task-Id:` trailers of its last {WALK_LIMIT} commits)",
        str(repo.root),
    )


def _since(repo: Repo, base: Base, name: str, commit: str) -> list[Undo]:
    """Every first-parent commit of the base after the checkpoint, newest first."""
    shown = checkpoint_name(name)
    if commit == base.commit:
        raise UserError(f"nothing to revert: {base.branch} is at {shown}", str(repo.root))
    history = first_parent_history(repo, base.commit, stop={commit}, limit=WALK_LIMIT + 1)
    oldest = history[-1].info.parents if history else ()
    if not oldest or oldest[0] != commit:
        if len(history) > WALK_LIMIT:
            why = f"more than {WALK_LIMIT} commits before the tip"
        elif repo.is_merged(commit, base.commit):
            why = "not on its first-parent line (it came in on a merged branch)"
        else:
            why = "not in its history"
        raise UserError(f"{shown} is {why} of {base.branch}", str(repo.root))
    undo = []
    for commit_ in history:
        brought = list(reversed(brought_by(repo, commit_))) if commit_.is_merge else [commit_.info]
        undo.append(
            Undo(commit_.id, commit_.title, 1 if commit_.is_merge else 0, _tasks_of(brought))
        )
    return undo


def _matching(
    repo: Repo, history: list[HistoryCommit], wanted: Callable[[CommitInfo], bool]
) -> list[Undo]:
    """The base's commits `wanted` picks, newest first: a first-parent merge whose merged side
    is exactly such commits is reverted whole, else each such commit on its own."""
    undo: list[Undo] = []
    for commit in history:
        if not commit.is_merge:
            if wanted(commit.info):
                undo.append(Undo(commit.id, commit.title, 0, _tasks_of([commit.info])))
            continue
        brought = brought_by(repo, commit)
        chosen = [c for c in brought if len(c.parents) == 1 and wanted(c)]
        if chosen and len(chosen) == len(brought):
            undo.append(Undo(commit.id, commit.title, 1, _tasks_of(list(reversed(brought)))))
        else:
            undo += [Undo(c.id, _title(c), 0, _tasks_of([c])) for c in chosen]
    return undo


def _tasks_of(commits: list[CommitInfo]) -> tuple[str, ...]:
    """The tasks whose plan status `commits` (oldest first) set: by their work (`Task-Id:`), or
    by a mark (`Task-Status:`)."""
    tasks: dict[str, None] = {}
    for commit in commits:
        for task in task_ids(commit.trailers.get(TASK_TRAILER, "")):
            tasks.setdefault(task, None)
        marked = parse_status_trailer(commit.trailers.get(STATUS_TRAILER, ""))
        if marked is not None:
            tasks.setdefault(marked[0], None)
    return tuple(tasks)


def _mark_needs_human(
    repo: Repo, base: Base, tip: str, tasks: tuple[str, ...], target: str, trailers: dict[str, str]
) -> tuple[str, tuple[str, ...]]:
    """A last commit setting the `tasks` that the plan at `tip` still has to NEEDS_HUMAN; the
    new tip and the tasks it set."""
    plan_rel = base.project.plan.path
    data = repo.read_blob(tip, plan_rel)
    if data is None or not tasks:
        return tip, ()
    text = decode(data, plan_rel)
    plan = parse_plan(text, plan_rel)
    marked = []
    for task in tasks:
        found = plan.task(task)
        if found is None or found.status == TaskStatus.NEEDS_HUMAN:
            continue
        text = set_status(text, task, TaskStatus.NEEDS_HUMAN, plan_rel)
        marked.append(task)
    if not marked:
        return tip, ()
    tree = repo.replace_in_tree(repo.tree_of(tip), {plan_rel: text.encode()})
    message = mask(
        f"Mark {', '.join(marked)} as needing a person\n\nRolled back ({target}): merging this "
        f"sets their status in {plan_rel} to {TaskStatus.NEEDS_HUMAN}, so that no run takes "
        "them again until a person sets them back to READY."
    )
    return commit_merge(repo, tree, [tip], message, trailers), tuple(marked)


def _count(commits: int) -> str:
    return f"{commits} commit" if commits == 1 else f"{commits} commits"


def _title(commit: CommitInfo) -> str:
    return commit.message.strip().split("\n", 1)[0]


def _slug(target: str) -> str:
    """`target` as a part of a branch name: letters, digits, `_` and `-` only."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", target).strip("-")[:60].strip("-")
    return slug or "target"
