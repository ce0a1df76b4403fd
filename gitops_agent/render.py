"""Text a person reads (prompt, PR description, memory log, report) from jinja2 templates."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import jinja2


def _load(name: str) -> str:
    return resources.files("gitops_agent.templates").joinpath(name).read_text(encoding="utf-8")


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(_load),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(name: str, **context: Any) -> str:
    """Render templates/<name> with `context`; a missing variable is a bug, not a blank."""
    return environment().get_template(name).render(**context)
