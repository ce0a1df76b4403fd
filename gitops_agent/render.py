"""Text a person reads (prompt, PR description, memory log, report) from jinja2 templates.

The filters below are the formatting the templates share, so the memory log, the report and the
notifications say the same thing the same way. Two of their duties are promises of the product:
every text rendered here has the secrets of the tool's environment masked (`policy.masking`),
and a name or text that came from an agent, a gate or the file system goes through `md`,
`md_code`, `md_prose` or `fence`, so it cannot add a heading, link, comment or fence to markdown
a person reads (nor `visible` / `code_spans` in HTML: bidi and control characters).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from functools import cache
from importlib import resources
from typing import Any

import jinja2
import markupsafe

from gitops_agent.policy.masking import mask
from gitops_agent.terminal import strip_ansi

_BACKTICKS = re.compile(r"`+")
_CODE_SPAN = re.compile(r"`([^`]+)`")

# What must be backslash-escaped (CommonMark escapes any ASCII punctuation and shows it as itself)
# so that one line of text forms nothing: anywhere, the characters that open inline structure
# (code span, emphasis, strikethrough, link and image, raw HTML and autolink, entity, table cell,
# GitHub's math, a backslash escape); `_` only where it is not inside a word, where CommonMark
# never reads it as emphasis (snake_case stays readable); and at the start, a block marker
# (heading, quote, list item, setext underline, thematic break). The rest of the punctuation
# (`.`, `(`, `#` inside a line...) is left as written: it forms nothing in the middle of a line.
_MD_INLINE = re.compile(r"[\\`*\[\]<&|~$]|(?<![^\W_])_|_(?![^\W_])")
_MD_BLOCK_START = re.compile(r"^( *(?:\d{1,9}(?=[.)]))?)([#>+=.)-])")
# What GitHub links as a mention (a user, or an org's team) and notifies: "@name", "@org/team".
_MENTION = re.compile(r"(?<![\w`])@[A-Za-z0-9](?:[A-Za-z0-9-]*)(?:/[A-Za-z0-9_.-]+)?")

# What a block of output may not carry as is: C0 and C1 controls but newline and tab, the
# line and paragraph separators, and the bidi controls that reorder what a reader sees.
_BLOCK_CONTROLS = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def _load(name: str) -> str:
    return resources.files("gitops_agent.templates").joinpath(name).read_text(encoding="utf-8")


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        short=short,
        oneline=oneline,
        fence=fence,
        cell=cell,
        duration=duration,
        ago=ago,
        percent=percent,
        tail=tail,
        plural=plural,
        localtime=localtime,
        as_time=parse_time,
        code_spans=code_spans,
        visible=visible,
        visible_block=visible_block,
        md=md,
        md_code=md_code,
        md_prose=md_prose,
    )
    return env


def render(name: str, **context: Any) -> str:
    """Render templates/<name> with `context`, secrets masked; a missing variable is a bug."""
    return mask(environment().get_template(name).render(**context))


def macro(name: str, macro_name: str, *args: Any) -> str:
    """Call one `{% macro %}` of templates/<name>: a small text that belongs with a bigger one."""
    module = environment().get_template(name).make_module()
    return mask(str(getattr(module, macro_name)(*args)))


# -- filters for untrusted text -------------------------------------------------------------
# Each masks its input first: escaping changes how a secret is spelled (`sk\-ant`), and the mask
# of the whole rendered text would no longer find it.


def visible(text: str | None) -> str:
    """One line, every character a reader can see: a newline, tab, escape, bidi control or
    other invisible character is shown as its Python escape (`\\n`, `\\x1b`, `\\u202e`), as
    policy.inspect shows paths. Plain text: for notifications and HTML (which escapes it)."""
    text = mask(text or "")
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def visible_block(text: str | None) -> str:
    """Lines of output as a reader should see them: ANSI colour codes dropped, and the controls
    that could hide or reorder text (all but newline and tab) shown as escapes."""
    text = strip_ansi(mask(text or "")).replace("\r\n", "\n")
    return _BLOCK_CONTROLS.sub(lambda m: ascii(m.group())[1:-1], text)


def md(text: str | None) -> str:
    """Inline markdown that shows `text` as it is and forms nothing: one line (`visible`), the
    punctuation that could start structure backslash-escaped, so no heading, list, link, image,
    HTML comment or tag, table cell or code span can start in it, and an @mention shown as code,
    which GitHub never turns into a notification. For names and messages that came from an
    agent, a gate or the file system."""
    return _md_escape(visible(text), at_start=True)


def _md_escape(text: str, *, at_start: bool) -> str:
    parts: list[str] = []
    end = 0
    for mention in _MENTION.finditer(text):
        parts += [_md_escape_plain(text[end : mention.start()], at_start and end == 0)]
        parts += [_code_span(mention.group())]
        end = mention.end()
    parts.append(_md_escape_plain(text[end:], at_start and end == 0))
    return "".join(parts)


def _md_escape_plain(text: str, at_start: bool) -> str:
    text = _MD_INLINE.sub(lambda m: "\\" + m.group(), text)
    if at_start:
        text = _MD_BLOCK_START.sub(r"\1\\\2", text)
    return text


def md_code(text: str | None) -> str:
    """`text` as one inline code span (a path), whatever backticks it holds: the span's fence is
    longer than any backtick run inside, as CommonMark requires."""
    return _code_span(visible(text))


def md_prose(text: str | None) -> str:
    """A sentence the tool wrote around untrusted parts (a reason, a rule broken): its `code`
    spans stay code spans and everything else is escaped as `md`. Safe whatever the parts hold:
    a backtick they add can only pair into another code span, which forms nothing."""
    shown = visible(text)
    parts: list[str] = []
    end = 0
    for span in _CODE_SPAN.finditer(shown):
        before = _md_escape(shown[end : span.start()], at_start=end == 0)
        parts += [before, _code_span(span.group(1))]
        end = span.end()
    parts.append(_md_escape(shown[end:], at_start=end == 0))
    return "".join(parts)


def _code_span(content: str) -> str:
    if not content:
        return "` `"
    ticks = "`" * (max((len(m) for m in _BACKTICKS.findall(content)), default=0) + 1)
    # CommonMark strips one space from each end of a span that has both; a span that starts or
    # ends with a backtick needs that space to be told from its fence.
    stripped_alike = content[0] == content[-1] == " " and content.strip(" ")
    if content[0] == "`" or content[-1] == "`" or stripped_alike:
        content = f" {content} "
    return f"{ticks}{content}{ticks}"


def code_spans(text: str | None) -> markupsafe.Markup:
    """HTML for a sentence with markdown `code` spans: `visible`, escaped, the spans as <code>."""
    escaped = str(markupsafe.escape(visible(text)))
    return markupsafe.Markup(_CODE_SPAN.sub(r"<code>\1</code>", escaped))


# -- formatting ------------------------------------------------------------------------------


def short(commit: str | None) -> str:
    """The first 7 hex digits of a commit id, as git shows it."""
    return (commit or "")[:7]


def oneline(text: str | None) -> str:
    """One line of text (a list item or a table cell must not span lines)."""
    return " ".join(mask(text or "").split())


def cell(text: str | None) -> str:
    """Text for a markdown table cell: one line, pipes escaped."""
    return oneline(text).replace("|", "\\|")


def fence(text: str, info: str = "text") -> str:
    """`text` (`visible_block`) in a fenced code block whose fence is longer than any backtick
    run inside it, so no line of it can close the block."""
    text = visible_block(text)
    longest = max((len(m) for m in _BACKTICKS.findall(text)), default=0)
    marks = "`" * max(3, longest + 1)
    return f"{marks}{info}\n{text.rstrip()}\n{marks}"


def tail(text: str, lines: int = 30) -> str:
    """The last `lines` lines of `text`, with a note of how many were left out."""
    kept = text.rstrip().splitlines()
    if len(kept) <= lines:
        return "\n".join(kept)
    return "\n".join([f"[... {len(kept) - lines} earlier lines left out]", *kept[-lines:]])


def duration(seconds: float) -> str:
    """A short human duration: 45 s, 12 min, 2 h 5 min, 3 days."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    days = round(hours / 24)
    return f"{days} days"


def ago(then: datetime, now: datetime) -> str:
    """How long before `now` `then` was, in words."""
    return duration((now - then).total_seconds())


def percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.0f}%"


def plural(count: int, word: str, many: str | None = None) -> str:
    """`1 task`, `2 tasks`."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def localtime(when: datetime, zone: tzinfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return when.astimezone(zone).strftime(fmt)


def parse_time(text: str) -> datetime:
    """An ISO 8601 time from a record; one without an offset is UTC (how sessions write it)."""
    when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
