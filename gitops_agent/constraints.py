"""The constraints document -> `Constraints`: the limits and rules an autonomous run obeys."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitops_agent.errors import ConstraintsError
from gitops_agent.files import read_text
from gitops_agent.mdblocks import blocks, split_lines
from gitops_agent.policy.paths import pattern_error
from gitops_agent.sandbox.confine import Confinement
from gitops_agent.yamlmap import load_mapping, split_front_matter

# The seed's forbidden list, made concrete. Patterns are gitignore-like globs: a pattern
# without "/" matches a file name at any depth; one with "/" matches from the repository root.
DEFAULT_PROTECTED: tuple[str, ...] = (
    # CI/CD pipelines (and the actions, CODEOWNERS and settings they read)
    ".github/**",
    ".gitlab-ci.yml",
    ".circleci/**",
    "Jenkinsfile",
    "azure-pipelines.yml",
    ".travis.yml",
    # the quality gate and what it runs (a change to the gate must not judge itself)
    ".ai-validation/**",
    "Makefile",
    "tox.ini",
    "noxfile.py",
    ".pre-commit-config.yaml",
    # git's own configuration in the tree
    ".gitignore",
    ".gitattributes",
    ".gitmodules",
    # environment files: a file named .env or .env.<anything>
    ".env",
    ".env.*",
    ".envrc",
    ".npmrc",
    ".pypirc",
    # dependency manifests and lock files, at any depth (monorepos keep one in every package)
    "requirements*.txt",
    "requirements/",
    "constraints*.txt",
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "Pipfile",
    "Pipfile.lock",
    "poetry.lock",
    "uv.lock",
    "package.json",
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "Cargo.toml",
    "Cargo.lock",
    "go.mod",
    "go.sum",
    "Gemfile",
    "Gemfile.lock",
    "composer.json",
    "composer.lock",
    "pom.xml",
    "build.gradle",
    "build.gradle.kts",
    # containers and production configuration
    "docker-compose.yml",
    "docker-compose.yaml",
    "docker-compose.*.yml",
    "docker-compose.*.yaml",
    "compose.yml",
    "compose.yaml",
    "Dockerfile",
)

# Regular expressions (case-insensitive) that no added line may match.
DEFAULT_FORBIDDEN_CONTENT: tuple[str, ...] = (
    r"\bDROP\s+TABLE\b",
    r"\bDROP\s+DATABASE\b",
    r"\bDROP\s+COLUMN\b",
    r"\bDELETE\s+FROM\b",
    r"\bTRUNCATE\s+TABLE\b",
    r"\bALTER\s+TABLE\b",
)

# Phrases (case-insensitive, whole words, plural allowed) that a task's text may not contain.
DEFAULT_FORBIDDEN_WORDS: tuple[str, ...] = (
    "delete file",
    "drop table",
    "remove column",
    "add dependency",
    "install package",
    "stripe",
    "payment",
)

DEFAULT_APPROVED_DIRS: tuple[str, ...] = ("src/", "tests/", "docs/")


class NothingToDo(enum.StrEnum):
    """The `nothing_to_do:` setting: what a `Run:` command that changed no file leads to."""

    DONE = "done"  # its status is set to DONE in a commit of its own
    LEAVE = "leave"  # it is left for a person (skipped)


@dataclass(frozen=True, slots=True)
class Constraints:
    """Limits and rules, with where each non-default value came from (for messages)."""

    # pre-flight
    min_alignment: int = 80
    max_estimated_lines: int = 30
    require_tests: bool = True
    forbidden_words: tuple[str, ...] = DEFAULT_FORBIDDEN_WORDS
    # session limits
    max_tasks_per_session: int = 5
    max_session_minutes: float = 240
    max_attempts: int = 3
    max_consecutive_failures: int = 2
    max_failed_sessions: int = 3  # sessions in a row a task may fail before NEEDS_HUMAN; 0: never
    task_timeout_minutes: float = 30
    idle_timeout_minutes: float = 10  # 0: no idle limit
    # post-flight
    approved_dirs: tuple[str, ...] = DEFAULT_APPROVED_DIRS
    approved_files: tuple[str, ...] = ()  # files (globs) a change may touch outside those dirs
    protected: tuple[str, ...] = DEFAULT_PROTECTED
    forbidden_content: tuple[str, ...] = DEFAULT_FORBIDDEN_CONTENT
    allow_delete: bool = False
    allow_binary: bool = False
    max_file_bytes: int = 1_000_000
    line_budget_factor: float = 2.0
    scan_secrets: bool = True
    # confinement of agents, `Run:` commands and gates
    confinement: Confinement = Confinement.REQUIRED
    agent_env: tuple[str, ...] = ()  # more variables an agent or `Run:` command is given
    gate_env: tuple[str, ...] = ()  # more variables the gate is given
    memory_limit_mb: int = 8192  # data memory of each confined process; 0: no limit
    max_processes: int = 1024  # processes of the user, for non-root users; 0: no limit
    # the gate and its evidence
    protect_tests: bool = True  # existing tests and test infrastructure may not change
    run_ok_exit_codes: tuple[int, ...] = ()  # (): 0, or 1 when a `Run:` command changed files
    keep_attempts_days: int = 30  # how long every attempt's evidence is kept; 0: not kept
    nothing_to_do: NothingToDo = NothingToDo.DONE
    max_session_attempts: int = 0  # attempts of all tasks together in a session; 0: no limit
    max_agent_turns: int = 0  # model turns an agent may take per attempt, where its CLI can
    # be bounded (claude, gemini); 0: no limit
    # after the pull request
    auto_merge: bool = True  # false: no result is merged by the tool (approval: auto refused)
    no_auto_merge: tuple[str, ...] = ()  # paths (patterns) whose change a person must merge
    # provenance
    path: str | None = None  # None: the built-in defaults (no constraints file)
    prose: str = ""  # the document's text, given to the agent in its prompt
    sources: dict[str, int] = field(default_factory=dict)  # setting name -> line it came from
    # (setting, line): a sentence names a limit but gives no number that can be read, so the
    # default applies; `check` says so
    unread: tuple[tuple[str, int], ...] = ()


# Settings a constraints document may give as YAML (front matter or a ```yaml block).
_INT_SETTINGS = (
    "min_alignment",
    "max_estimated_lines",
    "max_tasks_per_session",
    "max_attempts",
    "max_consecutive_failures",
    "max_failed_sessions",
    "max_file_bytes",
    "memory_limit_mb",
    "max_processes",
    "keep_attempts_days",
    "max_agent_turns",
    "max_session_attempts",
)
_BOOL_SETTINGS = (
    "require_tests",
    "allow_delete",
    "allow_binary",
    "scan_secrets",
    "protect_tests",
    "auto_merge",
)
_INT_LIST_SETTINGS = ("run_ok_exit_codes",)
_LIST_SETTINGS = (
    "forbidden_words",
    "approved_dirs",
    "approved_files",
    "protected",
    "forbidden_content",
    "agent_env",
    "gate_env",
    "no_auto_merge",
)
_CHOICE_SETTINGS: dict[str, type[enum.StrEnum]] = {
    "confinement": Confinement,
    "nothing_to_do": NothingToDo,
}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FLOAT_SETTINGS = (
    "line_budget_factor",
    "max_session_minutes",
    "task_timeout_minutes",
    "idle_timeout_minutes",
)
MACHINE_KEYS: tuple[str, ...] = (
    *_INT_SETTINGS,
    *_BOOL_SETTINGS,
    *_LIST_SETTINGS,
    *(f"extra_{name}" for name in _LIST_SETTINGS),
    *_FLOAT_SETTINGS,
    *_CHOICE_SETTINGS,
    *_INT_LIST_SETTINGS,
)

DEFAULT_PATH = "docs/autonomous-constraints.md"


def _minutes(number: str, unit: str) -> float:
    value = float(number) * (60 if unit.lower().startswith("h") else 1)
    return int(value) if value.is_integer() else value


def _dirs(listed: str) -> tuple[str, ...]:
    names = [n.strip(" `'\".") for n in re.split(r",|\band\b", listed)]
    return tuple(n.rstrip("/") + "/" for n in names if n)


_DURATION = r"(\d+(?:\.\d+)?)\s*(hours?|hrs?|h|minutes?|mins?|m)\b"
# Sentences of the constraints document whose numbers take effect: (setting, pattern, value).
# The first matching line sets a value; YAML settings override it.
_PROSE: tuple[tuple[str, re.Pattern[str], Callable[[re.Match[str]], Any]], ...] = (
    (
        "min_alignment",
        re.compile(
            r"alignment score\**\s*(?:≥|>=|of at least|at least|min(?:imum)?:?)\s*(\d+)", re.I
        ),
        lambda m: int(m[1]),
    ),
    (
        "max_estimated_lines",
        re.compile(
            r"estimated lines\**\s*(?:≤|<=|of at most|at most|max(?:imum)?:?)\s*(\d+)", re.I
        ),
        lambda m: int(m[1]),
    ),
    (
        "max_tasks_per_session",
        re.compile(r"max(?:imum)? tasks per session\s*:?\s*(\d+)", re.I),
        lambda m: int(m[1]),
    ),
    (
        "max_session_minutes",
        re.compile(r"max(?:imum)? session duration\s*:?\s*" + _DURATION, re.I),
        lambda m: _minutes(m[1], m[2]),
    ),
    (
        "max_attempts",
        re.compile(r"max(?:imum)? attempts per task\s*:?\s*(\d+)", re.I),
        lambda m: int(m[1]),
    ),
    (
        "max_consecutive_failures",
        re.compile(r"stop (?:if|after) (\d+) consecutive failures", re.I),
        lambda m: int(m[1]),
    ),
    (
        "task_timeout_minutes",
        re.compile(r"task takes\s*(?:>|more than|longer than|over)\s*" + _DURATION, re.I),
        lambda m: _minutes(m[1], m[2]),
    ),
    (
        "approved_dirs",
        re.compile(r"create new files in\s+((?:`?[\w.-]+/?`?(?:\s*,\s*|\s+and\s+|\s*$))+)", re.I),
        lambda m: _dirs(m[1]),
    ),
)


# Words that name a limit of the prose: a line that has them but not a number `_PROSE` reads
# ("Max attempts per task: three") is said (`Constraints.unread`), never silently skipped.
_MENTIONS: dict[str, re.Pattern[str]] = {
    "min_alignment": re.compile(r"alignment score\**\s*(?:≥|>=|of at least|at least|min)", re.I),
    "max_estimated_lines": re.compile(
        r"estimated lines\**\s*(?:≤|<=|of at most|at most|max)", re.I
    ),
    "max_tasks_per_session": re.compile(r"max(?:imum)? tasks per session", re.I),
    "max_session_minutes": re.compile(r"max(?:imum)? session duration", re.I),
    "max_attempts": re.compile(r"max(?:imum)? attempts per task", re.I),
    "max_consecutive_failures": re.compile(r"consecutive failures", re.I),
    "task_timeout_minutes": re.compile(r"task takes\s*(?:>|more than|longer than|over)", re.I),
}


def parse_constraints(text: str, path: str) -> Constraints:
    """Constraints from a document: its prose numbers, then its YAML machine rules."""
    raw, body = split_front_matter(text, path, ConstraintsError)
    structure = blocks(body)
    values: dict[str, Any] = {}
    sources: dict[str, int] = {}
    unread: dict[str, int] = {}  # setting -> a line that names it without a number read
    for index, line in enumerate(split_lines(body)):
        if index in structure.skip:
            continue
        for name, pattern, convert in _PROSE:
            if name not in sources and (found := pattern.search(line)) is not None:
                # A sentence's number obeys the same ranges as its YAML setting.
                _apply(name, convert(found), path, index + 1, values, prose=True)
                sources[name] = index + 1
        for name, mention in _MENTIONS.items():
            if name not in sources and mention.search(line) and not unread.get(name):
                unread[name] = index + 1
    yaml_sources: dict[str, int] = {}
    documents = [(raw, 2)] if raw is not None else []
    documents += [(f.content, f.first_line) for f in structure.fences if f.info in ("yaml", "yml")]
    for content, first_line in documents:
        for setting in load_mapping(
            content, path, first_line, "the constraints' machine rules", ConstraintsError
        ):
            if setting.key in yaml_sources:
                raise ConstraintsError(
                    f"`{setting.key}` is set twice (first on line {yaml_sources[setting.key]})",
                    path,
                    setting.line,
                )
            yaml_sources[setting.key] = setting.line
            _apply(setting.key, setting.value, path, setting.line, values)
    sources.update({k.removeprefix("extra_"): v for k, v in yaml_sources.items()})
    missed = tuple((n, line) for n, line in unread.items() if n not in sources)
    return Constraints(**values, path=path, prose=body.strip("\n"), sources=sources, unread=missed)


def _apply(
    key: str, value: Any, path: str, line: int, values: dict[str, Any], *, prose: bool = False
) -> None:
    if key not in MACHINE_KEYS:
        raise ConstraintsError(
            f"unknown setting `{key}` (known: {', '.join(MACHINE_KEYS)})", path, line
        )
    said = f"this sentence sets `{key}` to {value}, but " if prose else f"`{key}` "
    if key in _INT_SETTINGS:
        at_least_one = ("max_attempts", "max_consecutive_failures", "max_tasks_per_session")
        least = 1 if key in at_least_one else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConstraintsError(f"{said}must be a whole number, {least} or more", path, line)
        values[key] = value
    elif key in _CHOICE_SETTINGS:
        kind = _CHOICE_SETTINGS[key]
        choices = [choice.value for choice in kind]
        if value is False and "off" in choices:
            value = "off"  # YAML 1.1 reads a bare `off` as false
        if value not in choices:
            raise ConstraintsError(f"`{key}` must be one of {', '.join(choices)}", path, line)
        values[key] = kind(value)
    elif key in _INT_LIST_SETTINGS:
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value
        ):
            raise ConstraintsError(
                f"`{key}` must be a list of exit statuses (whole numbers 0 to 255)", path, line
            )
        values[key] = tuple(value)
    elif key in _BOOL_SETTINGS:
        if not isinstance(value, bool):
            raise ConstraintsError(f"`{key}` must be true or false", path, line)
        values[key] = value
    elif key in _FLOAT_SETTINGS:
        floor = 0.0 if key == "idle_timeout_minutes" else 1e-9
        if isinstance(value, bool) or not isinstance(value, int | float) or value < floor:
            above = "0 or more" if floor == 0 else "above 0"
            raise ConstraintsError(f"{said}must be a number {above}", path, line)
        values[key] = float(value)
    elif prose:
        values[key] = value  # a list of directories, already shaped by its sentence
    else:
        name = key.removeprefix("extra_")
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConstraintsError(f"`{key}` must be a list of texts", path, line)
        if name == "forbidden_content":
            for pattern in value:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ConstraintsError(
                        f"`{key}`: `{pattern}` is not a valid regular expression ({exc})",
                        path,
                        line,
                    ) from None
        if name in ("agent_env", "gate_env"):
            for variable in value:
                if not _ENV_NAME.fullmatch(variable):
                    raise ConstraintsError(
                        f"`{key}`: `{variable}` is not an environment variable name", path, line
                    )
        if name in ("protected", "approved_dirs", "approved_files", "no_auto_merge"):
            for pattern in value:
                problem = pattern_error(pattern)
                if problem is not None:
                    raise ConstraintsError(
                        f"`{key}`: `{pattern}` is not a usable path pattern ({problem})",
                        path,
                        line,
                    )
        if name == "approved_dirs":
            value = [v.rstrip("/") + "/" for v in value]
        if key.startswith("extra_"):
            base = values.get(name, getattr(DEFAULTS, name))
            values[name] = (*base, *value)
        else:
            values[name] = tuple(value)


DEFAULTS = Constraints()


def load_constraints(root: Path, path: str | None, *, explicit: bool) -> Constraints:
    """The constraints at `path` (relative to `root`); a missing default file means defaults.

    A file someone named explicitly (--constraints, or `constraints:` in the plan) must exist.
    """
    shown = path or DEFAULT_PATH
    target = root / shown
    if not target.exists() and not explicit:
        return DEFAULTS
    return parse_constraints(read_text(target, shown), shown)


def unread_notes(constraints: Constraints) -> list[str]:
    """`path:line:` notes for the sentences that name a limit without a number that reads."""
    return [
        f"{constraints.path}:{line}: this sentence names `{name}`, but no number in it can be "
        f"read (write it as the template does, e.g. `Max attempts per task: 3`), so the default "
        f"{getattr(DEFAULTS, name):g} applies"
        for name, line in constraints.unread
    ]
