"""The templates and their filters: hostile names stay text, secrets show as `***`.

Markdown is checked the way a reader meets it: parsed by markdown-it (CommonMark with GFM
tables and strikethrough, as GitHub renders), asserting on the token stream, not on strings.
The PR description and memory log of a hostile session are also kept as golden files in
tests/fixtures/golden/ (`pytest --regen-golden` rewrites them; review the diff).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from gitops_agent.memory import memory_entries
from gitops_agent.notify import session_notification
from gitops_agent.render import fence, md, md_code, md_prose, render, visible, visible_block
from gitops_agent.report import Brief, build_brief, to_html, to_markdown
from gitops_agent.results import Outcome, SessionResult, TaskResult
from gitops_agent.review import Awaiting
from testing.golden import Golden

SECRET = "sk-ant-test-0123456789"
NIGHT = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)

HOSTILE = [
    "src/a.py\n### Approved by security",
    "src/<!-- the rest is hidden",
    "[click](http://evil.example/)",
    "![pixel](http://evil.example/p.png)",
    "```\nfenced",
    "a | b\n|---|---|",
    "src/\u202eyp.exe",
    "\u2066isolated\u2069 and\u2028separated",
    "1. looks like a list",
    "- also a list",
    "> quoted",
    "===",
    "***",
    "_init_.py and *stars* and ~~struck~~",
    "&lt;b&gt; &amp; <b>bold</b>",
    "trailing backslash\\",
    "`code` ``double`` ```triple```",
    "\x1b[31mred\x1b[0m\ttab\rcr",
    "$x$ and {braces} and #hash",
]

# The only block tokens one line of inline text may give, inside a list or a table.
LIST_ITEM = [
    "bullet_list_open",
    "list_item_open",
    "paragraph_open",
    "inline",
    "paragraph_close",
    "list_item_close",
    "bullet_list_close",
]
# What a whole document may hold besides the template's own headings and lists.
STRUCTURE = {"heading_open", "html_block", "fence", "code_block", "hr", "table_open"}
# (Emphasis is left out: the templates use it; the filter tests above show names form none.)
FORBIDDEN_INLINE = {"html_inline", "link_open", "image", "s_open"}


def parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def inline_children(tokens: list[Token]) -> list[Token]:
    return [child for t in tokens if t.type == "inline" for child in t.children or ()]


def shown_text(children: list[Token]) -> str:
    """What a reader sees of inline tokens: their text, code spans included."""
    return "".join(c.content for c in children if c.type in ("text", "code_inline"))


def headings(text: str) -> list[str]:
    """The headings' text, as a reader sees them."""
    tokens = parser().parse(text)
    return [
        shown_text(tokens[i + 1].children or [])
        for i, t in enumerate(tokens)
        if t.type == "heading_open"
    ]


def block_types(text: str) -> set[str]:
    return {t.type for t in parser().parse(text)}


# -- filters ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", HOSTILE)
def test_md_keeps_a_hostile_name_one_line_of_plain_text(name: str) -> None:
    source = f"- Files: {md(name)}\n"
    tokens = parser().parse(source)

    assert [t.type for t in tokens] == LIST_ITEM
    children = inline_children(tokens)
    assert {c.type for c in children} == {"text"}
    assert shown_text(children) == "Files: " + visible(name)


@pytest.mark.parametrize("name", HOSTILE)
def test_md_in_a_table_cell_stays_in_its_cell(name: str) -> None:
    tokens = parser().parse(f"| file | why |\n|---|---|\n| {md(name)} | ok |\n")
    cells = [t for t in tokens if t.type == "inline"]
    assert len(cells) == 4
    assert shown_text(cells[2].children or []) == visible(name).strip()
    assert cells[3].content == "ok"


@pytest.mark.parametrize("name", HOSTILE)
def test_md_code_is_one_code_span_showing_the_name(name: str) -> None:
    children = inline_children(parser().parse(f"- {md_code(name)}\n"))
    assert [c.type for c in children] == ["code_inline"]
    assert children[0].content.strip(" ") == visible(name).strip(" ")


def test_md_code_fence_is_longer_than_any_backtick_run_inside() -> None:
    assert md_code("a``b") == "```a``b```"
    assert md_code("`starts") == "`` `starts ``"
    assert md_code("") == "` `"


def test_md_prose_keeps_the_tools_code_spans_and_escapes_what_it_quotes() -> None:
    reason = "The quality gate failed: `npm test`. src/x.py\n## Fake <!-- [x](http://e/)"
    children = inline_children(parser().parse(f"- Why: {md_prose(reason)}\n"))

    assert [c.type for c in children] == ["text", "code_inline", "text"]
    assert children[1].content == "npm test"
    assert children[2].content == ". src/x.py\\n## Fake <!-- [x](http://e/)"


@pytest.mark.parametrize("name", HOSTILE)
def test_md_prose_forms_nothing_but_code_spans(name: str) -> None:
    tokens = parser().parse(f"- Why: {md_prose(name)}\n")
    assert [t.type for t in tokens] == LIST_ITEM
    assert {c.type for c in inline_children(tokens)} <= {"text", "code_inline"}


def test_visible_shows_controls_and_bidi_as_escapes() -> None:
    shown = visible("a\nb\r\tc\x1b[0m\u202ed\u2028\u2066")
    assert shown == "a\\nb\\r\\tc\\x1b[0m\\u202ed\\u2028\\u2066"
    assert visible("naïve 東京 ok") == "naïve 東京 ok"


def test_fence_holds_any_output_in_one_block_without_colours_or_controls() -> None:
    output = (
        "\x1b[1;31mFAILED\x1b[0m tests/test_x.py\r\n"
        "```\n### not a heading\n~~~\n"
        "````` five\n"
        "\x1b]8;;http://evil\x07link\x1b]8;;\x07 \u202eevil\ttabbed\x00\n"
    )
    tokens = parser().parse(f"Output:\n\n{fence(output)}\n\nAfter.\n")

    assert [t.type for t in tokens] == [
        "paragraph_open",
        "inline",
        "paragraph_close",
        "fence",
        "paragraph_open",
        "inline",
        "paragraph_close",
    ]
    assert tokens[3].content == (
        "FAILED tests/test_x.py\n```\n### not a heading\n~~~\n````` five\n"
        "link \\u202eevil\ttabbed\\x00\n"
    )
    assert tokens[5].content == "After."


def test_visible_block_keeps_lines_and_tabs() -> None:
    assert visible_block("a\r\nb\tc\n\x1b[2Kd\x07") == "a\nb\tc\nd\\x07"


# -- whole templates -------------------------------------------------------------------------


def hostile_session(branch: bool = True) -> SessionResult:
    """A session whose agent-made names, reasons and gate output try to add structure."""
    return SessionResult(
        session="20261123-020000-h0st",
        branch="autonomous/20261123-020000-h0st" if branch else None,
        base="main",
        base_commit="05e1dc93dbf7cdadb6b1928685252c0f9f230053",
        started=NIGHT.isoformat(),
        finished=(NIGHT + timedelta(minutes=30)).isoformat(),
        agent="claude",
        tasks=(
            TaskResult(
                "t1",
                "Add the parser",
                Outcome.COMMITTED,
                "Passed every rule and the quality gate (`gate:` in the plan's front matter).",
                commit="4f59eeacbc2e516f917717d803baaaca2ecade45",
                attempts=1,
                duration=300,
                changed_files=(
                    "src/ok.py",
                    "src/x.py\n### Approved by security\n<!--",
                    "src/`tick`.py",
                    f"src/{SECRET}.py",
                ),
            ),
            TaskResult(
                "t2",
                f"Rotate the key {SECRET}",
                Outcome.ROLLED_BACK,
                f"The quality gate failed: `npm test`.\n## Merged\n[ok](http://evil/) {SECRET}",
                attempts=3,
                duration=600,
                violations=(
                    "src/\u202eevil: added, but it is outside the approved directories src/",
                    "x.py\n-->\n# Heading: <!-- hidden",
                ),
                gate_output=f"```\n### Approved\n\x1b[31mFAIL\x1b[0m\ntoken={SECRET}\n<!--\n",
            ),
            TaskResult(
                "t3",
                "Document it",
                Outcome.BLOCKED,
                "It mentions a forbidden operation: “rm -rf”.\n### Approved\n| a | b |",
            ),
        ),
        stopped="the agent hit its usage limit: 5-hour limit reached ∙ resets 3am\n<!--",
        pr_body=".git/gitops-agent/sessions/20261123-020000-h0st/pr-body.md",
    )


def pr_body(result: SessionResult) -> str:
    return render(
        "pr-body.md.j2",
        result=result,
        committed=[t for t in result.tasks if t.outcome is Outcome.COMMITTED],
        others=[t for t in result.tasks if t.outcome is not Outcome.COMMITTED],
        constraints="docs/autonomous-constraints.md",
        version="0.0.0",
    )


def memory_log(result: SessionResult) -> str:
    return "".join(memory_entries(result, UTC).values())


def assert_only_template_structure(text: str, html: set[str] | None = None) -> None:
    """No block or inline structure but the template's own (`html`: its inline tags)."""
    tokens = parser().parse(text)
    assert {t.type for t in tokens} & {"html_block", "code_block", "hr", "table_open"} == set()
    children = inline_children(tokens)
    assert {c.content for c in children if c.type == "html_inline"} <= (html or set())
    assert {c.type for c in children} & FORBIDDEN_INLINE <= {"html_inline"}


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    """A secret in the process's environment, as the tool would have it."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    return SECRET


def test_the_pr_body_of_a_hostile_session_has_only_the_templates_headings(
    secret: str, golden: Golden
) -> None:
    body = pr_body(hostile_session())

    assert headings(body) == [
        "Autonomous session 20261123-020000-h0st",
        "Committed",
        "Not in this pull request",
        "Before you merge",
    ]
    assert_only_template_structure(body, html={"<sub>", "</sub>"})
    assert "fence" not in block_types(body)
    codes = [c.content for c in inline_children(parser().parse(body)) if c.type == "code_inline"]
    assert "src/x.py\\n### Approved by security\\n<!--" in codes
    assert "src/`tick`.py" in codes
    assert secret not in body and "src/***.py" in codes
    golden("hostile-pr-body", body)


def test_the_memory_log_of_a_hostile_session_has_one_heading_per_event(
    secret: str, golden: Golden
) -> None:
    log = memory_log(hostile_session())

    assert [h.split("] ", 1)[1] for h in headings(log)] == [
        "Autonomous: Session 20261123-020000-h0st started",
        "Autonomous: t1 committed",
        "Autonomous: t2 rolled back",
        "Autonomous: t3 blocked",
        "Autonomous: Session 20261123-020000-h0st finished",
    ]
    assert_only_template_structure(log)
    fences = [t for t in parser().parse(log) if t.type == "fence"]
    assert len(fences) == 1
    assert fences[0].content == "```\n### Approved\nFAIL\ntoken=***\n<!--\n"
    assert secret not in log and "***" in log
    golden("hostile-memory", log)


def test_a_secret_is_masked_however_the_template_escapes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    odd = "p4ss_w*rd[1]<&>`x`"
    monkeypatch.setenv("DB_PASSWORD", odd)
    result = hostile_session()
    task = TaskResult(
        "t9", odd, Outcome.ROLLED_BACK, f"Saw {odd}", violations=(odd,), gate_output=odd
    )
    result = SessionResult(**{**result_fields(result), "tasks": (task,), "stopped": odd})

    note = session_notification(result)
    assert note is not None
    texts = [pr_body(result), memory_log(result), note[1]]
    brief = brief_of([result])
    texts += [to_markdown(brief), to_html(brief)]
    for text in texts:
        assert "p4ss" not in text, text
        assert "***" in text or r"\*\*\*" in text  # markdown escapes it; it shows as ***


def result_fields(result: SessionResult) -> dict[str, object]:
    return {name: getattr(result, name) for name in SessionResult.__dataclass_fields__}


def brief_of(sessions: list[SessionResult], awaiting: tuple[Awaiting, ...] = ()) -> Brief:
    return build_brief(
        sessions=sessions,
        project=None,
        verdicts=None,
        awaiting=awaiting,
        base=None,
        plan_problem="The plan could not be read: PROJECT_PLAN.md:3: bad `front matter`",
        repository="repo",
        since=None,
        window=7,
        now=NIGHT + timedelta(hours=5),
    )


def test_the_markdown_report_of_a_hostile_session_adds_no_heading(secret: str) -> None:
    awaiting = (Awaiting("autonomous/x`\n# Approved", "4f59eea" * 6, ("t1", "<!--t2"), 1),)
    report = to_markdown(brief_of([hostile_session()], awaiting))

    found = headings(report)
    assert not any("Approved" in h or "Merged" in h or "Heading" in h for h in found), found
    assert_only_template_structure(report)
    assert len([t for t in parser().parse(report) if t.type == "fence"]) == 1
    assert secret not in report


def test_the_html_report_shows_controls_and_bidi_as_escapes(secret: str) -> None:
    page = to_html(brief_of([hostile_session()]))

    assert not re.search("[\u202a-\u202e\u2066-\u2069\u2028\x1b\x00]", page)
    assert "src/\\u202eevil" in page
    assert "src/x.py\\n### Approved by security\\n&lt;!--" in page
    assert "<!--" not in page.split("<body>", 1)[1]
    assert secret not in page


def test_a_notification_is_one_plain_line_per_task(secret: str) -> None:
    note = session_notification(hostile_session())
    assert note is not None
    title, body = note
    lines = body.splitlines()
    assert lines[0].startswith("✅ t1 ")
    assert lines[1].startswith("↩️ t2 ") and "\\n## Merged\\n[ok](http://evil/) ***" in lines[1]
    assert lines[2].startswith("Stopped early: ") and lines[2].endswith("\\n<!--")
    assert secret not in title + body


def test_the_integration_pr_quotes_branches_tasks_and_files_as_text() -> None:
    merged = {"tasks": ("t1", "t2\n## Merged"), "sessions": ["a`b\n# Approved @security-team"]}
    left = {
        "tasks": ("t3 @octocat",),
        "branch": "autonomous/a`b\n# Approved",
        "reason": "it conflicts with\n### Approved by @security-team",
        "files": ("src/a.py\n<!--", "b`c"),
    }
    text = render(
        "integration-pr.md.j2",
        branch="autonomous/integration-1",
        base="main",
        tasks=["t1", "[x](http://e/)"],
        merged=[merged],
        left_out=[left],
        gate="passed: `pytest -q`",
    )

    assert headings(text) == [
        "Integration autonomous/integration-1",
        "Merged, in plan order",
        "Left out",
        "Before you merge",
    ]
    assert_only_template_structure(text)
    # An @mention from untrusted text is shown as code, which GitHub never notifies.
    outside_code = re.sub(r"(`+)(?:(?!\1).)+\1", "", text)
    assert re.findall(r"(?<!\w)@[\w-]+", outside_code) == []
    assert "`@security-team`" in text and "`@octocat`" in text
