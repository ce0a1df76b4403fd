"""`doctor`: each thing the first scheduled run needs, checked for real and explained."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from test_github import TOKEN, done, serve

from test_run import STAND_INS, make_project, task_block

TASKS = task_block("t1", "Add a", run="touch src/a.py")


def doctor(cli: Any, repo: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict]:
    clean = {k: "" for k in ("ANTHROPIC_API_KEY", "GITHUB_ACTIONS", "GITHUB_TOKEN", "GH_TOKEN")}
    result = cli("doctor", "--json", *args, cwd=repo, env={**clean, **(env or {})})
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    return result.returncode, checks


def test_a_ready_project_passes_with_the_agent_on_path_and_its_key_set(tmp_path, cli) -> None:
    repo = make_project(tmp_path, TASKS, agent="claude")
    env = {"PATH": f"{STAND_INS}:{os.environ['PATH']}", "ANTHROPIC_API_KEY": "sk-test"}
    code, checks = doctor(cli, repo, env=env)
    assert code == 0
    assert {n: c["status"] for n, c in checks.items()} == {
        "plan": "ok",
        "agent": "ok",
        "agent key": "ok",
        "agent version": "ok",
        "confinement": "ok",
        "gate": "ok",
        "workflow": "warn",  # not generated yet
    }
    assert (
        "Landlock" in checks["confinement"]["message"]
        or "bubblewrap" in (checks["confinement"]["message"])
    )


def test_doctor_fails_where_required_confinement_cannot_be_had(tmp_path, cli) -> None:
    repo = make_project(tmp_path, TASKS, agent="claude")
    env = {
        "PATH": f"{STAND_INS}:{os.environ['PATH']}",
        "ANTHROPIC_API_KEY": "sk-test",
        "GITOPS_AGENT_SANDBOX": "none",
    }
    code, checks = doctor(cli, repo, env=env)
    assert code == 2, checks  # the first scheduled run could not run
    assert checks["confinement"]["status"] == "fail"
    assert "bubblewrap" in checks["confinement"]["fix"]


def test_a_missing_agent_cli_fails_and_says_how_to_install_it(tmp_path, cli) -> None:
    repo = make_project(tmp_path, TASKS, agent="claude")
    code, checks = doctor(cli, repo, env={"PATH": "/usr/bin:/bin"})
    assert code == 2
    assert checks["agent"]["status"] == "fail"
    assert "npm install --global @anthropic-ai/claude-code" in checks["agent"]["fix"]
    assert checks["agent key"]["status"] == "warn"


def test_a_gate_that_fails_on_the_base_or_no_gate_at_all_fails(tmp_path, cli) -> None:
    failing = make_project(tmp_path / "a", TASKS, gate="test -f src/missing.py")
    code, checks = doctor(cli, failing)
    assert code == 2
    assert checks["gate"]["status"] == "fail"
    assert "fails on main itself" in checks["gate"]["message"]
    assert doctor(cli, failing, "--skip-gate")[1]["gate"]["status"] == "ok"
    none = make_project(tmp_path / "b", TASKS, gate=None)
    assert doctor(cli, none)[1]["gate"]["status"] == "fail"


def test_an_invalid_plan_is_the_first_and_only_check(tmp_path, cli) -> None:
    repo = make_project(tmp_path, "→ **[]** No id\n")
    code, checks = doctor(cli, repo)
    assert code == 2
    assert list(checks) == ["plan"]
    assert "PROJECT_PLAN.md" in checks["plan"]["message"]


def test_in_actions_it_asks_github_whether_the_token_may_open_prs(tmp_path, cli) -> None:
    repo = make_project(tmp_path, TASKS)
    with serve("doctor_actions") as replay:
        env = {
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": "octo-org/widgets",
            "GITHUB_API_URL": replay.url,
            "GITHUB_TOKEN": TOKEN,
        }
        code, checks = doctor(cli, repo, "--skip-gate", env=env)
        done(replay)
    assert code == 2
    assert checks["token"]["status"] == "ok"
    assert checks["pull requests"]["status"] == "fail"
    assert "Allow GitHub Actions to create" in checks["pull requests"]["fix"]
    assert checks["ci on the PR"]["status"] == "warn"
    assert "GITOPS_AGENT_TOKEN" in checks["ci on the PR"]["fix"]


def test_doctor_warns_that_landlock_alone_leaves_file_modes_open(tmp_path, cli) -> None:
    repo = make_project(tmp_path, TASKS, agent="claude")
    env = {
        "PATH": f"{STAND_INS}:{os.environ['PATH']}",
        "ANTHROPIC_API_KEY": "sk-test",
        "GITOPS_AGENT_SANDBOX": "landlock",
    }
    _code, checks = doctor(cli, repo, env=env)
    assert checks["confinement"]["status"] == "warn"
    assert "modes and times" in checks["confinement"]["message"]


def test_doctor_warns_when_the_agent_cli_is_not_the_version_its_preset_was_proven_with(
    tmp_path, cli
) -> None:
    repo = make_project(tmp_path, TASKS, agent="claude")
    env = {
        "PATH": f"{STAND_INS}:{os.environ['PATH']}",
        "ANTHROPIC_API_KEY": "sk-test",
        "STAND_IN_VERSION": "2.0.9",
    }
    _code, checks = doctor(cli, repo, env=env)
    version = checks["agent version"]
    assert version["status"] == "warn"
    assert (
        "proven with 2.1.332" in version["message"] and "2.0.9 is installed" in version["message"]
    )
