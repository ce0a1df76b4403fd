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


def main() -> None:
    with error_handler():
        app()
