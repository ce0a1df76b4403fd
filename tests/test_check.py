"""`check` refuses, with `path:line:` and exit status 2, every setting `run` would trip over.

One table: each row is a plan's front matter or a constraints document with one bad setting,
the line it is on, and the words the message must use. Then the verdicts `check` must give
where a run could commit nothing (no gate) and where a score is written on another scale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import git, make_repo

TASK = (
    "### Ready for Autonomous Execution ✅\n\n"
    "→ **[t1]** Add a greeting\n"
    "  - Alignment score: {score}\n"
    "  - Estimated lines: 10\n"
    "  - Tests defined: ✅ Yes\n"
    "  - Status: READY\n"
)


def project(
    tmp_path: Path, front: str = 'gate: ["true"]\n', rules: str | None = None, score: str = "90"
) -> Path:
    files = {
        "PROJECT_PLAN.md": f"---\n{front}---\n# Plan\n\n" + TASK.format(score=score),
        "src/app.py": "x = 1\n",
    }
    if rules is not None:
        files["docs/autonomous-constraints.md"] = rules
    return make_repo(tmp_path / "repo", files)


def yaml_rules(body: str) -> str:
    """A constraints document whose machine rules start on line 4."""
    return "# Rules\n\n```yaml\n" + body + "```\n"


# (id, plan front matter, constraints document, where, words the message uses)
REFUSED: list[tuple[str, str, str | None, str, str]] = [
    (
        "schedule-out-of-range",
        'gate: ["true"]\nschedule: "61 * * * *"\n',
        None,
        "PROJECT_PLAN.md:3:",
        "out of range",
    ),
    (
        "schedule-four-fields",
        'gate: ["true"]\nschedule: "0 2 * *"\n',
        None,
        "PROJECT_PLAN.md:3:",
        "five fields",
    ),
    (
        "base-missing",
        'gate: ["true"]\nbase: nosuchbranch\n',
        None,
        "PROJECT_PLAN.md:3:",
        "nosuchbranch",
    ),
    (
        "timezone",
        'gate: ["true"]\ntimezone: Mars/Olympus\n',
        None,
        "PROJECT_PLAN.md:3:",
        "Mars/Olympus",
    ),
    ("gate-empty", "gate: []\n", None, "PROJECT_PLAN.md:2:", "`gate`"),
    ("notify-empty", 'gate: ["true"]\nnotify: []\n', None, "PROJECT_PLAN.md:3:", "`notify`"),
    (
        "install-branch",
        'gate: ["true"]\ninstall: git+https://github.com/o/r@main\n',
        None,
        "PROJECT_PLAN.md:3:",
        "commit",
    ),
    (
        "protected-root",
        'gate: ["true"]\n',
        yaml_rules('extra_protected: ["/"]\n'),
        "docs/autonomous-constraints.md:4:",
        "`/`",
    ),
    (
        "approved-empty",
        'gate: ["true"]\n',
        yaml_rules('approved_dirs: ["/"]\n'),
        "docs/autonomous-constraints.md:4:",
        "`/`",
    ),
    (
        "attempts-zero-yaml",
        'gate: ["true"]\n',
        yaml_rules("max_attempts: 0\n"),
        "docs/autonomous-constraints.md:4:",
        "1 or more",
    ),
    (
        "attempts-zero-prose",
        'gate: ["true"]\n',
        "# Rules\n\n- Max attempts per task: 0\n",
        "docs/autonomous-constraints.md:3:",
        "1 or more",
    ),
    (
        "session-limit-zero",
        'gate: ["true"]\n',
        "# Rules\n\n- Max tasks per session: 0\n",
        "docs/autonomous-constraints.md:3:",
        "1 or more",
    ),
    (
        "failures-zero",
        'gate: ["true"]\n',
        yaml_rules("max_consecutive_failures: 0\n"),
        "docs/autonomous-constraints.md:4:",
        "1 or more",
    ),
    (
        "timeout-zero",
        'gate: ["true"]\n',
        yaml_rules("task_timeout_minutes: 0\n"),
        "docs/autonomous-constraints.md:4:",
        "above 0",
    ),
    (
        "session-minutes-text",
        'gate: ["true"]\n',
        yaml_rules("max_session_minutes: long\n"),
        "docs/autonomous-constraints.md:4:",
        "number",
    ),
    (
        "idle-negative",
        'gate: ["true"]\n',
        yaml_rules("idle_timeout_minutes: -1\n"),
        "docs/autonomous-constraints.md:4:",
        "0 or more",
    ),
    (
        "file-bytes-negative",
        'gate: ["true"]\n',
        yaml_rules("max_file_bytes: -5\n"),
        "docs/autonomous-constraints.md:4:",
        "0 or more",
    ),
    (
        "alignment-text",
        'gate: ["true"]\n',
        yaml_rules("min_alignment: high\n"),
        "docs/autonomous-constraints.md:4:",
        "whole number",
    ),
    (
        "bool-text",
        'gate: ["true"]\n',
        yaml_rules("allow_delete: sometimes\n"),
        "docs/autonomous-constraints.md:4:",
        "true or false",
    ),
    (
        "confinement-choice",
        'gate: ["true"]\n',
        yaml_rules("confinement: maybe\n"),
        "docs/autonomous-constraints.md:4:",
        "required",
    ),
    (
        "exit-codes",
        'gate: ["true"]\n',
        yaml_rules("run_ok_exit_codes: [300]\n"),
        "docs/autonomous-constraints.md:4:",
        "0 to 255",
    ),
    (
        "regex",
        'gate: ["true"]\n',
        yaml_rules('forbidden_content: ["(unclosed"]\n'),
        "docs/autonomous-constraints.md:4:",
        "regular expression",
    ),
    (
        "env-name",
        'gate: ["true"]\n',
        yaml_rules('agent_env: ["NOT A NAME"]\n'),
        "docs/autonomous-constraints.md:4:",
        "variable name",
    ),
    (
        "unknown-setting",
        'gate: ["true"]\n',
        yaml_rules("max_atempts: 2\n"),
        "docs/autonomous-constraints.md:4:",
        "unknown setting",
    ),
    (
        "twice",
        'gate: ["true"]\n',
        yaml_rules("max_attempts: 2\nmax_attempts: 3\n"),
        "docs/autonomous-constraints.md:5:",
        "set twice",
    ),
]


@pytest.mark.parametrize(
    ("front", "rules", "where", "words"),
    [row[1:] for row in REFUSED],
    ids=[row[0] for row in REFUSED],
)
def test_check_refuses_every_setting_run_would_trip_over(
    tmp_path: Path, cli: Any, front: str, rules: str | None, where: str, words: str
) -> None:
    repo = project(tmp_path, front, rules)
    result = cli("check", "--agent-command", "true", cwd=repo)
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(f"{where} "), result.stderr
    assert words in message, message
    assert "Traceback" not in result.stderr


def test_a_task_is_not_eligible_where_there_is_no_gate(tmp_path: Path, cli: Any) -> None:
    repo = project(tmp_path, front="objective: greet\n")
    data = json.loads(cli("check", "--json", "--agent-command", "true", cwd=repo).stdout)
    (task,) = data["tasks"]
    assert task["eligible"] is False
    assert any("no quality gate" in reason for reason in task["reasons"]), task
    # The seed's gate script, committed or not, is a gate.
    (repo / ".ai-validation").mkdir()
    (repo / ".ai-validation" / "check_quality.sh").write_text("exit 0\n")
    data = json.loads(cli("check", "--json", "--agent-command", "true", cwd=repo).stdout)
    assert data["tasks"][0]["eligible"] is True


@pytest.mark.parametrize(
    ("score", "eligible"), [("9/10", True), ("7/10", False), ("45/50", True), ("95%", True)]
)
def test_a_score_on_another_scale_is_read_as_a_percentage(
    tmp_path: Path, cli: Any, score: str, eligible: bool
) -> None:
    repo = project(tmp_path, score=score)
    data = json.loads(cli("check", "--json", "--agent-command", "true", cwd=repo).stdout)
    assert data["tasks"][0]["eligible"] is eligible, data


@pytest.mark.parametrize("score", ["11/10", "3/0", "101", "high"])
def test_a_score_that_cannot_be_read_is_refused_with_its_line(
    tmp_path: Path, cli: Any, score: str
) -> None:
    repo = project(tmp_path, score=score)
    result = cli("check", "--agent-command", "true", cwd=repo)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("PROJECT_PLAN.md:9: ")


def test_a_detached_head_works_when_the_plan_names_the_base(tmp_path: Path, cli: Any) -> None:
    repo = project(tmp_path, front='gate: ["true"]\nbase: main\n')
    head = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "--detach")
    result = cli("run", "--json", "--agent-command", "echo 'y = 2' >> src/app.py", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert [t["outcome"] for t in json.loads(result.stdout)["tasks"]] == ["committed"]
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "HEAD"  # still detached


def test_a_detached_head_without_a_base_says_what_to_do(tmp_path: Path, cli: Any) -> None:
    repo = project(tmp_path)
    git(repo, "checkout", "-q", "--detach")
    result = cli("run", cwd=repo)
    assert result.returncode == 2
    assert "HEAD is detached" in result.stderr and "`base:`" in result.stderr


def test_an_empty_repository_is_told_to_commit_the_plan(tmp_path: Path, cli: Any) -> None:
    repo = tmp_path / "empty"
    repo.mkdir()
    git(repo, "init", "-q")
    result = cli("run", cwd=repo)
    assert result.returncode == 2
    assert "no commit yet" in result.stderr and "git commit" in result.stderr


def test_a_limit_sentence_whose_number_cannot_be_read_is_said_not_skipped(
    tmp_path: Path, cli: Any
) -> None:
    rules = "# Rules\n\n- Max attempts per task: three\n- Max tasks per session: 2\n"
    repo = project(tmp_path, rules=rules)
    result = cli("check", "--agent-command", "true", cwd=repo, env={"COLUMNS": "300"})
    assert result.returncode == 0, result.stderr
    assert (
        "docs/autonomous-constraints.md:3: this sentence names `max_attempts`, but no number in "
        "it can be read"
    ) in result.stderr
    assert "max_tasks_per_session" not in result.stderr  # that one was read


def test_check_verbose_shows_every_setting_with_where_it_came_from(
    tmp_path: Path, cli: Any
) -> None:
    rules = "# Rules\n\n- Max tasks per session: 2\n\n```yaml\nmax_attempts: 4\n```\n"
    repo = project(tmp_path, rules=rules)
    result = cli("check", "-v", "--agent-command", "true", cwd=repo, env={"COLUMNS": "300"})
    assert result.returncode == 0, result.stderr
    rows = {
        cells[0]: cells[1:]
        for line in result.stderr.splitlines()
        if len(cells := [c.strip() for c in line.strip("│ ").split("│")]) == 3
    }
    assert rows["max_tasks_per_session"] == ["2", "docs/autonomous-constraints.md:3"]
    assert rows["max_attempts"] == ["4", "docs/autonomous-constraints.md:6"]
    assert rows["task_timeout_minutes"] == ["30", "default"]
    assert rows["gate"] == ["true", "PROJECT_PLAN.md:2"]
