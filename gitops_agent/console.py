"""Everything printed for people: rich, on standard error (standard output is for --json)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Collection
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gitops_agent.plan import Queue, Task
from gitops_agent.policy.eligibility import Verdict, queue_stats
from gitops_agent.policy.masking import mask
from gitops_agent.project import Project, effective_settings
from gitops_agent.render import duration
from gitops_agent.results import Listener, Outcome, SessionResult, TaskResult
from gitops_agent.terminal import strip_ansi


class _MaskedStderr:
    """Standard error with the environment's secrets masked in what is written to it.

    Rich writes each `print` in one call (on all but legacy Windows consoles), so a secret is
    never split between two writes. `sys.stderr` is looked up at each write, as rich does for
    `Console(stderr=True)`, so a redirection (pytest's capture) still takes effect.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(mask(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(sys.stderr, name)


def _width() -> int | None:
    """None on a terminal (rich asks it); else COLUMNS where set, or room for any line: in a CI
    log or a pipe nothing reflows, so a line cut at 80 columns would only split paths."""
    if sys.stderr.isatty() or os.environ.get("COLUMNS"):
        return None
    return PIPE_WIDTH


PIPE_WIDTH = 1000
err = Console(file=_MaskedStderr(), highlight=False, width=_width())  # type: ignore[arg-type]


def shown(text: str) -> str:
    """Untrusted text (a reason quoting a path or a gate's output) for rich: masked before rich
    wraps it (a secret folded over two lines would escape the mask), its `[...]` not taken as
    markup, and its control characters shown as escapes rather than sent to the terminal."""
    text = mask(text)
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() or ch == "\n" else ascii(ch)[1:-1] for ch in text)
    return escape(text)


_QUEUE_NAMES = {Queue.READY: "ready", Queue.PENDING: "pending", Queue.NOT_READY: "not ready"}


# Past this many tasks a rich table takes seconds to lay out; plain aligned lines take
# milliseconds and show the same columns.
TABLE_LIMIT = 300


def show_check(project: Project, verdicts: list[Verdict], awaiting: Collection[str] = ()) -> None:
    if len(verdicts) <= TABLE_LIMIT:
        err.print(_check_table(project, verdicts))
    else:
        err.file.write(_check_lines(verdicts))
    err.print(summary(verdicts, awaiting))
    constraints = project.constraints.path or "built-in defaults"
    err.print(f"Constraints: {constraints}")
    for note in project.notes:
        err.print(f"[yellow]{note}[/yellow]")


def _queue_name(verdict: Verdict) -> str:
    queue = verdict.task.queue
    return _QUEUE_NAMES[queue] if queue is not None else "none"


def _check_table(project: Project, verdicts: list[Verdict]) -> Table:
    table = Table(title=f"{project.plan.path}: {len(verdicts)} tasks", title_justify="left")
    table.add_column("Task", no_wrap=True)
    table.add_column("Queue", no_wrap=True)
    table.add_column("Runs", no_wrap=True)
    table.add_column("Why not")
    for verdict in verdicts:
        task = verdict.task
        table.add_row(
            f"{task.id}\n[dim]line {task.line}[/dim]",
            _queue_name(verdict),
            "[green]yes[/green]" if verdict.eligible else "[red]no[/red]",
            shown("\n".join(verdict.reasons)),
        )
    return table


def _check_lines(verdicts: list[Verdict]) -> str:
    width = max(len(v.task.id) for v in verdicts)
    color = err.is_terminal and not err.no_color
    lines = [f"{'TASK':<{width}}  {'QUEUE':<9}  RUNS  WHY NOT"]
    for verdict in verdicts:
        runs = "yes " if verdict.eligible else "no  "
        if color:
            runs = f"\x1b[32m{runs}\x1b[0m" if verdict.eligible else f"\x1b[31m{runs}\x1b[0m"
        reasons = verdict.reasons or ("",)
        lines.append(f"{verdict.task.id:<{width}}  {_queue_name(verdict):<9}  {runs}  {reasons[0]}")
        lines.extend(f"{'':<{width}}  {'':<9}        {reason}" for reason in reasons[1:])
    return "\n".join(lines) + "\n"


def summary(verdicts: list[Verdict], awaiting: Collection[str] = ()) -> str:
    """The counts every view gives (`queue_stats`), in one line."""
    q = queue_stats(verdicts, awaiting)
    noun = "task" if len(verdicts) == 1 else "tasks"
    return (
        f"{len(verdicts)} {noun}: {q.ready} ready, {q.pending} pending, {q.not_ready} not ready, "
        f"{q.done} done; {q.eligible} eligible ({q.awaiting} awaiting review, {q.can_run} can "
        "run)."
    )


_OUTCOME_STYLE = {
    Outcome.COMMITTED: "[green]committed[/green]",
    Outcome.ROLLED_BACK: "[red]rolled back[/red]",
    Outcome.BLOCKED: "[yellow]blocked[/yellow]",
    Outcome.SKIPPED: "[dim]skipped[/dim]",
}


def _progress_every() -> float:
    """Seconds between progress lines in a log (GITOPS_AGENT_PROGRESS_SECONDS, default 60)."""
    try:
        return max(0.0, float(os.environ.get("GITOPS_AGENT_PROGRESS_SECONDS", "60")))
    except ValueError:
        return 60.0


VERBOSE = False  # `gitops-agent -v`: every line an agent prints, and more detail

# How a phase is said to people (the run state file keeps the short names).
_PHASE_WORDS = {
    "agent": "agent working",
    "command": "running the command",
    "inspect": "inspecting the change",
    "gate": "running the gate",
    "commit": "committing",
}


class ConsoleListener(Listener):
    """Progress on stderr: which task, which phase, attempt n of m, then each outcome. While an
    agent works: the elapsed time and its last line of output, updated in place on a terminal,
    and as a line every minute in a log."""

    def __init__(self) -> None:
        self._label = ""
        self._since = time.monotonic()
        self._said = self._since
        self._last = ""
        self._live = False  # a progress line is on the terminal, to be cleared

    def note(self, message: str) -> None:
        self._clear()
        err.print(f"[yellow]{shown(message)}[/yellow]")

    def phase(self, task: Task, phase: str, attempt: int, attempts: int) -> None:
        self._clear()
        words = _PHASE_WORDS.get(phase, phase)
        self._label = f"{task.id} attempt {attempt} of {attempts}: {words}"
        self._since = self._said = time.monotonic()
        self._last = ""
        err.print(f"[dim]{task.id}[/dim] attempt {attempt} of {attempts}: {words}…")

    def output(self, task_id: str, text: str) -> None:
        lines = [line.strip() for line in strip_ansi(text).splitlines() if line.strip()]
        if lines:
            self._last = lines[-1]
        if VERBOSE:  # every line, as it comes
            self._clear()
            for line in lines:
                err.print(f"[dim]{task_id} │[/dim] {shown(line)}", soft_wrap=True)
            return
        now = time.monotonic()
        shown_line = f"{self._label}, {duration(now - self._since)}: {self._last}"
        if err.is_terminal:
            if now - self._said >= 0.2:
                width = max(20, err.width - 1)
                err.file.write("\r\x1b[2K" + mask(shown_line)[:width])
                err.file.flush()
                self._said, self._live = now, True
        elif now - self._said >= _progress_every():
            err.print(shown(shown_line), soft_wrap=True)
            self._said = now

    def task_done(self, result: TaskResult) -> None:
        self._clear()
        commit = f" {result.commit[:12]}" if result.commit else ""
        err.print(f"[bold]{result.id}[/bold] {_OUTCOME_STYLE[result.outcome]}{commit}")

    def _clear(self) -> None:
        if self._live:
            err.file.write("\r\x1b[2K")
            self._live = False


def show_run(result: SessionResult) -> None:
    table = Table(title=f"Session {result.session}", title_justify="left")
    table.add_column("Task", no_wrap=True)
    table.add_column("Outcome", no_wrap=True)
    table.add_column("Attempts", justify="right")
    table.add_column("Why")
    for task in result.tasks:
        table.add_row(task.id, _OUTCOME_STYLE[task.outcome], str(task.attempts), shown(task.reason))
    err.print(table)
    if result.stopped:
        err.print(f"[yellow]The session stopped early: {shown(result.stopped)}.[/yellow]")
    own = [t for t in result.tasks if t.branch and t.commit]
    if result.branch:
        err.print(f"Branch to review: [bold]{result.branch}[/bold]")
        err.print(f"Pull request description: {escape(result.pr_body or '')}")
    for task in own:
        if task.approval == "auto":
            err.print(f"{task.id}: [bold]{task.branch}[/bold] (auto: merged after quarantine)")
        else:
            err.print(f"{task.id}: branch to review: [bold]{task.branch}[/bold]")
    if not result.branch and not own:
        err.print("Nothing was committed.")


def show_settings(project: Project) -> None:
    """`check -v`: every setting a run obeys, its value, and where it came from."""
    table = Table(title="Settings in effect", title_justify="left")
    for name in ("Setting", "Value", "From"):
        table.add_column(name, overflow="fold" if name == "Value" else "ellipsis")
    for name, value, source in effective_settings(project):
        table.add_row(name, shown(value), shown(source))
    err.print(table)
