"""`gitops-agent scan`: the plan's `scan:` commands, run confined on a fresh checkout of the base
as the gate runs, and each new `path:line: message` finding proposed as a Pending task.

A finding is known by its fingerprint (`gate.findings`: it ignores the line the finding sits
on), so each is proposed once: not while its task waits on a branch, nor once it is in the plan,
nor after it was fixed or its proposal closed (every fingerprint seen stays in the memory).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_agent.clock import now
from gitops_agent.errors import PlanError, UserError
from gitops_agent.events import Event, EventKind
from gitops_agent.files import remove_tree
from gitops_agent.gate import Gate, GateCommand
from gitops_agent.gate.findings import FINGERPRINT_CHARS, Finding
from gitops_agent.gate.run import CommandRun, run_command
from gitops_agent.gate.verdict import tree_lines
from gitops_agent.git import Workspace
from gitops_agent.git.remote import DEFAULT_REMOTE, remote_branches
from gitops_agent.memory import load_events
from gitops_agent.plan import DETAIL_RE, QUEUE_TITLES, Plan, Queue, TaskStatus, parse_plan
from gitops_agent.project import Base, load_base
from gitops_agent.proposals import (
    NewTask,
    Proposal,
    Proposer,
    catch_up,
    oneline,
    propose_tasks,
    publish_records,
    record,
)
from gitops_agent.render import visible
from gitops_agent.runner import Runner

FINDING_KEY = "Finding"  # the detail that holds a scan task's fingerprint
ID_PREFIX = "scan-"
ID_CHARS = (8, 12, FINGERPRINT_CHARS)  # of the fingerprint in a task id: more on a clash
TITLE_LIMIT = 100  # characters of a finding's message in its task's title
_FINGERPRINT = re.compile(rf"\b[0-9a-f]{{{FINGERPRINT_CHARS}}}\b")
_EXIT_NOTE = re.compile(r"^\[(?:exit status -?\d+|stopped: .*)\]$")  # what run_command appends


@dataclass(frozen=True, slots=True)
class Found:
    """A finding and the `scan:` command that printed it."""

    finding: Finding
    command: str

    def to_record(self) -> dict[str, Any]:
        f = self.finding
        return {
            "fingerprint": f.fingerprint,
            "path": f.path,
            "line": f.line,
            "message": f.message,
            "command": self.command,
        }


@dataclass(frozen=True, slots=True)
class Scanned:
    """What `scan` found, which findings were new (with their task ids), and where they went."""

    base: str
    commands: tuple[tuple[str, int], ...]  # (command, how many findings it printed)
    found: tuple[Found, ...]
    new: tuple[tuple[str, Found], ...]  # (task id, finding), in the order found
    problems: tuple[str, ...]  # commands that failed without a finding, or ran too long
    proposal: Proposal | None
    notes: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        said = [*self.notes]
        said += [f"{command}: {_count(count, 'finding')}" for command, count in self.commands]
        said += self.problems
        if not self.new:
            said.append(
                f"nothing new: every finding on {self.base} was proposed before (no branch)"
                if self.found
                else f"no finding on {self.base} (no branch)"
            )
            return said
        assert self.proposal is not None
        said.append(
            f"{_count(len(self.new), 'new finding')} proposed under "
            f"{QUEUE_TITLES[Queue.PENDING]} on {self.proposal.branch}:"
        )
        for task_id, found in self.new:
            f = found.finding
            said.append(visible(f"  {task_id}: {f.path}:{f.line}: {f.message}"))
        if self.proposal.pull_request is not None:
            said.append(f"pull request: {self.proposal.pull_request}")
        elif not self.proposal.pushed:
            said.append(
                "the branch is here only; merge it, or run again with --push to open its "
                "pull request"
            )
        said += self.proposal.notes
        return said

    def to_json(self) -> dict[str, Any]:
        return {
            "findings": len(self.found),
            "new": [
                {
                    "id": task_id,
                    "fingerprint": found.finding.fingerprint,
                    "path": found.finding.path,
                    "line": found.finding.line,
                    "message": found.finding.message,
                }
                for task_id, found in self.new
            ],
            "branch": self.proposal.branch if self.proposal is not None else None,
            "pull_request": self.proposal.pull_request if self.proposal is not None else None,
        }


def _count(number: int, word: str) -> str:
    return f"{number} {word}{'' if number == 1 else 's'}"


def scan(
    repo: Path | None,
    *,
    plan: Path | None = None,
    constraints: Path | None = None,
    push: bool = False,
) -> Scanned:
    """Run every `scan:` command on the base; propose each finding not known before as a
    Pending task on `autonomous/scan-<time>` (no branch when nothing is new)."""
    base = load_base(repo, plan, constraints)
    project = base.project
    commands = project.plan.settings.scan
    if not commands:
        raise UserError(
            "the plan has no `scan:` commands: add to its front matter a command (or a list "
            "of them) that prints `path:line: message` findings, such as "
            "`scan: ruff check --output-format=concise .` or "
            '`scan: ["mypy --no-error-summary src", "ruff check --output-format=concise ."]` '
            "(they run confined and offline, as the gate does)",
            project.plan.path,
        )
    notes = [*project.notes, *catch_up(base, push=push)]
    runs = run_scans(base, commands)
    found = tuple(Found(f, run.shown) for run in runs for f in run.findings)
    problems = tuple(p for run in runs if (p := _problem(run, base)) is not None)
    new = _new(found, known_fingerprints(base), {task.id for task in project.plan.tasks})
    when = now()
    counts = tuple((run.shown, len(run.findings)) for run in runs)
    scanned = Event.create(
        EventKind.SCANNED,
        when,
        f"Scanned {base.branch}: {_count(len(found), 'finding')}, {len(new)} new",
        commit=base.commit,
        tasks=[task_id for task_id, _found in new],
        lines=[*(f"`{c}`: {_count(n, 'finding')}" for c, n in counts), *problems],
        data={
            "findings": [f.to_record() for f in found],
            "new": [f.finding.fingerprint for _id, f in new],
            "commands": list(commands),
            "problems": list(problems),
        },
    )
    proposal = None
    if new:
        proposal = propose_tasks(
            base,
            [finding_task(task_id, f) for task_id, f in new],
            by=Proposer.SCAN,
            when=when,
            context={"commands": list(commands), "findings": len(found)},
            data={"fingerprints": [f.finding.fingerprint for _id, f in new]},
            push=push,
            also_record=[scanned],
        )
    else:
        record(base, scanned)
        publish_records(base, push=push)
    return Scanned(base.branch, counts, found, tuple(new), problems, proposal, tuple(notes))


def run_scans(base: Base, commands: Sequence[str]) -> list[CommandRun]:
    """Each command, confined as a gate command is, on a fresh checkout of the base commit
    (outside the repository, removed afterwards); findings parsed as the gate parses them."""
    repo = base.repo
    rules = base.project.constraints
    runner = Runner.create(rules, repo_root=repo.root)
    source_line = tree_lines(repo, repo.tree_of(base.commit))
    place = Path(tempfile.mkdtemp(prefix="gitops-agent-scan-"))
    runs: list[CommandRun] = []
    try:
        checkout = Workspace(repo, place / "tree")
        for command in commands:
            checkout.reset(base.commit)  # what an earlier command left is gone
            entry = GateCommand(command, command, findings=True)
            runs.append(
                run_command(
                    Gate((entry,), None, "`scan:` in the plan's front matter"),
                    entry,
                    checkout.path,
                    timeout=rules.task_timeout_minutes * 60.0,
                    runner=runner,
                    scratch=place / "scratch",
                    source_line=source_line,
                )
            )
            if runner.gate_leaves_no_trace:
                checkout.untouched()
    finally:
        remove_tree(place)
    return runs


def _problem(run: CommandRun, base: Base) -> str | None:
    """Why a command's result says nothing about the base: it ran too long, or it failed
    without printing one finding (it did not run, or does not print `path:line: message`)."""
    if run.timed_out:
        minutes = base.project.constraints.task_timeout_minutes
        return f"{run.shown}: ran past its timeout ({minutes:g} minutes) and was stopped"
    if run.findings or run.exit_code == 0:
        return None
    said = [
        line.strip()
        for line in run.output.splitlines()
        if line.strip() and not _EXIT_NOTE.match(line.strip())
    ]
    last = f": {said[-1]}" if said else " and printed nothing"
    return (
        f"{run.shown}: exited with status {run.exit_code} without a `path:line: message` "
        f"finding{last}"
    )


def _new(found: Sequence[Found], known: set[str], taken: set[str]) -> list[tuple[str, Found]]:
    """The findings whose fingerprints are not known, once each, with a task id the plan
    does not use."""
    seen = set(known)
    ids = set(taken)
    new: list[tuple[str, Found]] = []
    for each in found:
        fingerprint = each.finding.fingerprint
        if fingerprint in seen:
            continue
        seen.add(fingerprint)
        task_id = _task_id(fingerprint, ids)
        ids.add(task_id)
        new.append((task_id, each))
    return new


def _task_id(fingerprint: str, taken: set[str]) -> str:
    for chars in ID_CHARS:
        candidate = f"{ID_PREFIX}{fingerprint[:chars]}"
        if candidate not in taken:
            return candidate
    number = 2
    while f"{ID_PREFIX}{fingerprint}-{number}" in taken:
        number += 1
    return f"{ID_PREFIX}{fingerprint}-{number}"


def finding_task(task_id: str, found: Found) -> NewTask:
    """A Pending task to fix one finding; its `Finding:` line is how later scans know it."""
    f = found.finding
    return NewTask(
        task_id,
        f"{oneline(f.message, TITLE_LIMIT)} (`{f.path}`)",
        (
            (FINDING_KEY, f.fingerprint),
            ("Where", f"`{f.path}:{f.line}`"),
            ("Found by", f"`{found.command}`"),
            ("Status", TaskStatus.PENDING.value),
            ("Tests defined", "⏳"),
        ),
    )


def known_fingerprints(base: Base) -> set[str]:
    """The fingerprints proposed or seen before: in the plan on the base, in the plan of every
    unmerged scan branch (here and on origin, as last fetched), and in earlier scans' and
    proposals' events on the memory branch."""
    repo = base.repo
    plan_rel = base.project.plan.path
    known = in_plan(base.project.plan)
    prefix = Proposer.SCAN.branch_prefix
    tips = [
        tip
        for branches in (repo.autonomous_branches(), remote_branches(repo, DEFAULT_REMOTE))
        for name, tip in branches.items()
        if name.startswith(prefix)
    ]
    for tip in dict.fromkeys(tips):
        if repo.is_merged(tip, base.commit):
            continue  # what it proposed is in the base's plan (or was taken out there)
        data = repo.read_blob(tip, plan_rel)
        if data is not None:
            known |= in_text(data.decode("utf-8", "replace"), plan_rel)
    for event in load_events(repo):
        known |= _in_event(event)
    return known


def in_plan(plan: Plan) -> set[str]:
    """The fingerprints on the `Finding:` lines of the plan's tasks."""
    found: set[str] = set()
    for task in plan.tasks:
        detail = task.detail(FINDING_KEY)
        if detail is not None:
            found.update(_FINGERPRINT.findall(detail.value))
    return found


def in_text(text: str, path: str) -> set[str]:
    """`in_plan` of a plan's text; where it does not parse (a person edits the branch), every
    `- Finding:` line counts."""
    try:
        return in_plan(parse_plan(text, path))
    except PlanError:
        found: set[str] = set()
        for line in text.splitlines():
            match = DETAIL_RE.match(line)
            if match is not None and match["key"].strip().lower() == FINDING_KEY.lower():
                found.update(_FINGERPRINT.findall(match["value"]))
        return found


def _in_event(event: Event) -> set[str]:
    """Every fingerprint an earlier scan saw or proposed (a record that is not as written
    here contributes what can be read of it)."""
    data = event.data
    values: list[object] = []
    if event.kind is EventKind.SCANNED:
        values += [f.get("fingerprint") for f in _list(data.get("findings")) if isinstance(f, dict)]
        values += _list(data.get("new"))
    elif event.kind is EventKind.PROPOSED:
        values += _list(data.get("fingerprints"))
    return {v for v in values if isinstance(v, str) and _FINGERPRINT.fullmatch(v)}


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []
