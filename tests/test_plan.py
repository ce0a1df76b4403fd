from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitops_agent.errors import PlanError
from gitops_agent.plan import Queue, Task, parse_plan, set_status
from testing.fixtures import FIXTURES, SEED_PLAN

PLANS = FIXTURES / "plans"


def summarise(task: Task) -> dict[str, object]:
    return {
        "id": task.id,
        "title": task.title,
        "line": task.line,
        "queue": task.queue.value if task.queue else None,
        "alignment": task.alignment,
        "estimated_lines": task.estimated_lines,
        "tests_defined": task.tests_defined,
        "status": task.status,
        "run": task.run,
        "details": [[d.key, d.value, d.line] for d in task.details],
    }


@pytest.mark.parametrize("plan", sorted(PLANS.glob("*.md")), ids=lambda p: p.stem)
def test_plan_fixture_parses_as_expected(plan: Path) -> None:
    expected = json.loads(plan.with_suffix(".json").read_text(encoding="utf-8"))
    parsed = parse_plan(plan.read_text(encoding="utf-8"), plan.name)
    assert [summarise(t) for t in parsed.tasks] == expected["tasks"]
    assert parsed.objective == expected.get("objective")


def test_seed_queue_has_both_task_forms_and_three_queues() -> None:
    plan = parse_plan(SEED_PLAN.read_text(encoding="utf-8"), "PROJECT_PLAN.md")
    assert [(t.id, t.queue) for t in plan.tasks] == [
        ("task_3", Queue.READY),
        ("task_5", Queue.READY),
        ("task_4", Queue.PENDING),
        ("task_6", Queue.NOT_READY),
        ("task_7", Queue.NOT_READY),
    ]
    task_3 = plan.task("task_3")
    assert task_3 is not None
    assert (task_3.alignment, task_3.estimated_lines, task_3.tests_defined) == (95, 10, True)
    assert task_3.status == "READY"
    # Keys we do not interpret are kept as written, with their lines.
    approved = task_3.detail("auto-approved")
    assert approved is not None and approved.value == "2025-10-29 10:00" and approved.line == 12
    task_4 = plan.task("task_4")
    assert task_4 is not None and task_4.tests_defined is False
    task_6 = plan.task("task_6")
    assert task_6 is not None and task_6.reason == "Requires user input and architectural decisions"
    assert task_6.detail("Use") is not None


def test_front_matter_settings_and_objective() -> None:
    text = (
        "---\nobjective: Ship it\nbase: develop\nagent: claude\ngate:\n  - make test\n---\n"
        "### Ready for Autonomous Execution\n→ **[a]** Add tests for x\n  - Status: READY\n"
    )
    plan = parse_plan(text, "P.md")
    assert plan.settings.base == "develop"
    assert [str(entry) for entry in plan.settings.gate or ()] == ["make test"]
    assert plan.objective == "Ship it"
    assert plan.tasks[0].line == 9  # line numbers count the front matter


def test_tasks_in_code_fences_and_html_comments_are_not_tasks() -> None:
    text = (
        "### Ready for Autonomous Execution\n"
        "```markdown\n→ **[fenced]** Not a task\n```\n"
        "<!--\n→ **[commented]** Not a task either\n-->\n"
        "→ **[real]** A task\n"
    )
    assert [t.id for t in parse_plan(text, "P.md").tasks] == ["real"]


def test_heading_below_queue_keeps_the_queue_and_sibling_heading_ends_it() -> None:
    text = "## Ready for Autonomous Execution\n#### Backend\n- **[a]** A\n## Notes\n- **[b]** B\n"
    plan = parse_plan(text, "P.md")
    assert [(t.id, t.queue) for t in plan.tasks] == [("a", Queue.READY), ("b", None)]


def test_run_command_loses_its_backticks() -> None:
    text = "### Ready for Autonomous Execution\n→ **[a]** A\n  - Run: `sed -i s/a/b/ src/x.py`\n"
    assert parse_plan(text, "P.md").tasks[0].run == "sed -i s/a/b/ src/x.py"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("---\nobjective: [unclosed\n---\n", 2, "malformed YAML"),
        ("---\nobjective: x\n", 1, "no closing `---`"),
        ("---\nobjectiv: x\n---\n", 2, "unknown front matter key `objectiv`"),
        ("---\n- a\n- b\n---\n", 2, "must be a YAML mapping"),
        ("---\ngate: 3\n---\n", 2, "`gate` must be a command"),
        ("→ **[a]** A\n→ **[a]** Again\n", 2, "duplicate task ID `a` (first used on line 1)"),
        ("→ Add a user model\n", 1, "task line has no ID"),
        ("- **[]** Empty\n", 1, "an empty ID"),
        ("- **[a b]** Space\n", 1, "`a b`"),
        ("→ **[a]**\n", 1, "has no title"),
        ("### Ready for Autonomous Execution\nProse.\n  - Status: READY\n", 3, "outside a task"),
        ("→ **[a]** A\n  - Alignment score: high\n", 2, "number from 0 to 100"),
        ("→ **[a]** A\n  - Alignment score: 150/100\n", 2, "number from 0 to 100"),
        ("→ **[a]** A\n  - Estimated lines: lots\n", 2, "number of lines"),
        ("→ **[a]** A\n  - Tests defined: maybe\n", 2, "must start with ✅ or Yes"),
        ("→ **[a]** A\n  - Status: READY\n  - status: DONE\n", 3, "twice (first on line 2)"),
        ("→ **[a]** A\n  - Run: ``\n", 2, "is empty"),
    ],
)
def test_bad_plan_names_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(PlanError) as info:
        parse_plan(text, "PROJECT_PLAN.md")
    assert info.value.line == line
    assert words in info.value.message
    assert str(info.value).startswith(f"PROJECT_PLAN.md:{line}: ")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "---",
                    "→ **[t1]** Task",
                    "- **[t2]** Task",
                    "  - Status: READY",
                    "  - Alignment score: 90/100",
                    "### Ready for Autonomous Execution",
                    "## Pending Approval",
                    "```",
                    "<!--",
                    "-->",
                    "objective: x",
                    "",
                    "Title\n=====",
                ]
            ),
            st.text(max_size=40),
        ),
        max_size=30,
    ).map("\n".join)
)
def test_any_text_parses_or_fails_with_a_line_number(text: str) -> None:
    # Any text at all: no other exception. That the line is the offending one is proven below,
    # where the offending line is known.
    try:
        plan = parse_plan(text, "P.md")
    except PlanError as exc:
        assert exc.line is not None and exc.line >= 1
        assert exc.path == "P.md"
    else:
        assert all(t.line >= 1 for t in plan.tasks)


# A plan that parses, as lines; and the lines that make it fail, each where it is wrong.
SETTINGS = ("objective: Ship it", "gate: echo ok", 'schedule: "0 2 * * *"', "timezone: UTC")
BAD_SETTINGS = ("colour: blue", "timezone: Mars/Olympus", "schedule: nightly", "notify: []")
QUEUE_HEADINGS = ("### Ready for Autonomous Execution", "## Pending Approval", "## Not Ready")
OTHER_HEADINGS = ("# Plan", "## Notes")
PROSE = ("Some prose about the plan.", "", "**Objective**: ship it", "  indented prose")
CODE = ("```", "→ **[]** not a task in code", "  - Status: ???", "```")
COMMENT = ("<!--", "→ no ID, but hidden", "  - Estimated lines: lots", "-->")
DETAILS = (
    "  - Status: READY",
    "  - Alignment score: 90/100",
    "  - Estimated lines: 10",
    "  - Tests defined: ✅ Yes",
    "  - Run: `echo hi`",
    "  - Owner: Ada",
)
BAD_TASK_LINES = ("→ Add a user model", "→ **[]** Empty", "- **[a b]** Space", "→ **[zz]**")
BAD_DETAILS = (
    "  - Alignment score: high",
    "  - Alignment score: 150/100",
    "  - Estimated lines: lots",
    "  - Tests defined: maybe",
    "  - Status: 42",
    "  - Run: ``",
)
OUTSIDE_A_TASK = "  - Status: READY"


@st.composite
def plans_with_a_bad_line(draw: st.DrawFn) -> tuple[list[str], int, str]:
    """(a valid plan's lines, an index into them, a line that is wrong there)."""
    lines: list[str] = []
    wrong: list[tuple[int, str]] = []  # (index, line): inserted at index, the plan fails there
    tasks: list[tuple[int, str]] = []  # (index of the task line, its ID)
    if draw(st.booleans()):
        lines += ["---", *draw(st.lists(st.sampled_from(SETTINGS), unique=True)), "---"]
        for at in range(1, len(lines)):
            later = {setting.split(":")[0] for setting in lines[at:-1]}  # would be the twice
            wrong.extend((at, bad) for bad in BAD_SETTINGS if bad.split(":")[0] not in later)
            wrong.extend((at, twice) for twice in lines[1:at])  # a key again

    def task_lines_wrong_at(at: int) -> None:
        wrong.extend((at, bad) for bad in BAD_TASK_LINES)
        wrong.extend((at, f"→ **[{task_id}]** Again") for line, task_id in tasks if line < at)

    kinds = ("queue", "heading", "task", "prose", "code", "comment")
    for number, kind in enumerate(draw(st.lists(st.sampled_from(kinds), max_size=12))):
        task_lines_wrong_at(len(lines))
        if kind == "queue":
            lines.append(draw(st.sampled_from(QUEUE_HEADINGS)))
            wrong.append((len(lines), OUTSIDE_A_TASK))  # under a queue, before any task
        elif kind == "heading":
            lines.append(draw(st.sampled_from(OTHER_HEADINGS)))
        elif kind == "prose":
            lines.append(draw(st.sampled_from(PROSE)))
        elif kind in ("code", "comment"):
            lines += CODE if kind == "code" else COMMENT
        else:
            start, task_id = len(lines), f"t{number}"
            tasks.append((start, task_id))
            lines.append(f"{draw(st.sampled_from(['→', '-']))} **[{task_id}]** Task {number}")
            lines += draw(st.lists(st.sampled_from(DETAILS), unique=True))
            for at in range(start + 1, len(lines) + 1):
                task_lines_wrong_at(at)
                wrong.extend((at, bad) for bad in BAD_DETAILS)
                wrong.extend((at, twice) for twice in lines[start + 1 : at])  # a key again
    task_lines_wrong_at(len(lines))
    at, bad = draw(st.sampled_from(wrong))
    return lines, at, bad


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans_with_a_bad_line())
def test_one_bad_line_in_a_valid_plan_is_the_line_the_error_names(
    case: tuple[list[str], int, str],
) -> None:
    lines, at, bad = case
    parse_plan("\n".join(lines) + "\n", "P.md")  # without the bad line, the plan is valid
    text = "\n".join([*lines[:at], bad, *lines[at:]]) + "\n"
    with pytest.raises(PlanError) as info:
        parse_plan(text, "P.md")
    assert info.value.line == at + 1, (info.value.message, text)
    assert info.value.path == "P.md"
    assert str(info.value).startswith(f"P.md:{at + 1}: ")


def test_set_status_changes_that_line_only() -> None:
    text = SEED_PLAN.read_text(encoding="utf-8")
    changed = set_status(text, "task_5", "DONE")
    before, after = text.splitlines(keepends=True), changed.splitlines(keepends=True)
    assert len(before) == len(after)
    differing = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert differing == [18]
    assert after[18] == "  - Status: DONE\n"
    assert parse_plan(changed, "P.md").task("task_5").status == "DONE"  # type: ignore[union-attr]


def test_set_status_keeps_crlf_and_decorations() -> None:
    text = "→ **[a]** A\r\n  - Status: ✅ READY (approved)\r\nafter\r\n"
    assert set_status(text, "a", "DONE") == (
        "→ **[a]** A\r\n  - Status: ✅ DONE (approved)\r\nafter\r\n"
    )


def test_set_status_adds_a_status_line_when_there_is_none() -> None:
    text = "→ **[a]** A\n    - Estimated lines: 3\nProse\n"
    assert set_status(text, "a", "DONE") == (
        "→ **[a]** A\n    - Estimated lines: 3\n    - Status: DONE\nProse\n"
    )


task_blocks = st.lists(
    st.tuples(
        st.sampled_from(["→", "-"]),
        st.text(alphabet="abcdefghij_-.0123", min_size=1, max_size=6),
        st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=20),
        st.sampled_from(["READY", "✅ READY", "PENDING", None]),
        st.sampled_from(["\n", "\r\n"]),
    ),
    min_size=1,
    max_size=6,
    unique_by=lambda block: block[1],
)


@settings(max_examples=200, deadline=None)
@given(task_blocks, st.data())
def test_set_status_round_trip_keeps_every_other_line(blocks: list, data: st.DataObject) -> None:
    parts = ["# Plan\n", "### Ready for Autonomous Execution\n"]
    for marker, task_id, prose, status, eol in blocks:
        parts.append(f"{marker} **[{task_id}]** Task {task_id}{eol}")
        if status is not None:
            parts.append(f"  - Status: {status}{eol}")
        parts.append(f"  - Estimated lines: 3{eol}")
        if prose.strip() and not prose.lstrip().startswith(
            ("→", "-", "*", "#", "<", "`", "~", "=")
        ):
            parts.append(f"{eol}Some prose: {prose.strip()}{eol}{eol}")
    text = "".join(parts)
    task_id = data.draw(st.sampled_from([b[1] for b in blocks]))
    changed = set_status(text, task_id, "DONE")
    reparsed = parse_plan(changed, "P.md")
    assert reparsed.task(task_id).status == "DONE"  # type: ignore[union-attr]
    original = parse_plan(text, "P.md")
    for task in original.tasks:
        if task.id != task_id:
            assert reparsed.task(task.id).status == task.status  # type: ignore[union-attr]
    # Every line of the original survives, in order, except the one status line.
    old_lines, new_lines = text.splitlines(keepends=True), changed.splitlines(keepends=True)
    assert len(new_lines) - len(old_lines) in (0, 1)
    kept = [line for line in old_lines if line in new_lines]
    assert len(kept) >= len(old_lines) - 1


def test_gate_entries_are_commands_or_run_mappings_that_say_how_to_read_them() -> None:
    text = (
        "---\ngate:\n  - pytest -q\n  - run: ruff check .\n    findings: true\n"
        "  - run: npx jest\n    junit: build/junit.xml\n---\n"
    )
    gate = parse_plan(text, "P.md").settings.gate
    assert gate is not None
    assert [(e.run, e.findings, e.junit) for e in gate] == [
        ("pytest -q", False, None),
        ("ruff check .", True, None),
        ("npx jest", False, "build/junit.xml"),
    ]


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("  - cmd: x\n", "unknown key `cmd`"),
        ("  - findings: true\n", "needs `run:`"),
        ("  - run: x\n    findings: yes please\n", "must be true or false"),
        ("  - run: x\n    junit: /tmp/report.xml\n", "relative to the repository"),
        ("  - run: x\n    junit: ../report.xml\n", "relative to the repository"),
        ("  - run: x\n    junit: r.xml\n    findings: true\n", "not both"),
        ("  - [a, b]\n", "a command or a mapping"),
    ],
)
def test_a_malformed_gate_entry_is_refused_with_its_line(entry: str, words: str) -> None:
    with pytest.raises(PlanError) as info:
        parse_plan("---\ngate:\n" + entry + "---\n", "P.md")
    assert words in info.value.message and info.value.line == 2
