"""`gitops-agent propose INTENT`: the agent, confined in a throw-away checkout of the base, answers
an intent with tasks in the plan's format; the tool reads them with its own parser, refuses
malformed output whole, and proposes the rest under Pending Approval on a branch of their own.

Nothing the agent writes is kept but what it prints: its checkout is removed when it exits.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_agent.agents import AgentResult, AgentSpec, require_installed, resolve_agent, run_agent
from gitops_agent.clock import now
from gitops_agent.errors import PlanError, UserError
from gitops_agent.files import decode, read_text, remove_tree
from gitops_agent.git import Workspace
from gitops_agent.mdblocks import split_lines
from gitops_agent.plan import QUEUE_TITLES, Queue, Task, TaskStatus, normalise_key, parse_plan
from gitops_agent.policy.masking import mask
from gitops_agent.project import Base, load_base
from gitops_agent.proposals import NewTask, Proposal, Proposer, catch_up, oneline, propose_tasks
from gitops_agent.render import render, visible
from gitops_agent.runner import Runner
from gitops_agent.terminal import strip_ansi

PROMPT = "propose-prompt.md.j2"
AGENT_OUTPUT = "agent output"  # how messages name what the agent printed
TASK_ID = "propose"  # GITOPS_AGENT_TASK_ID while it plans
INTENT_LIMIT = 300  # characters of the intent kept on a task's `Proposed:` line
PROPOSED_MARK = "(proposed by the agent)"
# Details a proposed task may not carry: those the tool writes itself, and those only the
# person approving a task may set (a shell command instead of an agent, who merges it, leave
# to change the tests, an approval). Its own `Status:` is dropped: the tool writes PENDING.
REFUSED_KEYS = ("proposed", "finding", "run", "approval", "changes tests", "auto approved")
_CUT = re.compile(r"\[\.\.\. \d+ bytes cut \.\.\.\]\n")
# A line that only opens or closes a code fence: agents often wrap their answer in one.
_FENCE_LINE = re.compile(r"^ {0,3}(?:`{3,}|~{3,})[^`]*$")


@dataclass(frozen=True, slots=True)
class Proposed:
    """What `propose` did: the tasks it added and where they wait for a person."""

    intent: str
    agent: str
    tasks: tuple[NewTask, ...]
    proposal: Proposal
    notes: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        said = [*self.notes]
        noun = "task" if len(self.tasks) == 1 else "tasks"
        said.append(
            f"proposed {len(self.tasks)} {noun} under {QUEUE_TITLES[Queue.PENDING]} on "
            f"{self.proposal.branch}:"
        )
        said += [f"  {task.id}: {visible(task.title)}" for task in self.tasks]
        if self.proposal.pull_request is not None:
            said.append(f"pull request: {self.proposal.pull_request}")
        elif not self.proposal.pushed:
            said.append(
                f"the branch is here only; review it (git show {self.proposal.branch}) and "
                "merge it, or run again with --push to open its pull request"
            )
        said += list(self.proposal.notes)
        return said

    def to_json(self) -> dict[str, Any]:
        return {
            "tasks": [
                {
                    "id": task.id,
                    "title": task.title,
                    "alignment": _number(task, "Alignment score"),
                    "estimated_lines": _number(task, "Estimated lines"),
                }
                for task in self.tasks
            ],
            "branch": self.proposal.branch,
            "commit": self.proposal.commit,
            "pull_request": self.proposal.pull_request,
        }


def _number(task: NewTask, key: str) -> int | None:
    value = dict(task.details).get(key, "")
    found = re.match(r"\d+", value)
    return int(found[0]) if found else None


def propose(
    repo: Path | None,
    intent: str | None,
    file: Path | None,
    *,
    plan: Path | None = None,
    constraints: Path | None = None,
    agent_command: str | None = None,
    push: bool = False,
) -> Proposed:
    """Ask the agent for tasks that carry out the intent; add them under Pending Approval on
    `autonomous/propose-<time>`. Anything wrong with the input or the agent's answer is a
    UserError, and then nothing is written."""
    wanted = _intent(intent, file)
    base = load_base(repo, plan, constraints)
    agent = _agent(base, agent_command)
    notes = [*base.project.notes, *catch_up(base, push=push)]
    ran = _ask(base, agent, wanted)
    tasks = tasks_from_output(ran.output, base, wanted)
    when = now()
    proposal = propose_tasks(
        base,
        tasks,
        by=Proposer.PROPOSE,
        when=when,
        context={"intent": oneline(wanted, 1000), "agent": agent.name},
        data={"intent": oneline(wanted, INTENT_LIMIT), "agent": agent.name},
        push=push,
    )
    return Proposed(wanted, agent.name, tasks, proposal, tuple(notes))


def _intent(intent: str | None, file: Path | None) -> str:
    if intent is not None and file is not None:
        raise UserError("give the intent as an argument or with --file, not both")
    if file is not None:
        text = read_text(file, str(file))
        if not text.strip():
            raise UserError("the intent is empty", str(file))
        return text.strip()
    if intent is None or not intent.strip():
        raise UserError(
            'the intent is empty: say what you want done, as in `gitops-agent propose "Add '
            'type hints to src/"`, or give a file with --file'
        )
    return intent.strip()


def _agent(base: Base, agent_command: str | None) -> AgentSpec:
    settings = base.project.plan.settings
    word = agent_command or settings.agent
    if not word:
        raise UserError(
            "no agent to ask: give --agent-command, or set `agent:` in the plan's front matter",
            base.project.plan.path,
        )
    agent = resolve_agent(word)
    from_plan = agent_command is None
    require_installed(
        agent,
        base.project.plan.path if from_plan else None,
        settings.line_of("agent") if from_plan else None,
    )
    return agent.with_turns(base.project.constraints.max_agent_turns)


def _ask(base: Base, agent: AgentSpec, intent: str) -> AgentResult:
    """Run the agent confined, as a session runs it, in a fresh checkout of the base that is
    removed afterwards; refuse (UserError) when it did not finish well."""
    project = base.project
    rules = project.constraints
    plan_rel = project.plan.path
    raw = base.repo.read_blob(base.commit, plan_rel)
    assert raw is not None  # load_base read it from there
    prompt = render(
        PROMPT,
        intent=intent,
        objective=project.plan.objective,
        plan_path=plan_rel,
        plan_text=decode(raw, plan_rel),
        taken=[task.id for task in project.plan.tasks],
        min_alignment=rules.min_alignment,
        max_lines=rules.max_estimated_lines,
        constraints_prose=rules.prose or "(no constraints document: the default rules apply)",
    )
    runner = Runner.create(rules, repo_root=base.repo.root)
    place = Path(tempfile.mkdtemp(prefix="gitops-agent-propose-"))
    try:
        checkout = Workspace(base.repo, place / "tree")
        checkout.reset(base.commit)
        ran = run_agent(
            agent,
            prompt,
            checkout.path,
            runner=runner,
            scratch=place / "scratch",
            task_id=TASK_ID,
            timeout=rules.task_timeout_minutes * 60.0,
            idle_timeout=rules.idle_timeout_minutes * 60.0 or None,
        )
    finally:
        remove_tree(place)
    _refuse_failed(ran, base)
    return ran


def _refuse_failed(ran: AgentResult, base: Base) -> None:
    rules = base.project.constraints
    if ran.rate_limit is not None:
        raise UserError(f"the agent hit its usage limit: {mask(ran.rate_limit.message)}")
    if ran.timed_out:
        raise UserError(
            f"the agent ran past its timeout ({rules.task_timeout_minutes:g} minutes, the "
            "constraints' task timeout) and was stopped; nothing was proposed"
        )
    if ran.idle:
        raise UserError(
            f"the agent was silent for {rules.idle_timeout_minutes:g} minutes and was stopped; "
            "nothing was proposed"
        )
    if ran.exit_code != 0:
        tail = "\n".join(mask(strip_ansi(ran.output)).rstrip().splitlines()[-10:])
        said = f"; the end of its output:\n{tail}" if tail else " and printed nothing"
        raise UserError(f"the agent exited with status {ran.exit_code}; nothing was proposed{said}")


def tasks_from_output(output: str, base: Base, intent: str) -> tuple[NewTask, ...]:
    """The tasks the agent printed, read by the plan's own parser and rewritten for the plan:
    status PENDING, the score and estimate marked as the agent's, the intent they answer.
    Malformed output is refused whole (UserError naming the line of the output)."""
    if _CUT.match(output):
        raise UserError(
            "the agent printed more than the tool keeps (its output was cut), so its tasks "
            "cannot all be read; nothing was proposed",
            AGENT_OUTPUT,
        )
    parsed = read_tasks(strip_ansi(output))
    plan = base.project.plan
    taken = {task.id: task for task in plan.tasks}
    proposed_line = oneline(intent, INTENT_LIMIT)
    found: list[NewTask] = []
    for task in parsed:
        clash = taken.get(task.id)
        if clash is not None:
            raise UserError(
                f"task `{task.id}` is already in the plan ({plan.path}:{clash.line}); nothing "
                "was proposed",
                AGENT_OUTPUT,
                task.line - 1,  # the line of the output, not of the heading we put above it
            )
        found.append(_rewritten(task, proposed_line))
    return tuple(found)


def read_tasks(output: str) -> tuple[Task, ...]:
    """Every task in the agent's output, parsed as if under a Pending Approval heading; lines
    that only open or close a code fence are read as blank. UserError for what is malformed."""
    lines = ["" if _FENCE_LINE.match(line) else line for line in split_lines(output)]
    text = f"## {QUEUE_TITLES[Queue.PENDING]}\n" + "\n".join(lines) + "\n"
    try:
        plan = parse_plan(text, AGENT_OUTPUT)
    except PlanError as err:
        line = err.line - 1 if err.line is not None else None  # the heading we added
        raise UserError(
            f"the agent's output was refused: {err.message}; nothing was proposed",
            AGENT_OUTPUT,
            line,
        ) from None
    if plan.settings.lines:  # cannot happen after our heading, but a plan setting is no task
        raise UserError("the agent's output has front matter; nothing was proposed", AGENT_OUTPUT)
    if not plan.tasks:
        raise UserError(
            "the agent proposed no task (a task is a line `- **[ID]** Title` followed by "
            "indented `- Key: value` lines); nothing was proposed",
            AGENT_OUTPUT,
        )
    for task in plan.tasks:
        line = task.line - 1
        for detail in task.details:
            if normalise_key(detail.key) in REFUSED_KEYS:
                raise UserError(
                    f"task `{task.id}` sets `{detail.key}:`, which a proposed task may not "
                    "(the tool writes it, or the person who approves the task); nothing was "
                    "proposed",
                    AGENT_OUTPUT,
                    detail.line - 1,
                )
        if task.alignment is None:
            raise UserError(
                f"task `{task.id}` has no `Alignment score:`; nothing was proposed",
                AGENT_OUTPUT,
                line,
            )
        if task.estimated_lines is None:
            raise UserError(
                f"task `{task.id}` has no `Estimated lines:`; nothing was proposed",
                AGENT_OUTPUT,
                line,
            )
    return plan.tasks


def _rewritten(task: Task, intent: str) -> NewTask:
    """The task as it goes into the plan: the agent's details in its order, the score and
    estimate as numbers marked as proposed, its own Status dropped for PENDING, the intent."""
    details: list[tuple[str, str]] = []
    for detail in task.details:
        key = normalise_key(detail.key)
        if key == "status":
            continue
        if key == "alignment score":
            details.append(("Alignment score", f"{task.alignment}/100 {PROPOSED_MARK}"))
        elif key == "estimated lines":
            details.append(("Estimated lines", f"{task.estimated_lines} {PROPOSED_MARK}"))
        else:
            details.append((detail.key, detail.value))
    details.append(("Status", TaskStatus.PENDING.value))
    details.append(("Proposed", intent))
    return NewTask(task.id, task.title, tuple(details))
