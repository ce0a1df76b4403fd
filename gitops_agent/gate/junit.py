"""JUnit XML reports of a gate run, read safely and compared test by test with the base's."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from xml.etree.ElementTree import Element, ParseError

# No stubs ship with defusedxml; `fromstring` is typed at the one call below.
from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
from defusedxml.ElementTree import fromstring  # type: ignore[import-untyped]

MAX_REPORT_BYTES = 20_000_000
MESSAGE_CHARS = 300


class ReportError(ValueError):
    """A report the gate cannot trust to describe the run: too big, malformed, or not JUnit."""


class TestOutcome(enum.Enum):
    """What one test case came to; xfail counts as skipped, as pytest writes it."""

    __test__ = False  # a dunder, so not a member: keeps pytest from collecting the class

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"

    @property
    def failing(self) -> bool:
        return self in (TestOutcome.FAILED, TestOutcome.ERROR)


# Worse outcomes rank higher: a test written twice (pytest writes a call failure and a
# teardown error as two entries) keeps the worse of the two.
_SEVERITY = {
    TestOutcome.PASSED: 0,
    TestOutcome.SKIPPED: 1,
    TestOutcome.FAILED: 2,
    TestOutcome.ERROR: 3,
}
_CHILD_OUTCOMES = {
    "failure": TestOutcome.FAILED,
    "error": TestOutcome.ERROR,
    "skipped": TestOutcome.SKIPPED,
}


@dataclass(frozen=True, slots=True)
class TestCase:
    """One test as the report tells it; `id` is stable between runs so base and change match."""

    __test__ = False  # not a pytest test class, though its name says so

    id: str
    outcome: TestOutcome
    message: str  # first line of the failure, error or skip reason; "" when passed


@dataclass(frozen=True, slots=True)
class TestReport:
    """Every test case of one run, each id once, in the order the report lists them."""

    __test__ = False

    cases: tuple[TestCase, ...]

    @property
    def collected(self) -> int:
        return len(self.cases)

    @property
    def passed(self) -> int:
        return sum(1 for case in self.cases if case.outcome is TestOutcome.PASSED)

    @property
    def failed(self) -> int:
        """Failures and errors together: both mean the test did not pass."""
        return sum(1 for case in self.cases if case.outcome.failing)

    @property
    def skipped(self) -> int:
        return sum(1 for case in self.cases if case.outcome is TestOutcome.SKIPPED)

    @property
    def failing(self) -> tuple[str, ...]:
        return tuple(case.id for case in self.cases if case.outcome.failing)


@dataclass(frozen=True, slots=True)
class TestComparison:
    """How the change's tests differ from the base's; the caller decides what blocks."""

    __test__ = False

    introduced: tuple[TestCase, ...]  # failing now; passed, skipped or absent on the base
    already_failing: tuple[str, ...]  # failing on the base and now
    missing: tuple[str, ...]  # on the base (any outcome), absent now
    newly_skipped: tuple[str, ...]  # passed on the base, skipped now
    base_collected: int
    collected: int
    base_passed: int
    passed: int

    @property
    def fewer_collected(self) -> bool:
        return self.collected < self.base_collected

    @property
    def fewer_passed(self) -> bool:
        return self.passed < self.base_passed


def parse_junit(data: bytes, *, max_bytes: int = MAX_REPORT_BYTES) -> TestReport:
    """Read a JUnit XML report written by untrusted code: entities and DTDs are refused, size is
    capped, and anything unreadable raises ReportError rather than passing as "no failures"."""
    if len(data) > max_bytes:
        raise ReportError(
            f"the test report is {len(data)} bytes, more than the {max_bytes} bytes allowed"
        )
    try:
        root: Element = fromstring(data, forbid_dtd=True)
    except DefusedXmlException as error:
        raise ReportError(
            f"the test report declares a DTD or entities, which are refused: {error}"
        ) from error
    except ParseError as error:
        raise ReportError(f"the test report is not well-formed XML: {error}") from error
    if root.tag not in ("testsuites", "testsuite"):
        raise ReportError(
            f"the test report is not JUnit XML: its root element is <{root.tag}>, "
            "not <testsuites> or <testsuite>"
        )
    found: dict[str, TestCase] = {}
    # An explicit stack, not recursion: a hostile report can nest suites deeper than the
    # interpreter's recursion limit.
    stack = [root]
    while stack:
        suite = stack.pop()
        # Reversed onto the stack so cases come out in document order.
        for child in reversed(list(suite)):
            if child.tag in ("testsuites", "testsuite"):
                stack.append(child)
        for child in suite:
            if child.tag == "testcase":
                case = _case(child)
                earlier = found.get(case.id)
                if earlier is None or _SEVERITY[case.outcome] > _SEVERITY[earlier.outcome]:
                    found[case.id] = case
    return TestReport(tuple(found.values()))


def merge_reports(reports: Iterable[TestReport]) -> TestReport:
    """One report for a gate run that wrote several; a later report's case replaces an earlier
    one with the same id (a rerun), keeping the first one's place."""
    merged: dict[str, TestCase] = {}
    for report in reports:
        for case in report.cases:
            merged[case.id] = case
    return TestReport(tuple(merged.values()))


def compare_tests(base: TestReport, new: TestReport) -> TestComparison:
    """Test-by-test difference, so a change is judged on what it broke, not on what was
    already broken on the base."""
    before = {case.id: case for case in base.cases}
    now = {case.id for case in new.cases}
    introduced: list[TestCase] = []
    already_failing: list[str] = []
    newly_skipped: list[str] = []
    for case in new.cases:
        old = before.get(case.id)
        if case.outcome.failing:
            if old is not None and old.outcome.failing:
                already_failing.append(case.id)
            else:
                introduced.append(case)
        elif (
            case.outcome is TestOutcome.SKIPPED
            and old is not None
            and old.outcome is TestOutcome.PASSED
        ):
            newly_skipped.append(case.id)
    return TestComparison(
        introduced=tuple(introduced),
        already_failing=tuple(already_failing),
        missing=tuple(case.id for case in base.cases if case.id not in now),
        newly_skipped=tuple(newly_skipped),
        base_collected=base.collected,
        collected=new.collected,
        base_passed=base.passed,
        passed=new.passed,
    )


def _case(element: Element) -> TestCase:
    outcome = TestOutcome.PASSED
    message = ""
    for child in element:
        child_outcome = _CHILD_OUTCOMES.get(child.tag)
        if child_outcome is not None and _SEVERITY[child_outcome] > _SEVERITY[outcome]:
            outcome = child_outcome
            message = _first_line(child.get("message", "")) or _first_line(child.text or "")
    return TestCase(_case_id(element), outcome, message)


def _case_id(element: Element) -> str:
    """pytest's node id when the report names the file ("tests/test_a.py::TestX::test_y"),
    else "classname::name"; either is the same on every run of the same tests."""
    name = element.get("name", "")
    classname = element.get("classname", "")
    file = element.get("file", "")
    if not file:
        return f"{classname}::{name}" if classname else name
    while file.startswith("./"):
        file = file[2:]
    path = PurePosixPath(file)
    module = ".".join([*path.parent.parts, path.stem]) if path.name else ""
    if module and classname == module:
        classes: list[str] = []
    elif module and classname.startswith(module + "."):
        classes = classname[len(module) + 1 :].split(".")
    else:
        classes = [classname] if classname else []
    return "::".join([file, *classes, name])


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:MESSAGE_CHARS]
    return ""
