"""The block structure of a markdown document (markdown-it-py): headings, code, HTML blocks."""

from __future__ import annotations

import re
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


# A line that can open, close or underline a block: everything else is inert paragraph text.
# ">" anywhere may end an HTML block (`-->`, `?>`, `]]>`, `</script>`), so it counts too.
_STRUCTURAL = re.compile(r"^ {0,3}(?:#|```|~~~|<|=+[ \t]*$|-+[ \t]*$)|>")


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def split_lines(text: str, *, keepends: bool = False) -> list[str]:
    """Lines as markdown-it counts them: only CR LF, CR and LF end a line (not U+2028 & co)."""
    lines: list[str] = _LINE.findall(text)
    return lines if keepends else [line.rstrip("\r\n") for line in lines]


def _blank(line: str) -> bool:
    return not line.strip(" \t")


def _condense(lines: list[str]) -> tuple[str, list[int]]:
    """`lines` with the stretches that cannot change the block structure left out.

    The parser's cost is per line, and a plan is mostly task and detail lines. Between two
    structural lines, only the first and the last paragraph and the first and the last blank
    line can matter (a setext underline takes the paragraph just above it; an HTML block of
    kind 6 or 7 ends at the first blank line), so a stretch keeps those and loses its middle.
    Returns the condensed text and, for each condensed line, the original line it stands for.
    """
    kept: list[tuple[str, int]] = []
    stretch: list[int] = []

    def flush() -> None:
        blanks = [i for i in stretch if _blank(lines[i])]
        if not blanks:
            pieces = [stretch[:1]]
        else:
            first, last = blanks[0], blanks[-1]
            before = [i for i in stretch if i < first][:1]
            after = [i for i in stretch if i > last][:1]
            pieces = [before, [first], [last] if last != first else [], after]
        for piece in pieces:
            kept.extend(("" if _blank(lines[i]) else "x", i) for i in piece)
        stretch.clear()

    for index, line in enumerate(lines):
        if not _blank(line) and _STRUCTURAL.search(line):
            flush()
            kept.append((line, index))
        else:
            stretch.append(index)
    flush()
    origin = [i for _line, i in kept]
    origin.append(len(lines))
    return "".join(line + "\n" for line, _i in kept), origin


def blocks(text: str, *, condense: bool = True) -> Blocks:
    """Where the headings, fences and HTML blocks of `text` are (heading lines are 1-based)."""
    found = Blocks()
    lines = split_lines(text)
    if condense:
        condensed, origin = _condense(lines)
    else:
        condensed = "".join(line + "\n" for line in lines)
        origin = [*range(len(lines)), len(lines)]
    tokens = _markdown().parse(condensed)
    for position, token in enumerate(tokens):
        if token.map is None:
            continue
        start, end = origin[token.map[0]], origin[token.map[1]]
        if token.type == "fence":
            found.skip.update(range(start, end))
            closed = end - 1 > start and lines[end - 1].lstrip().startswith(token.markup)
            body = lines[start + 1 : end - 1] if closed else lines[start + 1 : end]
            content = "".join(line + "\n" for line in body)
            found.fences.append(Fence(token.info.strip(), content, start + 2))
        elif token.type == "html_block":
            found.skip.update(range(start, end))
        elif token.type == "heading_open":
            if token.markup.startswith("#"):
                line, title = start + 1, tokens[position + 1].content.strip()
            else:  # setext: the text lines, then the underline
                underline = origin[token.map[1] - 1]
                line = underline + 1
                title = " ".join(part.strip() for part in lines[start:underline])
            found.headings[line] = (int(token.tag[1:]), title)
            found.skip.update(range(start, end))
    return found
