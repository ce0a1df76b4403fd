"""`gitops-agent init --github`: the scheduled GitHub Actions workflow, from templates/.

The template's choices (which jobs may write, where the agent's key goes, the pinned actions)
are explained in the workflow file itself, where a person reviewing it reads them. Beside it
goes a Dependabot config that keeps those action pins current.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import jinja2
import yaml

from gitops_agent import __version__
from gitops_agent.agents import PRESETS
from gitops_agent.constraints import Constraints
from gitops_agent.errors import UserError
from gitops_agent.files import write_atomic
from gitops_agent.github import WORKFLOW_PATH
from gitops_agent.install_source import InstallSource, running_source
from gitops_agent.plan import Settings
from gitops_agent.project import PLAN_FILE, load_project

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


def render_workflow(
    settings: Settings, constraints: Constraints, *, mode: Mode, source: InstallSource
) -> str:
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
            source=source,
            python=PYTHON_VERSION,
            agent=agent_setup(settings.agent),
            pins=PINS,
            session_timeout=session,
            task_timeout=task,
        )
    )


def write_workflow(root: Path, text: str, *, force: bool) -> list[str]:
    """Write the workflow; refuse (writing nothing) when it exists and not `force`. Overwriting,
    the lines to show are the diff of what changed."""
    target = root / WORKFLOW_PATH
    if not target.exists():
        write_atomic(target, text.encode())
        return [f"wrote {WORKFLOW_PATH}"]
    if not force:
        raise UserError(
            "already exists; nothing was written (use --force to overwrite; it shows the diff)",
            WORKFLOW_PATH,
        )
    old = target.read_text(encoding="utf-8", errors="replace")
    if old == text:
        return [f"{WORKFLOW_PATH} is already what this version writes; unchanged"]
    write_atomic(target, text.encode())
    return [f"overwrote {WORKFLOW_PATH}; what changed:", *diff_lines(old, text, WORKFLOW_PATH)]


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


def write_dependabot(root: Path) -> list[str]:
    """Dependabot's config for the action pins, unless the repository has one: a person's own
    config (other ecosystems, their schedule) is never replaced; we say whether it covers the
    actions."""
    target = root / DEPENDABOT_PATH
    if not target.exists():
        write_atomic(target, _load(DEPENDABOT_TEMPLATE).encode())
        return [f"wrote {DEPENDABOT_PATH} (Dependabot keeps the action pins current)"]
    try:
        config = yaml.safe_load(target.read_text(encoding="utf-8"))
        updates = (config.get("updates") or []) if isinstance(config, dict) else []
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        updates = []
    covered = any(
        isinstance(u, dict) and u.get("package-ecosystem") == "github-actions" for u in updates
    )
    if covered:
        return [f"kept {DEPENDABOT_PATH}: it already updates github-actions"]
    return [
        f"kept {DEPENDABOT_PATH}, which does not update the action pins: add a "
        "`package-ecosystem: github-actions` entry (see the README, GitHub Actions)"
    ]


def init_github(root: Path, *, force: bool, mode: Mode) -> list[str]:
    """Write the workflow from the plan's settings (defaults without a plan) and the Dependabot
    config; lines to show."""
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
    source = workflow_source(settings)
    text = render_workflow(settings, constraints, mode=mode, source=source)
    written = write_workflow(root, text, force=force)
    setup = agent_setup(settings.agent)
    secrets = " and ".join(setup.secrets) or "your agent's key"
    return [
        *notes,
        *written,
        *write_dependabot(root),
        f"It installs gitops-agent from {source.spec}",
        f"Next: add {secrets} as a repository secret (or an environment secret, naming the "
        "environment in the variable GITOPS_AGENT_ENVIRONMENT), allow GitHub Actions to create "
        "pull requests (Settings > Actions > General), commit both files, and run "
        "`gitops-agent doctor`.",
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
