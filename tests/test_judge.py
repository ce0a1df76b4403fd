"""Judging one gate command's evidence against the base's: only what a change introduced fails."""

from __future__ import annotations

from gitops_agent.gate import GateCommand
from gitops_agent.gate.findings import Finding
from gitops_agent.gate.judge import judge
from gitops_agent.gate.junit import TestCase, TestOutcome, TestReport
from gitops_agent.gate.run import CommandRun

PASSED, FAILED, SKIPPED = TestOutcome.PASSED, TestOutcome.FAILED, TestOutcome.SKIPPED
PLAIN = GateCommand("make check", "make check")
PYTEST = GateCommand("pytest", "pytest", pytest=True)
LINT = GateCommand("ruff check .", "ruff check .", findings=True)


def ran(exit_code: int | None, *cases: tuple[str, TestOutcome], problem: str | None = None):
    tests = TestReport(tuple(TestCase(i, o, "boom" if o is FAILED else "") for i, o in cases))
    return CommandRun(
        "pytest", exit_code, "", 0.1, tests if cases or problem is None else None, problem
    )


def plain(exit_code: int | None) -> CommandRun:
    return CommandRun("make check", exit_code, "", 0.1)


def test_a_plain_command_failing_as_on_the_base_is_not_held_against_the_change() -> None:
    verdict = judge(PLAIN, plain(2), plain(2), tests_may_change=False)
    assert verdict.passed and verdict.already_failing


def test_a_plain_command_failing_differently_from_the_base_fails() -> None:
    assert not judge(PLAIN, plain(2), plain(1), tests_may_change=False).passed
    assert not judge(PLAIN, None, plain(1), tests_may_change=False).passed


def test_a_test_that_passed_on_the_base_and_fails_now_is_named() -> None:
    base = ran(1, ("t::a", PASSED), ("t::b", FAILED))
    new = ran(1, ("t::a", FAILED), ("t::b", FAILED))
    verdict = judge(PYTEST, base, new, tests_may_change=False)
    assert not verdict.passed
    assert verdict.details == ("t::a: boom",)
    assert verdict.already_failing == ("t::b (failing on the base too)",)


def test_only_failures_already_on_the_base_pass() -> None:
    base = ran(1, ("t::a", PASSED), ("t::b", FAILED))
    assert judge(PYTEST, base, base, tests_may_change=False).passed


def test_fewer_tests_or_a_newly_skipped_one_fail_unless_tests_may_change() -> None:
    base = ran(0, ("t::a", PASSED), ("t::b", PASSED))
    fewer = ran(0, ("t::a", PASSED))
    skipped = ran(0, ("t::a", PASSED), ("t::b", SKIPPED))
    for new in (fewer, skipped):
        verdict = judge(PYTEST, base, new, tests_may_change=False)
        assert not verdict.passed and "fewer tests" in verdict.failure
        assert judge(PYTEST, base, new, tests_may_change=True).passed


def test_no_report_or_no_tests_is_a_failure_even_when_tests_may_change() -> None:
    base = ran(0, ("t::a", PASSED))
    missing = ran(0, problem="its JUnit report was not written")
    verdict = judge(PYTEST, base, missing, tests_may_change=True)
    assert not verdict.passed and verdict.no_evidence and "no evidence" in verdict.failure
    empty = CommandRun("pytest", 5, "", 0.1, TestReport(()))
    verdict = judge(PYTEST, base, empty, tests_may_change=True)
    assert not verdict.passed and "ran no tests" in verdict.failure


def test_a_failing_exit_with_a_clean_report_fails_unless_the_base_did_the_same() -> None:
    base = ran(0, ("t::a", PASSED))
    new = ran(1, ("t::a", PASSED))
    assert not judge(PYTEST, base, new, tests_may_change=False).passed
    assert judge(PYTEST, ran(1, ("t::a", PASSED)), new, tests_may_change=False).passed


def test_a_timeout_always_fails() -> None:
    assert not judge(PLAIN, plain(None), plain(None), tests_may_change=True).passed


def test_only_findings_the_change_adds_count() -> None:
    old = Finding("src/a.py", 3, "F401 `os` imported but unused", "f-os")
    new = Finding("src/a.py", 1, "F401 `sys` imported but unused", "f-sys")
    base = CommandRun("ruff check .", 1, "", 0.1, findings=(old,))
    assert judge(
        LINT, base, CommandRun("ruff", 1, "", 0.1, findings=(old,)), tests_may_change=False
    ).passed
    verdict = judge(
        LINT, base, CommandRun("ruff", 1, "", 0.1, findings=(old, new)), tests_may_change=False
    )
    assert not verdict.passed and verdict.details == ("src/a.py:1: F401 `sys` imported but unused",)


def test_a_findings_command_that_fails_without_a_finding_fails() -> None:
    base = CommandRun("ruff check .", 0, "", 0.1)
    assert not judge(LINT, base, CommandRun("ruff", 2, "", 0.1), tests_may_change=False).passed
