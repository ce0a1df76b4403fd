"""Tasks the tool proposes for the plan (`propose`, `scan`): added under Pending Approval, never
Ready, on a branch of their own, for a person to approve by moving them.

Both commands share this path: the plan as committed on the base, the tasks inserted at the end
of its Pending Approval section, the result parsed again, one commit that changes the plan
alone, a PROPOSED event on autonomous/memory, and the branch offered as a pull request.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gitops_agent import __version__
from gitops_agent.errors import PlanError, UserError
from gitops_agent.events import Event, EventKind
from gitops_agent.files import decode
from gitops_agent.git import RefMovedError
from gitops_agent.git.remote import DEFAULT_REMOTE, fetch_autonomous, remote_url
from gitops_agent.mdblocks import blocks, split_lines
from gitops_agent.memory import catch_up_memory, publish_memory, record_event
from gitops_agent.plan import QUEUE_HEADINGS, QUEUE_TITLES, Queue, TaskStatus, parse_plan
from gitops_agent.policy.masking import mask
from gitops_agent.project import Base
from gitops_agent.publication import offer_branch
from gitops_agent.render import md_prose, render
from gitops_agent.results import BRANCH_PREFIX, MEMORY_BRANCH
from gitops_agent.yamlmap import split_front_matter

TEMPLATE = "proposal-pr.md.j2"
PROPOSED_BY_TRAILER = "Proposed-By"
PENDING_WORDS = next(words for words, queue in QUEUE_HEADINGS if queue is Queue.PENDING)


class Proposer(enum.StrEnum):
    """Which command proposed: it names the branch (`autonomous/<it>-...`) and the trailer."""

    PROPOSE = "propose"
    SCAN = "scan"

    @property
    def branch_prefix(self) -> str:
        return f"{BRANCH_PREFIX}{self.value}-"


@dataclass(frozen=True, slots=True)
class NewTask:
    """A task to add to the plan. Its text is untrusted (an agent's, a linter's): it is kept
    raw here and escaped where it is written, so it can add no markdown structure."""

    id: str
    title: str
    details: tuple[tuple[str, str], ...]  # (key, value), in the order they are written

    def markdown(self) -> str:
        """The task as the plan's format writes it: a task line and indented detail lines."""
        lines = [f"- **[{self.id}]** {md_prose(self.title)}"]
        lines += [f"  - {key}: {md_prose(value)}" for key, value in self.details]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class Proposal:
    """Where proposed tasks went: their branch and commit, and its pull request if it got one."""

    branch: str
    commit: str
    tasks: tuple[str, ...]
    pushed: bool
    pull_request: str | None
    notes: tuple[str, ...] = ()


def add_to_plan(text: str, path: str, tasks: Sequence[NewTask]) -> str:
    """`text` with `tasks` at the end of its Pending Approval section (a `## Pending Approval`
    heading added at the end when it has none); every other byte stays as written. An id the
    plan already has is refused (PlanError naming its line); the result is parsed again."""
    plan = parse_plan(text, path)
    seen: set[str] = set()
    for task in tasks:
        clash = plan.task(task.id)
        if clash is not None:
            raise PlanError(f"task `{task.id}` is already in the plan", path, clash.line)
        if task.id in seen:
            raise PlanError(f"task `{task.id}` is proposed twice", path)
        seen.add(task.id)
    lines = split_lines(text, keepends=True)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    new_blocks = [task.markdown().replace("\n", newline) for task in tasks]
    chunk = newline.join(new_blocks)
    at = _end_of_pending(text, path, lines)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += newline
    if at is None:  # no Pending Approval heading: one at the end
        lines += [newline, f"## {QUEUE_TITLES[Queue.PENDING]}{newline}", newline, chunk]
    else:
        after = lines[at:]
        lines[at:] = [newline, chunk]
        if after and after[0].strip():
            lines.append(newline)
        lines += after
    result = "".join(lines)
    _check_landed(result, path, len(plan.tasks), tasks)
    return result


def _end_of_pending(text: str, path: str, lines: list[str]) -> int | None:
    """The index of the line after the last non-blank line of the first Pending Approval
    section (which ends at the next heading of its level or higher), or None without one."""
    _front, body = split_front_matter(text, path, PlanError)
    headings = sorted(blocks(body).headings.items())
    start = next(
        ((line, level) for line, (level, title) in headings if PENDING_WORDS in title.lower()),
        None,
    )
    if start is None:
        return None
    heading_line, level = start
    end = next(
        (line for line, (lvl, _t) in headings if line > heading_line and lvl <= level),
        len(lines) + 1,
    )
    last = heading_line - 1  # 0-based index of the heading line
    for index in range(heading_line, end - 1):
        if lines[index].strip():
            last = index
    return last + 1


def _check_landed(text: str, path: str, before: int, tasks: Sequence[NewTask]) -> None:
    """Parse the new plan: every task there before, and each new one under Pending Approval
    with status PENDING; else nothing is written."""
    try:
        plan = parse_plan(text, path)
    except PlanError as err:
        raise PlanError(f"the proposed tasks would make the plan invalid: {err}", path) from None
    for task in tasks:
        found = plan.task(task.id)
        if found is None or found.queue is not Queue.PENDING:
            raise PlanError(
                f"task `{task.id}` would not land under {QUEUE_TITLES[Queue.PENDING]} (is the "
                "end of the plan inside a code block or an HTML comment?)",
                path,
            )
        if found.status is not TaskStatus.PENDING:
            raise PlanError(f"task `{task.id}` would not have the status PENDING", path)
    if len(plan.tasks) != before + len(tasks):
        raise PlanError("adding the proposed tasks would change the plan's other tasks", path)


def catch_up(base: Base, *, push: bool) -> list[str]:
    """Read what the remote knows before judging what is new: with `push`, its autonomous
    branches are fetched; where a remote is set, the memory branch joins its copy (as `run`
    does). Returns notes for people."""
    repo = base.repo
    if remote_url(repo, DEFAULT_REMOTE) is None:
        return []
    if push:
        fetch_autonomous(repo, DEFAULT_REMOTE)
    try:
        catch_up_memory(repo, DEFAULT_REMOTE, timezone=base.project.plan.settings.timezone)
    except RefMovedError as err:
        return [f"{MEMORY_BRANCH} is left as it is for now ({err})."]
    return []


def record(base: Base, event: Event) -> None:
    record_event(base.repo, event, timezone=base.project.plan.settings.timezone)


def publish_records(base: Base, *, push: bool) -> None:
    """Push the memory branch (with `push`), where no branch is offered that would push it."""
    if push and remote_url(base.repo, DEFAULT_REMOTE) is not None:
        publish_memory(base.repo, DEFAULT_REMOTE, timezone=base.project.plan.settings.timezone)


def propose_tasks(
    base: Base,
    tasks: Sequence[NewTask],
    *,
    by: Proposer,
    when: datetime,
    context: Mapping[str, Any],
    data: Mapping[str, Any],
    push: bool,
    also_record: Sequence[Event] = (),
) -> Proposal:
    """Commit the plan with `tasks` added on a new branch from the base commit, record a
    PROPOSED event (with `data`) and the events of `also_record`, then offer the branch as a
    pull request (`context`: what the PR description says about where the tasks came from)."""
    repo = base.repo
    plan_rel = base.project.plan.path
    raw = repo.read_blob(base.commit, plan_rel)
    if raw is None:  # load_base read it from there a moment ago
        raise UserError(f"no plan committed on {base.branch}", plan_rel)
    updated = add_to_plan(decode(raw, plan_rel), plan_rel, tasks)
    ids = tuple(task.id for task in tasks)
    branch = _free_branch(base, f"{by.branch_prefix}{when:%Y%m%d-%H%M%S}")
    tree = repo.replace_in_tree(repo.tree_of(base.commit), {plan_rel: updated.encode("utf-8")})
    noun = "task" if len(ids) == 1 else "tasks"
    message = mask(
        f"Propose {len(ids)} {noun} for {QUEUE_TITLES[Queue.PENDING]} ({by.value})\n\n"
        f"Adds {', '.join(ids)} to {plan_rel}, under {QUEUE_TITLES[Queue.PENDING]} with the "
        "status PENDING. A person approves a task by moving it under Ready for Autonomous "
        "Execution and setting its status to READY."
    )
    trailers = {PROPOSED_BY_TRAILER: by.value, "Gitops-Agent-Version": __version__}
    repo.create_branch(branch, base.commit)
    commit = repo.commit_tree(branch, tree, base.commit, message, trailers)
    title = f"Proposed {len(ids)} {noun} for {QUEUE_TITLES[Queue.PENDING]} ({by.value})"
    event = Event.create(
        EventKind.PROPOSED,
        when,
        title,
        branch=branch,
        commit=commit,
        tasks=ids,
        lines=[f"{task.id}: {task.title}" for task in tasks],
        data={"by": by.value, **data},
    )
    for each in (event, *also_record):
        record(base, each)
    body = pr_body(base, tasks, by=by, context=context)
    offered = offer_branch(base, branch, f"gitops-agent: {title.lower()}", body, push_it=push)
    url = offered.pull.url if offered.pull is not None else None
    return Proposal(branch, commit, ids, offered.pushed, url, offered.notes)


def pr_body(
    base: Base, tasks: Sequence[NewTask], *, by: Proposer, context: Mapping[str, Any]
) -> str:
    """The proposal's pull-request description (templates/proposal-pr.md.j2)."""
    return render(
        TEMPLATE,
        by=by.value,
        tasks=tasks,
        base=base.branch,
        base_commit=base.commit,
        plan=base.project.plan.path,
        version=__version__,
        **context,
    )


def _free_branch(base: Base, name: str) -> str:
    """`name`, or `name-2`, `name-3`...: two proposals in the same second get two branches."""
    candidate, number = name, 1
    while base.repo.branch_tip(candidate) is not None:
        number += 1
        candidate = f"{name}-{number}"
    return candidate


def oneline(text: str, limit: int) -> str:
    """`text` on one line, at most `limit` characters (an ellipsis says it was cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
