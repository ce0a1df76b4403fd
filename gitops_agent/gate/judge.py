"""Judging a gate command's evidence against the base's (pure): a task fails only for what it
introduced, and missing evidence is a failure, never a pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from gitops_agent.gate import GateCommand
from gitops_agent.gate.findings import introduced
from gitops_agent.gate.junit import compare_tests
from gitops_agent.gate.run import CommandRun

SHOWN = 10  # failing tests or findings named in a judgement's details


@dataclass(frozen=True, slots=True)
class Judgement:
    passed: bool
    failure: str = ""  # one sentence, "" when it passed
    details: tuple[str, ...] = ()  # what failed: tests, findings, rules; one line each
    already_failing: tuple[str, ...] = ()  # failures that were already on the base
    no_evidence: bool = False  # it failed for lack of evidence: no report, or no tests run


def judge(
    command: GateCommand,
    base: CommandRun | None,
    new: CommandRun,
    *,
    tests_may_change: bool,
) -> Judgement:
    """`new` against `base` (the same command on the base tree; None: no baseline, so any
    failure counts). `tests_may_change` lifts the rules on fewer, missing and skipped tests."""
    name = f"`{new.shown}`"
    if new.timed_out:
        return Judgement(False, f"The quality gate failed: {name} ran past its time limit.")
    if command.findings:
        return _findings(base, new, name)
    if new.report_problem is not None:
        return Judgement(
            False,
            f"The quality gate failed: {name} left no evidence ({new.report_problem}).",
            no_evidence=True,
        )
    if new.tests is not None:
        return _tests(base, new, name, tests_may_change=tests_may_change)
    return _exit_status(base, new, name)


def _exit_status(base: CommandRun | None, new: CommandRun, name: str) -> Judgement:
    if new.exit_code == 0:
        return Judgement(True)
    if base is not None and base.exit_code == new.exit_code:
        return Judgement(
            True, already_failing=(f"{name} exits with status {base.exit_code} on the base too",)
        )
    return Judgement(False, f"The quality gate failed: {name} (exit status {new.exit_code}).")


def _tests(
    base: CommandRun | None, new: CommandRun, name: str, *, tests_may_change: bool
) -> Judgement:
    assert new.tests is not None
    if new.tests.collected == 0:
        return Judgement(False, f"The quality gate failed: {name} ran no tests.", no_evidence=True)
    if base is None or base.tests is None:
        failing = [c for c in new.tests.cases if c.outcome.failing]
        if failing or new.exit_code != 0:
            details = tuple(_case(c.id, c.message) for c in failing[:SHOWN])
            return Judgement(False, _failed(name, len(failing), new.exit_code), details)
        return Judgement(True)
    comparison = compare_tests(base.tests, new.tests)
    already = tuple(f"{test} (failing on the base too)" for test in comparison.already_failing)
    if comparison.introduced:
        details = tuple(_case(c.id, c.message) for c in comparison.introduced[:SHOWN])
        return Judgement(
            False, _failed(name, len(comparison.introduced), new.exit_code), details, already
        )
    if not tests_may_change:
        problems: list[str] = []
        if comparison.missing:
            problems += [f"{test}: ran on the base, missing now" for test in comparison.missing]
        if comparison.newly_skipped:
            problems += [
                f"{test}: passed on the base, skipped now" for test in comparison.newly_skipped
            ]
        if comparison.fewer_collected:
            problems.append(
                f"{comparison.collected} tests ran, {comparison.base_collected} on the base"
            )
        if comparison.fewer_passed:
            problems.append(
                f"{comparison.passed} tests passed, {comparison.base_passed} on the base"
            )
        if problems:
            return Judgement(
                False,
                f"The quality gate failed: {name} ran fewer tests than on the base, and this "
                "task may not change tests.",
                tuple(problems[:SHOWN]),
                already,
            )
    if new.exit_code != 0 and base.exit_code != new.exit_code:
        # Its report shows nothing new failing, yet it failed in a way the base did not.
        return Judgement(
            False,
            f"The quality gate failed: {name} (exit status {new.exit_code}), though no test "
            "it reported failed.",
            (),
            already,
        )
    return Judgement(True, already_failing=already)


def _findings(base: CommandRun | None, new: CommandRun, name: str) -> Judgement:
    new_ones = introduced(base.findings if base is not None else (), new.findings)
    if new_ones:
        details = tuple(f"{f.path}:{f.line}: {f.message}" for f in new_ones[:SHOWN])
        count = len(new_ones)
        problems = f"{count} new problem{'s' if count != 1 else ''}"
        return Judgement(
            False,
            f"The quality gate failed: {name} found {problems}.",
            details,
        )
    if new.exit_code not in (0, None) and not new.findings:
        same = base is not None and base.exit_code == new.exit_code
        if not same:  # it failed without a finding to show: it did not run as it should
            return Judgement(
                False,
                f"The quality gate failed: {name} (exit status {new.exit_code}) without "
                "printing a finding.",
            )
    already = len(new.findings)
    said = (f"{name}: {already} finding{'s' if already != 1 else ''} already on the base",)
    return Judgement(True, already_failing=said if already else ())


def _failed(name: str, count: int, exit_code: int | None) -> str:
    if count:
        tests = f"{count} test{'s' if count != 1 else ''}"
        return (
            f"The quality gate failed: {name}: {tests} that passed on the base (or are new) fail."
        )
    return f"The quality gate failed: {name} (exit status {exit_code})."


def _case(test: str, message: str) -> str:
    return f"{test}: {message}" if message else test
