"""What a session did: the records `run` prints, stores on autonomous/memory, and `report` reads."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gitops_agent.plan import Task

BRANCH_PREFIX = "autonomous/"  # every branch the tool makes is under it, and it writes no other
MEMORY_BRANCH = f"{BRANCH_PREFIX}memory"
INTEGRATION_PREFIX = f"{BRANCH_PREFIX}integration-"  # then the integration's id
SESSIONS_DIR = "state/sessions"  # on MEMORY_BRANCH: one <session-id>.json per session
MEMORY_DIR = "memory"  # on MEMORY_BRANCH: memory/YYYY-MM-DD.md, appended


class Outcome(enum.Enum):
    COMMITTED = "committed"
    ROLLED_BACK = "rolled_back"
    BLOCKED = "blocked"
    SKIPPED = "skipped"


class OutputOf(enum.StrEnum):
    """Whose output a failed task's `gate_output` is."""

    GATE = "gate"
    AGENT = "agent"
    COMMAND = "command"  # a `Run:` command


class Phase(enum.StrEnum):
    """What the running session is doing: the run state file (`status`) keeps the value, and
    `Listener.phase` hears the task phases (AGENT to COMMIT)."""

    STARTING = "starting"
    CHECKOUT = "checkout"
    BASELINE_GATE = "baseline gate"
    AGENT = "agent"
    COMMAND = "command"  # a `Run:` command, instead of an agent
    INSPECT = "inspect"
    GATE = "gate"
    COMMIT = "commit"


class FailOn(enum.Enum):
    """What makes `run --fail-on` exit with FAIL_ON_STATUS: for a CI that should go red."""

    ROLLED_BACK = "rolled-back"  # a task ran and its change was thrown away
    BLOCKED = "blocked"  # a task was refused before running
    ANY = "any"  # either of those

    def failed(self, outcomes: list[Outcome]) -> bool:
        wanted = {
            FailOn.ROLLED_BACK: {Outcome.ROLLED_BACK},
            FailOn.BLOCKED: {Outcome.BLOCKED},
            FailOn.ANY: {Outcome.ROLLED_BACK, Outcome.BLOCKED},
        }[self]
        return any(outcome in wanted for outcome in outcomes)


FAIL_ON_STATUS = 3  # not 1 (an internal failure) nor 2 (bad input): the run itself went fine


@dataclass(frozen=True, slots=True)
class TaskResult:
    id: str
    title: str
    outcome: Outcome
    reason: str  # one sentence: why it ended so ("" never: committed says what passed)
    commit: str | None = None
    attempts: int = 0
    duration: float = 0.0  # seconds spent on the task
    violations: tuple[str, ...] = ()  # the rules broken by the last attempt, one sentence each
    gate_output: str = ""  # the tail of the last failing gate's (or agent's) output
    output_of: OutputOf = OutputOf.GATE  # whose output `gate_output` is
    changed_files: tuple[str, ...] = ()  # of the committed change
    evidence: tuple[str, ...] = ()  # refs of the attempts kept (refs/gitops-agent/attempts/...)
    already_failing: tuple[str, ...] = ()  # gate failures of the base, not held against it
    needs_human: bool = False  # this session set the task's status to NEEDS_HUMAN
    # per-task and auto approval: the task's own branch (autonomous/<session>-<task>), and
    # the approval its commit carries; None for the session's branch (final)
    branch: str | None = None
    approval: str | None = None
    draft: str | None = None  # a rolled-back task's draft branch (on_failure: draft-pr)

    def to_contract(self) -> dict[str, Any]:
        """The task entry of `run --json`: the contract's fields, and the task's own branch
        where it has one (approval per-task or auto)."""
        entry: dict[str, Any] = {
            "id": self.id,
            "outcome": self.outcome.value,
            "reason": self.reason,
            "commit": self.commit,
            "attempts": self.attempts,
        }
        if self.branch is not None:
            entry["branch"] = self.branch
            entry["approval"] = self.approval
        if self.draft is not None:
            entry["draft"] = self.draft
        return entry

    @property
    def output_label(self) -> str:
        """How a text names `gate_output`: "Gate output", "Agent output", "Command output"."""
        return f"{self.output_of.capitalize()} output"

    def to_record(self) -> dict[str, Any]:
        return {
            **self.to_contract(),
            "title": self.title,
            "duration": round(self.duration, 3),
            "violations": list(self.violations),
            "gate_output": self.gate_output,
            "output_of": self.output_of.value,
            "changed_files": list(self.changed_files),
            "evidence": list(self.evidence),
            "already_failing": list(self.already_failing),
            "needs_human": self.needs_human,
            "branch": self.branch,
            "approval": self.approval,
            "draft": self.draft,
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> TaskResult:
        return cls(
            id=data["id"],
            title=data.get("title", ""),
            outcome=Outcome(data["outcome"]),
            reason=data.get("reason", ""),
            commit=data.get("commit"),
            attempts=int(data.get("attempts", 0)),
            duration=float(data.get("duration", 0.0)),
            violations=tuple(data.get("violations", ())),
            gate_output=data.get("gate_output", ""),
            output_of=OutputOf(str(data.get("output_of", OutputOf.GATE.value))),
            changed_files=tuple(data.get("changed_files", ())),
            evidence=tuple(data.get("evidence", ())),
            already_failing=tuple(data.get("already_failing", ())),
            needs_human=bool(data.get("needs_human", False)),
            branch=data.get("branch"),
            approval=data.get("approval"),
            draft=data.get("draft"),
        )


@dataclass(frozen=True, slots=True)
class SessionResult:
    session: str  # e.g. 20261123-021500-3f9a
    branch: str | None  # autonomous/<session>, None when nothing was committed
    base: str  # the base branch's name
    base_commit: str
    started: str  # ISO 8601, UTC
    finished: str
    agent: str | None  # preset name, "command", or None when only Run: tasks ran
    tasks: tuple[TaskResult, ...]
    stopped: str | None = None  # why the session ended early (limits, usage limit, base gate)
    pr_body: str | None = None  # path of the rendered PR description
    gate_failed_on_base: bool = False
    # How agents and gates were confined (a sentence); `unconfined` says when they were not.
    confinement: str = ""
    unconfined: bool = False
    # What the gate already failed on the base (tests, findings, commands): not held against
    # any task, and said in the report and the PR.
    base_failures: tuple[str, ...] = ()

    def to_contract(self) -> dict[str, Any]:
        """`run --json`: the contract's object, plus the PR description's path."""
        return {
            "session": self.session,
            "branch": self.branch,
            "tasks": [t.to_contract() for t in self.tasks],
            "pr_body": self.pr_body,
        }

    def to_record(self) -> dict[str, Any]:
        return {
            "session": self.session,
            "branch": self.branch,
            "base": self.base,
            "base_commit": self.base_commit,
            "started": self.started,
            "finished": self.finished,
            "agent": self.agent,
            "stopped": self.stopped,
            "pr_body": self.pr_body,
            "gate_failed_on_base": self.gate_failed_on_base,
            "confinement": self.confinement,
            "unconfined": self.unconfined,
            "base_failures": list(self.base_failures),
            "tasks": [t.to_record() for t in self.tasks],
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> SessionResult:
        return cls(
            session=data["session"],
            branch=data.get("branch"),
            base=data.get("base", ""),
            base_commit=data.get("base_commit", ""),
            started=data["started"],
            finished=data.get("finished", data["started"]),
            agent=data.get("agent"),
            tasks=tuple(TaskResult.from_record(t) for t in data.get("tasks", ())),
            stopped=data.get("stopped"),
            pr_body=data.get("pr_body"),
            gate_failed_on_base=bool(data.get("gate_failed_on_base", False)),
            confinement=str(data.get("confinement", "")),
            unconfined=bool(data.get("unconfined", False)),
            base_failures=tuple(data.get("base_failures", ())),
        )

    def count(self, outcome: Outcome) -> int:
        return sum(t.outcome is outcome for t in self.tasks)


class Listener:
    """What a session tells its caller while it runs (the CLI shows progress from it)."""

    def note(self, message: str) -> None:
        """Something a person should know (a leftover cleared, an uncommitted plan)."""

    def phase(self, task: Task, phase: Phase, attempt: int, attempts: int) -> None:
        """A task entered a phase: agent (or command), inspect, gate, commit."""

    def output(self, task_id: str, text: str) -> None:
        """The agent (or `Run:` command) of the task under way wrote `text` (any piece of it)."""

    def task_done(self, result: TaskResult) -> None:
        """A task reached its outcome."""
