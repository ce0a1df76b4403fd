"""Pre-flight rules: may this task run at all? Pure functions of the task and the constraints."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from functools import lru_cache

from gitops_agent.constraints import Constraints
from gitops_agent.plan import QUEUE_TITLES, Queue, Task, TaskStatus
from gitops_agent.policy import Violation

READY = QUEUE_TITLES[Queue.READY]
_WRITES_TESTS = re.compile(r"\b(?:unit |integration )?tests?\b", re.IGNORECASE)

# What bash runs itself, as `compgen -b; compgen -k` lists it (bash 5.2): nothing to find on PATH.
_BASH_BUILTINS_AND_KEYWORDS = """
. : [ alias bg bind break builtin caller cd command compgen complete compopt continue declare
dirs disown echo enable eval exec exit export false fc fg getopts hash help history jobs kill
let local logout mapfile popd printf pushd pwd read readarray readonly return set shift shopt
source suspend test times trap true type typeset ulimit umask unalias unset wait
if then else elif fi case esac for select while until do done in function time { } ! [[ ]] coproc
"""
BASH_WORDS = frozenset(_BASH_BUILTINS_AND_KEYWORDS.split())
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")
_REDIRECTION = re.compile(r"&?[<>]{1,3}[&|]?")  # >, >>, <, <<<, &>, >&, >|, ...
_OPERATOR = frozenset("();<>|&")  # shlex's punctuation: `(` opens a subshell, `;` ends a command
# A command without quotes or backslashes splits as shlex would split it, many times faster.
_UNQUOTED = re.compile(r"[^'\"\\#]*")
_WORD = re.compile(r"[();<>|&]+|[^\s();<>|&]+")


@dataclass(frozen=True, slots=True)
class ProgramLookup:
    """What the caller found when it looked for the plan's `Run:` programs (policy does no I/O).

    `missing` holds each program as `run_program` gives it: a name not on `path` (the PATH a
    `Run:` command gets), or a path ("./fix.sh", "/opt/x") that is not an executable file.
    """

    path: str
    missing: frozenset[str] = frozenset()


def preflight(
    task: Task,
    constraints: Constraints,
    *,
    has_agent: bool,
    programs: ProgramLookup | None = None,
    has_gate: bool | None = None,
) -> list[Violation]:
    """Every reason `task` may not run now; empty when it is eligible.

    A task under Not Ready (or under no queue) gets only that reason: it is a person's task.
    `programs` is where the caller found the `Run:` programs; None: not looked for.
    `has_gate`: whether a quality gate is defined; None: not judged here (`run` rolls such a
    task back with the same reason, as the contract says).
    """
    if task.queue is not Queue.READY and task.queue is not Queue.PENDING:
        return _queue(task)
    found = [
        *_queue(task),
        *_status(task),
        *_alignment(task, constraints),
        *_estimated_lines(task, constraints),
        *_tests(task, constraints),
        *_forbidden_words(task, constraints),
    ]
    if task.run is None and not has_agent:
        found.append(
            Violation(
                "runner",
                "It has no `Run:` command and no agent is configured (set `agent:` in the "
                "plan's front matter or pass --agent-command).",
            )
        )
    if has_gate is False:
        found.append(
            Violation(
                "gate",
                "There is no quality gate, so no change could be committed: add `gate:` to the "
                "plan's front matter or commit .ai-validation/check_quality.sh.",
            )
        )
    found += run_command(task, programs)
    return found


@lru_cache(maxsize=16384)  # the lookup and the rule both ask, for every task of the plan
def run_program(command: str) -> str | None:
    """The program a `Run:` command starts: its first word after `VAR=value` assignments and
    redirections. None where bash runs it itself (a builtin or keyword, a subshell) or where it
    is known only once the command runs (`$TOOL`). Raises ValueError when it does not parse."""
    words: list[str]
    if _UNQUOTED.fullmatch(command):
        words = _WORD.findall(command)
    else:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
    i = 0
    while i < len(words):
        if _ASSIGNMENT.match(words[i]):
            i += 1
        elif _REDIRECTION.fullmatch(words[i]):
            i += 2  # the operator and its file
        elif words[i].isdigit() and i + 1 < len(words) and _REDIRECTION.fullmatch(words[i + 1]):
            i += 3  # `2>err.log`: the descriptor, the operator and its file
        else:
            break
    if i >= len(words):
        return None  # only assignments (or nothing): no program runs
    word = words[i]
    if word in BASH_WORDS or set(word) <= _OPERATOR or word.startswith("~"):
        return None
    if "$" in word or "`" in word:
        return None
    return word


def run_command(task: Task, programs: ProgramLookup | None) -> list[Violation]:
    """Why `task`'s `Run:` command cannot start: it does not parse, or its program is missing."""
    if task.run is None:
        return []
    try:
        program = run_program(task.run)
    except ValueError as error:
        why = str(error)
        return [
            Violation(
                "run-program",
                f"Its `Run:` command does not parse ({why[:1].lower() + why[1:]}), so its "
                "program cannot be checked; fix its quoting.",
            )
        ]
    if program is None or programs is None or program not in programs.missing:
        return []
    if "/" not in program:
        where = f"on the PATH the command gets ({programs.path})"
    elif program.startswith("/"):
        where = "an executable file on this machine"
    else:
        where = "an executable file in the repository (the command runs at its root)"
    return [Violation("run-program", f"Its `Run:` command's program `{program}` is not {where}.")]


def _queue(task: Task) -> list[Violation]:
    if task.queue is Queue.READY:
        return []
    if task.queue is Queue.PENDING:
        message = f"It waits in Pending Approval; a person approves it by moving it under {READY}."
    elif task.queue is Queue.NOT_READY:
        why = f": {task.reason}" if task.reason else ""
        message = f"It is under Not Ready{why}."
    else:
        message = f"It is not under a queue heading; only tasks under {READY} run."
    return [Violation("queue", message)]


def _status(task: Task) -> list[Violation]:
    status = task.status
    if status is None:
        return []
    if task.queue is Queue.READY:
        if status is TaskStatus.DONE:
            return [Violation("status", f"Its Status is {status}: it is already done.")]
        if status is not TaskStatus.READY:
            return [
                Violation(
                    "status",
                    f"Its Status is {status} but it sits under {READY}; "
                    "set `Status: READY` or move it.",
                )
            ]
    elif status is TaskStatus.READY and task.queue is not None:
        return [
            Violation(
                "status",
                f"Its Status is READY but it sits under {task.heading}; "
                f"move it under {READY} to approve it.",
            )
        ]
    return []


def _alignment(task: Task, constraints: Constraints) -> list[Violation]:
    minimum = constraints.min_alignment
    if task.alignment is None:
        return [Violation("alignment", f"It has no Alignment score (at least {minimum} needed).")]
    if task.alignment < minimum:
        return [
            Violation(
                "alignment",
                f"Its alignment score {task.alignment}/100 is below the minimum of {minimum}.",
            )
        ]
    return []


def _estimated_lines(task: Task, constraints: Constraints) -> list[Violation]:
    limit = constraints.max_estimated_lines
    if task.estimated_lines is None:
        return [Violation("estimated-lines", f"It has no Estimated lines (at most {limit}).")]
    if task.estimated_lines > limit:
        return [
            Violation(
                "estimated-lines",
                f"It is estimated at {task.estimated_lines} lines, more than the limit of {limit}.",
            )
        ]
    return []


def _tests(task: Task, constraints: Constraints) -> list[Violation]:
    if not constraints.require_tests or task.tests_defined:
        return []
    if _WRITES_TESTS.search(task.title):
        return []  # the task itself writes tests
    if task.tests_defined is None:
        return [Violation("tests", "It has no `Tests defined:` line, and it does not write tests.")]
    return [Violation("tests", "Its tests are not defined yet, and it does not write tests.")]


@lru_cache(maxsize=256)
def _word_pattern(phrase: str) -> re.Pattern[str]:
    """Whole words, any spacing between them, plural allowed: "delete file" finds "Delete files"."""
    words = [re.escape(w) for w in phrase.split()]
    return re.compile(r"\b" + r"\s+".join(words) + r"(?:e?s)?\b", re.IGNORECASE)


def _forbidden_words(task: Task, constraints: Constraints) -> list[Violation]:
    text = task.text
    lowered = text.lower()
    return [
        Violation("forbidden-words", f"It mentions a forbidden operation: “{phrase}”.")
        for phrase in constraints.forbidden_words
        # A substring test first: the regex runs only for the rare text that may match.
        if phrase.split()[0].lower() in lowered and _word_pattern(phrase).search(text)
    ]
