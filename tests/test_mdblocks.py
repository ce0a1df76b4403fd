from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gitops_agent.mdblocks import blocks

LINES = st.sampled_from(
    [
        "",
        "   ",
        "→ **[t1]** Task",
        "- **[t2]** Task",
        "  - Status: READY",
        "Some prose.",
        "# Heading",
        "### Ready for Autonomous Execution",
        "Setext title",
        "=====",
        "---",
        "```",
        "```yaml",
        "~~~",
        "<!--",
        "-->",
        "text --> more",
        "<div>",
        "</div>",
        "<script>",
        "</script>",
        "    indented",
        "> quote",
        "\u00a0",
        "line\u2028with a separator",
        "crlf\r",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(LINES, max_size=40))
def test_condensed_parse_finds_exactly_what_a_full_parse_finds(lines: list[str]) -> None:
    text = "\n".join(lines)
    fast, full = blocks(text), blocks(text, condense=False)
    assert fast.skip == full.skip
    assert fast.headings == full.headings
    assert fast.fences == full.fences


def test_fence_content_and_first_line() -> None:
    found = blocks("intro\n```yaml\na: 1\nb: 2\n```\nafter\n")
    assert [(f.info, f.content, f.first_line) for f in found.fences] == [
        ("yaml", "a: 1\nb: 2\n", 3)
    ]
