"""The gate's evidence parsers on real output: pytest's JUnit XML and ruff's findings."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitops_agent.gate import findings, junit
from gitops_agent.gate.findings import Finding, introduced, normalise_message, parse_findings
from gitops_agent.gate.junit import ReportError, compare_tests, merge_reports, parse_junit

Outcome = junit.TestOutcome

# A small project and the change made to it: `mul` breaks, a test module is deleted.
CALC = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n"
BROKEN_CALC = CALC.replace("a * b", "a + b")
TEST_CALC = """\
import pytest

from calc import add, mul


@pytest.fixture
def broken():
    raise RuntimeError("fixture exploded\\nsecond line of the error")


def test_add():
    assert add(1, 2) == 3


def test_mul():
    assert mul(2, 3) == 6


def test_known_bug():
    assert add(0.1, 0.2) == 0.3, "floats do not add up"


@pytest.mark.skip(reason="not on this platform")
def test_skipped():
    pass


@pytest.mark.xfail(reason="known rounding issue")
def test_expected_failure():
    assert round(2.675, 2) == 2.68


def test_uses_broken_fixture(broken):
    pass


@pytest.mark.parametrize("a, b, total", [(1, 1, 2), (2, 2, 4)])
def test_add_many(a, b, total):
    assert add(a, b) == total


class TestGroup:
    def test_member(self):
        assert add(2, 3) == 5
"""
TEST_OLD = "def test_to_be_deleted():\n    assert True\n"


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return root


def _run_pytest(project: Path, *options: str) -> bytes:
    """Run a real pytest on `project` and return the JUnit XML it wrote."""
    report = project / "report.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    # Our own plugins and ini options (xdist's -n auto) must not leak into the inner run.
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["PYTHONPATH"] = str(project)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", ".",
         f"--junitxml={report}", *options, "tests"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return report.read_bytes()


@pytest.fixture(scope="module")
def calc_reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[junit.TestReport, ...]:
    """The base's report and the change's report of the same small project."""
    base = _write(
        tmp_path_factory.mktemp("base"),
        {"calc.py": CALC, "tests/test_calc.py": TEST_CALC, "tests/test_old.py": TEST_OLD},
    )
    change = _write(
        tmp_path_factory.mktemp("change"), {"calc.py": BROKEN_CALC, "tests/test_calc.py": TEST_CALC}
    )
    return parse_junit(_run_pytest(base)), parse_junit(_run_pytest(change))


def _outcomes(report: junit.TestReport) -> dict[str, Outcome]:
    return {case.id: case.outcome for case in report.cases}


# --- JUnit, from real pytest runs ---------------------------------------------------------------


def test_pytest_report_gives_each_test_its_outcome(
    calc_reports: tuple[junit.TestReport, ...],
) -> None:
    base, _ = calc_reports
    assert _outcomes(base) == {
        "tests.test_calc::test_add": Outcome.PASSED,
        "tests.test_calc::test_mul": Outcome.PASSED,
        "tests.test_calc::test_known_bug": Outcome.FAILED,
        "tests.test_calc::test_skipped": Outcome.SKIPPED,
        "tests.test_calc::test_expected_failure": Outcome.SKIPPED,
        "tests.test_calc::test_uses_broken_fixture": Outcome.ERROR,
        "tests.test_calc::test_add_many[1-1-2]": Outcome.PASSED,
        "tests.test_calc::test_add_many[2-2-4]": Outcome.PASSED,
        "tests.test_calc.TestGroup::test_member": Outcome.PASSED,
        "tests.test_old::test_to_be_deleted": Outcome.PASSED,
    }
    assert (base.collected, base.passed, base.failed, base.skipped) == (10, 6, 2, 2)
    assert base.failing == (
        "tests.test_calc::test_known_bug",
        "tests.test_calc::test_uses_broken_fixture",
    )


def test_pytest_report_keeps_the_first_line_of_each_message(
    calc_reports: tuple[junit.TestReport, ...],
) -> None:
    messages = {case.id: case.message for case in calc_reports[0].cases}
    assert messages["tests.test_calc::test_add"] == ""
    assert messages["tests.test_calc::test_known_bug"] == "AssertionError: floats do not add up"
    assert messages["tests.test_calc::test_uses_broken_fixture"] == (
        'failed on setup with "RuntimeError: fixture exploded'
    )
    assert messages["tests.test_calc::test_skipped"] == "not on this platform"
    assert messages["tests.test_calc::test_expected_failure"] == "known rounding issue"


def test_test_broken_by_the_change_is_introduced_and_base_failures_are_not(
    calc_reports: tuple[junit.TestReport, ...],
) -> None:
    comparison = compare_tests(*calc_reports)
    assert [case.id for case in comparison.introduced] == ["tests.test_calc::test_mul"]
    assert comparison.introduced[0].outcome is Outcome.FAILED
    assert comparison.introduced[0].message == "assert 5 == 6"
    assert comparison.already_failing == (
        "tests.test_calc::test_known_bug",
        "tests.test_calc::test_uses_broken_fixture",
    )


def test_deleted_test_is_missing_and_fewer_are_collected_and_passed(
    calc_reports: tuple[junit.TestReport, ...],
) -> None:
    comparison = compare_tests(*calc_reports)
    assert comparison.missing == ("tests.test_old::test_to_be_deleted",)
    assert (comparison.base_collected, comparison.collected) == (10, 9)
    assert (comparison.base_passed, comparison.passed) == (6, 4)
    assert comparison.fewer_collected
    assert comparison.fewer_passed
    assert comparison.newly_skipped == ()


def test_same_report_on_both_sides_introduces_nothing(
    calc_reports: tuple[junit.TestReport, ...],
) -> None:
    base, _ = calc_reports
    comparison = compare_tests(base, base)
    assert comparison.introduced == ()
    assert comparison.missing == ()
    assert not comparison.fewer_collected
    assert not comparison.fewer_passed


def test_report_with_file_attributes_uses_pytest_node_ids(tmp_path: Path) -> None:
    project = _write(tmp_path, {"calc.py": CALC, "tests/test_calc.py": TEST_CALC})
    report = parse_junit(_run_pytest(project, "-o", "junit_family=xunit1"))
    ids = [case.id for case in report.cases]
    assert "tests/test_calc.py::test_add" in ids
    assert "tests/test_calc.py::test_add_many[2-2-4]" in ids
    assert "tests/test_calc.py::TestGroup::test_member" in ids


def test_failure_then_teardown_error_of_one_test_keeps_the_error(tmp_path: Path) -> None:
    test = (
        "import pytest\n\n@pytest.fixture\ndef leaky():\n    yield\n"
        "    raise RuntimeError('teardown boom')\n\n"
        "def test_leaky(leaky):\n    assert False\n"
    )
    project = _write(tmp_path, {"tests/test_leaky.py": test})
    raw = _run_pytest(project)
    assert raw.count(b'name="test_leaky"') == 2  # pytest writes the test twice
    report = parse_junit(raw)
    assert report.cases == (
        junit.TestCase(
            "tests.test_leaky::test_leaky",
            Outcome.ERROR,
            'failed on teardown with "RuntimeError: teardown boom"',
        ),
    )


def test_collection_error_is_one_failing_case_named_after_the_module(tmp_path: Path) -> None:
    project = _write(tmp_path, {"tests/test_broken.py": "import module_that_does_not_exist\n"})
    report = parse_junit(_run_pytest(project, "--continue-on-collection-errors"))
    assert [(case.id, case.outcome) for case in report.cases] == [
        ("tests.test_broken", Outcome.ERROR)
    ]


# --- JUnit, hand-written XML --------------------------------------------------------------------


def test_single_testsuite_root_is_read() -> None:
    report = parse_junit(
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<testsuite name="unit" tests="2">'
        b'<testcase classname="com.example.MathTest" name="adds"/>'
        b'<testcase classname="com.example.MathTest" name="divides">'
        b'<failure message="expected 2 but was 3" type="AssertionError">stack</failure>'
        b"</testcase></testsuite>"
    )
    assert report.cases == (
        junit.TestCase("com.example.MathTest::adds", Outcome.PASSED, ""),
        junit.TestCase("com.example.MathTest::divides", Outcome.FAILED, "expected 2 but was 3"),
    )


def test_nested_suites_are_read_in_document_order() -> None:
    report = parse_junit(
        b"<testsuites><testsuite name='outer'>"
        b"<testcase classname='a' name='first'/>"
        b"<testsuite name='inner'><testcase classname='b' name='second'><error/></testcase>"
        b"</testsuite><testcase classname='a' name='third'><skipped/></testcase>"
        b"</testsuite></testsuites>"
    )
    assert [(case.id, case.outcome) for case in report.cases] == [
        ("a::first", Outcome.PASSED),
        ("a::third", Outcome.SKIPPED),
        ("b::second", Outcome.ERROR),
    ]


def test_duplicate_ids_keep_the_worst_outcome() -> None:
    report = parse_junit(
        b"<testsuite><testcase classname='m' name='t'><failure message='broke'/></testcase>"
        b"<testcase classname='m' name='t'/><testcase classname='m' name='t'><skipped/>"
        b"</testcase></testsuite>"
    )
    assert report.cases == (junit.TestCase("m::t", Outcome.FAILED, "broke"),)


def test_message_falls_back_to_text_and_is_cut_to_one_short_line() -> None:
    long = "x" * 1000
    report = parse_junit(
        f"<testsuite><testcase name='t'><failure>\n\n  {long}\nmore</failure></testcase>"
        "</testsuite>".encode()
    )
    assert report.cases[0].message == "x" * junit.MESSAGE_CHARS


def test_report_without_test_cases_collects_zero() -> None:
    report = parse_junit(b'<testsuites name="pytest tests"/>')
    assert (report.collected, report.passed, report.failed) == (0, 0, 0)


def test_deeply_nested_suites_do_not_exhaust_the_stack() -> None:
    depth = 100_000
    data = b"<testsuites>" + b"<testsuite>" * depth + b"<testcase name='deep'/>"
    data += b"</testsuite>" * depth + b"</testsuites>"
    assert [case.id for case in parse_junit(data).cases] == ["deep"]


def test_later_report_wins_when_merging() -> None:
    first = junit.TestReport(
        (
            junit.TestCase("a::t", Outcome.FAILED, "flaky"),
            junit.TestCase("a::u", Outcome.PASSED, ""),
        )
    )
    rerun = junit.TestReport((junit.TestCase("a::t", Outcome.PASSED, ""),))
    other = junit.TestReport((junit.TestCase("b::v", Outcome.SKIPPED, "later"),))
    assert merge_reports([first, rerun, other]).cases == (
        junit.TestCase("a::t", Outcome.PASSED, ""),
        junit.TestCase("a::u", Outcome.PASSED, ""),
        junit.TestCase("b::v", Outcome.SKIPPED, "later"),
    )


def test_passed_test_skipped_by_the_change_is_newly_skipped() -> None:
    base = junit.TestReport((junit.TestCase("a::t", Outcome.PASSED, ""),))
    new = junit.TestReport((junit.TestCase("a::t", Outcome.SKIPPED, "skipped by the agent"),))
    comparison = compare_tests(base, new)
    assert comparison.newly_skipped == ("a::t",)
    assert comparison.introduced == ()
    assert comparison.fewer_passed


def test_failing_test_that_was_skipped_on_the_base_is_introduced() -> None:
    base = junit.TestReport((junit.TestCase("a::t", Outcome.SKIPPED, ""),))
    new = junit.TestReport((junit.TestCase("a::t", Outcome.ERROR, "boom"),))
    assert compare_tests(base, new).introduced == new.cases


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<testsuite><testcase name="t"><failure message="&lol3;"/></testcase></testsuite>
"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<testsuite><testcase name="t"><failure message="&secret;"/></testcase></testsuite>
"""


@pytest.mark.parametrize(
    ("data", "words"),
    [
        pytest.param(b"<testsuites><testsuite>", "not well-formed", id="truncated"),
        pytest.param(b"", "not well-formed", id="empty"),
        pytest.param(b"\x00\x01binary", "not well-formed", id="binary"),
        pytest.param(b"<html><body/></html>", "not JUnit", id="other-root"),
        pytest.param(BILLION_LAUGHS, "refused", id="billion-laughs"),
        pytest.param(EXTERNAL_ENTITY, "refused", id="external-entity"),
    ],
)
def test_unreadable_report_is_refused_in_plain_words(data: bytes, words: str) -> None:
    with pytest.raises(ReportError, match=words):
        parse_junit(data)


def test_report_over_the_size_cap_is_refused() -> None:
    data = b"<testsuite>" + b"<testcase name='t'/>" * 100 + b"</testsuite>"
    assert parse_junit(data, max_bytes=len(data)).collected == 1
    with pytest.raises(ReportError, match=f"{len(data)} bytes, more than the 1000 bytes"):
        parse_junit(data, max_bytes=1000)


# --- findings, from real ruff runs --------------------------------------------------------------

RUFF_BASE = "import os\nimport sys\n\nprint(sys.argv)\n"
RUFF_CHANGE = (
    '"""A module docstring and comments pushed everything down."""\n'
    "# one\n# two\n# three\n# four\n" + RUFF_BASE + "print(undefined_name)\n"
)


def _source_lines(root: Path) -> Callable[[str, int], str | None]:
    def source_line(path: str, line: int) -> str | None:
        try:
            lines = (root / path).read_text(encoding="utf-8").splitlines()
        except OSError:
            return None
        return lines[line - 1] if 0 < line <= len(lines) else None

    return source_line


def _ruff(checkout: Path, *options: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated",
         "--output-format=concise", *options, "."],
        cwd=checkout, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    return result.stdout


def _ruff_findings(checkout: Path, *options: str) -> tuple[Finding, ...]:
    return parse_findings(
        _ruff(checkout, *options), root=str(checkout), source_line=_source_lines(checkout)
    )


def test_finding_already_on_the_base_is_not_introduced_after_lines_are_inserted_above(
    tmp_path: Path,
) -> None:
    base = _ruff_findings(_write(tmp_path / "base", {"pkg/mod.py": RUFF_BASE}))
    new = _ruff_findings(_write(tmp_path / "new", {"pkg/mod.py": RUFF_CHANGE}))
    assert [(f.path, f.line, f.message) for f in base] == [
        ("pkg/mod.py", 1, "F401 [*] `os` imported but unused")
    ]
    assert [(f.path, f.line) for f in new] == [("pkg/mod.py", 6), ("pkg/mod.py", 10)]
    assert new[0].fingerprint == base[0].fingerprint
    assert [(f.line, f.message) for f in introduced(base, new)] == [
        (10, "F821 Undefined name `undefined_name`")
    ]


def test_coloured_ruff_output_parses_like_plain_output(tmp_path: Path) -> None:
    checkout = _write(tmp_path, {"mod.py": RUFF_CHANGE})
    coloured = _ruff(checkout, "--color=always")
    assert "\x1b[" in coloured
    assert _ruff_findings(checkout, "--color=always") == _ruff_findings(checkout)


def test_second_copy_of_an_identical_finding_is_introduced(tmp_path: Path) -> None:
    base = _ruff_findings(_write(tmp_path / "base", {"a.py": "print(missing)\n"}))
    new = _ruff_findings(_write(tmp_path / "new", {"a.py": "print(missing)\nprint(missing)\n"}))
    assert new[0].fingerprint == new[1].fingerprint
    assert [f.line for f in introduced(base, new)] == [2]


def test_same_message_on_a_different_source_line_is_introduced(tmp_path: Path) -> None:
    base = _ruff_findings(_write(tmp_path / "base", {"a.py": "import os\n"}))
    new = _ruff_findings(_write(tmp_path / "new", {"a.py": "import os\nimport os.path\n"}))
    assert [f.message for f in introduced(base, new)] == ["F401 [*] `os.path` imported but unused"]


# --- findings, from literal tool output --------------------------------------------------------

MYPY_OUTPUT = """\
src/app.py:12: error: Name "handler" already defined on line 3  [no-redef]
src/app.py:20:5: error: Incompatible return value type (got "int", expected "str")  [return-value]
src/app.py:20: note: See https://mypy.readthedocs.io/en/stable/ for more
src/app.py: note: In function "main":
Found 2 errors in 1 file (checked 3 source files)
"""


def _no_source(path: str, line: int) -> str | None:
    return None


def test_mypy_lines_are_parsed_and_notes_and_summaries_ignored() -> None:
    found = parse_findings(MYPY_OUTPUT, root=None, source_line=_no_source)
    assert [(f.path, f.line, f.message) for f in found] == [
        ("src/app.py", 12, 'error: Name "handler" already defined on line 3  [no-redef]'),
        (
            "src/app.py",
            20,
            'error: Incompatible return value type (got "int", expected "str")  [return-value]',
        ),
    ]


def test_line_numbers_named_in_a_message_do_not_change_the_fingerprint() -> None:
    moved = MYPY_OUTPUT.replace("line 3", "line 13").replace("app.py:12:", "app.py:22:")
    before = parse_findings(MYPY_OUTPUT, root=None, source_line=_no_source)
    after = parse_findings(moved, root=None, source_line=_no_source)
    assert after[0].line == 22
    assert introduced(before, after) == ()


def test_message_normalisation_replaces_positions_and_keeps_rule_codes() -> None:
    assert normalise_message("F811 Redefinition of unused `os` from line 1") == (
        "F811 Redefinition of unused `os` from line N"
    )
    assert normalise_message("E501 Line too long (120 > 100)") == "E501 Line too long (120 > 100)"
    assert normalise_message("duplicate code in lines 10-12 (line 4, column 7)") == (
        "duplicate code in lines N-N (line N, column N)"
    )
    assert normalise_message("W0621 shadows name defined at lib/util.py:42:3") == (
        "W0621 shadows name defined at lib/util.py:N"
    )


def test_other_linters_output_formats_are_recognised() -> None:
    output = "\n".join(
        [
            "./lib/a.py:3:1: F401 'os' imported but unused",  # flake8
            "lib/b.py:7: [C0114(missing-module-docstring), ] Missing module docstring",  # pylint
            "/work/repo/web/app.js:2:10: Missing semicolon. [Error/semi]",  # eslint -f unix
            "/elsewhere/x.js:1:1: Outside the checkout. [Error/semi]",
            "my docs/a b.py:4:2: E225 missing whitespace around operator",  # space in path
        ]
    )
    found = parse_findings(output, root="/work/repo/", source_line=_no_source)
    assert [(f.path, f.line) for f in found] == [
        ("lib/a.py", 3),
        ("lib/b.py", 7),
        ("web/app.js", 2),
        ("/elsewhere/x.js", 1),
        ("my docs/a b.py", 4),
    ]
    assert found[1].message == "[C0114(missing-module-docstring), ] Missing module docstring"


def test_ruff_full_output_context_lines_are_not_findings() -> None:
    output = (
        "F401 [*] `os` imported but unused\n --> a.py:1:8\n  |\n1 | import os\n"
        "  |        ^^\n3 | x = 1\na.py:1:8\nFound 1 error.\n"
    )
    assert parse_findings(output, root=None, source_line=_no_source) == ()


def test_source_line_text_goes_into_the_fingerprint() -> None:
    line = "a.py:3:1: F401 `os` imported but unused"

    def first(path: str, number: int) -> str:
        return "import os"

    def second(path: str, number: int) -> str:
        return "    import os   "

    def third(path: str, number: int) -> str:
        return "import os  # noqa-ish"

    fingerprints = [
        parse_findings(line, root=None, source_line=reader)[0].fingerprint
        for reader in (first, second, third)
    ]
    assert fingerprints[0] == fingerprints[1] != fingerprints[2]
    assert len(fingerprints[0]) == findings.FINGERPRINT_CHARS


@given(st.text())
def test_any_text_parses_without_error_and_introduces_nothing_against_itself(text: str) -> None:
    found = parse_findings(text, root="/r", source_line=_no_source)
    assert introduced(found, found) == ()
