"""Whether each task may run, and why not: what `check` prints and `run` obeys (one rule set).

The rules themselves are pure (`preflight`); what they need to know about this machine (is an
agent configured, are the `Run:` programs there) is found out here and handed to them.
"""

from __future__ import annotations

import enum
import os
import shutil
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gitops_agent.plan import Queue, Task, TaskStatus
from gitops_agent.policy.preflight import ProgramLookup, preflight, run_program
from gitops_agent.project import Project
from gitops_agent.sandbox import agent_environment


@dataclass(frozen=True, slots=True)
class Verdict:
    task: Task
    reasons: tuple[str, ...]

    @property
    def eligible(self) -> bool:
        return not self.reasons


def verdicts(
    project: Project,
    agent_command: str | None = None,
    *,
    programs: ProgramLookup | None = None,
    has_gate: bool | None = None,
) -> list[Verdict]:
    """A verdict for every task of the plan, in plan order.

    `programs`: where the `Run:` programs were found; by default they are looked for here, as
    `look_up_programs` does with this process's environment. `has_gate`: see `preflight`.
    """
    has_agent = bool(agent_command or project.plan.settings.agent)
    if programs is None:
        programs = look_up_programs(project)
    constraints = project.constraints
    return [
        Verdict(
            task,
            tuple(
                str(v)
                for v in preflight(
                    task, constraints, has_agent=has_agent, programs=programs, has_gate=has_gate
                )
            ),
        )
        for task in project.plan.tasks
    ]


def run_path(project: Project, environ: Mapping[str, str]) -> str:
    """The PATH a `Run:` command of `project` gets, as the runner builds its environment."""
    # HOME and TMPDIR are the command's own scratch directories; they do not change its PATH.
    env = agent_environment(
        environ,
        home=Path(os.devnull),
        tmp=Path(os.devnull),
        preset_names=(),
        listed=project.constraints.agent_env,
        extra={},
    )
    return env["PATH"]


def look_up_programs(project: Project, environ: Mapping[str, str] | None = None) -> ProgramLookup:
    """Look for every `Run:` program of the plan where its command will: a name on the PATH the
    command gets, a path as an executable file (relative ones from the repository root)."""
    path = run_path(project, os.environ if environ is None else environ)
    wanted: set[str] = set()
    for task in project.plan.tasks:
        if task.run is None:
            continue
        try:
            program = run_program(task.run)
        except ValueError:
            continue  # the rule says the command does not parse
        if program is not None:
            wanted.add(program)
    missing = frozenset(p for p in wanted if not _found(p, path, project.root))
    return ProgramLookup(path, missing)


def _found(program: str, path: str, root: Path) -> bool:
    if "/" not in program:
        return shutil.which(program, path=path) is not None
    target = root / program  # an absolute path stays itself
    return target.is_file() and os.access(target, os.X_OK)


class CountedQueue(enum.StrEnum):
    """The queue a task counts in, in every view: its heading's `Queue`, except that a DONE task
    counts as done whatever its heading. The values are what the JSON and the page show."""

    READY = Queue.READY.value
    PENDING = Queue.PENDING.value
    NOT_READY = Queue.NOT_READY.value
    DONE = "done"


@dataclass(frozen=True, slots=True)
class QueueStats:
    """The plan's tasks counted one way for every view (check, status, report, the page):
    each task in one queue, and of the eligible ones, those whose result awaits review."""

    ready: int  # under the Ready heading and not DONE
    pending: int
    not_ready: int
    done: int
    eligible: int  # passes every pre-flight rule (what `check` says yes to)
    awaiting: int = 0  # eligible, but its result already awaits review: it does not run

    @property
    def can_run(self) -> int:
        """Eligible and not awaiting review: what the next run chooses from (up to its limit)."""
        return self.eligible - self.awaiting

    def to_json(self) -> dict[str, int]:
        return {
            "ready": self.ready,
            "pending": self.pending,
            "not_ready": self.not_ready,
            "done": self.done,
            "eligible": self.eligible,
            "awaiting_review": self.awaiting,
            "can_run": self.can_run,
        }


def queue_name(task: Task) -> CountedQueue:
    """The queue `task` counts in: a DONE task counts as done whatever its heading."""
    if task.status is TaskStatus.DONE:
        return CountedQueue.DONE
    if task.queue is Queue.READY:
        return CountedQueue.READY
    if task.queue is Queue.PENDING:
        return CountedQueue.PENDING
    return CountedQueue.NOT_READY


def queue_stats(verdicts: Sequence[Verdict], awaiting: Collection[str] = ()) -> QueueStats:
    counts = Counter(queue_name(verdict.task) for verdict in verdicts)
    eligible = [v.task.id for v in verdicts if v.eligible]
    return QueueStats(
        ready=counts[CountedQueue.READY],
        pending=counts[CountedQueue.PENDING],
        not_ready=counts[CountedQueue.NOT_READY],
        done=counts[CountedQueue.DONE],
        eligible=len(eligible),
        awaiting=sum(t in awaiting for t in eligible),
    )
