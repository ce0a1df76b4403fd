"""`gitops-agent report` shows what happened after the sessions: results in quarantine, merges,
cancelled merges, rollbacks and checkpoints, problem scans and proposals; each part only when
it has something to say. The clock is moved with GITOPS_AGENT_NOW, never slept."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gitops_agent.events import Event, EventKind
from gitops_agent.git import Repo
from gitops_agent.memory import record_event, record_session
from gitops_agent.report import gather, load_at_base, to_html, to_markdown
from gitops_agent.results import Outcome, TaskResult
from testing.fixtures import make_repo
from testing.lifecycle import lifecycle_project
from testing.project import run, task_block
from testing.sessions import make_session

SECTIONS = ("## 🔬 In quarantine", "## 🔀 Merged and rolled back", "## 🔎 Problems found")
SECTIONS += ("## 💡 Tasks proposed",)
HOSTILE = "<script>alert(1)</script> [link](x) @team **bold**"
FINGERPRINT = "35948f6d9a021ea5"
OTHER = "0123456789abcdef"


def at(hours: float) -> str:
    """The time `hours` from now, as GITOPS_AGENT_NOW takes it."""
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat(timespec="seconds")


def report(cli: Any, repo: Path, *args: str, hours: float = 0) -> str:
    done = cli("report", *args, cwd=repo, env={"GITOPS_AGENT_NOW": at(hours)})
    assert done.returncode == 0, done.stderr
    return str(done.stdout)


def report_json(cli: Any, repo: Path, *args: str, hours: float = 0) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(report(cli, repo, "--json", *args, hours=hours))
    return data


def merge(cli: Any, repo: Path, hours: float) -> list[dict[str, Any]]:
    done = cli("merge", "--json", cwd=repo, env={"GITOPS_AGENT_NOW": at(hours)})
    assert done.returncode == 0, done.stderr
    results: list[dict[str, Any]] = json.loads(done.stdout)["results"]
    return results


def section(text: str, heading: str) -> str:
    """The markdown of one `## ` section, heading included."""
    start = text.index(heading)
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def auto_project(tmp_path: Path, rules: str = "") -> Path:
    return lifecycle_project(
        tmp_path,
        task_block("t1", "Add a", "echo 'A = 1' > src/a.py"),
        front="approval: auto\nquarantine_hours: 48\n",
        rules=rules,
    )


def record(repo: Path, kind: EventKind, hours_ago: float, title: str, **fields: Any) -> None:
    when = datetime.now(UTC) - timedelta(hours=hours_ago)
    record_event(Repo.open(repo), Event.create(kind, when, title, **fields), timezone=None)


def test_a_result_in_quarantine_then_merged_shows_in_the_report(tmp_path: Path, cli) -> None:
    repo = auto_project(tmp_path)
    branch = run(cli, repo)["tasks"][0]["branch"]
    assert merge(cli, repo, 1)[0]["state"] == "waiting"

    text = report(cli, repo, hours=1.5)
    shown = section(text, "## 🔬 In quarantine")
    assert f"- `{branch}` (t1): its quarantine ends " in shown
    assert re.search(r" UTC, in 46 h 30 min; the last re-test passed, [-0-9]+ [:0-9]+\.\n", shown)
    assert "Merged and rolled back" not in text

    [merged] = merge(cli, repo, 49)
    text = report(cli, repo, hours=49.5)
    assert "In quarantine" not in text
    done = section(text, "## 🔀 Merged and rolled back")
    assert f"merged `{branch}` (t1) into `main` at `{merged['commit'][:7]}`" in done
    assert f", checkpoint `{merged['checkpoint']}`." in done
    assert "🏷️" not in done  # the merge's own checkpoint is not listed again


def test_a_cancelled_auto_merge_needs_a_person(tmp_path: Path, cli) -> None:
    repo = auto_project(tmp_path, rules="no_auto_merge: [src/a.py]\n")
    branch = run(cli, repo)["tasks"][0]["branch"]
    [waiting] = report_json(cli, repo, hours=1)["quarantine"]
    assert (waiting["branch"], waiting["tasks"], waiting["last_retest"]) == (branch, ["t1"], None)
    assert 46.9 < waiting["hours_left"] <= 47
    assert merge(cli, repo, 1)[0]["state"] == "cancelled"

    text = report(cli, repo, hours=2)
    needs = section(text, "## ⚠️ Needs a person")
    assert f"- gitops-agent will not merge `{branch}` (t1): it changes src/a.py" in needs
    assert "In quarantine" not in text
    changes = section(text, "## 🔀 Merged and rolled back")
    assert f"auto-merge of `{branch}` (t1) cancelled: it changes src/a.py" in changes
    assert changes.rstrip().endswith("**Needs you.**")
    # Out of the period, it still needs a person while its branch waits.
    data = report_json(cli, repo, hours=50)
    assert [p["kind"] for p in data["problems"]] == ["auto_merge_cancelled"]
    assert (data["quarantine"], data["lifecycle"]) == ([], [])


def test_scans_proposals_rollbacks_and_checkpoints_are_listed_and_escaped(
    tmp_path: Path, cli
) -> None:
    repo = make_repo(tmp_path / "repo")
    findings = [
        {"fingerprint": FINGERPRINT, "path": "src/app.py", "line": 3, "message": HOSTILE},
        {"fingerprint": OTHER, "path": "src/b.py", "line": 9, "message": "E501 too long"},
    ]
    scan_branch = "autonomous/scan-20261130-040000"
    record(
        repo,
        EventKind.PROPOSED,
        2,
        "Proposed 1 task",
        branch=scan_branch,
        tasks=["scan-35948f6d"],
        data={"by": "scan", "fingerprints": [FINGERPRINT]},
    )
    record(
        repo,
        EventKind.SCANNED,
        2,
        "Scanned main: 2 findings, 1 new",
        commit="a" * 40,
        tasks=["scan-35948f6d"],
        data={"findings": findings, "new": [FINGERPRINT], "problems": ["`mypy`: ran too long"]},
    )
    record(
        repo,
        EventKind.PROPOSED,
        1,
        "Proposed 2 tasks",
        branch="autonomous/propose-20261130-050000",
        tasks=["hints-1", "hints-2"],
        data={"by": "propose"},
    )
    record(
        repo,
        EventKind.ROLLBACK,
        1,
        "Rollback of task t9",
        branch="autonomous/rollback-t9-20261130-050000",
        commit="b" * 40,
        tasks=["t9"],
        data={"target": "t9", "pull_request": "https://github.com/o/r/pull/7"},
    )
    record(
        repo,
        EventKind.CHECKPOINT,
        0.5,
        "Checkpoint",
        commit="c" * 40,
        tasks=["t8"],
        data={"checkpoint": "checkpoint/2026-11-30-1"},
    )
    record(
        repo,
        EventKind.MERGED,
        30,  # before the report's period
        "Merged",
        branch="autonomous/old-t7",
        commit="d" * 40,
        tasks=["t7"],
        data={"checkpoint": None},
    )

    text = report(cli, repo)
    found = section(text, "## 🔎 Problems found")
    assert f"found 2 findings, 1 new, proposed as tasks on branch `{scan_branch}`:" in found
    assert (
        "  - **scan-35948f6d** `src/app.py:3` \\<script>alert(1)\\</script> "
        "\\[link\\](x) `@team` \\*\\*bold\\*\\*"
    ) in found
    assert "E501" not in found  # not new: counted, not listed
    assert "  - ⚠️ `mypy`: ran too long" in found
    assert re.search(r"(?<!\\)<script", text) is None and "[link](x)" not in text
    proposed = section(text, "## 💡 Tasks proposed")
    assert "hints-1, hints-2 under Pending Approval on branch" in proposed
    assert "scan-35948f6d" not in proposed  # shown with its scan
    changes = section(text, "## 🔀 Merged and rolled back")
    assert "rollback of `t9` on branch `autonomous/rollback-t9-20261130-050000` (t9)" in changes
    assert "pull request https://github.com/o/r/pull/7" in changes
    assert "checkpoint `checkpoint/2026-11-30-1` of `main` at `ccccccc` (t8)" in changes
    assert "old-t7" not in text

    page_path = tmp_path / "report.html"
    data = report_json(cli, repo, "--since", "2d", "--html", str(page_path))
    [scan] = data["scans"]
    assert (scan["findings"], scan["branch"], scan["commit"]) == (2, scan_branch, "a" * 40)
    assert scan["new"] == [
        {
            "id": "scan-35948f6d",
            "fingerprint": FINGERPRINT,
            "path": "src/app.py",
            "line": 3,
            "message": HOSTILE,
        }
    ]
    assert [(p["by"], p["tasks"]) for p in data["proposals"]] == [
        ("propose", ["hints-1", "hints-2"])
    ]
    assert [(e["kind"], e["tasks"]) for e in data["lifecycle"]] == [
        ("checkpoint", ["t8"]),
        ("rollback", ["t9"]),
        ("merged", ["t7"]),  # --since reaches back to it
    ]
    page = page_path.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; [link](x) @team" in page
    assert "<script>" not in page
    assert '<a href="https://github.com/o/r/pull/7">pull request</a>' in page
    for card in ('id="problems-found"', 'id="proposed"', 'id="lifecycle"'):
        assert card in page


def test_without_lifecycle_events_the_report_has_none_of_its_parts(tmp_path: Path, cli) -> None:
    repo = make_repo(tmp_path / "repo")
    record_session(
        Repo.open(repo),
        make_session("s1", datetime.now(UTC) - timedelta(hours=1)),
        timezone=None,
    )
    text = report(cli, repo)
    assert not any(heading in text for heading in SECTIONS)
    page_path = tmp_path / "report.html"
    data = report_json(cli, repo, "--html", str(page_path))
    assert [data[k] for k in ("quarantine", "lifecycle", "scans", "proposals")] == [[]] * 4
    page = page_path.read_text(encoding="utf-8")
    for card in ('id="quarantine"', 'id="lifecycle"', 'id="problems-found"', 'id="proposed"'):
        assert card not in page


def test_a_rolled_back_task_names_its_kept_attempts_in_markdown_and_html(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    repo = Repo.open(root)
    failed = TaskResult(
        "t5",
        "Hash passwords",
        Outcome.ROLLED_BACK,
        "The quality gate failed after 2 attempts.",
        attempts=2,
        evidence=tuple(f"refs/gitops-agent/attempts/s1/t5/{n}" for n in (1, 2)),
    )
    session = make_session("s1", datetime.now(UTC) - timedelta(hours=1), (failed,))
    record_session(repo, session, timezone=None)
    brief = gather(repo, load_at_base(repo))
    assert "  - Every attempt: `gitops-agent show s1/t5`" in to_markdown(brief)
    assert "Every attempt: <code>gitops-agent show s1/t5</code>" in to_html(brief)
