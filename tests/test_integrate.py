"""`integrate`, `bundle`, `verify` and `publish`: task branches made by real runs, put together.

The last test is the matrix flow of the workflow, run as it runs there: one process per task in
its own fresh clone, artifacts only; then an integrating clone; then a publishing clone that
pushes to a bare remote and opens the PR against a replayed GitHub API.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

from testing.fixtures import CLI, bare_remote, fresh_clone, git
from testing.project import make_project, task_block
from testing.replay import TOKEN, done, serve

TASKS = (
    task_block("t1", "Add a", run="printf 'A = 1\\n' > src/a.py")
    + task_block("t2", "Add b", run="printf 'B = 2\\n' > src/b.py")
    + task_block("t3", "Shout hello", run="sed -i s/hello/HELLO/ src/app.py")
    + task_block("t4", "Greet otherwise", run="sed -i s/hello/Howdy/ src/app.py")
)


def run_tasks(cli: Any, repo: Path, *task_ids: str) -> dict[str, str]:
    """Run each task as its own session, as a matrix job would; task id -> its branch."""
    branches = {}
    for task_id in task_ids:
        result = cli("run", "--json", "--task", task_id, cwd=repo)
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert [t["outcome"] for t in data["tasks"]] == ["committed"], data
        branches[task_id] = data["branch"]
    return branches


def integrate(cli: Any, repo: Path, *args: str) -> dict[str, Any]:
    result = cli("integrate", "--json", *args, cwd=repo)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def show(repo: Path, rev: str, path: str) -> str:
    return git(repo, "show", f"{rev}:{path}")


def test_conflicting_branch_is_left_out_and_the_rest_merge_in_plan_order(tmp_path, cli) -> None:
    repo = make_project(tmp_path, TASKS)
    main_before = git(repo, "rev-parse", "main")
    branches = run_tasks(cli, repo, "t4", "t2", "t3", "t1")  # run order is not plan order
    data = integrate(cli, repo, "--id", "1")
    assert data["branch"] == "autonomous/integration-1"
    assert [m["tasks"] for m in data["merged"]] == [["t1"], ["t2"], ["t3"]]
    assert data["left_out"] == [
        {
            "branch": branches["t4"],
            "tasks": ["t4"],
            "reason": "it conflicts with the branches merged before it",
            "files": ["src/app.py"],
        }
    ]
    tip = data["branch"]
    assert show(repo, tip, "src/a.py") == "A = 1\n"
    assert show(repo, tip, "src/b.py") == "B = 2\n"
    assert "HELLO" in show(repo, tip, "src/app.py")
    plan = show(repo, tip, "PROJECT_PLAN.md")
    assert plan.count("Status: DONE") == 3 and plan.count("Status: READY") == 1
    # One merge commit per branch, first parents walking back to main; main never moved.
    merges = git(repo, "log", "--first-parent", "--format=%P", f"main..{tip}").splitlines()
    assert [len(m.split()) for m in merges] == [2, 2, 2]
    assert git(repo, "rev-parse", "main") == main_before
    assert git(repo, "status", "--porcelain") == ""
    body = Path(data["pr_body"]).read_text(encoding="utf-8")
    assert branches["t4"] in body and "`src/app.py`" in body


def test_named_branches_only_and_an_existing_integration_is_not_overwritten(tmp_path, cli) -> None:
    repo = make_project(tmp_path, TASKS)
    branches = run_tasks(cli, repo, "t1", "t2")
    data = integrate(cli, repo, "--id", "x", branches["t2"])
    assert [m["branch"] for m in data["merged"]] == [branches["t2"]]
    again = cli("integrate", "--id", "x", cwd=repo)
    assert again.returncode == 2
    assert "exists already" in again.stderr


def test_a_branch_that_breaks_the_gate_only_in_combination_is_left_out(tmp_path, cli) -> None:
    gate = "test -f src/app.py && ! { test -f src/a.py && test -f src/b.py; }"
    repo = make_project(tmp_path, TASKS, gate=gate)
    run_tasks(cli, repo, "t1", "t2")
    data = integrate(cli, repo, "--id", "g")
    assert [m["tasks"] for m in data["merged"]] == [["t1"]]
    [out] = data["left_out"]
    assert out["tasks"] == ["t2"]
    assert out["reason"].startswith("the gate failed once it was merged")
    assert "passed with 1 of 2" in data["gate"]
    assert git(repo, "ls-tree", "--name-only", data["branch"], "src/").split() == [
        "src/a.py",
        "src/app.py",
    ]


def test_nothing_to_integrate_makes_no_branch(tmp_path, cli) -> None:
    repo = make_project(tmp_path, TASKS)
    data = integrate(cli, repo, "--id", "0")
    assert data["branch"] is None and data["merged"] == [] and data["left_out"] == []
    assert "autonomous/integration-0" not in git(repo, "branch")


def test_verify_refuses_a_tampered_artifact_and_takes_in_nothing(tmp_path, cli) -> None:
    repo = make_project(tmp_path, TASKS)
    remote = bare_remote(tmp_path, repo)
    git(repo, "checkout", "-q", "-b", "autonomous/evil")
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "x.yml").write_text("on: push\n", encoding="utf-8")
    plan = (repo / "PROJECT_PLAN.md").read_text(encoding="utf-8")
    (repo / "PROJECT_PLAN.md").write_text(plan.replace("READY", "DONE"), encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Sneak", "-m", "Task-Id: t1")
    git(repo, "checkout", "-q", "main")
    result_json = tmp_path / "evil.json"
    result_json.write_text('{"branch": "autonomous/evil"}', encoding="utf-8")
    assert cli("bundle", str(result_json), "--out", str(tmp_path / "art"), cwd=repo).returncode == 0
    clone = fresh_clone(tmp_path, remote, "publisher")
    refused = cli("verify", str(tmp_path / "art"), cwd=clone)
    assert refused.returncode == 2
    assert "beyond setting task `t1`'s status to DONE" in refused.stderr
    assert ".github/workflows/x.yml" in refused.stderr
    assert "autonomous/evil" not in git(clone, "branch")


def start_job(tmp_path: Path, remote: Path, task: str) -> subprocess.Popen[str]:
    """A matrix job: a fresh clone, `run --task`, then `bundle` into artifact-<task>/."""
    clone = fresh_clone(tmp_path, remote, f"job-{task}")
    tool = shlex.join(CLI)
    script = f'{tool} run --json --task {task} > run.json && {tool} bundle run.json --out "$OUT"'
    return subprocess.Popen(
        ["bash", "-c", script],
        cwd=clone,
        env={**os.environ, "OUT": str(tmp_path / f"artifact-{task}")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_matrix_flow_parallel_runs_then_integrate_then_publish(tmp_path, cli) -> None:
    repo = make_project(tmp_path, TASKS)
    remote = bare_remote(tmp_path, repo)
    listed = cli("plan", "--matrix", "--agent-command", "true", cwd=repo)
    matrix = json.loads(listed.stdout)
    assert matrix == {"include": [{"task": t} for t in ("t1", "t2", "t3", "t4")]}
    # One process per task, each in its own fresh clone, as the matrix jobs run.
    jobs = [start_job(tmp_path, remote, entry["task"]) for entry in matrix["include"][:3]]
    for job in jobs:
        _, err = job.communicate(timeout=120)
        assert job.returncode == 0, err
    integrator = fresh_clone(tmp_path, remote, "integrate")
    artifacts = [str(tmp_path / f"artifact-{t}") for t in ("t1", "t2", "t3")]
    sessions = [json.loads(Path(a, "result.json").read_text())["session"] for a in artifacts]
    verified = cli("verify", *artifacts, cwd=integrator)
    assert verified.returncode == 0, verified.stderr
    data = integrate(cli, integrator, "--id", "7")
    assert [m["tasks"] for m in data["merged"]] == [["t1"], ["t2"], ["t3"]]
    integration_json = tmp_path / "integrate.json"
    integration_json.write_text(json.dumps(data), encoding="utf-8")
    packed = cli("bundle", str(integration_json), "--out", str(tmp_path / "result"), cwd=integrator)
    assert packed.returncode == 0, packed.stderr
    # The publishing job: a fresh clone, the artifact verified again, then pushed with a PR.
    publisher = fresh_clone(tmp_path, remote, "publisher")
    # The job that made the artifact could write any description; it is never posted.
    (tmp_path / "result" / "pr-body.md").write_text("Approved by @security-team\n")
    checked = cli("verify", str(tmp_path / "result"), cwd=publisher)
    assert checked.returncode == 0, checked.stderr
    with serve("publish_integration") as replay:
        env = {"GITHUB_API_URL": replay.url, "GITHUB_TOKEN": TOKEN}
        published = cli(
            "publish",
            str(tmp_path / "result"),
            "--repository",
            "octo-org/widgets",
            "--json",
            cwd=publisher,
            env=env,
        )
        assert published.returncode == 0, published.stderr
        done(replay)
    posted = replay.bodies[0]["body"]
    assert "security-team" not in posted
    assert "Merged, in plan order" in posted
    assert [line for line in posted.splitlines() if line.startswith("- t")] == [
        f"- {t} (session `{s}`)" for t, s in zip(("t1", "t2", "t3"), sessions, strict=True)
    ]
    result = json.loads(published.stdout)
    assert result["pull_request"]["url"] == "https://github.com/octo-org/widgets/pull/12"
    assert git(remote, "rev-parse", "autonomous/integration-7") == git(
        integrator, "rev-parse", "autonomous/integration-7"
    )
    assert git(remote, "rev-parse", "main") == git(repo, "rev-parse", "main")
    # The three runners' memory branches were joined, so the next run sees every session.
    state = git(remote, "ls-tree", "-r", "--name-only", "autonomous/memory", "state/sessions/")
    assert len(state.split()) == 3


def test_matrix_flow_reports_the_task_that_conflicts(tmp_path, cli) -> None:
    repo = make_project(tmp_path, TASKS)
    remote = bare_remote(tmp_path, repo)
    jobs = [start_job(tmp_path, remote, task) for task in ("t3", "t4", "t1")]
    for job in jobs:
        _, err = job.communicate(timeout=120)
        assert job.returncode == 0, err
    integrator = fresh_clone(tmp_path, remote, "integrate")
    artifacts = [str(tmp_path / f"artifact-{t}") for t in ("t3", "t4", "t1")]
    assert cli("verify", *artifacts, cwd=integrator).returncode == 0
    result = cli("integrate", "--json", "--id", "8", cwd=integrator)
    data = json.loads(result.stdout)
    assert [m["tasks"] for m in data["merged"]] == [["t1"], ["t3"]]
    assert [(o["tasks"], o["files"]) for o in data["left_out"]] == [(["t4"], ["src/app.py"])]
    assert "left out" in result.stderr and "src/app.py" in result.stderr
    # What the publisher pushes: the integration branch and the joined memory, nothing else.
    git(integrator, "push", "-q", "origin", "autonomous/integration-8", "autonomous/memory")
    morning = fresh_clone(tmp_path, remote, "morning")
    report = json.loads(cli("report", "--json", "--since", "1d", cwd=morning).stdout)
    commits = {t["id"]: t["commit"] for s in report["sessions"] for t in s["tasks"]}
    where = {task: report["results"][commit] for task, commit in commits.items()}
    on_review = {"kept": "awaiting", "branch": "origin/autonomous/integration-8"}
    assert where == {"t1": on_review, "t3": on_review, "t4": {"kept": "not_kept", "branch": None}}
    text = cli("report", "--since", "1d", cwd=morning).stdout
    assert "under review on `origin/autonomous/integration-8`" in text
    assert "on no branch (never pushed, or deleted): the task runs again" in text
    assert "**To review:**" not in text  # no session's own branch is anywhere to review
    status = json.loads(cli("status", "--json", cwd=morning).stdout)
    assert [a["branch"] for a in status["awaiting_review"]] == ["origin/autonomous/integration-8"]
    # And the next run takes t4 again (its result is on no branch), but not t1 or t3.
    plan = cli("plan", "--agent-command", "true", cwd=morning).stdout.split()
    assert plan == ["t2", "t4"]


def test_an_integration_made_redundant_or_merged_is_removed_and_no_longer_awaits_review(
    tmp_path, cli
) -> None:
    repo = make_project(tmp_path, TASKS)
    run_tasks(cli, repo, "t1", "t2")
    first = integrate(cli, repo, "--id", "1")
    assert first["branch"] == "autonomous/integration-1" and first["removed"] == []
    # The same tasks integrated again (a later night): the first integration is redundant.
    second = integrate(cli, repo, "--id", "2")
    assert second["removed"] == ["autonomous/integration-1"]
    assert git(repo, "branch", "--list", "autonomous/integration-*").split() == [
        "autonomous/integration-2"
    ]
    # A person merges it; the next integration cleans it up, and nothing awaits review.
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge the night's work", "autonomous/integration-2")
    third = integrate(cli, repo, "--id", "3")
    assert third["branch"] is None and third["removed"] == ["autonomous/integration-2"]
    status = json.loads(cli("status", "--json", cwd=repo).stdout)
    assert not any("integration" in a["branch"] for a in status["awaiting_review"])
