"""`doctor`: each thing the first scheduled run needs, checked for real and explained."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from testing import github_permissions
from testing.editable import EDITABLE_PACKAGE, editable_venv
from testing.fixtures import git, make_repo
from testing.project import STAND_INS, make_project, task_block
from testing.replay import TOKEN, done, serve

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


def test_a_gate_failing_on_the_base_warns_one_leaving_no_evidence_or_none_at_all_fails(
    tmp_path, cli
) -> None:
    failing = make_project(tmp_path / "a", TASKS, gate="test -f src/missing.py")
    code, checks = doctor(cli, failing)
    # Tasks are judged only on what they break, so the base's failure is worth a warning.
    assert checks["gate"]["status"] == "warn"
    assert "fails on main itself" in checks["gate"]["message"]
    assert doctor(cli, failing, "--skip-gate")[1]["gate"]["status"] == "ok"
    no_tests = make_project(tmp_path / "c", TASKS, gate=f"{sys.executable} -m pytest -q")
    code, checks = doctor(cli, no_tests)
    assert code == 2 and checks["gate"]["status"] == "fail"  # every task would fail
    assert "ran no tests" in checks["gate"]["message"]
    none = make_project(tmp_path / "b", TASKS, gate=None)
    assert doctor(cli, none)[1]["gate"]["status"] == "fail"


def test_a_run_program_that_is_not_on_path_is_named_with_how_to_fix_it(tmp_path, cli) -> None:
    tasks = TASKS + task_block("t2", "Tidy the sources", run="nosuchtool-xyz --fix src")
    repo = make_project(tmp_path, tasks)
    code, checks = doctor(cli, repo, "--skip-gate")
    assert code == 2  # t2 would be blocked at every run
    problem = checks["run t2"]
    assert problem["status"] == "fail"
    assert "program `nosuchtool-xyz` is not on the PATH the command gets" in problem["message"]
    assert "install `nosuchtool-xyz`" in problem["fix"] and "PROJECT_PLAN.md:" in problem["fix"]
    assert "run t1" not in checks  # `touch` is there


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
    assert "installation token may push" in checks["token"]["message"]
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


def test_an_editable_install_into_the_repository_is_named_with_what_it_means(tmp_path, cli) -> None:
    venv = tmp_path / "venv"
    repo = make_project(
        tmp_path, TASKS, gate="python -m pytest -q tests", extra_files=EDITABLE_PACKAGE
    )
    editable_venv(venv, repo)
    # The environment is active, as after `source venv/bin/activate`: the gate's python.
    env = {"PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    code, checks = doctor(cli, repo, "--skip-gate", env=env)
    found = checks["gate python"]
    assert code == 0 and found["status"] == "warn"  # a warning: runs may still succeed
    assert f"an editable install of pkg ({repo})" in found["message"]
    assert str(venv / "bin" / "python") in found["message"]
    assert "under bubblewrap" in found["message"] and "TMPDIR" in found["fix"]

    landlock = {**env, "GITOPS_AGENT_SANDBOX": "landlock"}
    found = doctor(cli, repo, "--skip-gate", env=landlock)[1]["gate python"]
    assert "Landlock alone" in found["message"] and "will fail" in found["message"]
    assert "bubblewrap" in found["fix"]

    # Outside that environment, the gate's python has nothing of the repository.
    assert "gate python" not in doctor(cli, repo, "--skip-gate")[1]


# -- the workflow file, where it installs from, and personal tokens ---------------------------

WORKFLOW = ".github/workflows/gitops-agent.yml"
# Loopback, nothing listening: the source cannot be asked, and no test reaches the network.
UNREACHABLE = (
    "git+https://127.0.0.1:9/octo-org/gitops-agent@0123456789abcdef0123456789abcdef01234567"
)


def actions_project(tmp_path: Path, cli: Any, *, schedule: str = "0 2 * * *") -> Path:
    """A project with `install:` set and the workflow `init --github` wrote, not yet committed."""
    plan = (
        f'---\ngate: "true"\nschedule: "{schedule}"\ninstall: {UNREACHABLE}\n---\n# Plan\n\n'
        "### Ready for Autonomous Execution ✅\n\n" + TASKS
    )
    repo = make_repo(tmp_path / "repo", {"PROJECT_PLAN.md": plan})
    made = cli("init", "--github", cwd=repo)
    assert made.returncode == 0, made.stderr
    return repo


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def test_a_current_committed_workflow_passes_and_an_unreachable_source_only_warns(
    tmp_path, cli
) -> None:
    repo = actions_project(tmp_path, cli)
    commit_all(repo, "Add the workflow")
    code, checks = doctor(cli, repo, "--skip-gate")
    assert checks["workflow"]["status"] == "ok", checks["workflow"]
    assert "session mode" in checks["workflow"]["message"]
    assert checks["workflow committed"]["status"] == "ok"
    source = checks["install source"]
    assert source["status"] == "warn"  # could not be checked: not a failure
    assert "not checked" in source["message"] and "could not reach" in source["message"]
    assert code == 0


def test_an_uncommitted_workflow_warns_that_scheduled_runs_will_not_see_it(tmp_path, cli) -> None:
    repo = actions_project(tmp_path, cli)
    _code, checks = doctor(cli, repo, "--skip-gate")
    assert checks["workflow"]["status"] == "ok"  # what init writes, but only here
    committed = checks["workflow committed"]
    assert committed["status"] == "warn"
    assert "not committed on main" in committed["message"]

    commit_all(repo, "Add the workflow")
    text = (repo / WORKFLOW).read_text(encoding="utf-8")
    (repo / WORKFLOW).write_text(text.replace("timeout-minutes: 30", "timeout-minutes: 45"))
    committed = doctor(cli, repo, "--skip-gate")[1]["workflow committed"]
    assert committed["status"] == "warn"
    assert "- timeout-minutes: 30; + timeout-minutes: 45" in committed["message"]


def test_a_stale_workflow_warns_naming_the_difference(tmp_path, cli) -> None:
    repo = actions_project(tmp_path, cli)
    commit_all(repo, "Add the workflow")
    plan = (repo / "PROJECT_PLAN.md").read_text(encoding="utf-8")
    (repo / "PROJECT_PLAN.md").write_text(plan.replace("0 2 * * *", "30 3 * * 1-5"))
    commit_all(repo, "Run on weekdays")  # the plan moved on; the workflow did not
    code, checks = doctor(cli, repo, "--skip-gate")
    stale = checks["workflow"]
    assert stale["status"] == "warn" and code == 0
    assert '- - cron: "0 2 * * *"; + - cron: "30 3 * * 1-5"' in stale["message"]
    assert "init --github --force" in stale["fix"]


def test_action_pins_moved_by_dependabot_are_not_staleness(tmp_path, cli) -> None:
    repo = actions_project(tmp_path, cli)
    text = (repo / WORKFLOW).read_text(encoding="utf-8")
    moved = re.sub(
        r"(actions/checkout@)[0-9a-f]{40} # v[\d.]+", r"\g<1>" + "f" * 40 + " # v9.9.9", text
    )
    assert moved != text
    (repo / WORKFLOW).write_text(moved, encoding="utf-8")
    commit_all(repo, "Bump actions/checkout")
    assert doctor(cli, repo, "--skip-gate")[1]["workflow"]["status"] == "ok"


def test_a_fine_grained_token_is_judged_by_what_github_lets_it_do(tmp_path, cli) -> None:
    repo = make_project(tmp_path, TASKS)
    allowed = "github_pat_11AAAAAAA0allowed0000000000000000000000000000000000000000000000"
    read_only = "github_pat_11AAAAAAA0readonly000000000000000000000000000000000000000000000"
    repository = github_permissions.Repository(
        "octo-org/widgets",
        {
            allowed: {"contents": "write", "pull_requests": "write"},
            read_only: {"contents": "read", "pull_requests": "read"},
        },
    )
    with github_permissions.serve(repository) as api:
        env = {
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": "octo-org/widgets",
            "GITHUB_API_URL": api.url,
        }
        code, checks = doctor(cli, repo, "--skip-gate", env={**env, "GITHUB_TOKEN": allowed})
        assert code == 0, checks
        assert checks["token"]["status"] == "ok"
        assert "fine-grained token may push" in checks["token"]["message"]
        assert checks["pull requests"]["status"] == "ok"
        assert "ci on the PR" not in checks  # its pull requests start other workflows
        # It was asked, not told: no request it made was carried out.
        assert {status for _, _, status in api.requests} <= {200, 422}
        assert ("GET", "/repos/octo-org/widgets/actions/permissions/workflow", 200) not in (
            api.requests
        )

        code, checks = doctor(cli, repo, "--skip-gate", env={**env, "GITHUB_TOKEN": read_only})
    assert code == 2
    assert checks["token"]["status"] == "fail"
    assert "Contents: Read and write" in checks["token"]["fix"]
    assert checks["pull requests"]["status"] == "fail"
    assert "Pull requests: Read and write" in checks["pull requests"]["fix"]


def test_the_workflow_token_with_read_only_permissions_fails(tmp_path, cli) -> None:
    """GitHub shows no permissions of an installation token (the workflow's GITHUB_TOKEN):
    doctor asks what it may do, so a publish job left at `contents: read` is caught."""
    repo = make_project(tmp_path, TASKS)
    read_only = "ghs_readonly000000000000000000000000000000"
    can_push = "ghs_canpush0000000000000000000000000000000"
    repository = github_permissions.Repository(
        "octo-org/widgets",
        {read_only: {"contents": "read"}, can_push: {"contents": "write"}},
    )
    with github_permissions.serve(repository) as api:
        env = {
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": "octo-org/widgets",
            "GITHUB_API_URL": api.url,
        }
        code, checks = doctor(cli, repo, "--skip-gate", env={**env, "GITHUB_TOKEN": read_only})
        assert code == 2
        assert checks["token"]["status"] == "fail"
        assert "contents: write" in checks["token"]["fix"]
        assert checks["pull requests"]["status"] == "fail"
        assert "pull-requests: write" in checks["pull requests"]["fix"]

        code, checks = doctor(cli, repo, "--skip-gate", env={**env, "GITHUB_TOKEN": can_push})
    assert code == 2
    assert checks["token"]["status"] == "ok"
    assert checks["pull requests"]["status"] == "fail"
    assert "pull-requests: write" in checks["pull requests"]["fix"]


def test_each_failure_to_load_says_what_to_do_about_it(tmp_path: Path, cli) -> None:
    loose = tmp_path / "loose"
    loose.mkdir()
    _code, checks = doctor(cli, loose)
    assert "git init" in checks["plan"]["fix"]
    repo = make_project(tmp_path, "→ **[]** No id\n")
    _code, checks = doctor(cli, repo)
    assert checks["plan"]["message"].startswith("PROJECT_PLAN.md:")
    assert "its file and line" in checks["plan"]["fix"]
