"""The scheduled GitHub Actions workflow as `init --github` writes it, from templates/.

Rendering lives here (`init --github` writes it, `doctor` compares the committed copy with it);
the template's choices (which jobs may write, where the agent's key goes, the pinned actions)
are explained in the workflow file itself, where a person reviewing it reads them.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import jinja2

from gitops_agent import __version__
from gitops_agent.agents import PRESETS
from gitops_agent.constraints import Constraints
from gitops_agent.install_source import InstallSource, running_source
from gitops_agent.plan import Approval, Settings, Task
from gitops_agent.project import PLAN_FILE

TEMPLATE = "gitops-agent.yml.j2"
DEPENDABOT_PATH = ".github/dependabot.yml"
DEPENDABOT_TEMPLATE = "dependabot.yml"
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

    installer: Literal["npm", "pip"] | None
    package: str | None
    secrets: tuple[str, ...]
    executable: str | None  # the command `doctor` looks for on PATH
    version: str | None = None  # the version the preset was proven with: the one installed

    @property
    def install(self) -> str | None:
        """The command that installs the CLI, pinned to the proven version where there is one."""
        if self.package is None:
            return None
        if self.installer == "npm":
            pinned = f"{self.package}@{self.version}" if self.version else self.package
            return f"npm install --global {pinned}"
        pinned = f"{self.package}=={self.version}" if self.version else self.package
        return f"python -m pip install {pinned}"


AGENT_SETUP: dict[str, AgentSetup] = {
    "claude": AgentSetup(
        "npm",
        "@anthropic-ai/claude-code",
        ("ANTHROPIC_API_KEY",),
        "claude",
        PRESETS["claude"].proven_version,
    ),
    "codex": AgentSetup(
        "npm", "@openai/codex", ("OPENAI_API_KEY",), "codex", PRESETS["codex"].proven_version
    ),
    "gemini": AgentSetup(
        "npm",
        "@google/gemini-cli",
        ("GEMINI_API_KEY",),
        "gemini",
        PRESETS["gemini"].proven_version,
    ),
    # aider reads the key of whichever model it is told to use.
    "aider": AgentSetup(
        "pip",
        "aider-chat",
        ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"),
        "aider",
        PRESETS["aider"].proven_version,
    ),
}
NO_AGENT = AgentSetup(None, None, (), None)


def agent_setup(agent: str | None) -> AgentSetup:
    """The setup for the plan's `agent:` (a preset word first), or none for a raw command."""
    if not agent or not agent.split():
        return NO_AGENT
    first = agent.split()[0]
    return AGENT_SETUP.get("claude" if first == "claude-code" else first, NO_AGENT)


def workflow_source(settings: Settings, plan_path: str = PLAN_FILE) -> InstallSource:
    """Where the workflow installs gitops-agent from: the plan's `install:`, else where this
    copy came from; a UserError when a runner could not install that."""
    return settings.install or running_source(plan_path)


def merges_auto_results(
    settings: Settings, constraints: Constraints, tasks: Iterable[Task] = ()
) -> bool:
    """Whether the plan can leave auto-approved results for `merge`: `approval: auto`, or a
    task's own `Approval: auto`, where the constraints let the tool merge at all."""
    wanted = settings.approval is Approval.AUTO or any(t.approval is Approval.AUTO for t in tasks)
    return wanted and constraints.auto_merge


def scan_cron(settings: Settings) -> str | None:
    """The cron line of the scheduled scan: only when the plan sets `scan:` and `scan_schedule:`."""
    return settings.scan_schedule if settings.scan and settings.scan_schedule else None


def schedule_clash(settings: Settings) -> str | None:
    """Why the workflow cannot tell the scan's runs from the plan's, or None. The jobs are told
    apart by the cron line that started the run, so the two must differ."""
    scan = scan_cron(settings)
    if scan is None or scan.split() != (settings.schedule or DEFAULT_CRON).split():
        return None
    return (
        f"`scan_schedule: {scan}` is the plan's own schedule: the workflow tells the scan's runs "
        "from the plan's by their cron line; give the scan another time"
    )


def render_workflow(
    settings: Settings,
    constraints: Constraints,
    *,
    mode: Mode,
    source: InstallSource,
    tasks: Iterable[Task] = (),
) -> str:
    """The workflow text for a plan's settings (and its tasks, for their `Approval:`); the same
    input always gives the same text."""
    session = min(MAX_JOB_MINUTES, math.ceil(constraints.max_session_minutes) + 30)
    per_task = constraints.task_timeout_minutes * constraints.max_attempts
    task = min(MAX_JOB_MINUTES, math.ceil(per_task) + 30)
    # Each scan command runs within the task timeout.
    scan = min(
        MAX_JOB_MINUTES, math.ceil(constraints.task_timeout_minutes * len(settings.scan)) + 30
    )
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            version=__version__,
            cron=settings.schedule or DEFAULT_CRON,
            mode=mode,
            source=source,
            python=PYTHON_VERSION,
            agent=agent_setup(settings.agent),
            pins=PINS,
            session_timeout=session,
            task_timeout=task,
            merge_job=merges_auto_results(settings, constraints, tasks),
            scan_cron=scan_cron(settings),
            scan_timeout=scan,
        )
    )


def diff_lines(old: str, new: str, path: str) -> list[str]:
    """A unified diff, one string a line (no line endings)."""
    return [
        line.rstrip("\n")
        for line in difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"a/{path}",
            tofile=f"b/{path}",
        )
    ]


def _environment() -> jinja2.Environment:
    # [[ ]] and [% %]: GitHub's ${{ }} must reach the file untouched.
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(load_template),
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


def load_template(name: str) -> str:
    """A file of gitops_agent/templates, as installed."""
    return resources.files("gitops_agent.templates").joinpath(name).read_text(encoding="utf-8")
