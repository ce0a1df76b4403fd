"""The command line: parse options, call one function of the core, print the result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gitops_agent import __version__
from gitops_agent.error_handler import error_handler

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Run coding agents on your repository from a markdown plan, safely.",
)

RepoOption = Annotated[
    Path | None,
    typer.Option("--repo", help="The repository (default: the one the current directory is in)."),
]
PlanOption = Annotated[
    Path | None, typer.Option("--plan", help="The plan file (default: PROJECT_PLAN.md).")
]
ConstraintsOption = Annotated[
    Path | None,
    typer.Option(
        "--constraints", help="The constraints document (default: docs/autonomous-constraints.md)."
    ),
]
AgentOption = Annotated[
    str | None,
    typer.Option(
        "--agent-command",
        help="Agent preset (claude, codex, aider, gemini) or a command run with bash -c.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def _version(value: bool) -> None:
    if value:
        print(f"gitops-agent {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Run coding agents on your repository from a markdown plan, safely."""


@app.command()
def check(
    repo: RepoOption = None,
    plan: PlanOption = None,
    constraints: ConstraintsOption = None,
    agent_command: AgentOption = None,
    as_json: JsonOption = False,
) -> None:
    """Validate the plan and constraints, and explain task by task what would run and why."""
    from gitops_agent.commands.check import check as run_check
    from gitops_agent.commands.check import to_json
    from gitops_agent.project import load_project

    project = load_project(repo, plan, constraints)
    verdicts = run_check(project, agent_command)
    if as_json:
        print(json.dumps(to_json(verdicts), ensure_ascii=False))
    else:
        from gitops_agent.console import show_check

        show_check(project, verdicts)


@app.command()
def init(
    repo: RepoOption = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Write a starter PROJECT_PLAN.md and docs/autonomous-constraints.md."""
    from gitops_agent.commands.init import init as run_init
    from gitops_agent.console import err
    from gitops_agent.project import find_root

    root = find_root(repo)
    for path in run_init(root, force=force):
        err.print(f"wrote {path}")
    err.print("Next: edit the plan, then run `gitops-agent check`.")


@app.command()
def run(
    repo: RepoOption = None,
    plan: PlanOption = None,
    constraints: ConstraintsOption = None,
    task: Annotated[
        list[str] | None,
        typer.Option("--task", help="Run only this task (repeat for more)."),
    ] = None,
    agent_command: AgentOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run the eligible tasks as one session on a new autonomous/<session> branch."""
    from gitops_agent.console import ConsoleListener, show_run
    from gitops_agent.session import RunOptions, run_session

    options = RunOptions(repo, plan, constraints, tuple(task or ()), agent_command)
    result = run_session(options, ConsoleListener())
    show_run(result)
    if as_json:
        print(json.dumps(result.to_contract(), ensure_ascii=False))


@app.command()
def report(
    repo: RepoOption = None,
    plan: PlanOption = None,
    constraints: ConstraintsOption = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Report sessions since a date (2026-11-20), a time, or an age (3d, 12h); "
            "default: the last 24 h, at least the last session.",
        ),
    ] = None,
    sessions: Annotated[
        int,
        typer.Option("--sessions", min=1, help="How many sessions the success rate covers."),
    ] = 7,
    agent_command: AgentOption = None,
    as_json: JsonOption = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write the report as a page to this file.")
    ] = None,
) -> None:
    """The morning brief: what the last sessions did, what needs you, what runs next."""
    from gitops_agent.commands.report import report as build_report
    from gitops_agent.commands.report import write_page
    from gitops_agent.console import err
    from gitops_agent.report import to_html, to_markdown

    brief = build_report(
        repo,
        plan=plan,
        constraints=constraints,
        since=since,
        sessions=sessions,
        agent_command=agent_command,
    )
    if html is not None:
        write_page(html, to_html(brief))
        err.print(f"wrote {html}")
    if as_json:
        print(json.dumps(brief.to_json(), ensure_ascii=False))
    else:
        print(to_markdown(brief), end="")


@app.command()
def status(
    repo: RepoOption = None,
    plan: PlanOption = None,
    constraints: ConstraintsOption = None,
    as_json: JsonOption = False,
) -> None:
    """What runs now, what ran last, which branches await review, what is queued."""
    from gitops_agent.commands.status import show
    from gitops_agent.commands.status import status as read_status
    from gitops_agent.console import err

    result = read_status(repo, plan=plan, constraints=constraints)
    if as_json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        show(result, err)


@app.command()
def demo(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Where to make the demo project (default: a temporary dir)."),
    ] = None,
) -> None:
    """Run a real session on a copy of the bundled demo project, offline, and show the result."""
    from gitops_agent.commands.demo import make_demo_repository
    from gitops_agent.console import ConsoleListener, err, show_run
    from gitops_agent.session import RunOptions, run_session

    root = make_demo_repository(directory)
    err.print(f"Demo project: {root} (a fresh git repository)")
    result = run_session(RunOptions(repo=root), ConsoleListener())
    show_run(result)
    err.print(f"Look around: cd {root} && git log --oneline --all")


def main() -> None:
    with error_handler():
        app()
