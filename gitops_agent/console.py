"""Everything printed for people: rich, on standard error (standard output is for --json)."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table

from gitops_agent.commands.check import Verdict
from gitops_agent.plan import Queue
from gitops_agent.project import Project

err = Console(stderr=True, highlight=False)

_QUEUE_NAMES = {Queue.READY: "ready", Queue.PENDING: "pending", Queue.NOT_READY: "not ready"}


def show_check(project: Project, verdicts: list[Verdict]) -> None:
    table = Table(title=f"{project.plan.path}: {len(verdicts)} tasks", title_justify="left")
    table.add_column("Task", no_wrap=True)
    table.add_column("Queue", no_wrap=True)
    table.add_column("Runs", no_wrap=True)
    table.add_column("Why not")
    for verdict in verdicts:
        task = verdict.task
        table.add_row(
            f"{task.id}\n[dim]line {task.line}[/dim]",
            _QUEUE_NAMES[task.queue] if task.queue else "none",
            "[green]yes[/green]" if verdict.eligible else "[red]no[/red]",
            "\n".join(verdict.reasons),
        )
    err.print(table)
    err.print(summary(verdicts))
    constraints = project.constraints.path or "built-in defaults"
    err.print(f"Constraints: {constraints}")
    for note in project.notes:
        err.print(f"[yellow]{note}[/yellow]")


def summary(verdicts: list[Verdict]) -> str:
    queues = Counter(v.task.queue for v in verdicts)
    eligible = sum(v.eligible for v in verdicts)
    return (
        f"{len(verdicts)} tasks: {eligible} eligible to run; "
        f"{queues[Queue.READY]} ready, {queues[Queue.PENDING]} pending, "
        f"{queues[Queue.NOT_READY] + queues[None]} not ready."
    )
