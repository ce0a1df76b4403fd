"""`gitops-agent init --github`: the scheduled GitHub Actions workflow, from templates/.

The template's choices (which jobs may write, where the agent's key goes, the pinned actions)
are explained in the workflow file itself, where a person reviewing it reads them. Beside it
goes a Dependabot config that keeps those action pins current.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from gitops_agent.constraints import Constraints
from gitops_agent.errors import UserError
from gitops_agent.files import write_atomic
from gitops_agent.github import WORKFLOW_PATH
from gitops_agent.plan import Settings, Task
from gitops_agent.project import PLAN_FILE, load_project
from gitops_agent.workflow import (
    DEFAULT_CRON,
    DEPENDABOT_PATH,
    DEPENDABOT_TEMPLATE,
    Mode,
    agent_setup,
    diff_lines,
    load_template,
    merges_auto_results,
    render_workflow,
    scan_cron,
    schedule_clash,
    workflow_source,
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


def write_dependabot(root: Path) -> list[str]:
    """Dependabot's config for the action pins, unless the repository has one: a person's own
    config (other ecosystems, their schedule) is never replaced; we say whether it covers the
    actions."""
    target = root / DEPENDABOT_PATH
    if not target.exists():
        write_atomic(target, load_template(DEPENDABOT_TEMPLATE).encode())
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


def _lifecycle_notes(
    settings: Settings, constraints: Constraints, tasks: tuple[Task, ...]
) -> list[str]:
    """What the workflow does beyond the nightly run, and a half-set scan."""
    notes = []
    if merges_auto_results(settings, constraints, tasks):
        notes.append(
            "The plan approves results `auto`: the `merge` job re-tests them after each "
            "scheduled run and merges those that stayed green through their quarantine."
        )
    elif merges_auto_results(settings, Constraints(), tasks):
        notes.append("No `merge` job: the constraints forbid the tool to merge (`auto_merge`).")
    cron = scan_cron(settings)
    if cron is not None:
        notes.append(f"The `scan` job runs the plan's `scan:` at its own cron line, {cron}.")
    elif settings.scan or settings.scan_schedule:
        missing = "scan_schedule" if settings.scan else "scan"
        notes.append(f"No scheduled scan: the plan sets no `{missing}:`.")
    return notes


def init_github(root: Path, *, force: bool, mode: Mode) -> list[str]:
    """Write the workflow from the plan's settings (defaults without a plan) and the Dependabot
    config; lines to show."""
    notes: list[str] = []
    tasks: tuple[Task, ...] = ()
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
        tasks = project.plan.tasks
        clash = schedule_clash(settings)
        if clash is not None:
            raise UserError(clash, project.plan.path, settings.line_of("scan_schedule"))
    source = workflow_source(settings)
    text = render_workflow(settings, constraints, mode=mode, source=source, tasks=tasks)
    notes += _lifecycle_notes(settings, constraints, tasks)
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
