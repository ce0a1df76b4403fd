"""Whether each task may run, and why not: what `check` prints and `run` obeys (one rule set).

The rules themselves are pure (`preflight`); what they need to know about this machine (is an
agent configured, are the `Run:` programs there) is found out here and handed to them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gitops_agent.plan import Task
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
