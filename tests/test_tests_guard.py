"""The tests guard on changes taken from real repositories: each attack on the suite is refused.

Every case commits a base and then the agent's change, and diffs the two commits with pygit2 the
way the session does, so renames, type changes and added lines are what git really reports.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from gitops_agent.change import SYMLINK_MODE, Change, FileStatus
from gitops_agent.git import Repo
from gitops_agent.git.remote import incoming_commits
from gitops_agent.plan import normalise_key
from gitops_agent.policy import Violation
from gitops_agent.policy.tests_guard import (
    TASK_CHANGES_TESTS_KEY,
    GuardRule,
    guard_tests,
    is_test_file,
    is_test_infrastructure,
    title_says_it_writes_tests,
)
from gitops_agent.policy.tests_guard import (
    # Renamed: pytest would collect a function called test_* as a test of this module.
    test_config_sections as config_sections,
)
from testing.fixtures import git, make_repo

PYPROJECT = """\
[project]
name = "demo"
version = "0.1.0"
dependencies = ["requests>=2"]

[tool.pytest.ini_options]
testpaths = ["tests"]
addopts = "-q"
"""

TEST_APP = """\
import sys
import unittest

import pytest

from src.app import add


def test_add():
    assert add(1, 2) == 3


@pytest.mark.skipif(sys.platform == "win32", reason="posix only")
def test_add_on_posix():
    assert add(2, 2) == 4


class AddTest(unittest.TestCase):
    def test_negative(self):
        self.assertEqual(add(-1, -1), -2)
"""

BASE = {
    "src/__init__.py": "",
    "src/app.py": "def add(a, b):\n    return a + b\n",
    "tests/__init__.py": "",
    "tests/test_app.py": TEST_APP,
    "pyproject.toml": PYPROJECT,
}


Reader = Callable[[str], bytes | None]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", BASE)


def agent_commits(
    repo: Path,
    write: dict[str, str] | None = None,
    delete: tuple[str, ...] = (),
    rename: dict[str, str] | None = None,
    link: dict[str, str] | None = None,
) -> None:
    """The agent's work, committed on top of the base as the session would record it."""
    for old, new in (rename or {}).items():
        (repo / new).parent.mkdir(parents=True, exist_ok=True)
        git(repo, "mv", old, new)
    for name in delete:
        git(repo, "rm", "-q", name)
    for name, text in (write or {}).items():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    for name, target_name in (link or {}).items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.unlink()
        os.symlink(target_name, path)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "agent")


def change_of(repo: Path) -> tuple[Change, Reader, Reader]:
    """The Change from HEAD~1 to HEAD, as the tool reads a commit, and readers of a path's blob
    on either side."""
    opened = Repo.open(repo)
    head = opened.resolve_commit("HEAD")
    base = opened.resolve_commit("HEAD~1")
    [incoming] = incoming_commits(opened, head, [base])

    def read_base(path: str) -> bytes | None:
        return opened.read_blob(base, path)

    def read_new(path: str) -> bytes | None:
        return opened.read_blob(head, path)

    return incoming.change, read_base, read_new


def guard(repo: Path) -> list[Violation]:
    change, read_base, read_new = change_of(repo)
    return guard_tests(change, read_base=read_base, read_new=read_new)


def rules(violations: list[Violation]) -> list[tuple[str, str | None]]:
    return [(v.rule, v.path) for v in violations]


# The attacks


def test_new_conftest_with_report_hook_is_refused_as_infrastructure(repo: Path) -> None:
    hook = (
        "import pytest\n\n\n"
        "@pytest.hookimpl(hookwrapper=True)\n"
        "def pytest_runtest_makereport(item, call):\n"
        "    outcome = yield\n"
        '    outcome.get_result().outcome = "passed"\n'
    )
    agent_commits(repo, write={"tests/conftest.py": hook})
    [violation] = guard(repo)
    assert violation.rule == GuardRule.TEST_INFRASTRUCTURE
    assert violation.path == "tests/conftest.py"
    assert violation.message.startswith("tests/conftest.py: added, but it is test infrastructure")
    assert "add `Changes tests: yes` to the task to allow it" in violation.message


def test_conftest_is_refused_at_any_depth_even_under_source(repo: Path) -> None:
    agent_commits(repo, write={"src/deep/pkg/conftest.py": "collect_ignore = ['x']\n"})
    assert rules(guard(repo)) == [("test-infrastructure", "src/deep/pkg/conftest.py")]


def test_sitecustomize_that_exits_with_success_is_refused_as_infrastructure(
    repo: Path,
) -> None:
    agent_commits(repo, write={"src/sitecustomize.py": "import os\nos._exit(0)\n"})
    [violation] = guard(repo)
    assert (violation.rule, violation.path) == ("test-infrastructure", "src/sitecustomize.py")
    assert "Python runs it at start-up" in violation.message


def test_pth_file_is_refused_as_infrastructure(repo: Path) -> None:
    agent_commits(repo, write={"src/zzz_hijack.pth": "import os; os._exit(0)\n"})
    assert rules(guard(repo)) == [("test-infrastructure", "src/zzz_hijack.pth")]


def test_weakened_assertion_is_refused_as_a_changed_test_file(repo: Path) -> None:
    weakened = TEST_APP.replace("self.assertEqual(add(-1, -1), -2)", "self.assertTrue(True)")
    agent_commits(repo, write={"tests/test_app.py": weakened})
    [violation] = guard(repo)
    assert (violation.rule, violation.path) == ("test-file-changed", "tests/test_app.py")
    assert violation.message.startswith("tests/test_app.py: modified, but it is an existing test")


def test_deleted_test_is_refused(repo: Path) -> None:
    agent_commits(repo, delete=("tests/test_app.py",))
    [violation] = guard(repo)
    assert (violation.rule, violation.path) == ("test-file-changed", "tests/test_app.py")
    assert violation.message.startswith("tests/test_app.py: deleted, ")


def test_test_renamed_out_of_the_suite_is_refused_under_its_old_name(repo: Path) -> None:
    agent_commits(repo, rename={"tests/test_app.py": "src/old_checks.py"})
    change, _, _ = change_of(repo)
    assert [f.status for f in change.files] == [FileStatus.RENAMED]  # git saw a rename
    [violation] = guard(repo)
    assert (violation.rule, violation.path) == ("test-file-changed", "tests/test_app.py")
    assert "renamed to src/old_checks.py" in violation.message


def test_test_renamed_into_a_conftest_is_refused_under_both_names(repo: Path) -> None:
    agent_commits(repo, rename={"tests/test_app.py": "tests/sub/conftest.py"})
    assert rules(guard(repo)) == [
        ("test-infrastructure", "tests/sub/conftest.py"),
        ("test-file-changed", "tests/test_app.py"),
    ]


def test_existing_conftest_changed_is_reported_once_as_infrastructure(repo: Path) -> None:
    agent_commits(repo, write={"tests/conftest.py": "import pytest\n"})
    agent_commits(repo, write={"tests/conftest.py": "import os\n"})
    [violation] = guard(repo)
    assert (violation.rule, violation.path) == ("test-infrastructure", "tests/conftest.py")
    assert violation.message.startswith("tests/conftest.py: modified, ")


def test_test_replaced_by_a_symlink_is_refused_as_a_type_change(repo: Path) -> None:
    agent_commits(repo, link={"tests/test_app.py": "../src/app.py"})
    change, _, _ = change_of(repo)
    assert [(f.status, f.mode) for f in change.files] == [(FileStatus.TYPECHANGE, SYMLINK_MODE)]
    [violation] = guard(repo)
    assert (violation.rule, violation.path) == ("test-file-changed", "tests/test_app.py")
    assert "changed type" in violation.message


def test_skip_marker_added_to_a_new_test_is_refused(repo: Path) -> None:
    new_test = (
        "import pytest\n\n\n"
        '@pytest.mark.skip(reason="flaky")\n'
        "def test_parser():\n"
        "    assert False\n"
    )
    agent_commits(repo, write={"tests/test_parser.py": new_test})
    [violation] = guard(repo)
    assert (violation.rule, violation.path) == ("skip-added", "tests/test_parser.py")
    assert '(`mark.skip`: "@pytest.mark.skip(reason="flaky")")' in violation.message


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("tests/test_x.py", "pytestmark = pytest.mark.skipif(True, reason='later')"),
        ("tests/test_x.py", "@pytest.mark.xfail(strict=False)"),
        ("tests/test_x.py", "    pytest.skip('not today')"),
        ("tests/test_x.py", "    pytest.xfail('known')"),
        ("tests/test_x.py", "np = pytest.importorskip('numpy')"),
        ("tests/test_x.py", "@unittest.skip('broken')"),
        ("tests/test_x.py", "        self.skipTest('broken')"),
        ("tests/test_x.py", "@skipIf(True, 'broken')"),
        ("tests/test_x.py", "@skipUnless(False, 'broken')"),
        ("tests/test_x.py", "@unittest.expectedFailure"),
        ("tests/test_x.py", "    __unittest_skip__ = True"),
        ("web/app.test.ts", "it.skip('renders', () => {})"),
        ("web/app.test.ts", "test.skip('renders', () => {})"),
        ("web/app.test.ts", "describe.skip('form', () => {})"),
        ("web/app.test.ts", "xit('renders', () => {})"),
        ("web/app.test.ts", "xdescribe('form', () => {})"),
        ("web/app.test.ts", "xtest('renders', () => {})"),
        ("web/app.test.ts", "test.todo('renders')"),
        ("web/app.test.ts", "it.only('the one test that passes', () => {})"),
        ("pkg/parse_test.go", '\tt.Skip("later")'),
        ("pkg/parse_test.go", "\tt.SkipNow()"),
        ("src/app.py", "pytest.skip('even outside the tests')"),
    ],
)
def test_each_skip_marker_in_an_added_line_is_refused(repo: Path, path: str, line: str) -> None:
    agent_commits(repo, write={path: f"{line}\n"})
    assert rules(guard(repo)) == [("skip-added", path)]


def test_skip_markers_in_comments_are_not_flagged(repo: Path) -> None:
    agent_commits(
        repo,
        write={
            "tests/test_parser.py": "# never use pytest.mark.skip here\ndef test_p():\n    pass\n",
            "web/form.test.js": "// no it.skip( in this file\n",
        },
    )
    assert guard(repo) == []


def test_existing_skip_moved_to_a_new_test_file_is_still_flagged(repo: Path) -> None:
    """Decided: the diff cannot tell a moved marker from a new one, and moving one out of an
    existing test changes that test too, so both rules fire; a person allows it on the task."""
    without = TEST_APP.replace(
        '@pytest.mark.skipif(sys.platform == "win32", reason="posix only")\n'
        "def test_add_on_posix():\n"
        "    assert add(2, 2) == 4\n\n\n",
        "",
    )
    moved = (
        "import sys\n\nimport pytest\n\nfrom src.app import add\n\n\n"
        '@pytest.mark.skipif(sys.platform == "win32", reason="posix only")\n'
        "def test_add_on_posix():\n"
        "    assert add(2, 2) == 4\n"
    )
    agent_commits(repo, write={"tests/test_app.py": without, "tests/test_posix.py": moved})
    assert rules(guard(repo)) == [
        ("test-file-changed", "tests/test_app.py"),
        ("skip-added", "tests/test_posix.py"),
    ]


def test_testpaths_pointed_elsewhere_is_refused_as_test_config(repo: Path) -> None:
    agent_commits(repo, write={"pyproject.toml": PYPROJECT.replace('["tests"]', '["tests/empty"]')})
    [violation] = guard(repo)
    assert (violation.rule, violation.path) == ("test-config", "pyproject.toml")
    assert violation.message.startswith(
        "pyproject.toml: [tool.pytest.ini_options] changed, but it configures how the tests"
    )


def test_removed_pytest_table_is_refused(repo: Path) -> None:
    agent_commits(repo, write={"pyproject.toml": PYPROJECT.split("[tool.pytest")[0]})
    [violation] = guard(repo)
    assert "[tool.pytest.ini_options] removed" in violation.message


def test_added_coverage_table_is_refused(repo: Path) -> None:
    agent_commits(repo, write={"pyproject.toml": PYPROJECT + "\n[tool.coverage.report]\n"})
    [violation] = guard(repo)
    assert "[tool.coverage.report] added" in violation.message


def test_pytest_table_in_a_nested_new_pyproject_is_refused(repo: Path) -> None:
    """`pytest tests/` would take its configuration from tests/pyproject.toml first."""
    nested = '[tool.pytest.ini_options]\naddopts = "-p src.evil"\n'
    agent_commits(repo, write={"tests/pyproject.toml": nested})
    assert rules(guard(repo)) == [("test-config", "tests/pyproject.toml")]


def test_plugin_entry_point_in_pyproject_is_refused(repo: Path) -> None:
    plugin = '\n[project.entry-points.pytest11]\nevil = "src.evil"\n'
    agent_commits(repo, write={"pyproject.toml": PYPROJECT + plugin})
    [violation] = guard(repo)
    assert "[project.entry-points.pytest11] added" in violation.message


def test_unparsable_pyproject_change_is_refused_conservatively(repo: Path) -> None:
    agent_commits(repo, write={"pyproject.toml": PYPROJECT + "\n[tool.pytest.ini_options\n"})
    [violation] = guard(repo)
    assert (violation.rule, violation.path) == ("test-config", "pyproject.toml")
    assert "does not parse" in violation.message


def test_pytest_section_added_to_setup_cfg_is_refused(repo: Path) -> None:
    agent_commits(repo, write={"setup.cfg": "[metadata]\nname = demo\n"})
    assert guard(repo) == []  # metadata is not this guard's business
    agent_commits(repo, write={"setup.cfg": "[metadata]\nname = demo\n[tool:pytest]\nx = 1\n"})
    assert [v.message.split(",")[0] for v in guard(repo)] == ["setup.cfg: [tool:pytest] added"]


def test_tox_ini_change_is_refused_once_as_infrastructure(repo: Path) -> None:
    agent_commits(repo, write={"tox.ini": "[pytest]\naddopts = --co\n"})
    assert rules(guard(repo)) == [("test-infrastructure", "tox.ini")]


def test_pytest_plugins_in_a_new_test_file_is_refused_as_a_hook(repo: Path) -> None:
    """The conftest hook moved into source and loaded from a new test module."""
    agent_commits(
        repo,
        write={
            "src/evil.py": "def pytest_runtest_makereport(item, call):\n    pass\n",
            "tests/test_more.py": 'pytest_plugins = ["src.evil"]\n',
        },
    )
    assert rules(guard(repo)) == [("test-hook", "tests/test_more.py")]


def test_early_exit_in_a_new_test_file_is_refused_as_a_hook(repo: Path) -> None:
    agent_commits(repo, write={"tests/test_zzz.py": "import os\nos._exit(0)\n"})
    assert rules(guard(repo)) == [("test-hook", "tests/test_zzz.py")]


# What passes


def test_new_test_file_passes(repo: Path) -> None:
    agent_commits(
        repo,
        write={
            "tests/test_more.py": "from src.app import add\n\n\ndef test_zero():\n"
            "    assert add(0, 0) == 0\n"
        },
    )
    assert guard(repo) == []


def test_change_to_source_only_passes(repo: Path) -> None:
    agent_commits(repo, write={"src/app.py": "def add(a, b):\n    return b + a\n"})
    assert guard(repo) == []


def test_change_to_the_project_table_passes(repo: Path) -> None:
    agent_commits(repo, write={"pyproject.toml": PYPROJECT.replace("requests>=2", "httpx>=0.27")})
    assert guard(repo) == []


def test_reformatted_pytest_table_with_equal_values_passes(repo: Path) -> None:
    reformatted = PYPROJECT.replace(
        'testpaths = ["tests"]\naddopts = "-q"',
        "addopts = '-q'   # quiet\ntestpaths = [\n    \"tests\",\n]",
    )
    agent_commits(repo, write={"pyproject.toml": reformatted})
    assert guard(repo) == []


def test_source_moved_into_place_passes(repo: Path) -> None:
    agent_commits(repo, rename={"src/app.py": "src/calc.py"})
    assert guard(repo) == []


# The pure helpers


@pytest.mark.parametrize(
    "path",
    [
        "tests/test_app.py",
        "tests/__init__.py",
        "tests/data/input.json",
        "test/helpers.py",
        "pkg/sub/tests/check.py",
        "lib/test/util.js",
        "web/__tests__/form.js",
        "spec/models/user_spec.rb",
        "spec/helper.rb",
        "test_cli.py",
        "src/parser_test.py",
        "src/parser_tests.py",
        "app/tests.py",
        *(f"web/form.{kind}.{ext}" for kind in ("test", "spec") for ext in ("js", "tsx", "cjs")),
        "pkg/parse_test.go",
        "lib/user_spec.rb",
        "Tests/test_upper.py",
    ],
)
def test_is_test_file(path: str) -> None:
    assert is_test_file(path)


@pytest.mark.parametrize(
    "path",
    [
        "src/app.py",
        "src/contest.py",
        "src/testing.py",
        "src/latest/app.py",
        "docs/spec/api.yaml",  # a nested spec/ is as often an API description
        "web/form.js",
        "web/test.config.js",
        "pkg/parse.go",
        "",
    ],
)
def test_is_not_test_file(path: str) -> None:
    assert not is_test_file(path)


@pytest.mark.parametrize(
    "path",
    [
        "conftest.py",
        "a/b/c/conftest.py",
        "src/sitecustomize.py",
        "usercustomize.py",
        "lib/x.pth",
        "pytest.ini",
        ".coveragerc",
        "tox.ini",
        "noxfile.py",
        "jest.config.js",
        "web/vitest.config.ts",
        ".mocharc.yml",
        "karma.conf.js",
        "Conftest.py",
    ],
)
def test_is_test_infrastructure(path: str) -> None:
    assert is_test_infrastructure(path)


@pytest.mark.parametrize(
    "path",
    ["babel.config.js", "tsconfig.json", "pyproject.toml", "setup.cfg", "src/conftest_data.py"],
)
def test_is_not_test_infrastructure(path: str) -> None:
    assert not is_test_infrastructure(path)


def test_config_sections_keep_only_test_tables_of_pyproject() -> None:
    text = PYPROJECT + "\n[tool.coverage.run]\nbranch = true\n[tool.ruff]\nline-length = 100\n"
    assert config_sections("pyproject.toml", text) == {
        "[tool.pytest.ini_options]": '{"addopts": "-q", "testpaths": ["tests"]}',
        "[tool.coverage.run]": '{"branch": true}',
    }


def test_config_sections_of_setup_cfg_and_tox_ini_keep_the_case_of_keys() -> None:
    cfg = "[metadata]\nname = x\n[tool:pytest]\nTestPaths = t\n[coverage:run]\nbranch = 1\n"
    assert config_sections("setup.cfg", cfg) == {
        "[tool:pytest]": '{"TestPaths": "t"}',
        "[coverage:run]": '{"branch": "1"}',
    }
    tox = "[tox]\nenvlist = py\n[pytest]\naddopts = -q\n"
    assert config_sections("tox.ini", tox) == {"[pytest]": '{"addopts": "-q"}'}


def test_config_sections_are_empty_for_other_files_and_unparsable_text() -> None:
    assert config_sections("src/app.py", "[tool.pytest.ini_options]\n") == {}
    assert config_sections("pyproject.toml", "[tool.pytest.ini_options\n") == {}
    assert config_sections("setup.cfg", "no section header\n") == {}


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Add tests for the parser", True),
        ("Write unit tests", True),
        ("Fix the flaky test in the scheduler", True),
        ("Update tests for the new API", True),
        ("Add test coverage for the CLI", True),
        ("Refactor the parser; update its tests", True),
        ("Cover the parser with tests", True),
        ("Tests for the parser", True),
        # Mentions tests without making them the work:
        ("Add logging to tests helper", False),
        ("Implement parser (tests defined)", False),
        ("Make the tests pass", False),
        ("Implement parser with tests", False),
        ("Add contest mode", False),
    ],
)
def test_title_says_it_writes_tests(title: str, expected: bool) -> None:
    assert title_says_it_writes_tests(title) is expected


def test_changes_tests_key_is_a_normalised_plan_key() -> None:
    assert normalise_key("Changes tests") == TASK_CHANGES_TESTS_KEY
    assert normalise_key("changes_tests") == TASK_CHANGES_TESTS_KEY
