"""The block structure of a markdown document (markdown-it-py): headings, code, HTML blocks."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from markdown_it import MarkdownIt


@dataclass(frozen=True, slots=True)
class Fence:
    info: str  # the info string after the opening fence, e.g. "yaml"
    content: str
    first_line: int  # 1-based line of the first content line


@dataclass(slots=True)
class Blocks:
    skip: set[int] = field(default_factory=set)  # 0-based lines inside code, HTML or headings
    headings: dict[int, tuple[int, str]] = field(default_factory=dict)  # line -> (level, text)
    fences: list[Fence] = field(default_factory=list)


@cache
def _markdown() -> MarkdownIt:
    # Block structure only: headings, fences and HTML blocks are all we need to know, and
    # leaving out lists and inline parsing makes a 10,000-task plan several times faster.
    # Indented code blocks stay off: a task's details indented four spaces after a blank line
    # must not vanish into a code block.
    md = MarkdownIt("zero", {"html": True}).enable(["fence", "heading", "lheading", "html_block"])
    md.disable(["inline", "text_join"], ignoreInvalid=True)
    return md


def blocks(text: str) -> Blocks:
    """Where the headings, fences and HTML blocks of `text` are (heading lines are 1-based)."""
    found = Blocks()
    tokens = _markdown().parse(text)
    for position, token in enumerate(tokens):
        if token.map is None:
            continue
        start, end = token.map
        if token.type == "fence":
            found.skip.update(range(start, end))
            found.fences.append(Fence(token.info.strip(), token.content, start + 2))
        elif token.type == "html_block":
            found.skip.update(range(start, end))
        elif token.type == "heading_open":
            title = tokens[position + 1].content.strip()
            # A setext heading's text spans its lines; its underline is the last one.
            line = start + 1 if token.markup.startswith("#") else end
            found.headings[line] = (int(token.tag[1:]), title)
            found.skip.update(range(start, end))
    return found
