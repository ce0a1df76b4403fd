from __future__ import annotations

import dataclasses

import pytest

from gitops_agent.constraints import DEFAULTS
from gitops_agent.plan import Queue, Task, parse_plan
from gitops_agent.policy.preflight import preflight

GOOD = (
    "### Ready for Autonomous Execution\n"
    "→ **[t]** Add a slugify helper\n"
    "  - Alignment score: 95/100\n"
    "  - Estimated lines: 10\n"
    "  - Tests defined: ✅ Yes (tests/test_slug.py)\n"
    "  - Status: READY\n"
)


def task(text: str = GOOD) -> Task:
    return parse_plan(text, "P.md").tasks[0]


def rules(t: Task, *, has_agent: bool = True, **limits: object) -> list[str]:
    constraints = dataclasses.replace(DEFAULTS, **limits)  # type: ignore[arg-type]
    return [v.rule for v in preflight(t, constraints, has_agent=has_agent)]


def test_a_complete_ready_task_is_eligible() -> None:
    assert rules(task()) == []


@pytest.mark.parametrize(
    ("old", "new", "rule"),
    [
        ("95/100", "79/100", "alignment"),
        ("  - Alignment score: 95/100\n", "", "alignment"),
        ("Estimated lines: 10", "Estimated lines: 31", "estimated-lines"),
        ("  - Estimated lines: 10\n", "", "estimated-lines"),
        ("✅ Yes (tests/test_slug.py)", "⏳ Needs definition", "tests"),
        ("  - Tests defined: ✅ Yes (tests/test_slug.py)\n", "", "tests"),
        ("Add a slugify helper", "Add Stripe checkout", "forbidden-words"),
        ("Add a slugify helper", "Delete files that are unused", "forbidden-words"),
        ("Status: READY", "Status: PENDING", "status"),
        ("Status: READY", "Status: DONE", "status"),
    ],
)
def test_each_rule_refuses_with_a_sentence(old: str, new: str, rule: str) -> None:
    t = task(GOOD.replace(old, new))
    found = preflight(t, DEFAULTS, has_agent=True)
    assert [v.rule for v in found] == [rule]
    assert found[0].message.endswith(".") and len(found[0].message) > 20


def test_limits_at_the_boundary_pass() -> None:
    t = task(GOOD.replace("95/100", "80/100").replace("lines: 10", "lines: 30"))
    assert rules(t) == []


def test_limits_come_from_the_constraints() -> None:
    assert rules(task(), min_alignment=96) == ["alignment"]
    assert rules(task(), max_estimated_lines=9) == ["estimated-lines"]


def test_a_task_that_writes_tests_needs_none_defined() -> None:
    t = task(
        GOOD.replace("Add a slugify helper", "Add unit tests for slugify").replace(
            "✅ Yes (tests/test_slug.py)", "⏳ Needs definition"
        )
    )
    assert rules(t) == []


def test_tests_rule_can_be_switched_off() -> None:
    t = task(GOOD.replace("✅ Yes (tests/test_slug.py)", "No"))
    assert rules(t, require_tests=False) == []


def test_forbidden_words_are_whole_words_and_read_every_detail() -> None:
    assert rules(task(GOOD.replace("slugify", "striped"))) == []  # not the word "stripe"
    detail = GOOD + "  - Safety check: needs a new payment provider\n"
    assert rules(task(detail)) == ["forbidden-words"]


def test_without_run_or_agent_nothing_can_run_it() -> None:
    assert rules(task(), has_agent=False) == ["runner"]
    assert rules(task(GOOD + "  - Run: ./codemod.sh\n"), has_agent=False) == []


def test_pending_task_says_it_waits_for_approval_and_what_else_is_missing() -> None:
    t = task(
        GOOD.replace("Ready for Autonomous Execution", "Pending Approval")
        .replace("Status: READY", "Status: PENDING")
        .replace("95/100", "50/100")
    )
    assert t.queue is Queue.PENDING
    assert rules(t) == ["queue", "alignment"]


def test_ready_status_under_pending_disagrees() -> None:
    t = task(GOOD.replace("Ready for Autonomous Execution", "Pending Approval"))
    found = preflight(t, DEFAULTS, has_agent=True)
    assert [v.rule for v in found] == ["queue", "status"]
    assert "move it under Ready for Autonomous Execution" in found[1].message


def test_not_ready_task_gives_its_reason_only() -> None:
    t = task("### Not Ready ❌\n- **[n]** Pick a DB\n  - Reason: Needs a person\n")
    found = preflight(t, DEFAULTS, has_agent=True)
    assert [str(v) for v in found] == ["It is under Not Ready: Needs a person."]
