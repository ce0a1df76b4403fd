"""`init --github`: the generated workflow passes actionlint and keeps its security promises."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import CLI, make_repo

WORKFLOW = ".github/workflows/gitops-agent.yml"
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
AGENT_JOBS = ("agent", "task")  # the jobs whose "Run the agent" step gets the key
READ_ONLY_JOBS = ("agent", "plan", "task", "integrate")
UNTRUSTED_TRIGGERS = {
    "pull_request",
    "pull_request_target",
    "pull_request_review",
    "pull_request_review_comment",
    "issue_comment",
    "issues",
    "discussion_comment",
    "workflow_run",
    "fork",
    "push",
}


def actionlint() -> str:
    beside = Path(sys.executable).parent / "actionlint"
    found = str(beside) if beside.exists() else shutil.which("actionlint")
    if found is None:
        pytest.skip("actionlint is not installed (pip install -e '.[test]')")
    return found


def generate(tmp_path: Path, cli: Any, *args: str, agent: str = "claude") -> tuple[str, Any]:
    plan = f'---\nagent: {agent}\nschedule: "30 1 * * 1-5"\n---\n# Plan\n'
    repo = make_repo(tmp_path / "repo", {"PROJECT_PLAN.md": plan})
    result = cli("init", "--github", *args, cwd=repo)
    assert result.returncode == 0, result.stderr
    text = (repo / WORKFLOW).read_text(encoding="utf-8")
    workflow = yaml.safe_load(text)
    workflow["on"] = workflow.pop(True)  # YAML 1.1 reads the key `on` as true
    return text, workflow


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, Any]]:
    """The workflow of a claude plan, generated once per mode for the tests that only read it."""

    def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=60)

    return {
        mode: generate(tmp_path_factory.mktemp(mode), run, *flags)
        for mode, flags in (("session", ()), ("matrix", ("--matrix",)))
    }


def steps(workflow: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(job, step) for job, spec in workflow["jobs"].items() for step in spec["steps"]]


@pytest.mark.parametrize("mode", ["session", "matrix"])
def test_generated_workflow_passes_actionlint(tmp_path: Path, made, mode: str) -> None:
    text, workflow = made[mode]
    assert workflow["on"]["workflow_dispatch"]["inputs"]["mode"]["default"] == mode
    path = tmp_path / "gitops-agent.yml"
    path.write_text(text, encoding="utf-8")
    env_path = f"{Path(sys.executable).parent}:{Path(shutil.which('git') or '/usr/bin/git').parent}"
    linted = subprocess.run(
        [actionlint(), "-no-color", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": env_path},  # shellcheck beside it checks the run: scripts too
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_triggers_are_a_schedule_from_the_plan_and_manual_runs_only(made) -> None:
    _, workflow = made["session"]
    triggers = workflow["on"]
    assert set(triggers) == {"schedule", "workflow_dispatch"}
    assert not UNTRUSTED_TRIGGERS & set(triggers)
    assert triggers["schedule"] == [{"cron": "30 1 * * 1-5"}]
    assert workflow["concurrency"] == {"group": "gitops-agent", "cancel-in-progress": False}


def test_no_token_can_write_except_in_the_publish_job(made) -> None:
    _, workflow = made["session"]
    assert workflow["permissions"] == {}
    jobs = workflow["jobs"]
    for name in READ_ONLY_JOBS:
        assert jobs[name]["permissions"] == {"contents": "read"}, name
    assert jobs["publish"]["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert set(jobs["publish"]["needs"]) == {"agent", "integrate"}


def test_every_action_is_pinned_to_a_commit_with_its_release_named(made) -> None:
    text, workflow = made["session"]
    uses = [step["uses"] for _, step in steps(workflow) if "uses" in step]
    assert uses, "no actions found"
    for action in uses:
        assert PINNED.match(action), action
    for line in text.splitlines():
        if "uses:" in line:
            assert re.search(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line


def test_checkouts_keep_no_credentials_and_fetch_the_whole_history(made) -> None:
    _, workflow = made["session"]
    checkouts = [s for _, s in steps(workflow) if s.get("uses", "").startswith("actions/checkout")]
    assert len(checkouts) == len(workflow["jobs"])
    for step in checkouts:
        assert step["with"]["persist-credentials"] is False
        assert step["with"]["fetch-depth"] == 0


def test_the_agent_key_reaches_only_the_step_that_runs_the_agent(made) -> None:
    _, workflow = made["session"]
    assert "secrets." not in json.dumps(workflow.get("env", {}))
    for job, spec in workflow["jobs"].items():
        assert "secrets." not in json.dumps(spec.get("env", {})), job
        for step in spec["steps"]:
            used = re.findall(r"secrets\.(\w+)", json.dumps(step))
            if step.get("name") == "Run the agent":
                assert job in AGENT_JOBS
                assert used == ["ANTHROPIC_API_KEY"]
                assert set(step["env"]) <= {"ANTHROPIC_API_KEY", "TASK"}
            elif step.get("name") == "Push the branches and open the pull request":
                assert job == "publish"
                assert used == ["GITOPS_AGENT_TOKEN"]  # the optional write token, or github.token
            else:
                assert used == [], f"{job}: {step.get('name') or step.get('uses')}"


def test_the_agent_runs_last_and_its_result_leaves_only_as_an_artifact(made) -> None:
    _, workflow = made["session"]
    for job in AGENT_JOBS:
        names = [s.get("name") or s["uses"].split("@")[0] for s in workflow["jobs"][job]["steps"]]
        after = names[names.index("Run the agent") + 1 :]
        assert after == ["Pack the result", "actions/upload-artifact"], job
    agent_run = next(s for _, s in steps(workflow) if s.get("name") == "Run the agent")
    assert agent_run["run"].startswith("gitops-agent run --json")


def test_publish_verifies_before_it_pushes_and_writes_the_report(made) -> None:
    _, workflow = made["session"]
    runs = [s.get("run", "") for s in workflow["jobs"]["publish"]["steps"]]
    order = [
        next(i for i, r in enumerate(runs) if r.startswith(prefix))
        for prefix in ("gitops-agent verify", "gitops-agent publish", "gitops-agent report")
    ]
    assert order == sorted(order)
    assert runs[order[2]] == 'gitops-agent report >> "$GITHUB_STEP_SUMMARY"'


def test_no_expression_is_spliced_into_a_script(made) -> None:
    _, workflow = made["matrix"]
    for job, step in steps(workflow):
        assert "${{" not in step.get("run", ""), f"{job}: {step.get('name')}"
    task_run = next(
        s for j, s in steps(workflow) if j == "task" and s.get("name") == "Run the agent"
    )
    assert task_run["env"]["TASK"] == "${{ matrix.task }}"
    assert '--task "$TASK"' in task_run["run"]


def test_matrix_mode_lists_tasks_then_integrates_them(made) -> None:
    _, workflow = made["matrix"]
    jobs = workflow["jobs"]
    assert jobs["task"]["strategy"]["matrix"] == "${{ fromJSON(needs.plan.outputs.matrix) }}"
    assert "gitops-agent plan --matrix" in jobs["plan"]["steps"][-1]["run"]
    integrate_runs = [s.get("run", "") for s in jobs["integrate"]["steps"]]
    assert any(r.startswith("gitops-agent verify") for r in integrate_runs)
    assert any(r.startswith("gitops-agent integrate") for r in integrate_runs)


def test_a_raw_agent_command_gets_no_guessed_secret(tmp_path: Path, cli) -> None:
    _, workflow = generate(tmp_path, cli, agent="my-agent --fast")
    for job in AGENT_JOBS:
        step = next(s for s in workflow["jobs"][job]["steps"] if s.get("name") == "Run the agent")
        assert "secrets." not in json.dumps(step)


def test_an_existing_workflow_is_kept_unless_forced(tmp_path: Path, cli) -> None:
    generate(tmp_path, cli)
    repo = tmp_path / "repo"
    (repo / WORKFLOW).write_text("mine\n", encoding="utf-8")
    refused = cli("init", "--github", cwd=repo)
    assert refused.returncode == 2
    assert "already exists" in refused.stderr
    assert (repo / WORKFLOW).read_text(encoding="utf-8") == "mine\n"
    assert cli("init", "--github", "--force", cwd=repo).returncode == 0
    assert (repo / WORKFLOW).read_text(encoding="utf-8") != "mine\n"
