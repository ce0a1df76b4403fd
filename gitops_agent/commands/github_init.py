"""`gitops-agent init --github`: the scheduled GitHub Actions workflow, from templates/.

The template's choices (which jobs may write, where the agent's key goes, the pinned actions)
are explained in the workflow file itself, where a person reviewing it reads them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import jinja2

from gitops_agent import __version__
from gitops_agent.constraints import Constraints
from gitops_agent.errors import UserError
from gitops_agent.files import write_atomic
from gitops_agent.plan import Settings
from gitops_agent.project import PLAN_FILE, load_project

WORKFLOW_PATH = ".github/workflows/gitops-agent.yml"
TEMPLATE = "gitops-agent.yml.j2"
DEFAULT_CRON = "0 2 * * *"
PYTHON_VERSION = "3.12"
MAX_JOB_MINUTES = 360  # GitHub-hosted runners stop a job after six hours

Mode = Literal["session", "matrix"]

# Every action at a full commit id (a tag can be moved; a commit cannot), with its release.
PINS: dict[str, str] = {
    "checkout": "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1",
    "setup_python": "actions/setup-python@5fda3b95a4ea91299a34e894583c3862153e4b97 # v7.0.0",
    "upload": "actions/upload-artifact@bbbca2ddaa5d8feaa63e36b76fdaad77386f024f # v7.0.0",
    "download": "actions/download-artifact@3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c # v8.0.1",
}


@dataclass(frozen=True, slots=True)
class AgentSetup:
    """How a preset's CLI is installed on a runner, and the secrets it reads its key from."""

    install: str | None
    secrets: tuple[str, ...]
    executable: str | None  # the command `doctor` looks for on PATH


AGENT_SETUP: dict[str, AgentSetup] = {
    "claude": AgentSetup(
        "npm install --global @anthropic-ai/claude-code", ("ANTHROPIC_API_KEY",), "claude"
    ),
    "codex": AgentSetup("npm install --global @openai/codex", ("OPENAI_API_KEY",), "codex"),
    "gemini": AgentSetup("npm install --global @google/gemini-cli", ("GEMINI_API_KEY",), "gemini"),
    # aider reads the key of whichever model it is told to use.
    "aider": AgentSetup(
        "python -m pip install aider-chat", ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"), "aider"
    ),
}
NO_AGENT = AgentSetup(None, (), None)


def agent_setup(agent: str | None) -> AgentSetup:
    """The setup for the plan's `agent:` (a preset word first), or none for a raw command."""
    if not agent or not agent.split():
        return NO_AGENT
    first = agent.split()[0]
    return AGENT_SETUP.get("claude" if first == "claude-code" else first, NO_AGENT)


def render_workflow(settings: Settings, constraints: Constraints, *, mode: Mode) -> str:
    """The workflow text for a plan's settings; the same input always gives the same text."""
    session = min(MAX_JOB_MINUTES, math.ceil(constraints.max_session_minutes) + 30)
    per_task = constraints.task_timeout_minutes * constraints.max_attempts
    task = min(MAX_JOB_MINUTES, math.ceil(per_task) + 30)
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            version=__version__,
            cron=settings.schedule or DEFAULT_CRON,
            mode=mode,
            package=f"gitops-agent=={__version__}",
            python=PYTHON_VERSION,
            agent=agent_setup(settings.agent),
            pins=PINS,
            session_timeout=session,
            task_timeout=task,
        )
    )


def write_workflow(
    root: Path, settings: Settings, constraints: Constraints, *, mode: Mode, force: bool
) -> str:
    """Write the workflow; refuse (writing nothing) when it exists and not `force`."""
    target = root / WORKFLOW_PATH
    if target.exists() and not force:
        raise UserError(
            "already exists; nothing was written (use --force to overwrite)", WORKFLOW_PATH
        )
    write_atomic(target, render_workflow(settings, constraints, mode=mode).encode())
    return WORKFLOW_PATH


def init_github(root: Path, *, force: bool, mode: Mode) -> list[str]:
    """Write the workflow from the plan's settings (defaults without a plan); lines to show."""
    notes: list[str] = []
    try:
        project = load_project(root)
    except UserError:
        if (root / PLAN_FILE).exists():
            raise
        notes.append(
            f"No {PLAN_FILE} yet: the workflow runs at the default schedule ({DEFAULT_CRON}) "
            "with no agent preset; run `gitops-agent init --github --force` once it exists."
        )
        settings, constraints = Settings(), Constraints()
    else:
        settings, constraints = project.plan.settings, project.constraints
    written = write_workflow(root, settings, constraints, mode=mode, force=force)
    setup = agent_setup(settings.agent)
    secrets = " and ".join(setup.secrets) or "your agent's key"
    return [
        *notes,
        f"wrote {written}",
        f"Next: add {secrets} as a repository secret, allow GitHub Actions to create pull "
        "requests (Settings > Actions > General), and run `gitops-agent doctor`.",
    ]


def _environment() -> jinja2.Environment:
    # [[ ]] and [% %]: GitHub's ${{ }} must reach the file untouched.
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(_load),
        variable_start_string="[[",
        variable_end_string="]]",
        block_start_string="[%",
        block_end_string="%]",
        comment_start_string="[#",
        comment_end_string="#]",
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def _load(name: str) -> str:
    return resources.files("gitops_agent.templates").joinpath(name).read_text(encoding="utf-8")
