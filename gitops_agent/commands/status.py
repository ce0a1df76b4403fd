"""`gitops-agent status`: what runs now, what ran last, what waits for a person, what is queued."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from gitops_agent.git import Repo
from gitops_agent.project import find_root
from gitops_agent.render import duration, localtime, parse_time
from gitops_agent.report import Brief, gather, load_at_base
from gitops_agent.results import Outcome
from gitops_agent.runstate import RUN_FILE, STATE_DIR, pid_alive, read_run_state
from gitops_agent.sandbox import probe


@dataclass(frozen=True, slots=True)
class RunView:
    """The run in progress, from the state file the session keeps while it runs."""

    path: str
    session: str | None
    pid: int | None
    started: datetime | None
    updated: datetime | None
    task: str | None
    phase: str | None
    attempt: int
    max_attempts: int
    stale: bool  # its process is gone (killed): the next run clears it
    unreadable: bool

    def elapsed(self, now: datetime) -> float | None:
        return None if self.started is None else (now - self.started).total_seconds()

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "session": self.session,
            "pid": self.pid,
            "started": None if self.started is None else self.started.isoformat(),
            "updated": None if self.updated is None else self.updated.isoformat(),
            "task": self.task,
            "phase": self.phase,
            "attempt": self.attempt,
            "max_attempts": self.max_attempts,
            "elapsed": self.elapsed(now),
            "stale": self.stale,
        }


@dataclass(frozen=True, slots=True)
class Status:
    root: Path
    now: datetime
    run: RunView | None
    brief: Brief

    def to_json(self) -> dict[str, Any]:
        brief = self.brief
        last = brief.sessions[0] if brief.sessions else None
        return {
            "run": None if self.run is None else self.run.to_json(self.now),
            "last_session": None if last is None else last.to_record(),
            "awaiting_review": [a.to_json() for a in brief.awaiting],
            "queue": None if brief.queue is None else brief.queue.to_json(),
            "next_tasks": [t.id for t in brief.next_tasks],
            "heartbeat": brief.heartbeat.to_json(),
            "problems": [p.to_json() for p in brief.problems],
        }


def read_run(repo: Repo) -> RunView | None:
    """The state file of a run in progress, or None when no run is going on."""
    state_dir = repo.common_dir / STATE_DIR
    data = read_run_state(state_dir)
    if data is None:
        return None
    path = str(state_dir / RUN_FILE)
    pid = data.get("pid")
    pid = pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None
    return RunView(
        path=path,
        session=_text(data.get("session")),
        pid=pid,
        started=_time(data.get("started")),
        updated=_time(data.get("updated")),
        task=_text(data.get("task")),
        phase=_text(data.get("phase")),
        attempt=_int(data.get("attempt")),
        max_attempts=_int(data.get("max_attempts")),
        stale=pid is None or not pid_alive(pid),
        unreadable="session" not in data,
    )


def status(
    repo: Path | None,
    *,
    plan: Path | None = None,
    constraints: Path | None = None,
    now: datetime | None = None,
) -> Status:
    opened = Repo.open(find_root(repo))
    now = now or datetime.now(UTC)
    brief = gather(opened, load_at_base(opened, plan, constraints), now=now)
    return Status(opened.root, now, read_run(opened), brief)


def show(result: Status, console: Console) -> None:
    """The dashboard, for a person at a terminal (stderr)."""
    console.print(Group(*_parts(result)))


def _parts(result: Status) -> list[Any]:
    brief, now, zone = result.brief, result.now, result.brief.zone
    parts: list[Any] = [Text(f"gitops-agent status: {result.root}", style="bold")]
    parts.append(_run_panel(result.run, now))
    found = probe()
    parts.append(
        Text(
            f"Confinement on this machine: {found.describe()}",
            style="green" if found.any else "bold red",
        )
    )
    for problem in brief.problems:
        parts.append(Text(problem.message, style="bold red"))
    if not brief.heartbeat.overdue:
        parts.append(Text(brief.heartbeat.message, style="green" if brief.sessions else "dim"))

    if brief.sessions:
        last = brief.sessions[0]
        counts = ", ".join(
            f"{last.count(o)} {o.value.replace('_', ' ')}" for o in Outcome if last.count(o)
        )
        finished = parse_time(last.finished)
        lines = [
            f"[bold]{escape(last.session)}[/bold], finished {localtime(finished, zone)} "
            f"{escape(brief.zone_name)} ({duration((now - finished).total_seconds())} ago)",
            counts or "no task",
        ]
        if last.branch:
            lines.append(f"branch [cyan]{escape(last.branch)}[/cyan]")
        if last.pr_body:
            lines.append(f"PR description {escape(last.pr_body)}")
        if last.stopped:
            lines.append(f"[yellow]stopped early: {escape(last.stopped)}[/yellow]")
        if last.confinement:
            style = "bold red" if last.unconfined else "dim"
            lines.append(f"[{style}]confinement: {escape(last.confinement)}[/{style}]")
        parts.append(Panel.fit("\n".join(lines), title="Last session", title_align="left"))
    else:
        parts.append(Panel.fit("[dim]No session has run yet.[/dim]", title="Last session"))

    if brief.awaiting:
        table = Table(title="Awaiting review", title_justify="left")
        table.add_column("Branch", no_wrap=True)
        table.add_column("Tasks")
        table.add_column("Commits", justify="right")
        for awaiting in brief.awaiting:
            table.add_row(
                escape(awaiting.branch),
                escape(", ".join(awaiting.tasks) or "-"),
                str(awaiting.commits),
            )
        parts.append(table)
    else:
        parts.append(Text("No branch awaits review.", style="dim"))

    if brief.queue is not None:
        q = brief.queue
        table = Table(title=f"Queue ({brief.plan_path} on {brief.base})", title_justify="left")
        columns = (
            "Ready",
            "Pending",
            "Not ready",
            "Done",
            "Eligible",
            "Awaiting review",
            "Can run",
        )
        for name in columns:
            table.add_column(name, justify="right")
        figures = (q.ready, q.pending, q.not_ready, q.done, q.eligible, q.awaiting, q.can_run)
        table.add_row(*(str(n) for n in figures))
        parts.append(table)
        upcoming = ", ".join(t.id for t in brief.next_tasks) or "nothing"
        parts.append(Text(f"Next up: {upcoming}"))
    return parts


def _run_panel(run: RunView | None, now: datetime) -> Panel:
    if run is None:
        return Panel.fit("[dim]No run in progress.[/dim]", title="Run", title_align="left")
    if run.unreadable:
        return Panel.fit(
            f"[yellow]The run state file {escape(run.path)} cannot be read; the next run "
            "clears it.[/yellow]",
            title="Run",
            title_align="left",
        )
    updated = "" if run.updated is None else f", last update {_age(run.updated, now)} ago"
    if run.stale:
        return Panel.fit(
            f"[bold yellow]Stale:[/bold yellow] session {escape(run.session or '?')} "
            f"(pid {run.pid}) is no longer running{updated}; it was killed or crashed. "
            "The next run clears what it left.",
            title="Run",
            title_align="left",
            border_style="yellow",
        )
    attempt = f"attempt {run.attempt}/{run.max_attempts}" if run.max_attempts else ""
    task = f"task [bold]{escape(run.task)}[/bold]" if run.task else "no task yet"
    elapsed = run.elapsed(now)
    lines = [
        f"[green]●[/green] session {escape(run.session or '?')} (pid {run.pid})",
        ", ".join(x for x in (task, f"phase {escape(run.phase or '?')}", attempt) if x),
        f"running for {duration(elapsed or 0)}{updated}",
    ]
    return Panel.fit(
        "\n".join(lines), title="Run in progress", title_align="left", border_style="green"
    )


def _age(then: datetime, now: datetime) -> str:
    return duration((now - then).total_seconds())


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None
