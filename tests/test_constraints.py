from __future__ import annotations

from pathlib import Path

import pytest

from gitops_agent.constraints import DEFAULTS, load_constraints, parse_constraints
from gitops_agent.errors import ConstraintsError, UserError
from testing.fixtures import SEED_CONSTRAINTS


def seed_text() -> str:
    return SEED_CONSTRAINTS.read_text(encoding="utf-8")


def test_seed_constraints_load_verbatim_with_their_numbers() -> None:
    c = parse_constraints(seed_text(), "docs/autonomous-constraints.md")
    assert (c.min_alignment, c.max_estimated_lines, c.require_tests) == (80, 30, True)
    assert (c.max_tasks_per_session, c.max_session_minutes) == (5, 240)
    assert (c.max_attempts, c.max_consecutive_failures, c.task_timeout_minutes) == (3, 2, 30)
    assert c.approved_dirs == ("src/", "tests/", "docs/")
    # Each number remembers the line it came from.
    assert c.sources["max_tasks_per_session"] == 67
    assert c.sources["min_alignment"] == 48
    assert "What Autonomous Mode CANNOT Do" in c.prose


def test_edited_prose_numbers_take_effect() -> None:
    text = (
        seed_text()
        .replace("**Alignment Score** ≥80", "**Alignment Score** ≥90")
        .replace("Max tasks per session: 5", "Max tasks per session: 2")
        .replace("Max session duration: 4 hours", "Max session duration: 90 minutes")
        .replace("Task takes >30 minutes", "Task takes >1 hour")
        .replace("Stop if 2 consecutive failures", "Stop if 4 consecutive failures")
        .replace("Create new files in src/, tests/, docs/", "Create new files in lib/ and spec/")
    )
    c = parse_constraints(text, "c.md")
    assert (c.min_alignment, c.max_tasks_per_session, c.max_session_minutes) == (90, 2, 90)
    assert (c.task_timeout_minutes, c.max_consecutive_failures) == (60, 4)
    assert c.approved_dirs == ("lib/", "spec/")


def test_yaml_front_matter_and_fenced_block_override_and_extend() -> None:
    text = (
        "---\nmax_attempts: 1\nextra_protected: ['src/auth/**']\n---\n"
        + seed_text()
        + "\n```yaml\nallow_delete: true\nforbidden_words: ['billing']\n"
        "extra_forbidden_content: ['\\beval\\(']\n```\n"
    )
    c = parse_constraints(text, "c.md")
    assert c.max_attempts == 1
    assert c.protected[-1] == "src/auth/**" and ".env" in c.protected
    assert c.allow_delete is True
    assert c.forbidden_words == ("billing",)
    assert c.forbidden_content[-1] == "\\beval\\(" and len(c.forbidden_content) > 1
    assert c.sources["max_attempts"] == 2


def test_a_yaml_example_in_another_language_fence_is_ignored() -> None:
    c = parse_constraints("```python\nmax_attempts = 9\n```\n", "c.md")
    assert c.max_attempts == DEFAULTS.max_attempts


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("---\nmax_atempts: 2\n---\n", 2, "unknown setting `max_atempts`"),
        ("# C\n\n```yaml\nallow_delete: true\nbogus: 1\n```\n", 5, "unknown setting `bogus`"),
        ("---\nmax_attempts: three\n---\n", 2, "whole number"),
        ("---\nmax_attempts: -1\n---\n", 2, "whole number"),
        ("---\nallow_delete: maybe\n---\n", 2, "true or false"),
        ("---\nprotected: src\n---\n", 2, "list of texts"),
        ("---\nforbidden_content: ['(']\n---\n", 2, "not a valid regular expression"),
        ("---\nline_budget_factor: 0\n---\n", 2, "above 0"),
        ("---\nmax_attempts: 1\n---\n```yaml\nmax_attempts: 2\n```\n", 5, "set twice"),
        ("```yaml\nmax_attempts: [1\n```\n", 2, "malformed YAML"),
        ("---\nmax_attempts: 1\n", 1, "no closing"),
    ],
)
def test_bad_constraints_name_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ConstraintsError) as info:
        parse_constraints(text, "docs/autonomous-constraints.md")
    assert (info.value.path, info.value.line) == ("docs/autonomous-constraints.md", line)
    assert words in info.value.message


def test_missing_default_file_means_default_rules(tmp_path: Path) -> None:
    assert load_constraints(tmp_path, None, explicit=False) is DEFAULTS


def test_missing_named_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        load_constraints(tmp_path, "rules.md", explicit=True)
    assert str(info.value) == "rules.md: file not found"


def test_non_utf8_constraints_name_the_line(tmp_path: Path) -> None:
    target = tmp_path / "docs" / "autonomous-constraints.md"
    target.parent.mkdir()
    target.write_bytes(b"# Rules\n\nMax tasks per session: 5\xff\n")
    with pytest.raises(UserError) as info:
        load_constraints(tmp_path, None, explicit=False)
    assert info.value.line == 3 and "not valid UTF-8" in info.value.message


@pytest.mark.parametrize(
    ("sentence", "edited", "setting"),
    [
        ("Max attempts per task: 3", "Max attempts per task: 0", "max_attempts"),
        ("Max tasks per session: 5", "Max tasks per session: 0", "max_tasks_per_session"),
        (
            "Stop if 2 consecutive failures",
            "Stop if 0 consecutive failures",
            "max_consecutive_failures",
        ),
        ("Task takes >30 minutes", "Task takes >0 minutes", "task_timeout_minutes"),
    ],
)
def test_a_sentence_whose_number_cannot_work_is_refused_with_its_line(
    sentence: str, edited: str, setting: str
) -> None:
    text = seed_text()
    line = text[: text.index(sentence)].count("\n") + 1
    with pytest.raises(ConstraintsError) as raised:
        parse_constraints(text.replace(sentence, edited), "c.md")
    assert (raised.value.line, setting in raised.value.message) == (line, True)


def test_a_fraction_of_a_minute_in_a_sentence_is_kept() -> None:
    c = parse_constraints(
        seed_text().replace("Task takes >30 minutes", "Task takes >0.1 minutes"), "c.md"
    )
    assert c.task_timeout_minutes == pytest.approx(0.1)
