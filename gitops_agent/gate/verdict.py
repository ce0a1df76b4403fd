"""The gate on one tree: every command run in order, each judged against the base's run of the
same command, stopping at the first that fails for something the change introduced.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_agent.gate import Gate, GateCommand
from gitops_agent.gate.judge import judge
from gitops_agent.gate.run import CommandRun, SourceLine, run_command
from gitops_agent.git import Repo
from gitops_agent.runner import Runner


@dataclass(frozen=True, slots=True)
class GateRun:
    """Every command's evidence on one tree: the baseline a session judges its tasks against."""

    tree: str
    gate_key: str
    runs: tuple[CommandRun, ...]

    def to_record(self) -> dict[str, Any]:
        return {
            "tree": self.tree,
            "gate": self.gate_key,
            "runs": [run.to_record() for run in self.runs],
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> GateRun:
        runs = tuple(CommandRun.from_record(run) for run in data["runs"])
        return cls(str(data["tree"]), str(data["gate"]), runs)


@dataclass(frozen=True, slots=True)
class GateResult:
    passed: bool
    command: str | None = None  # the command that failed
    failure: str = ""  # one sentence, "" when it passed
    details: tuple[str, ...] = ()  # the failing tests, new findings or rules, one line each
    output: str = ""  # the tail of the failing command's output ("" when it passed)
    duration: float = 0.0
    already_failing: tuple[str, ...] = ()  # failures that were already on the base
    runs: tuple[CommandRun, ...] = ()
    no_evidence: bool = False  # it failed for lack of evidence: no report, or no tests run


def tree_lines(repo: Repo, tree: str) -> SourceLine:
    """(path, line) -> that line of a file of `tree`, for findings' fingerprints."""

    @functools.lru_cache(maxsize=256)
    def lines(path: str) -> list[str] | None:
        data = repo.read_tree_blob(tree, path)
        return None if data is None else data.decode("utf-8", "replace").splitlines()

    def line(path: str, number: int) -> str | None:
        found = lines(path)
        return found[number - 1] if found is not None and 0 < number <= len(found) else None

    return line


def _runs(
    gate: Gate,
    cwd: Path,
    *,
    timeout: float,
    runner: Runner,
    scratch: Path,
    source_line: SourceLine,
) -> Iterator[tuple[GateCommand, CommandRun]]:
    """Each command in order, with what is left of `timeout`; the caller may stop early."""
    spent = 0.0
    for command in gate.commands:
        run = run_command(
            gate,
            command,
            cwd,
            timeout=max(timeout - spent, 1.0),
            runner=runner,
            scratch=scratch,
            source_line=source_line,
        )
        spent += run.duration
        yield command, run


def run_baseline(
    gate: Gate,
    cwd: Path,
    *,
    tree: str,
    timeout: float,
    runner: Runner,
    scratch: Path,
    source_line: SourceLine,
) -> GateRun:
    """Every command on the base tree in `cwd`, failures and all: what the base already fails."""
    runs = _runs(
        gate, cwd, timeout=timeout, runner=runner, scratch=scratch, source_line=source_line
    )
    return GateRun(tree, gate.key, tuple(run for _command, run in runs))


def run_gate(
    gate: Gate,
    cwd: Path,
    *,
    timeout: float,
    runner: Runner,
    scratch: Path,
    source_line: SourceLine,
    baseline: GateRun | None = None,
    tests_may_change: bool = False,
) -> GateResult:
    """Run the commands in order in `cwd`; stop at the first that fails for something not
    already failing in `baseline` (None: every failure counts)."""
    runs: list[CommandRun] = []
    already: list[str] = []
    for index, (command, run) in enumerate(
        _runs(gate, cwd, timeout=timeout, runner=runner, scratch=scratch, source_line=source_line)
    ):
        runs.append(run)
        base = baseline.runs[index] if baseline is not None else None
        judgement = judge(command, base, run, tests_may_change=tests_may_change)
        already += judgement.already_failing
        if not judgement.passed:
            return GateResult(
                False,
                command.shown,
                judgement.failure,
                judgement.details,
                run.output,
                sum(r.duration for r in runs),
                tuple(already),
                tuple(runs),
                judgement.no_evidence,
            )
    spent = sum(r.duration for r in runs)
    return GateResult(True, duration=spent, already_failing=tuple(already), runs=tuple(runs))


def base_failures(baseline: GateRun) -> tuple[str, ...]:
    """What the gate fails on the base, one line each, for the report and the PR."""
    lines: list[str] = []
    for run in baseline.runs:
        name = f"`{run.shown}`"
        if run.timed_out:
            lines.append(f"{name} ran past its time limit")
        elif run.findings:
            count = len(run.findings)
            lines.append(f"{name}: {count} finding{'s' if count != 1 else ''}")
        elif run.tests is not None and run.tests.failing:
            lines += [f"{name}: {test} fails" for test in run.tests.failing]
        elif run.report_problem is not None:
            lines.append(f"{name}: {run.report_problem}")
        elif run.exit_code != 0:
            lines.append(f"{name} exits with status {run.exit_code}")
    return tuple(lines)


# Exit statuses of bash meaning the command could not be run at all (not executable, not found).
_CANNOT_RUN = (126, 127)


def cannot_judge(baseline: GateRun) -> str | None:
    """Why the gate, as it ran on the base, cannot judge any change (None when it can): it ran
    out of time, could not start, left no report where one was expected, or ran tests of
    which none passed (a project that cannot even be imported). Forgiving "the same failure as
    on the base" would then let every change through."""
    for run in baseline.runs:
        name = f"`{run.shown}`"
        if run.timed_out:
            return f"{name} ran past its time limit on the base"
        if run.exit_code in _CANNOT_RUN:
            return f"{name} could not run on the base (exit status {run.exit_code})"
        if run.report_problem is not None:
            return f"{name} left no evidence on the base: {run.report_problem}"
        if run.tests is not None and run.tests.failed and not run.tests.passed:
            return f"{name} passes no test on the base ({run.tests.failed} fail)"
    return None
