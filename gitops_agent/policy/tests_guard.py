"""Rules that keep a task from passing its gate by weakening the tests instead of fixing the code.

Pure like `inspect`: the caller reads file contents and passes them in as callables. A task whose
plan entry says `Changes tests: yes` (or whose title says it works on tests) is not held to them.
"""

from __future__ import annotations

import configparser
import enum
import json
import re
import tomllib
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath
from typing import Any

from ..change import Change, FileChange, FileStatus
from . import Violation
from .inspect import show
from .paths import matches

TASK_CHANGES_TESTS_KEY = "changes tests"
"""The plan detail key (compared after `plan.normalise_key`) that lets a task change tests."""

_ALLOW = "add `Changes tests: yes` to the task to allow it"
_QUOTE_CHARS = 80


class GuardRule(enum.StrEnum):
    """The rules of this module, by their stable names (`Violation.rule`)."""

    TEST_FILE_CHANGED = "test-file-changed"
    TEST_INFRASTRUCTURE = "test-infrastructure"
    TEST_CONFIG = "test-config"
    SKIP_ADDED = "skip-added"
    TEST_HOOK = "test-hook"


# Directory names whose whole subtree is tests, at any depth; "spec" only at the root, since a
# nested "spec/" is as often an API description as RSpec examples.
_TEST_DIRS = frozenset({"tests", "test", "__tests__"})
_ROOT_TEST_DIRS = frozenset({"spec"})
_JS = ("js", "jsx", "ts", "tsx", "mjs", "cjs")
_TEST_NAMES = (
    "test_*.py",
    "*_test.py",
    "*_tests.py",
    "tests.py",  # Django's per-app test module
    *(f"*.{kind}.{ext}" for kind in ("test", "spec") for ext in _JS),
    "*_test.go",
    "*_spec.rb",
)

_PYTEST_CONFIG = "it configures which tests pytest finds and how it runs them"
_STARTUP = "Python runs it at start-up, before any test, so it can end the run with success"
# Name pattern, and why the file can decide a test run's outcome without any test changing.
_INFRASTRUCTURE = (
    ("conftest.py", "pytest loads it first, and its hooks can report a failing test as passed"),
    ("sitecustomize.py", _STARTUP),
    ("usercustomize.py", _STARTUP),
    ("*.pth", "Python runs its import lines at start-up, so it can end the run with success"),
    ("pytest.ini", _PYTEST_CONFIG),
    (".pytest.ini", _PYTEST_CONFIG),
    ("pytest.toml", _PYTEST_CONFIG),
    (".pytest.toml", _PYTEST_CONFIG),
    (".coveragerc", "it configures what coverage measures and which threshold fails the run"),
    ("tox.ini", "it configures how tox runs the tests"),
    ("noxfile.py", "it defines how nox runs the tests"),
    ("jest.config.*", "it configures which tests Jest finds and how it runs them"),
    ("vitest.config.*", "it configures which tests Vitest finds and how it runs them"),
    (".mocharc*", "it configures which tests Mocha finds and how it runs them"),
    ("karma.conf.*", "it configures which tests Karma finds and how it runs them"),
)

# A readable name, and the pattern that finds it in one added line of code.
_SKIP_MARKERS = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("mark.skip", r"\bmark\.skip(?:if)?\b"),
        ("mark.xfail", r"\bmark\.xfail\b"),
        ("pytest.skip", r"\bpytest\.(?:skip|xfail|importorskip)\b"),
        ("unittest.skip", r"\bunittest\.skip"),
        ("skipTest", r"\bskipTest\s*\(|\bSkipTest\b"),
        ("@skip", r"@\s*skip(?:If|Unless)?\b"),
        ("expectedFailure", r"\bexpectedFailure\b"),
        ("__unittest_skip__", r"__unittest_skip__"),
        ("it.skip", r"\b(?:it|test|describe|context|suite|specify)\.skip\b"),
        ("it.only", r"\b(?:it|test|describe|context|suite|specify)\.only\b"),
        ("it.todo", r"\b(?:it|test|describe)\.todo\s*\("),
        ("xit", r"\bx(?:it|describe|test|context|specify)\b(?=\s*\(|\s+['\"])"),
        ("t.Skip", r"\b[tb]\.Skip(?:Now|f)?\s*\("),
        ("#[ignore]", r"#\[ignore\b"),
    )
)
# Lines that load code into pytest or end its run, whatever the tests say.
_HOOK_MARKERS = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("pytest_plugins", r"\bpytest_plugins\b"),
        ("pytest.exit", r"\bpytest\.exit\s*\("),
    )
)
# Only in test files: source code has fair uses for it (a forked child), a test has none.
_TEST_FILE_HOOK_MARKERS = (("os._exit", re.compile(r"\bos\._exit\s*\(")),)


class _ConfigFile(enum.Enum):
    PYPROJECT = "pyproject.toml"
    SETUP_CFG = "setup.cfg"
    TOX_INI = "tox.ini"


_CONFIG_FILES = {kind.value: kind for kind in _ConfigFile}


def is_test_file(path: str) -> bool:
    """Whether `path` holds tests by the usual conventions of pytest, Jest, Go and RSpec."""
    parts = PurePosixPath(path).parts
    if not parts:
        return False
    folded = [part.casefold() for part in parts]
    if any(part in _TEST_DIRS for part in folded[:-1]):
        return True
    if len(folded) > 1 and folded[0] in _ROOT_TEST_DIRS:
        return True
    return any(matches(pattern, folded[-1]) for pattern in _TEST_NAMES)


def is_test_infrastructure(path: str) -> bool:
    """Whether `path`, at any depth, can change how tests run: conftest.py, .pth, runner configs."""
    return _infrastructure_reason(path) is not None


def test_config_sections(path: str, text: str) -> dict[str, str]:
    """The test-related sections of a pyproject.toml, setup.cfg or tox.ini, by header.

    Each value is a canonical rendering of the parsed section, so equal values mean equal
    settings whatever the formatting. Empty for other files, and for text that does not parse:
    a caller comparing two versions must treat that case on its own (`guard_tests` refuses it).
    Import it under another name in a test module, or pytest collects it as a test.
    """
    return _config_sections(path, text) or {}


def guard_tests(
    change: Change,
    *,
    read_base: Callable[[str], bytes | None],
    read_new: Callable[[str], bytes | None],
) -> list[Violation]:
    """Every way `change` weakens the tests that judge it, sorted by path then rule.

    `read_base` and `read_new` give a path's content on the base and in the changed tree (None
    when absent); only configuration files are read. Callers skip this guard for a task that
    may change tests (`TASK_CHANGES_TESTS_KEY`, `title_says_it_writes_tests`).
    """
    violations: list[Violation] = []
    config_paths: set[str] = set()
    for f in change.files:
        violations += _infrastructure(f)
        violations += _test_file_changed(f)
        violations += _markers(f)
        config_paths.update(
            path
            for path, _verb in _touched(f)
            if _config_kind(path) is not None and not is_test_infrastructure(path)
        )
    for path in config_paths:
        violations += _config_changed(path, read_base(path), read_new(path))
    return sorted(set(violations), key=lambda v: (v.path or "", v.rule, v.message))


def title_says_it_writes_tests(title: str) -> bool:
    """Whether a task title makes tests its object: "Add tests for X", "Fix the flaky test in Y".

    Deliberately narrow, since it lets the task change existing tests: a title that only
    mentions tests ("Add logging to tests helper", "Implement parser (tests defined)", "Make
    the tests pass") is not enough.
    """
    return any(pattern.search(title) for pattern in _WRITES_TESTS)


_CLAUSE = r"(?:^|[:;,.!?\u2013\u2014]|\s-\s|\band\b|\bthen\b|\balso\b)\s*"
_TEST_VERBS = (
    r"add|write|fix|update|extend|expand|improve|increase|repair|rewrite|refactor|strengthen|"
    r"create|correct|adjust|migrate|port|convert|clean\s+up|tidy|split|rename|move|deflake|"
    r"de-flake|stabili[sz]e|speed\s+up|reorgani[sz]e|remove|delete|unskip|re-?enable|restore"
)
# Words that end the object of the verb: in "Add logging to tests helper", tests are not added.
_STOP = (
    r"to|in|into|for|of|on|from|with|without|at|by|around|inside|within|and|or|but|so|because|"
    r"when|while|after|before|than|via|under|over|that|which"
)
_WRITES_TESTS = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        rf"{_CLAUSE}(?:{_TEST_VERBS})\s+(?:(?!(?:{_STOP})\b)[\w'-]+\s+){{0,4}}tests?\b",
        rf"{_CLAUSE}cover\s+.+?\s+with\s+(?:[\w'-]+\s+){{0,2}}tests?\b",
        r"^\s*(?:(?:unit|integration|regression|e2e|end-to-end)\s+)?tests?\b(?!\s+defined\b)",
    )
)


def _infrastructure(f: FileChange) -> Iterator[Violation]:
    for path, verb in _touched(f):
        why = _infrastructure_reason(path)
        if why is not None:
            yield Violation(
                GuardRule.TEST_INFRASTRUCTURE.value,
                f"{show(path)}: {verb}, but it is test infrastructure: {why}; {_ALLOW}",
                path,
            )


def _test_file_changed(f: FileChange) -> Iterator[Violation]:
    """An existing test changed; new test files are welcome, so only the base side counts."""
    if f.status is FileStatus.ADDED:
        return
    if f.status is FileStatus.RENAMED and f.old_path is not None:
        path, verb = f.old_path, f"renamed to {show(f.path)}"
    else:
        path, verb = f.path, _verb(f.status)
    # An infrastructure file is reported as such, once (tests/conftest.py is both).
    if is_test_file(path) and not is_test_infrastructure(path):
        yield Violation(
            GuardRule.TEST_FILE_CHANGED.value,
            f"{show(path)}: {verb}, but it is an existing test, and a task may not change the "
            f"tests that judge it; {_ALLOW}",
            path,
        )


def _markers(f: FileChange) -> Iterator[Violation]:
    """Skip and hook markers in added code lines; a moved line counts, as the diff adds it."""
    if f.is_binary:
        return
    hooks = _HOOK_MARKERS + (_TEST_FILE_HOOK_MARKERS if is_test_file(f.path) else ())
    skips = _found(f.added_lines, _SKIP_MARKERS)
    if skips:
        name, line, count = skips
        yield Violation(
            GuardRule.SKIP_ADDED.value,
            f"{show(f.path)}: {_lines(count)} {_agree(count, 'skip')} tests or "
            f'{_agree(count, "expect")} them to fail (`{name}`: "{_quote(line)}"), but a test '
            f"that does not run cannot fail, so the gate would pass without it; {_ALLOW}",
            f.path,
        )
    hooked = _found(f.added_lines, hooks)
    if hooked:
        name, line, count = hooked
        yield Violation(
            GuardRule.TEST_HOOK.value,
            f"{show(f.path)}: {_lines(count)} {_agree(count, 'load')} code into the test run or "
            f'{_agree(count, "end")} it (`{name}`: "{_quote(line)}"), but such code can make a '
            f"failing suite report success; {_ALLOW}",
            f.path,
        )


def _found(
    lines: tuple[str, ...], markers: tuple[tuple[str, re.Pattern[str]], ...]
) -> tuple[str, str, int] | None:
    """The first marker found and its line, and how many code lines hold one; None if none do."""
    hits: list[tuple[str, str]] = []
    for line in lines:
        if _is_comment(line):
            continue
        name = next((name for name, pattern in markers if pattern.search(line)), None)
        if name is not None:
            hits.append((name, line))
    if not hits:
        return None
    return hits[0][0], hits[0][1], len(hits)


def _config_changed(path: str, before: bytes | None, after: bytes | None) -> Iterator[Violation]:
    old, new = _read_sections(path, before), _read_sections(path, after)
    if old is None or new is None:
        if before != after:
            yield Violation(
                GuardRule.TEST_CONFIG.value,
                f"{show(path)}: changed, but it does not parse, so a change to how the tests "
                f"run cannot be ruled out; {_ALLOW}",
                path,
            )
        return
    for name in sorted(old.keys() | new.keys()):
        if old.get(name) == new.get(name):
            continue
        verb = "added" if name not in old else "removed" if name not in new else "changed"
        yield Violation(
            GuardRule.TEST_CONFIG.value,
            f"{show(path)}: {name} {verb}, but it configures how the tests are found and run; "
            f"{_ALLOW}",
            path,
        )


def _read_sections(path: str, data: bytes | None) -> dict[str, str] | None:
    if data is None:
        return {}
    try:
        return _config_sections(path, data.decode("utf-8"))
    except UnicodeDecodeError:
        return None


def _config_sections(path: str, text: str) -> dict[str, str] | None:
    """Like `test_config_sections`, but None when the text does not parse."""
    kind = _config_kind(path)
    if kind is _ConfigFile.PYPROJECT:
        return _pyproject_sections(text)
    if kind is _ConfigFile.SETUP_CFG:
        return _ini_sections(text, lambda name: name == "tool:pytest" or _coverage(name))
    if kind is _ConfigFile.TOX_INI:
        return _ini_sections(text, lambda name: name == "pytest" or _coverage(name))
    return {}


def _pyproject_sections(text: str) -> dict[str, str] | None:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None
    sections: dict[str, str] = {}
    tool = data.get("tool")
    if isinstance(tool, dict):
        for name in ("pytest", "coverage", "tox"):
            if name in tool:
                sections.update(_tables(f"tool.{name}", tool[name]))
    # An installed pytest11 entry point is a plugin pytest loads into every run.
    project = data.get("project")
    entry_points = project.get("entry-points") if isinstance(project, dict) else None
    if isinstance(entry_points, dict) and "pytest11" in entry_points:
        sections["[project.entry-points.pytest11]"] = _canonical(entry_points["pytest11"])
    return sections


def _tables(prefix: str, value: Any) -> dict[str, str]:
    """One entry per sub-table of `prefix`, plus one for the plain keys directly under it."""
    if not isinstance(value, dict):
        return {f"[{prefix}]": _canonical(value)}
    found = {f"[{prefix}.{k}]": _canonical(v) for k, v in value.items() if isinstance(v, dict)}
    plain = {k: v for k, v in value.items() if not isinstance(v, dict)}
    if plain:
        found[f"[{prefix}]"] = _canonical(plain)
    return found


class _CaseKeepingParser(configparser.RawConfigParser):
    # configparser lowercases keys by default; pytest does not, so `TestPaths` is no setting.
    def optionxform(self, optionstr: str) -> str:
        return optionstr


def _ini_sections(text: str, wanted: Callable[[str], bool]) -> dict[str, str] | None:
    # A default_section no file can name: pytest does not copy [DEFAULT] into other sections.
    parser = _CaseKeepingParser(default_section="\0", strict=True)
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    sections = {
        f"[{name}]": _canonical(dict(parser.items(name)))
        for name in parser.sections()
        if wanted(name)
    }
    if parser.has_option("options.entry_points", "pytest11"):
        plugins = parser.get("options.entry_points", "pytest11")
        sections["pytest11 in [options.entry_points]"] = _canonical(plugins)
    return sections


def _coverage(section: str) -> bool:
    return section.startswith("coverage:")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _config_kind(path: str) -> _ConfigFile | None:
    return _CONFIG_FILES.get(PurePosixPath(path).name)


def _infrastructure_reason(path: str) -> str | None:
    # Case-folded: on a case-insensitive file system pytest finds "Conftest.py" all the same.
    name = PurePosixPath(path).name.casefold()
    if not name:
        return None
    return next((why for pattern, why in _INFRASTRUCTURE if matches(pattern, name)), None)


def _touched(f: FileChange) -> Iterator[tuple[str, str]]:
    """Each path the change concerns with what happened to it; a rename concerns both ends."""
    if f.status is FileStatus.RENAMED and f.old_path is not None:
        yield f.old_path, f"renamed to {show(f.path)}"
        yield f.path, f"renamed from {show(f.old_path)}"
    else:
        yield f.path, _verb(f.status)


def _verb(status: FileStatus) -> str:
    return "changed type" if status is FileStatus.TYPECHANGE else status.value


def _is_comment(line: str) -> bool:
    stripped = line.lstrip()
    return stripped.startswith("//") or (stripped.startswith("#") and not stripped.startswith("#["))


def _quote(line: str) -> str:
    text = line.strip()
    cut = text[:_QUOTE_CHARS]
    return show(cut) + ("..." if len(text) > _QUOTE_CHARS else "")


def _lines(count: int) -> str:
    return "an added line" if count == 1 else f"{count} added lines"


def _agree(count: int, verb: str) -> str:
    return f"{verb}s" if count == 1 else verb
