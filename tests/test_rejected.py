"""A task whose pull request a person closed without merging: marked NEEDS_HUMAN, never rerun.

Sessions run the installed console script against a replayed GitHub API (testing/replay.py's
local server), so every request the session makes is checked against the recording.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gitops_agent.plan import set_status
from testing.fixtures import bare_remote, fresh_clone, git
from testing.project import make_project, outcomes, run, show, task_block
from testing.replay import TOKEN, done, serve

PLAN = "PROJECT_PLAN.md"
TASKS = task_block("t1", "Add a greeting module", "echo 'X = 1' > src/greet.py") + task_block(
    "t2", "Add a farewell module", "echo 'Y = 2' > src/bye.py"
)
REASON = (
    "Its pull request #12 was closed without merging; a person must decide what to do with it "
    "(its status is set to NEEDS_HUMAN)."
)


def github_env(url: str) -> dict[str, str]:
    return {
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_TOKEN": TOKEN,
        "GH_TOKEN": "",
        "GITHUB_API_URL": url,
    }


def reasons(data: dict[str, Any]) -> dict[str, str]:
    return {t["id"]: t["reason"] for t in data["tasks"]}


def plan_lines_changed(repo: Path, old: str, new: str) -> list[str]:
    diff = git(repo, "diff", "-U0", old, new, "--", PLAN)
    return [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in "+++---"]


def test_a_rejected_task_is_blocked_and_its_status_set_to_needs_human_on_the_branch(
    tmp_path, cli
) -> None:
    repo = make_project(tmp_path, TASKS)
    main = git(repo, "rev-parse", "main").strip()
    with serve("rejected_session") as replay:
        data = run(cli, repo, env=github_env(replay.url))
        done(replay)
    assert outcomes(data) == [("t1", "blocked"), ("t2", "committed")]
    assert reasons(data)["t1"] == REASON
    assert data["tasks"][0]["commit"] is None and data["tasks"][0]["attempts"] == 0
    # The branch: first the status commit, then t2's commit on top of it.
    branch = data["branch"]
    status_commit, t2_commit = git(repo, "rev-list", "--reverse", f"main..{branch}").split()
    assert t2_commit == data["tasks"][1]["commit"]
    assert git(repo, "rev-parse", f"{status_commit}^").strip() == main
    assert git(repo, "diff", "--name-only", main, status_commit).split() == [PLAN]
    assert plan_lines_changed(repo, main, status_commit) == [
        "-  - Status: READY",
        "+  - Status: NEEDS_HUMAN",
    ]
    assert show(repo, status_commit, PLAN) == set_status(
        show(repo, "main", PLAN), "t1", "NEEDS_HUMAN"
    )
    trailers = git(repo, "log", "-1", "--format=%(trailers:only,unfold)", status_commit)
    assert f"Task-Status: t1 NEEDS_HUMAN\nSession: {data['session']}\n" in trailers
    assert "Gitops-Agent-Version: " in trailers and "Task-Id:" not in trailers
    message = git(repo, "log", "-1", "--format=%s", status_commit).strip()
    assert message == "Mark t1 as needing a person"
    # t2's commit sets its own status to DONE; the plan keeps t1 NEEDS_HUMAN.
    plan = show(repo, t2_commit, PLAN)
    assert plan.count("Status: NEEDS_HUMAN") == 1 and plan.count("Status: DONE") == 1
    assert git(repo, "status", "--porcelain") == ""

    # The next night, before anyone merged: still blocked for the same reason, and no second
    # branch marks it again (t2's result awaits review).
    with serve("rejected_session") as replay:
        again = run(cli, repo, env=github_env(replay.url))
        done(replay)
    assert outcomes(again) == [("t1", "blocked"), ("t2", "skipped")]
    assert reasons(again)["t1"] == REASON
    assert again["branch"] is None


def test_the_status_commit_passes_verify_and_one_that_does_more_is_refused(tmp_path, cli) -> None:
    repo = make_project(tmp_path, TASKS)
    remote = bare_remote(tmp_path, repo)
    with serve("rejected_session") as replay:
        data = run(cli, repo, env=github_env(replay.url))
        done(replay)
    result_json = tmp_path / "run.json"
    result_json.write_text(json.dumps(data), encoding="utf-8")
    packed = cli("bundle", str(result_json), "--out", str(tmp_path / "art"), cwd=repo)
    assert packed.returncode == 0, packed.stderr
    clone = fresh_clone(tmp_path, remote, "publisher")
    # verify asks GitHub too: a status commit stands only for a pull request closed unmerged.
    with serve("rejected_session") as replay:
        verified = cli("verify", str(tmp_path / "art"), cwd=clone, env=github_env(replay.url))
        done(replay)
    assert verified.returncode == 0, verified.stderr
    assert git(clone, "rev-parse", data["branch"]) == git(repo, "rev-parse", data["branch"])

    # A commit that claims to set t1's status but also sets t2's and adds a file.
    git(repo, "checkout", "-q", "-b", "autonomous/evil")
    plan = set_status(
        set_status(show(repo, "main", PLAN), "t1", "NEEDS_HUMAN"), "t2", "NEEDS_HUMAN"
    )
    (repo / PLAN).write_text(plan, encoding="utf-8")
    (repo / "src" / "evil.py").write_text("import os\n", encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Mark t1", "-m", "Task-Status: t1 NEEDS_HUMAN")
    # And one whose trailer names another status.
    (repo / PLAN).write_text(set_status(plan, "t1", "DONE"), encoding="utf-8")
    git(repo, "commit", "-q", "-am", "Mark t1 done", "-m", "Task-Status: t1 DONE")
    git(repo, "checkout", "-q", "main")
    evil_json = tmp_path / "evil.json"
    evil_json.write_text('{"branch": "autonomous/evil"}', encoding="utf-8")
    packed = cli("bundle", str(evil_json), "--out", str(tmp_path / "evil"), cwd=repo)
    assert packed.returncode == 0, packed.stderr
    refused = cli("verify", str(tmp_path / "evil"), cwd=clone)
    assert refused.returncode == 2
    assert f"a status commit that changes more than {PLAN}: src/evil.py" in refused.stderr
    assert "its Task-Status is 't1 DONE', not `<task> NEEDS_HUMAN`" in refused.stderr
    assert "autonomous/evil" not in git(clone, "branch")


def test_a_status_commit_that_changes_another_line_of_the_plan_is_refused(tmp_path, cli) -> None:
    repo = make_project(tmp_path, TASKS)
    remote = bare_remote(tmp_path, repo)
    git(repo, "checkout", "-q", "-b", "autonomous/sly")
    plan = set_status(show(repo, "main", PLAN), "t1", "NEEDS_HUMAN")
    (repo / PLAN).write_text(plan.replace("Estimated lines: 10", "Estimated lines: 9", 1), "utf-8")
    git(repo, "commit", "-q", "-am", "Mark t1", "-m", "Task-Status: t1 NEEDS_HUMAN")
    git(repo, "checkout", "-q", "main")
    sly_json = tmp_path / "sly.json"
    sly_json.write_text('{"branch": "autonomous/sly"}', encoding="utf-8")
    assert cli("bundle", str(sly_json), "--out", str(tmp_path / "sly"), cwd=repo).returncode == 0
    clone = fresh_clone(tmp_path, remote, "publisher")
    refused = cli("verify", str(tmp_path / "sly"), cwd=clone)
    assert refused.returncode == 2
    assert f"changes {PLAN} beyond setting task `t1`'s status to NEEDS_HUMAN" in refused.stderr


def test_a_github_failure_is_a_note_and_the_session_runs_its_tasks(tmp_path, cli) -> None:
    repo = make_project(tmp_path, TASKS)
    with serve("rejected_server_error") as replay:
        result = cli("run", "--json", cwd=repo, env=github_env(replay.url))
        done(replay)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert outcomes(data) == [("t1", "committed"), ("t2", "committed")]
    said = " ".join(result.stderr.split())  # rich wraps long lines
    assert "without knowing which pull requests were closed without merging" in said
    assert "500 Server Error" in said


def test_without_a_github_repository_or_a_token_nothing_is_asked(tmp_path, cli) -> None:
    nowhere = "http://127.0.0.1:9"  # any request would fail, and say so
    for name, env in (
        ("no-repository", {**github_env(nowhere), "GITHUB_REPOSITORY": ""}),
        ("no-token", {**github_env(nowhere), "GITHUB_TOKEN": ""}),
    ):
        repo = make_project(tmp_path / name, TASKS)
        result = cli("run", "--json", cwd=repo, env=env)
        assert result.returncode == 0, result.stderr
        assert "GitHub" not in result.stderr
        assert outcomes(json.loads(result.stdout)) == [("t1", "committed"), ("t2", "committed")]
