"""`gitops-agent scan`: real ruff, confined on the base; each finding proposed once as a Pending
task, whatever its line becomes and whatever happened to its proposal."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from gitops_agent.commands.scan import scan
from gitops_agent.errors import UserError
from gitops_agent.plan import Queue, TaskStatus, parse_plan
from testing.fixtures import bare_remote, fresh_clone, git, make_repo
from testing.project import session_branches, show, user_state

# The gate's tests run ruff by its path too: the confined command's PATH is the tool's own.
RUFF = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
LINT = f"{RUFF} check --no-cache --isolated --output-format=concise src"
SOURCE = "import os\n\n\ndef hello():\n    return greeting\n"
PLAN = """\
---
scan: {scan}
---
# Plan

### Ready for Autonomous Execution ✅

### Pending Approval ⏳
These tasks need review before autonomous execution:

- **[docs]** Write the docs
  - Status: PENDING

### Not Ready ❌
"""


def project(tmp_path: Path, scan_setting: object = LINT, name: str = "repo") -> Path:
    plan = PLAN.format(scan=json.dumps(scan_setting))
    return make_repo(tmp_path / name, {"PROJECT_PLAN.md": plan, "src/app.py": SOURCE})


def commit(repo: Path, path: str, text: str) -> None:
    (repo / path).write_text(text)
    git(repo, "commit", "-qam", f"change {path}")


def test_scan_proposes_each_finding_as_a_pending_task(tmp_path: Path, cli) -> None:
    repo = project(tmp_path)
    before = user_state(repo)
    main = git(repo, "rev-parse", "main").strip()
    result = cli("scan", "--json", cwd=repo)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["findings"] == 2 and data["pull_request"] is None
    assert [(f["path"], f["line"], f["message"][:4]) for f in data["new"]] == [
        ("src/app.py", 1, "F401"),
        ("src/app.py", 5, "F821"),
    ]
    assert all(f["id"] == "scan-" + f["fingerprint"][:8] for f in data["new"])
    branch = data["branch"]
    assert branch.startswith("autonomous/scan-")
    assert "2 new findings proposed under Pending Approval" in result.stderr
    assert user_state(repo) == before
    assert git(repo, "rev-parse", "main").strip() == main
    assert git(repo, "diff", "--name-only", main, branch).split() == ["PROJECT_PLAN.md"]
    assert "Proposed-By: scan" in git(repo, "log", "-1", "--format=%B", branch)
    text = show(repo, branch, "PROJECT_PLAN.md")
    plan = parse_plan(text, "PROJECT_PLAN.md")
    assert [t.id for t in plan.tasks] == ["docs", *(f["id"] for f in data["new"])]
    first = plan.task(data["new"][0]["id"])
    assert first is not None and first.queue is Queue.PENDING
    assert first.status is TaskStatus.PENDING and first.tests_defined is False
    assert first.title == "F401 \\[\\*\\] `os` imported but unused (`src/app.py`)"
    details = {d.key: d.value for d in first.details}
    assert details["Finding"] == data["new"][0]["fingerprint"]
    assert details["Where"] == "`src/app.py:1`"
    assert details["Found by"] == f"`{LINT}`"
    events = git(repo, "ls-tree", "-r", "--name-only", "autonomous/memory", "state/events")
    scanned = next(path for path in events.split() if "-scanned-" in path)
    record = json.loads(show(repo, "autonomous/memory", scanned))["data"]
    assert record["new"] == [f["fingerprint"] for f in data["new"]]
    assert [(f["path"], f["line"], f["fingerprint"], f["command"]) for f in record["findings"]] == [
        ("src/app.py", f["line"], f["fingerprint"], LINT) for f in data["new"]
    ]


def test_a_finding_is_proposed_once_whatever_its_line_and_its_proposal_become(
    tmp_path: Path,
) -> None:
    repo = project(tmp_path)
    first = scan(repo)
    assert len(first.new) == 2 and first.proposal is not None
    # Again, before the proposal is merged: nothing new, no branch.
    again = scan(repo)
    assert (len(again.found), again.new, again.proposal) == (2, (), None)
    # The findings move down three lines on the base: still the same findings.
    commit(repo, "src/app.py", "# one\n# two\n# three\n" + SOURCE)
    moved = scan(repo)
    assert [f.finding.line for f in moved.found] == [4, 8] and moved.new == ()
    # The proposal is merged and the lines move again: the plan's `Finding:` lines know them.
    git(repo, "merge", "-q", "--no-edit", first.proposal.branch)
    commit(repo, "src/app.py", "# zero\n" + (repo / "src/app.py").read_text())
    assert scan(repo).new == ()
    # A new finding is the only one proposed.
    commit(
        repo,
        "src/app.py",
        (repo / "src/app.py").read_text() + "\n\ndef bye():\n    return bye_bye\n",
    )
    latest = scan(repo)
    assert [(f.finding.path, f.finding.line) for _id, f in latest.new] == [("src/app.py", 13)]
    assert "Undefined name `bye_bye`" in latest.new[0][1].finding.message


def test_a_closed_proposal_or_a_fixed_finding_is_not_proposed_again(tmp_path: Path) -> None:
    repo = project(tmp_path)
    first = scan(repo)
    assert first.proposal is not None
    git(repo, "branch", "-q", "-D", first.proposal.branch)  # closed without merging
    commit(repo, "src/app.py", "def hello():\n    return 'hi'\n")  # fixed on the base
    assert scan(repo).found == ()
    commit(repo, "src/app.py", SOURCE)  # and back again
    again = scan(repo)
    assert len(again.found) == 2 and again.new == () and session_branches(repo) == []


def test_a_pushed_proposal_is_known_to_a_fresh_clone(tmp_path: Path) -> None:
    repo = project(tmp_path)
    remote = bare_remote(tmp_path, repo)
    first = scan(repo, push=True)
    assert first.proposal is not None and first.proposal.pushed
    assert "The remote is not on GitHub: no pull request." in first.lines()
    clone = fresh_clone(tmp_path, remote, "clone")
    again = scan(clone, push=True)
    assert len(again.found) == 2 and again.new == () and again.proposal is None
    pushed = git(remote, "branch", "--list", "autonomous/*", "--format=%(refname:short)")
    assert pushed.split() == ["autonomous/memory", first.proposal.branch]


def test_a_command_that_fails_without_findings_is_reported_not_a_crash(tmp_path: Path) -> None:
    broken = "echo 'cannot start: no config' >&2; exit 3"
    repo = project(tmp_path, [broken, LINT])
    done = scan(repo)
    assert done.problems == (
        f"{broken}: exited with status 3 without a `path:line: message` finding: "
        "cannot start: no config",
    )
    assert len(done.new) == 2
    assert done.lines()[1:3] == [f"{broken}: 0 findings", f"{LINT}: 2 findings"]


def test_scan_without_commands_is_refused_with_how_to_add_one(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"PROJECT_PLAN.md": "# Plan\n", "src/app.py": SOURCE})
    before = user_state(repo)
    with pytest.raises(UserError) as refused:
        scan(repo)
    assert str(refused.value).startswith("PROJECT_PLAN.md: the plan has no `scan:` commands")
    assert "scan: ruff check --output-format=concise ." in str(refused.value)
    assert user_state(repo) == before and session_branches(repo) == []


def test_an_id_the_plan_already_uses_gets_a_longer_fingerprint(tmp_path: Path) -> None:
    repo = project(tmp_path)
    fingerprints = [f.finding.fingerprint for f in scan(make_probe(tmp_path)).found]
    plan = (repo / "PROJECT_PLAN.md").read_text()
    taken = f"- **[scan-{fingerprints[0][:8]}]** A person's own task\n  - Status: PENDING\n\n"
    commit(repo, "PROJECT_PLAN.md", plan.replace("### Not Ready", taken + "### Not Ready"))
    done = scan(repo)
    assert [task_id for task_id, _f in done.new] == [
        f"scan-{fingerprints[0][:12]}",
        f"scan-{fingerprints[1][:8]}",
    ]


def make_probe(tmp_path: Path) -> Path:
    """Another copy of the project, to learn the fingerprints without a record of them."""
    return project(tmp_path, name="probe")


def test_a_scan_setting_that_is_not_commands_is_refused(tmp_path: Path) -> None:
    repo = project(tmp_path, {"run": LINT})
    with pytest.raises(UserError, match="`scan` must be a command or a list of commands"):
        scan(repo)
