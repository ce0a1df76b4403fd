"""`init --github`: the merge job (only where the plan lets the tool merge) and the scan job (only
on the plan's `scan_schedule:`), read from the generated YAML's structure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops_agent.commands.github_init import init_github
from gitops_agent.workflow import Mode
from testing.fixtures import make_repo
from testing.project import task_block
from testing.workflow_lint import actionlint, zizmor

WORKFLOW = ".github/workflows/gitops-agent.yml"
SOURCE = "git+https://github.com/octo-org/gitops-agent@0123456789abcdef0123456789abcdef01234567"
CRON = "30 1 * * 1-5"
SCAN_CRON = "0 4 * * 1"
WRITE = {"contents": "write", "pull-requests": "write"}
TOKEN = {"GITHUB_TOKEN": "${{ github.token }}"}
SCAN_GUARD = [f"github.event.schedule != '{SCAN_CRON}'", "!inputs.scan"]
AUTO_TASK = task_block("t1", "Add a").replace(
    "  - Status: READY\n", "  - Status: READY\n  - Approval: auto\n"
)


def plan_text(*front: str, tasks: str = "") -> str:
    lines = [f'schedule: "{CRON}"', "agent: claude", f"install: {SOURCE}", *front]
    return (
        "---\n" + "\n".join(lines) + "\n---\n# Plan\n\n### Ready for Autonomous Execution ✅\n\n"
    ) + tasks


# name: (the plan, the constraints' YAML or "", the mode init is given)
PLANS: dict[str, tuple[str, str, Mode]] = {
    "final": (plan_text(), "", "session"),
    "per-task": (plan_text("approval: per-task", tasks=task_block("t1", "Add a")), "", "session"),
    "auto": (plan_text("approval: auto"), "", "session"),
    "auto-matrix": (plan_text("approval: auto"), "", "matrix"),
    "task-auto": (plan_text(tasks=AUTO_TASK), "", "session"),
    "auto-forbidden": (plan_text("approval: auto"), "auto_merge: false\n", "session"),
    "scan": (plan_text("scan: ruff check .", f'scan_schedule: "{SCAN_CRON}"'), "", "session"),
    "scan-unscheduled": (plan_text("scan: ruff check ."), "", "session"),
    "everything": (
        plan_text("approval: auto", "scan: ruff check .", f'scan_schedule: "{SCAN_CRON}"'),
        "",
        "session",
    ),
    "everything-matrix": (
        plan_text("approval: auto", "scan: ruff check .", f'scan_schedule: "{SCAN_CRON}"'),
        "",
        "matrix",
    ),
}


def generate(root: Path, plan: str, rules: str, mode: Mode) -> tuple[str, str, Any]:
    """init --github in a new repository: its messages, the file and the file read as YAML."""
    files = {"PROJECT_PLAN.md": plan}
    if rules:
        files["docs/autonomous-constraints.md"] = "# Rules\n\n```yaml\n" + rules + "```\n"
    repo = make_repo(root / "repo", files)
    # What the console script calls, in this process: ten variants in well under a second.
    said = init_github(repo, force=False, mode=mode)
    text = (repo / WORKFLOW).read_text(encoding="utf-8")
    workflow = yaml.safe_load(text)
    workflow["on"] = workflow.pop(True)  # YAML 1.1 reads the key `on` as true
    return " ".join(" ".join(said).split()), text, workflow


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str, Any]]:
    """Each plan's workflow, generated once for the tests that only read them."""
    return {name: generate(tmp_path_factory.mktemp(name), *spec) for name, spec in PLANS.items()}


def conjuncts(condition: str) -> list[str]:
    """The terms a job's `if:` ANDs at its top level (outside parentheses)."""
    expr = condition.strip()
    if expr.startswith("${{") and expr.endswith("}}"):
        expr = expr[3:-2].strip()
    terms, depth, start = [], 0, 0
    for i, char in enumerate(expr):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and expr.startswith("&&", i):
            terms.append(expr[start:i].strip())
            start = i + 2
    return [*terms, expr[start:].strip()]


def step_named(job: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in job["steps"] if s.get("name") == name)


def install_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The steps that check out, set up Python and install gitops-agent."""
    return job["steps"][:3]


@pytest.mark.parametrize("name", ["final", "per-task", "auto-forbidden"])
def test_without_auto_approval_there_is_no_merge_job(made, name: str) -> None:
    _, _, workflow = made[name]
    assert "merge" not in workflow["jobs"]
    assert set(workflow["jobs"]) == {"agent", "plan", "task", "integrate", "publish"}


def test_constraints_that_forbid_merging_say_why_there_is_no_merge_job(made) -> None:
    said, _, _ = made["auto-forbidden"]
    assert "No `merge` job: the constraints forbid the tool to merge" in said


@pytest.mark.parametrize("name", ["auto", "auto-matrix", "task-auto", "everything"])
def test_auto_approval_adds_a_merge_job_after_publish_that_may_merge(made, name: str) -> None:
    _, _, workflow = made[name]
    jobs = workflow["jobs"]
    merge = jobs["merge"]
    assert merge["needs"] == "publish"
    terms = conjuncts(merge["if"])
    assert "!cancelled()" in terms  # after a failed night too: earlier results still merge
    assert "!inputs.dry_run" in terms
    assert merge["permissions"] == WRITE
    assert "environment" not in merge  # it reads no secret
    assert isinstance(merge["timeout-minutes"], int)
    assert install_steps(merge) == install_steps(jobs["publish"])
    assert merge["steps"][0]["with"]["persist-credentials"] is False
    # It runs the gate, confined, as the job that runs the plan does.
    confine = "Let bubblewrap confine the agent and the gate"
    assert step_named(merge, confine) == step_named(jobs["agent"], confine)
    (run,) = [s for s in merge["steps"] if "gitops-agent merge" in s.get("run", "")]
    assert run["run"] == "gitops-agent merge --push"
    assert run["env"] == TOKEN
    assert "secrets." not in json.dumps(merge)
    assert "scan" not in jobs or name == "everything"


def test_a_task_approved_auto_is_enough_for_the_merge_job(made) -> None:
    said, _, workflow = made["task-auto"]
    assert "merge" in workflow["jobs"]
    assert "the `merge` job re-tests them" in said


def test_a_scan_with_its_schedule_runs_alone_on_its_own_cron(made) -> None:
    said, _, workflow = made["scan"]
    triggers = workflow["on"]
    assert triggers["schedule"] == [{"cron": CRON}, {"cron": SCAN_CRON}]
    scan_input = triggers["workflow_dispatch"]["inputs"]["scan"]
    assert scan_input["type"] == "boolean" and scan_input["default"] is False
    jobs = workflow["jobs"]
    scan = jobs["scan"]
    assert scan["if"] == f"github.event.schedule == '{SCAN_CRON}' || inputs.scan"
    assert "needs" not in scan
    assert scan["permissions"] == WRITE
    assert "environment" not in scan and "secrets." not in json.dumps(scan)
    assert install_steps(scan) == install_steps(jobs["publish"])
    pushed = step_named(scan, "Scan, push the new findings and open the pull request")
    assert pushed["run"] == "gitops-agent scan --push" and pushed["env"] == TOKEN
    assert pushed["if"] == "${{ !inputs.dry_run }}"
    dry = step_named(scan, "Dry run")
    assert dry["run"] == "gitops-agent scan" and "env" not in dry
    assert "merge" not in jobs
    assert f"its own cron line, {SCAN_CRON}" in said


@pytest.mark.parametrize("name", ["scan", "everything", "everything-matrix"])
def test_no_other_job_runs_for_the_scan(made, name: str) -> None:
    _, _, workflow = made[name]
    others = {job: spec for job, spec in workflow["jobs"].items() if job != "scan"}
    assert {"agent", "plan", "task", "integrate", "publish"} <= set(others)
    for job, spec in others.items():
        terms = conjuncts(spec["if"])
        assert all(guard in terms for guard in SCAN_GUARD), job


def test_a_scan_without_its_schedule_adds_no_job_and_init_says_so(made) -> None:
    said, text, workflow = made["scan-unscheduled"]
    assert "scan" not in workflow["jobs"]
    assert workflow["on"]["schedule"] == [{"cron": CRON}]
    assert "scan" not in workflow["on"]["workflow_dispatch"]["inputs"]
    assert "github.event.schedule" not in text
    assert "No scheduled scan: the plan sets no `scan_schedule:`" in said


def test_a_scan_schedule_that_is_the_plans_schedule_is_refused_with_its_line(
    tmp_path: Path, cli
) -> None:
    plan = plan_text("scan: ruff check .", f'scan_schedule: "{CRON}"')
    repo = make_repo(tmp_path / "repo", {"PROJECT_PLAN.md": plan})
    refused = cli("init", "--github", cwd=repo)
    assert refused.returncode == 2
    assert "PROJECT_PLAN.md:6:" in refused.stderr
    assert "give the scan another time" in " ".join(refused.stderr.split())
    assert not (repo / ".github").exists()


@pytest.mark.parametrize("name", ["everything", "everything-matrix", "task-auto"])
def test_the_lifecycle_jobs_pass_actionlint_and_zizmor(tmp_path: Path, made, name: str) -> None:
    _, text, _ = made[name]
    audited = zizmor(tmp_path, text)  # writes .github/workflows/gitops-agent.yml
    linted = actionlint(tmp_path / ".github" / "workflows" / "gitops-agent.yml")
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert audited.returncode == 0, audited.stdout + audited.stderr
    assert "No findings" in audited.stdout + audited.stderr
