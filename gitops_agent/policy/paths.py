"""Gitignore-like globs and approved directories, on POSIX paths relative to the repository root.

Patterns follow gitignore: a pattern without "/" (other than a trailing one) matches a name at any
depth; one with "/" matches from the root; `*` and `?` stay within one component, `**` crosses
"/"; a trailing "/" means a directory; and a matched directory takes everything under it along.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from pathlib import PurePosixPath


def matches(pattern: str, path: str) -> bool:
    """Whether `path` or a directory above it matches `pattern`; raises ValueError if malformed."""
    return _compile(pattern).fullmatch(path) is not None


def pattern_error(pattern: str) -> str | None:
    """Why `pattern` is not a usable glob (for the constraints loader to report), or None."""
    try:
        _compile(pattern)
    except ValueError as error:
        return str(error)
    return None


def in_dir(path: str, dirs: Iterable[str]) -> bool:
    """Whether `path` lies strictly under one of `dirs` ("src/" or "src"; "." is the whole repo).

    An empty entry approves nothing, and a path with ".." or a leading "/" is never inside.
    """
    parts = PurePosixPath(path).parts
    if not parts or parts[0] == "/" or ".." in parts:
        return False
    for directory in dirs:
        prefix = _dir_parts(directory)
        if prefix is not None and len(parts) > len(prefix) and parts[: len(prefix)] == prefix:
            return True
    return False


@functools.lru_cache(maxsize=256)
def _dir_parts(directory: str) -> tuple[str, ...] | None:
    """The components of an approved directory, or None when it can approve nothing."""
    if not directory.strip():
        return None
    parts = PurePosixPath(directory.lstrip("/") or ".").parts
    return None if ".." in parts else parts


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    """Translate once: the same few dozen patterns are tried against every changed file."""
    is_dir = pattern.endswith("/")
    body = pattern.rstrip("/")
    anchored = "/" in body
    body = body.lstrip("/")
    if not body:
        raise ValueError(f"empty pattern {pattern!r}")
    regex = _translate(body)
    if not anchored:
        regex = "(?:.*/)?" + regex
    # A directory pattern needs something under it; any match also takes its subtree along.
    regex += "/.*" if is_dir else "(?:/.*)?"
    try:
        return re.compile(regex, re.DOTALL)
    except re.error as error:
        raise ValueError(f"malformed pattern {pattern!r}: {error}") from error


def _translate(body: str) -> str:
    """The regular expression for a pattern body without leading or trailing "/"."""
    out: list[str] = []
    i, n = 0, len(body)
    while i < n:
        char = body[i]
        at_segment_start = i == 0 or body[i - 1] == "/"
        if body.startswith("**", i):
            j = i
            while j < n and body[j] == "*":
                j += 1
            if at_segment_start and j < n and body[j] == "/":
                out.append("(?:.*/)?")  # "**/": zero or more directories
                i = j + 1
            else:
                out.append(".*")
                i = j
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            bracket, i = _bracket(body, i)
            out.append(bracket)
        elif char == "\\" and i + 1 < n:
            out.append(re.escape(body[i + 1]))
            i += 2
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)


def _bracket(body: str, start: int) -> tuple[str, int]:
    """A `[...]` class that never matches "/", and the index after it; a lone "[" is literal."""
    i = start + 1
    negate = i < len(body) and body[i] in "!^"
    if negate:
        i += 1
    first = i
    if i < len(body) and body[i] == "]":
        i += 1  # a "]" right after "[" or "[!" is a member, as in fnmatch
    while i < len(body) and body[i] != "]":
        i += 1
    if i >= len(body):
        return re.escape("["), start + 1
    members = "".join(c if c == "-" else re.escape(c) for c in body[first:i])
    if negate:
        return f"[^/{members}]", i + 1
    return f"(?!/)[{members}]", i + 1
