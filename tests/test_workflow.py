"""`init --github`: the generated workflow passes actionlint and zizmor and keeps its promises."""

from __future__ import annotations

import json
import re
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops_agent.agents import PRESETS
from testing.fixtures import CLI, git, make_repo
from testing.project import make_project, task_block
from testing.workflow_lint import actionlint, zizmor

WORKFLOW = ".github/workflows/gitops-agent.yml"
DEPENDABOT = ".github/dependabot.yml"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
GIT_SOURCE = f"git+https://github.com/octo-org/gitops-agent@{COMMIT}"
INDEX_SOURCE = f"gitops-agent==0.1.0 --hash=sha256:{'ab' * 32}"
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


def plan_text(agent: str | None = "claude", install: str | None = GIT_SOURCE) -> str:
    front = ['schedule: "30 1 * * 1-5"']
    if agent is not None:
        front.append(f"agent: {agent}")
    if install is not None:
        front.append(f"install: {install}")
    return "---\n" + "\n".join(front) + "\n---\n# Plan\n"


def load(text: str) -> Any:
    workflow = yaml.safe_load(text)
    workflow["on"] = workflow.pop(True)  # YAML 1.1 reads the key `on` as true
    return workflow


def generate(
    tmp_path: Path,
    cli: Any,
    *args: str,
    agent: str | None = "claude",
    install: str | None = GIT_SOURCE,
) -> tuple[str, Any]:
    repo = make_repo(tmp_path / "repo", {"PROJECT_PLAN.md": plan_text(agent, install)})
    result = cli("init", "--github", *args, cwd=repo)
    assert result.returncode == 0, result.stderr
    text = (repo / WORKFLOW).read_text(encoding="utf-8")
    return text, load(text)


# Every variant the template has: both modes, npm and pip presets (pinned or not), a raw
# command, no agent at all, and both install sources.
VARIANTS = {
    "session-claude-git": ("", "claude", GIT_SOURCE),
    "matrix-claude-git": ("--matrix", "claude", GIT_SOURCE),
    "session-codex-index": ("", "codex", INDEX_SOURCE),
    "matrix-aider-index": ("--matrix", "aider", INDEX_SOURCE),
    "matrix-gemini-git": ("--matrix", "gemini", GIT_SOURCE),
    "session-command-index": ("", "my-agent --fast", INDEX_SOURCE),
    "matrix-none-git": ("--matrix", None, GIT_SOURCE),
}


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, Any]]:
    """Each variant's workflow, generated once for the tests that only read them."""
    made = {}
    for name, (flag, agent, install) in VARIANTS.items():
        args = (flag,) if flag else ()
        made[name] = generate(
            tmp_path_factory.mktemp(name), _run, *args, agent=agent, install=install
        )
    return made


@pytest.fixture(scope="module")
def made(variants: dict[str, tuple[str, Any]]) -> dict[str, tuple[str, Any]]:
    """The workflow of a claude plan, per mode."""
    return {"session": variants["session-claude-git"], "matrix": variants["matrix-claude-git"]}


def steps(workflow: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(job, step) for job, spec in workflow["jobs"].items() for step in spec["steps"]]


@pytest.mark.parametrize("variant", VARIANTS)
def test_generated_workflow_passes_actionlint(tmp_path: Path, variants, variant: str) -> None:
    text, workflow = variants[variant]
    mode = variant.split("-")[0]
    assert workflow["on"]["workflow_dispatch"]["inputs"]["mode"]["default"] == mode
    path = tmp_path / "gitops-agent.yml"
    path.write_text(text, encoding="utf-8")
    linted = actionlint(path)
    assert linted.returncode == 0, linted.stdout + linted.stderr


@pytest.mark.parametrize("variant", VARIANTS)
def test_zizmor_finds_nothing_in_the_generated_files(
    tmp_path: Path, variants, variant: str
) -> None:
    text, _ = variants[variant]
    audited = zizmor(tmp_path, text)
    assert audited.returncode == 0, audited.stdout + audited.stderr
    assert "No findings" in audited.stdout + audited.stderr


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
        # The agent jobs read pull requests to find the tasks a person rejected (NEEDS_HUMAN);
        # integrate, to confirm such a status. Choosing the tasks needs neither.
        allowed = [{"contents": "read"}, {"contents": "read", "pull-requests": "read"}]
        assert jobs[name]["permissions"] in allowed, name
        if name in AGENT_JOBS or name == "integrate":
            assert jobs[name]["permissions"]["pull-requests"] == "read", name
        assert "write" not in jobs[name]["permissions"].values(), name
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
                assert set(step["env"]) <= {"ANTHROPIC_API_KEY", "TASK", "GITHUB_TOKEN"}
                # The tool's read-only token, which confinement keeps from the agent.
                assert step["env"]["GITHUB_TOKEN"] == "${{ github.token }}"
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
    # It claims nothing (it cannot push) but skips the tasks another run holds.
    assert agent_run["run"].startswith("gitops-agent run --check-claims --json")


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
    listing = next(s for s in jobs["plan"]["steps"] if s.get("id") == "plan")
    assert "gitops-agent plan --matrix" in listing["run"]
    integrate_runs = [s.get("run", "") for s in jobs["integrate"]["steps"]]
    assert any(r.startswith("gitops-agent verify") for r in integrate_runs)
    assert any(r.startswith("gitops-agent integrate") for r in integrate_runs)


def test_a_raw_agent_command_gets_no_guessed_secret(tmp_path: Path, cli) -> None:
    _, workflow = generate(tmp_path, cli, agent="my-agent --fast")
    for job in AGENT_JOBS:
        step = next(s for s in workflow["jobs"][job]["steps"] if s.get("name") == "Run the agent")
        assert "secrets." not in json.dumps(step)


def test_an_existing_workflow_is_kept_unless_forced_and_forcing_shows_the_diff(
    tmp_path: Path, cli
) -> None:
    generate(tmp_path, cli)
    repo = tmp_path / "repo"
    written = (repo / WORKFLOW).read_text(encoding="utf-8")
    mine = written.replace("retention-days: 1", "retention-days: 5").replace(
        "needs: [plan, task]", "needs: [task, plan]"
    )
    (repo / WORKFLOW).write_text(mine, encoding="utf-8")
    refused = cli("init", "--github", cwd=repo)
    assert refused.returncode == 2
    assert "already exists" in refused.stderr
    assert (repo / WORKFLOW).read_text(encoding="utf-8") == mine
    forced = cli("init", "--github", "--force", cwd=repo)
    assert forced.returncode == 0, forced.stderr
    assert (repo / WORKFLOW).read_text(encoding="utf-8") == written
    assert f"--- a/{WORKFLOW}" in forced.stderr and f"+++ b/{WORKFLOW}" in forced.stderr
    assert "-          retention-days: 5\n+          retention-days: 1" in forced.stderr
    # Shown as written: `[...]` is not taken for markup.
    assert "-    needs: [task, plan]\n+    needs: [plan, task]" in forced.stderr
    again = cli("init", "--github", "--force", cwd=repo)
    assert "unchanged" in again.stderr and "--- a/" not in again.stderr


def test_the_install_step_installs_exactly_the_plans_source(variants) -> None:
    for name, (_, _, install) in VARIANTS.items():
        _, workflow = variants[name]
        assert workflow["env"]["GITOPS_AGENT_PACKAGE"] == install, name
        for job, step in steps(workflow):
            if step.get("name") != "Install gitops-agent":
                continue
            if install.startswith("git+"):
                assert step["run"] == 'python -m pip install "$GITOPS_AGENT_PACKAGE"', job
            else:  # the tool itself hash-checked, then its dependencies
                lines = step["run"].splitlines()
                assert "--require-hashes --no-deps -r" in lines[1], job
                assert lines[2] == 'python -m pip install "${GITOPS_AGENT_PACKAGE%% *}"', job
        assert sum(s.get("name") == "Install gitops-agent" for _, s in steps(workflow)) == len(
            workflow["jobs"]
        )
        assert 'gitops-agent==0.1.0"' not in variants[name][0]  # the old, unresolvable pin


def test_without_install_a_copy_a_runner_cannot_reach_is_refused(tmp_path: Path, cli) -> None:
    recorded = metadata.distribution("gitops-agent").read_text("direct_url.json") or ""
    if '"vcs_info"' in recorded:
        pytest.skip("this copy was installed from git: it is the default source")
    repo = make_repo(tmp_path / "repo", {"PROJECT_PLAN.md": plan_text(install=None)})
    refused = cli("init", "--github", cwd=repo)
    assert refused.returncode == 2
    message = " ".join(refused.stderr.split())
    assert "a GitHub runner cannot" in message or "does not record where" in message
    assert "set `install:` in the plan's front matter" in message
    assert "git+https://github.com/OWNER/REPO@<40-hex commit>" in message
    assert not (repo / ".github").exists()  # nothing written


def test_the_agent_cli_is_pinned_to_the_version_its_preset_was_proven_with(variants) -> None:
    installs = {
        name: [s["run"].strip() for _, s in steps(w) if s.get("name") == "Install the agent"]
        for name, (_, w) in variants.items()
    }
    claude = PRESETS["claude"].proven_version
    aider = PRESETS["aider"].proven_version
    assert claude and aider
    assert set(installs["session-claude-git"]) == {
        f"npm install --global @anthropic-ai/claude-code@{claude}"
    }
    assert set(installs["matrix-aider-index"]) == {f"python -m pip install aider-chat=={aider}"}
    gemini = PRESETS["gemini"].proven_version
    text, _ = variants["matrix-gemini-git"]
    assert f"npm install --global @google/gemini-cli@{gemini}\n" in text
    # Every preset names the version it was proven with, so none is installed unpinned.
    assert all(spec.proven_version for spec in PRESETS.values())
    assert "this preset names no version it was proven with" not in text


def test_pack_upload_and_the_report_run_even_after_a_failure(variants) -> None:
    for name, (_, workflow) in variants.items():
        for job, spec in workflow["jobs"].items():
            for n, step in enumerate(spec["steps"]):
                uses = step.get("uses", "")
                if step.get("name") == "Pack the result" or uses.startswith(
                    "actions/upload-artifact"
                ):
                    assert "always()" in step["if"], (name, job, n)
                if uses.startswith("actions/upload-artifact"):
                    assert step["with"]["retention-days"] == 1, (name, job)
        report = workflow["jobs"]["publish"]["steps"][-1]
        assert report["name"] == "Morning report" and "always()" in report["if"]
        # A failed run's artifact still carries its memory: publish verifies and pushes it.
        assert "needs.agent.result != 'skipped'" in workflow["jobs"]["publish"]["if"]


def test_a_manual_run_can_pick_one_task_or_do_a_dry_run(made) -> None:
    _, workflow = made["session"]
    inputs = workflow["on"]["workflow_dispatch"]["inputs"]
    assert inputs["task"]["type"] == "string" and inputs["task"]["default"] == ""
    assert inputs["dry_run"]["type"] == "boolean" and inputs["dry_run"]["default"] is False
    agent = {s.get("name"): s for s in workflow["jobs"]["agent"]["steps"]}
    assert agent["Run the agent"]["env"]["TASK"] == "${{ inputs.task }}"
    assert '${TASK:+--task "$TASK"}' in agent["Run the agent"]["run"]
    assert agent["Dry run"]["if"] == "${{ inputs.dry_run }}"
    assert "gitops-agent check" in agent["Dry run"]["run"]
    for name in ("Install the agent", "Run the agent"):
        assert agent[name]["if"] == "${{ !inputs.dry_run }}", name
    assert "!inputs.dry_run" in workflow["jobs"]["publish"]["if"]
    _, matrix = made["matrix"]
    listing = next(s for s in matrix["jobs"]["plan"]["steps"] if s.get("id") == "plan")
    assert listing["env"]["TASK"] == "${{ inputs.task }}"
    assert "!inputs.dry_run" in matrix["jobs"]["task"]["if"]
    assert "!inputs.dry_run" in matrix["jobs"]["integrate"]["if"]


def test_the_jobs_that_read_secrets_may_run_in_a_github_environment(made) -> None:
    _, workflow = made["session"]
    environment = "${{ vars.GITOPS_AGENT_ENVIRONMENT }}"
    with_it = {job for job, spec in workflow["jobs"].items() if spec.get("environment")}
    assert with_it == {"agent", "task", "publish"}
    assert all(workflow["jobs"][job]["environment"] == environment for job in with_it)


def test_a_dependabot_config_for_the_action_pins_is_written_and_a_persons_own_kept(
    tmp_path: Path, cli
) -> None:
    generate(tmp_path / "a", cli)
    config = yaml.safe_load((tmp_path / "a" / "repo" / DEPENDABOT).read_text(encoding="utf-8"))
    (update,) = config["updates"]
    assert update["package-ecosystem"] == "github-actions" and update["directory"] == "/"
    assert update["cooldown"]["default-days"] >= 1

    own = "version: 2\nupdates:\n  - package-ecosystem: pip\n    directory: /\n"
    repo = make_repo(tmp_path / "b" / "repo", {"PROJECT_PLAN.md": plan_text(), DEPENDABOT: own})
    result = cli("init", "--github", "--force", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert (repo / DEPENDABOT).read_text(encoding="utf-8") == own
    assert "does not update the action pins" in " ".join(result.stderr.split())


def test_a_crashed_run_still_hands_on_its_memory(tmp_path: Path, cli) -> None:
    project = make_project(tmp_path / "project", task_block("t1", "Add a", run="touch src/a.py"))
    git(tmp_path, "clone", "-q", "--bare", str(project), "origin.git")
    runner, publisher = tmp_path / "runner", tmp_path / "publisher"
    for clone in (runner, publisher):
        git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), clone.name)
    ran = cli("run", "--json", cwd=runner)  # its JSON is lost below, as in a crash
    assert ran.returncode == 0, ran.stderr
    memory = git(runner, "rev-parse", "autonomous/memory").strip()
    (tmp_path / "empty.json").write_text("", encoding="utf-8")  # `> run.json`, then a crash
    for name in ("missing.json", "empty.json"):
        out = tmp_path / f"artifact-{name}"
        packed = cli("bundle", str(tmp_path / name), "--out", str(out), cwd=runner)
        assert packed.returncode == 0, packed.stderr
        assert "packing the memory branch alone" in " ".join(packed.stderr.split())
        result = json.loads((out / "result.json").read_text(encoding="utf-8"))
        assert result == {"session": None, "branch": None, "tasks": []}
        heads = git(runner, "bundle", "list-heads", str(out / "result.bundle")).split()
        assert heads == [memory, "refs/heads/autonomous/memory"]
        # The publish job takes it in like any other result.
        verified = cli("verify", str(out), cwd=publisher)
        assert verified.returncode == 0, verified.stderr
        assert git(publisher, "rev-parse", "autonomous/memory").strip() == memory
