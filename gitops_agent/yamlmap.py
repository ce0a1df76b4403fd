"""YAML mappings of settings that remember the line each key stands on (for error messages)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from frontmatter.default_handlers import YAMLHandler

from gitops_agent.errors import UserError


@dataclass(frozen=True, slots=True)
class Setting:
    key: str
    value: Any
    line: int  # 1-based line in the file


def load_mapping(
    text: str, path: str, first_line: int, what: str, error: type[UserError] = UserError
) -> list[Setting]:
    """Parse `text` (which starts on line `first_line` of `path`) as a mapping of settings."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        # An error found at the end of the text (an unclosed bracket) points past its last line.
        last = max(text.count("\n") - (1 if text.endswith("\n") else 0), 0)
        line = first_line + min(mark.line if mark is not None else 0, last)
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"malformed YAML in {what}: {problem}", path, line) from None
    if node is None:
        return []
    if not isinstance(node, yaml.MappingNode) or not isinstance(data, dict):
        raise error(f"{what} must be a YAML mapping of `key: value`", path, first_line)
    settings: list[Setting] = []
    seen: dict[str, int] = {}
    for key_node, _value_node in node.value:
        key = str(key_node.value)
        line = first_line + key_node.start_mark.line
        if key in seen:
            raise error(f"`{key}` is set twice (first on line {seen[key]})", path, line)
        seen[key] = line
        # A key YAML reads as a non-string (`1:`, `true:`) has no string entry: value None, and
        # the caller rejects it as an unknown key.
        settings.append(Setting(key, data.get(key), line))
    return settings


def split_front_matter(
    text: str, path: str, error: type[UserError] = UserError
) -> tuple[str | None, str]:
    """(the YAML front matter or None, the body with the front matter blanked out).

    Blank lines stand in for the front matter so that body line numbers are file line numbers;
    the YAML itself starts on line 2.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    handler = YAMLHandler()
    if not handler.detect(text):
        return None, text
    lines = text.split("\n")
    close = next((i for i in range(1, len(lines)) if handler.FM_BOUNDARY.match(lines[i])), None)
    if close is None:
        raise error("front matter starts with `---` but has no closing `---` line", path, 1)
    return "\n".join(lines[1:close]), "\n" * (close + 1) + "\n".join(lines[close + 1 :])
