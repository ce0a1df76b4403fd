"""PROJECT_PLAN.md -> `Plan`: typed tasks that remember the lines they came from.

markdown-it-py finds the document's block structure (headings, fenced code, HTML comments);
task and detail lines are then read line by line outside code, so every record keeps its line
and write-back can change one line and leave every other byte as the user wrote it.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter  # type: ignore[import-untyped]

from gitops_agent.errors import PlanError
from gitops_agent.install_source import InstallSource
from gitops_agent.mdblocks import blocks, split_lines
from gitops_agent.yamlmap import load_mapping, split_front_matter


class Queue(enum.Enum):
    READY = "ready"
    PENDING = "pending"
    NOT_READY = "not_ready"


class TaskStatus(enum.StrEnum):
    """The `Status:` words the tool reads or writes. A person may write any other word: it is
    kept as a plain string (upper-cased, `-` read as `_`), and write-back leaves it as written."""

    READY = "READY"
    PENDING = "PENDING"  # what the plan template writes under Pending Approval
    DONE = "DONE"  # set by the commit that carries the task's result
    NEEDS_HUMAN = "NEEDS_HUMAN"  # set when a person rejected its result, or it kept failing


_STATUSES = {status.value: status for status in TaskStatus}


class Approval(enum.StrEnum):
    """Who takes a task's result into the base (`approval:`, or a task's `Approval:` line)."""

    FINAL = "final"  # the session's one pull request; a person merges it
    PER_TASK = "per-task"  # the task's own branch and pull request; a person merges it
    AUTO = "auto"  # its own branch; the tool merges it after a green quarantine


class OnFailure(enum.StrEnum):
    """`on_failure:`: what a per-task result that was rolled back leaves for people."""

    NOTHING = "nothing"  # its kept attempts (`gitops-agent show`)
    DRAFT_PR = "draft-pr"  # also a draft pull request of its last attempt


class MergeMethod(enum.StrEnum):
    """`merge_method:`: how an auto-approved result is merged (GitHub's words)."""

    MERGE = "merge"
    SQUASH = "squash"
    REBASE = "rebase"


DEFAULT_QUARANTINE_HOURS = 48.0


QUEUE_HEADINGS: tuple[tuple[str, Queue], ...] = (
    ("ready for autonomous execution", Queue.READY),
    ("pending approval", Queue.PENDING),
    ("not ready", Queue.NOT_READY),
)
QUEUE_TITLES = {
    Queue.READY: "Ready for Autonomous Execution",
    Queue.PENDING: "Pending Approval",
    Queue.NOT_READY: "Not Ready",
}

ID_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
# `→ **[ID]** Title` or `- **[ID]** Title` (also `*`), indented at most three spaces.
TASK_RE = re.compile(r"^ {0,3}(?P<marker>→|[-*])[ \t]+\*\*\[(?P<id>[^\]]*)\]\*\*(?P<title>.*)$")
ARROW_RE = re.compile(r"^ {0,3}→")
# An indented `- Key: value` line.
DETAIL_RE = re.compile(
    r"^(?P<prefix>[ \t]+[-*][ \t]+(?P<key>[A-Za-z][A-Za-z0-9 _/-]*?)[ \t]*:[ \t]*)"
    r"(?P<value>.*?)[ \t]*$"
)
OBJECTIVE_RE = re.compile(r"\*\*Objective\*\*\s*:?\s*(?P<text>.+)")
# "95/100", "95%", "95", and a score out of another scale ("9/10": read as 90).
ALIGNMENT_RE = re.compile(r"^\s*(\d{1,3})\s*(?:/\s*(\d{1,3})\b|%)?")
LINES_RE = re.compile(r"^\s*~?\s*(\d+)(?:\s*[-\u2013]\s*(\d+))?")  # "10-20", also with an en dash
WORD_RE = re.compile(r"[A-Za-z][A-Za-z_-]*")
FIRST_WORD_RE = re.compile(r"\w+|\S")

# Detail keys we understand (normalised) -> the field they fill. Others are kept as written.
KEY_ALIASES = {
    "alignment score": "alignment",
    "estimated lines": "estimated_lines",
    "tests defined": "tests_defined",
    "status": "status",
    "run": "run",
    "reason": "reason",
    "approval": "approval",
}

TESTS_YES = ("✅", "yes", "y", "true")
TESTS_NO = ("⏳", "❌", "⚠", "no", "n", "false", "needs", "pending", "tbd", "todo", "none")

PLAN_SETTINGS: dict[str, str] = {
    "objective": "what the project is for; given to the agent in every prompt",
    "base": "the branch sessions start from (default: the branch HEAD points to)",
    "agent": "an agent preset (claude, codex, aider, gemini) or a command for bash -c",
    "gate": "the quality gate: a command or a list of commands (or `run:` entries) run in order",
    "constraints": "path of the constraints document (default docs/autonomous-constraints.md)",
    "timezone": "the time zone of memory logs and reports, e.g. Europe/Warsaw (default UTC)",
    "notify": "notification URLs (apprise), one or a list; also GITOPS_AGENT_NOTIFY",
    "schedule": "when the scheduled workflow runs, a cron line (default 0 2 * * *)",
    "install": "where the workflow installs gitops-agent from: git+https://...@<commit> or "
    "gitops-agent==X --hash=sha256:... (default: where this copy came from)",
    "approval": "who merges a result: final (one PR a session, a person merges; the default), "
    "per-task (a PR for each task, a person merges) or auto (the tool merges after quarantine)",
    "quarantine_hours": "how long an auto-approved result waits, re-tested on every run, "
    "before the tool merges it (default 48)",
    "merge_method": "how the tool merges an auto-approved result: merge, squash or rebase "
    "(default merge)",
    "on_failure": "per-task and auto: nothing (the default) or draft-pr (a draft PR of a "
    "rolled-back task's last attempt, never for a broken safety rule)",
    "scan": "problem-scan commands printing `path:line: message` findings (gitops-agent scan)",
    "scan_schedule": "when the workflow runs `scan`, a cron line (default: no scheduled scan)",
}


@dataclass(frozen=True, slots=True)
class Detail:
    """One `- Key: value` line under a task."""

    key: str  # as written
    value: str
    line: int  # 1-based
    value_start: int  # column where the value starts (0-based), for write-back


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    title: str
    line: int
    queue: Queue | None  # None: not under any queue heading
    heading: str | None  # the queue heading's text
    details: tuple[Detail, ...]
    alignment: int | None = None
    estimated_lines: int | None = None
    tests_defined: bool | None = None
    status: TaskStatus | str | None = None  # first word of `Status:`: a TaskStatus if known
    run: str | None = None
    reason: str | None = None
    approval: Approval | None = None  # its `Approval:` line; None: the plan's `approval:`

    def approval_in(self, settings: Settings) -> Approval:
        return self.approval or settings.approval

    def detail(self, key: str) -> Detail | None:
        wanted = normalise_key(key)
        return next((d for d in self.details if normalise_key(d.key) == wanted), None)

    @property
    def text(self) -> str:
        """Everything a person wrote about the task, for the forbidden-words rule."""
        return "\n".join([self.title, *(f"{d.key}: {d.value}" for d in self.details)])


@dataclass(frozen=True, slots=True)
class GateEntry:
    """One command of the plan's `gate:`; `findings` and `junit` say how its result is read."""

    run: str
    findings: bool = False  # prints `path:line:` findings: only those a change introduces count
    junit: str | None = None  # a JUnit XML report it writes, relative to the checkout
    line: int = 0

    def __str__(self) -> str:
        return self.run


GATE_ENTRY_KEYS = ("run", "findings", "junit")


@dataclass(frozen=True, slots=True)
class Settings:
    """The plan's front matter."""

    objective: str | None = None
    base: str | None = None
    agent: str | None = None
    gate: tuple[GateEntry, ...] | None = None
    constraints: str | None = None
    timezone: str | None = None
    notify: tuple[str, ...] | None = None
    schedule: str | None = None
    install: InstallSource | None = None
    approval: Approval = Approval.FINAL
    quarantine_hours: float = DEFAULT_QUARANTINE_HOURS
    merge_method: MergeMethod = MergeMethod.MERGE
    on_failure: OnFailure = OnFailure.NOTHING
    scan: tuple[str, ...] = ()
    scan_schedule: str | None = None
    lines: tuple[tuple[str, int], ...] = ()  # (key, line) for messages

    def line_of(self, key: str) -> int | None:
        return next((line for k, line in self.lines if k == key), None)


@dataclass(frozen=True, slots=True)
class Plan:
    path: str  # as shown in messages
    settings: Settings
    tasks: tuple[Task, ...]
    objective: str | None

    def task(self, task_id: str) -> Task | None:
        return next((t for t in self.tasks if t.id == task_id), None)


@cache
def normalise_key(key: str) -> str:
    return " ".join(re.split(r"[\s_-]+", key.strip().lower()))


def parse_plan(text: str, path: str) -> Plan:
    """Parse a plan; any problem is a PlanError naming `path` and the line."""
    settings, body = _split_front_matter(text, path)
    lines = split_lines(body)
    structure = blocks(body)
    skip, heading_at = structure.skip, structure.headings
    tasks: list[Task] = []
    seen: dict[str, int] = {}
    objective: str | None = settings.objective
    stack: list[tuple[int, Queue | None, str]] = []  # (heading level, queue, text)
    current: _TaskBuilder | None = None

    for index, raw in enumerate(lines):
        number = index + 1
        if number in heading_at:
            if current is not None:
                tasks.append(current.build(path))
                current = None
            level, title = heading_at[number]
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, _queue_of(title), title))
            continue
        if index in skip:
            continue
        queue, heading = _current_queue(stack)
        match = TASK_RE.match(raw)
        if match is None and ARROW_RE.match(raw):
            raise PlanError("task line has no ID: write it as `→ **[ID]** Title`", path, number)
        if match is not None:
            if current is not None:
                tasks.append(current.build(path))
            task_id = match["id"].strip()
            if not ID_RE.match(task_id):
                shown = f"`{task_id}`" if task_id else "an empty ID"
                raise PlanError(
                    f"task line has {shown}; an ID is letters, digits, `_`, `-` and `.`",
                    path,
                    number,
                )
            if task_id in seen:
                raise PlanError(
                    f"duplicate task ID `{task_id}` (first used on line {seen[task_id]})",
                    path,
                    number,
                )
            seen[task_id] = number
            title = match["title"].strip()
            if not title:
                raise PlanError(f"task `{task_id}` has no title", path, number)
            current = _TaskBuilder(task_id, title, number, queue, heading)
            continue
        detail = DETAIL_RE.match(raw)
        if detail is not None:
            if current is not None:
                current.add(detail, number, path)
            elif queue is not None:
                raise PlanError(
                    f"detail line `{detail['key']}:` is outside a task; put it under a task line "
                    "like `→ **[ID]** Title`",
                    path,
                    number,
                )
            continue
        if current is not None and raw.strip() and not raw[0].isspace():
            tasks.append(current.build(path))
            current = None
        if objective is None and (found := OBJECTIVE_RE.search(raw)) is not None:
            objective = found["text"].strip()
    if current is not None:
        tasks.append(current.build(path))
    return Plan(path=path, settings=settings, tasks=tuple(tasks), objective=objective)


def _queue_of(heading: str) -> Queue | None:
    lowered = heading.lower()
    return next((queue for words, queue in QUEUE_HEADINGS if words in lowered), None)


def _current_queue(stack: list[tuple[int, Queue | None, str]]) -> tuple[Queue | None, str | None]:
    for _level, queue, title in reversed(stack):
        if queue is not None:
            return queue, title
    return None, None


def _split_front_matter(text: str, path: str) -> tuple[Settings, str]:
    """Settings from the YAML front matter, and the body with line numbers kept."""
    raw, body = split_front_matter(text, path, PlanError)
    if raw is None:
        return Settings(), body
    values: dict[str, Any] = {}
    lines: list[tuple[str, int]] = []
    for setting in load_mapping(raw, path, 2, "the plan's front matter", PlanError):
        if setting.key not in PLAN_SETTINGS:
            known = ", ".join(PLAN_SETTINGS)
            raise PlanError(
                f"unknown front matter key `{setting.key}` (known: {known})", path, setting.line
            )
        values[setting.key] = _plan_setting(setting.key, setting.value, path, setting.line)
        lines.append((setting.key, setting.line))
    return Settings(**values, lines=tuple(lines)), body


def schedule_problem(value: object) -> str | None:
    """Why `value` is not a cron line the report and the workflow can use, or None. croniter
    judges it, as the report reads it (GitHub reads the same five fields)."""
    if not isinstance(value, str) or len(value.split()) != 5:
        return "five fields separated by spaces"
    try:
        croniter(value)
    except ValueError as err:  # croniter's errors are ValueErrors
        return str(err) or "not a cron line"
    return None


_CHOICES: dict[str, type[enum.StrEnum]] = {
    "approval": Approval,
    "merge_method": MergeMethod,
    "on_failure": OnFailure,
}


def _plan_setting(key: str, value: Any, path: str, line: int) -> Any:
    if key == "timezone":
        try:
            ZoneInfo(str(value))
        except (ZoneInfoNotFoundError, ValueError):
            raise PlanError(f"`timezone`: unknown time zone `{value}`", path, line) from None
        return str(value)
    if key in _CHOICES:
        choice = _CHOICES[key]
        try:
            return choice(str(value).strip().lower())
        except ValueError:
            known = ", ".join(c.value for c in choice)
            raise PlanError(f"`{key}` must be one of {known}, not `{value}`", path, line) from None
    if key == "quarantine_hours":
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 8760:
            raise PlanError(
                "`quarantine_hours` must be a number of hours from 0 to 8760", path, line
            )
        return float(value)
    if key == "scan":
        commands = [value] if isinstance(value, str) else value
        if (
            not isinstance(commands, list)
            or not commands
            or not all(isinstance(c, str) and c.strip() for c in commands)
        ):
            raise PlanError("`scan` must be a command or a list of commands", path, line)
        return tuple(c.strip() for c in commands)
    if key in ("schedule", "scan_schedule"):
        problem = schedule_problem(value)
        if problem is not None:
            raise PlanError(
                f"`{key}` must be a cron line of five fields, like `0 2 * * *` ({problem})",
                path,
                line,
            )
        return str(value).strip()
    if key == "gate":
        return _gate_entries(value, path, line)
    if key == "install":
        return InstallSource.create(value, path, line)
    if key == "notify":
        if isinstance(value, str) and value.strip():
            return (value,)
        if (
            isinstance(value, list)
            and value
            and all(isinstance(v, str) and v.strip() for v in value)
        ):
            return tuple(value)
        raise PlanError(f"`{key}` must be a URL or a list of URLs", path, line)
    if not isinstance(value, str) or not value.strip():
        raise PlanError(f"`{key}` must be a non-empty text", path, line)
    return value.strip()


def _gate_entries(value: Any, path: str, line: int) -> tuple[GateEntry, ...]:
    """`gate:` as a command, or a list of commands and `{run, findings, junit}` mappings."""
    items = [value] if isinstance(value, str | dict) else value
    if not isinstance(items, list) or not items:
        raise PlanError("`gate` must be a command or a list of commands", path, line)
    entries: list[GateEntry] = []
    for item in items:
        if isinstance(item, str) and item.strip():
            entries.append(GateEntry(item, line=line))
            continue
        if not isinstance(item, dict):
            raise PlanError(
                "each `gate` entry must be a command or a mapping with `run:`", path, line
            )
        unknown = sorted(set(item) - set(GATE_ENTRY_KEYS))
        if unknown:
            raise PlanError(
                f"unknown key `{unknown[0]}` in a `gate` entry (known: "
                f"{', '.join(GATE_ENTRY_KEYS)})",
                path,
                line,
            )
        run, findings, junit = item.get("run"), item.get("findings", False), item.get("junit")
        if not isinstance(run, str) or not run.strip():
            raise PlanError("a `gate` entry needs `run:`, the command to run", path, line)
        if not isinstance(findings, bool):
            raise PlanError("`findings` in a `gate` entry must be true or false", path, line)
        if junit is not None and not _relative_path(junit):
            raise PlanError(
                "`junit` in a `gate` entry must be a path relative to the repository, like "
                "`build/junit.xml`",
                path,
                line,
            )
        if findings and junit is not None:
            raise PlanError(
                "a `gate` entry is either a findings command or writes a JUnit report, not both",
                path,
                line,
            )
        entries.append(GateEntry(run, findings=findings, junit=junit, line=line))
    return tuple(entries)


def _relative_path(value: object) -> bool:
    if not isinstance(value, str) or not value.strip() or value.startswith("/"):
        return False
    return ".." not in value.split("/")


class _TaskBuilder:
    """Collects a task's detail lines, then validates them into a Task."""

    def __init__(
        self, task_id: str, title: str, line: int, queue: Queue | None, heading: str | None
    ) -> None:
        self.id, self.title, self.line, self.queue, self.heading = (
            task_id,
            title,
            line,
            queue,
            heading,
        )
        self.details: list[Detail] = []
        self.fields: dict[str, Any] = {}
        self.seen: dict[str, int] = {}

    def add(self, match: re.Match[str], number: int, path: str) -> None:
        key, value = match["key"].strip(), match["value"]
        normal = normalise_key(key)
        if normal in self.seen:
            raise PlanError(
                f"task `{self.id}` has `{key}:` twice (first on line {self.seen[normal]})",
                path,
                number,
            )
        self.seen[normal] = number
        self.details.append(Detail(key, value, number, len(match["prefix"])))
        field_name = KEY_ALIASES.get(normal)
        if field_name is not None:
            self.fields[field_name] = _field_value(field_name, key, value, path, number)

    def build(self, path: str) -> Task:
        return Task(
            id=self.id,
            title=self.title,
            line=self.line,
            queue=self.queue,
            heading=self.heading,
            details=tuple(self.details),
            **self.fields,
        )


def _field_value(name: str, key: str, value: str, path: str, line: int) -> Any:
    if name == "alignment":
        found = ALIGNMENT_RE.match(value)
        scale = int(found[2]) if found is not None and found[2] else 100
        if found is None or scale == 0 or int(found[1]) > scale:
            raise PlanError(
                f"`{key}` must be a number from 0 to 100, like `95/100` (a score out of "
                "another scale, like `9/10`, is read as a percentage)",
                path,
                line,
            )
        return round(int(found[1]) * 100 / scale)
    if name == "estimated_lines":
        found = LINES_RE.match(value)
        if found is None:
            raise PlanError(f"`{key}` must be a number of lines, like `25`", path, line)
        return int(found[2] or found[1])
    if name == "tests_defined":
        return _yes_no(key, value, path, line)
    if name == "status":
        found = WORD_RE.search(value)
        if found is None:
            raise PlanError(
                f"`{key}` must be a word such as {TaskStatus.READY} or {TaskStatus.DONE}",
                path,
                line,
            )
        word = found[0].upper().replace("-", "_")
        return _STATUSES.get(word, word)
    if name == "approval":
        word = value.strip().strip("`").lower()
        try:
            return Approval(word)
        except ValueError:
            known = ", ".join(a.value for a in Approval)
            raise PlanError(f"`{key}` must be one of {known}, not `{value}`", path, line) from None
    if name == "run":
        command = value.strip()
        if len(command) >= 2 and command.startswith("`") and command.endswith("`"):
            command = command.strip("`").strip()
        if not command:
            raise PlanError(f"`{key}` is empty; give the shell command to run", path, line)
        return command
    return value.strip()


def _yes_no(key: str, value: str, path: str, line: int) -> bool:
    lowered = value.strip().lower()
    first = FIRST_WORD_RE.match(lowered)
    word = first[0] if first else ""
    if word in TESTS_YES or lowered.startswith("✅"):
        return True
    if word in TESTS_NO or any(lowered.startswith(mark) for mark in ("⏳", "❌", "⚠")):
        return False
    raise PlanError(
        f"`{key}` must start with ✅ or Yes, or with ⏳, ❌ or No (got `{value.strip()}`)",
        path,
        line,
    )


def set_status(
    text: str, task_id: str, status: TaskStatus | str, path: str = "PROJECT_PLAN.md"
) -> str:
    """`text` with only task `task_id`'s Status value changed (a Status line added if absent)."""
    plan = parse_plan(text, path)
    task = plan.task(task_id)
    if task is None:
        raise PlanError(f"no task `{task_id}` in the plan", path)
    lines = split_lines(text, keepends=True)
    detail = task.detail("status")
    if detail is not None:
        index = detail.line - 1
        line = lines[index]
        body = line.rstrip("\r\n")
        ending = line[len(body) :]
        value = body[detail.value_start :]
        word = WORD_RE.search(value)
        assert word is not None  # parse_plan guarantees a word
        new_value = value[: word.start()] + status + value[word.end() :]
        lines[index] = body[: detail.value_start] + new_value + ending
        return "".join(lines)
    anchor = task.details[-1].line if task.details else task.line
    indent = "  "
    if task.details:
        first = lines[task.details[0].line - 1]
        indent = first[: len(first) - len(first.lstrip())]
    previous = lines[anchor - 1]
    ending = "\r\n" if previous.endswith("\r\n") else "\n"
    if not previous.endswith(("\n", "\r")):
        lines[anchor - 1] = previous + ending
    lines.insert(anchor, f"{indent}- Status: {status}{ending}")
    return "".join(lines)
