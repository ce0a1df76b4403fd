from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitops_agent.constraints import DEFAULTS
from gitops_agent.plan import Queue, Task, parse_plan
from gitops_agent.policy.preflight import ProgramLookup, preflight, run_program

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


# run-program: the rule is pure; the caller says which programs it did not find.


@pytest.mark.parametrize(
    ("command", "program"),
    [
        ("nosuchtool-xyz --fix src", "nosuchtool-xyz"),
        ("sed -i s/a/b/ src/x.py", "sed"),
        ("FOO=1 BAR='a b' python3 -c pass", "python3"),
        ("2>err.log >out.txt ruff check --fix src", "ruff"),
        ("./codemods/fix.sh --all", "./codemods/fix.sh"),
        ("/usr/bin/env python3 x.py", "/usr/bin/env"),
        ("cd src && sed -i s/a/b/ x.py", None),
        ("(cd src; nosuchtool-xyz)", None),
        ("[ -f src/x.py ] && rm src/x.py", None),
        ("for f in src/*.py; do sed -i s/a/b/ $f; done", None),
        ("$TOOL --fix src", None),
        ("FOO=1", None),
        ("# only a comment", None),
    ],
)
def test_the_run_program_is_the_first_word_after_assignments_and_redirections(
    command: str, program: str | None
) -> None:
    assert run_program(command) == program


# Pieces of unquoted commands: words, assignments, operators, redirections, odd characters.
PIECE = st.sampled_from([*"ab12 \t=;&|<>()$/.-_~*[]!{}", "sed", "cd", "FOO=", "2>", ">>", "&&"])


@given(st.lists(PIECE, max_size=12).map("".join))
def test_an_unquoted_command_gives_the_program_the_shell_lexer_gives(command: str) -> None:
    # A quote sends a command through shlex; an empty word at the end changes no program.
    assert run_program(command) == run_program(command + " ''")


def test_a_run_command_whose_program_was_not_found_is_refused_naming_it_and_the_path() -> None:
    t = task(GOOD + "  - Run: `nosuchtool-xyz --fix src`\n")
    lookup = ProgramLookup("/usr/bin:/bin", frozenset({"nosuchtool-xyz"}))
    [violation] = preflight(t, DEFAULTS, has_agent=False, programs=lookup)
    assert violation.rule == "run-program"
    assert violation.message == (
        "Its `Run:` command's program `nosuchtool-xyz` is not on the PATH the command gets "
        "(/usr/bin:/bin)."
    )
    assert preflight(t, DEFAULTS, has_agent=False, programs=ProgramLookup("/usr/bin")) == []
    assert preflight(t, DEFAULTS, has_agent=False) == []  # not looked for


def test_a_missing_script_of_the_repository_is_named_as_a_file() -> None:
    t = task(GOOD + "  - Run: `./codemod.sh`\n")
    lookup = ProgramLookup("/usr/bin", frozenset({"./codemod.sh"}))
    [violation] = preflight(t, DEFAULTS, has_agent=True, programs=lookup)
    assert "`./codemod.sh` is not an executable file in the repository" in violation.message


def test_a_run_command_that_does_not_parse_is_refused_without_looking() -> None:
    t = task(GOOD + "  - Run: `sed -i 's/a/b/ src/x.py`\n")
    [violation] = preflight(t, DEFAULTS, has_agent=True)
    assert violation.rule == "run-program"
    assert "does not parse (no closing quotation)" in violation.message
