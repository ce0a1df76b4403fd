"""Text a person reads (prompt, PR description, memory log, report) from jinja2 templates.

The filters below are the formatting the templates share, so the memory log, the report and the
notifications say the same thing the same way.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from functools import cache
from importlib import resources
from typing import Any

import jinja2
import markupsafe

_BACKTICKS = re.compile(r"`+")
_CODE_SPAN = re.compile(r"`([^`]+)`")


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
    )
    return env


def render(name: str, **context: Any) -> str:
    """Render templates/<name> with `context`; a missing variable is a bug, not a blank."""
    return environment().get_template(name).render(**context)


def macro(name: str, macro_name: str, *args: Any) -> str:
    """Call one `{% macro %}` of templates/<name>: a small text that belongs with a bigger one."""
    module = environment().get_template(name).make_module()
    return str(getattr(module, macro_name)(*args))


# -- filters -------------------------------------------------------------------------------


def code_spans(text: str | None) -> markupsafe.Markup:
    """HTML for a sentence with markdown `code` spans: escaped, the spans as <code>."""
    escaped = str(markupsafe.escape(text or ""))
    return markupsafe.Markup(_CODE_SPAN.sub(r"<code>\1</code>", escaped))


def short(commit: str | None) -> str:
    """The first 7 hex digits of a commit id, as git shows it."""
    return (commit or "")[:7]


def oneline(text: str | None) -> str:
    """One line of text (a list item or a table cell must not span lines)."""
    return " ".join((text or "").split())


def cell(text: str | None) -> str:
    """Text for a markdown table cell: one line, pipes escaped."""
    return oneline(text).replace("|", "\\|")


def fence(text: str, info: str = "text") -> str:
    """`text` in a fenced code block whose fence is longer than any backtick run inside it."""
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
