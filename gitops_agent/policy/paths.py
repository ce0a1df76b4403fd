"""Gitignore globs (compiled by pathspec) and approved directories, on POSIX paths relative to the
repository root.

Patterns follow gitignore: a pattern without "/" (other than a trailing one) matches a name at any
depth; one with "/" matches from the root; `*`, `?` and `[...]` stay within one component, a `**`
component crosses "/"; a trailing "/" means a directory; and a matched directory takes everything
under it along. What gitignore would not read as one pattern that matches something (empty, a
`#` comment, a `!` negation, `**` inside a name, an unclosed `[`), and what pathspec reads unlike
git (`[:digit:]`), is refused with the reason.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Iterable
from pathlib import PurePosixPath

import pathspec


def matches(pattern: str, path: str) -> bool:
    """Whether `path` or a directory above it matches `pattern`; raises ValueError if unusable."""
    return _compile(pattern).search(path) is not None


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
    """Compile once: the same few dozen patterns are tried against every changed file."""
    _refuse_unusable(pattern)
    text = pattern if pattern.endswith("\\ ") else pattern.rstrip()
    if text == "**/" or text.endswith("/**/"):
        # pathspec reads "dir/**/" as "dir/**", taking the files right in dir too; to git it
        # means the directories below dir, which "dir/*/" says to both.
        text = text[:-3] + "*/"
    with warnings.catch_warnings():
        # A "[" inside a bracket ("[[ab]") makes re warn about future nested sets; like git,
        # pathspec means a member "[", which is what re does today.
        warnings.simplefilter("ignore", FutureWarning)
        try:
            compiled = pathspec.GitIgnoreSpec.from_lines([text]).patterns[0]
        except (ValueError, re.error) as error:  # pathspec's pattern error is a ValueError
            raise ValueError(f"malformed pattern {pattern!r}: {error}") from error
        if compiled.include is None or compiled.regex is None:
            # Git drops a pattern whose "[" has no "]" in the same component; so does pathspec.
            raise ValueError(
                f"unclosed '[' in pattern {pattern!r} (gitignore drops such a pattern); "
                "write \\[ for a literal one"
            )
        source: str = compiled.regex.pattern
        # A name may hold a newline: "." must match it (DOTALL), and the end anchor must be the
        # end of the path, not a place before a final newline ("$" would let "x\n" match "x").
        source = re.sub(r"(?<!\\)\$(?=\)|\Z)", r"\\Z", source)
        return re.compile(_brackets_never_match_slash(source), re.DOTALL)


def _refuse_unusable(pattern: str) -> None:
    """Raise ValueError for what gitignore reads as no pattern, or as something a list in which
    any match counts cannot mean; the reason names the fix."""
    if pattern.startswith("#"):
        raise ValueError(
            f"{pattern!r} is a comment in gitignore; write \\# for a name starting with #"
        )
    if pattern.startswith("!"):
        raise ValueError(
            f"{pattern!r} is a gitignore negation, which this list cannot express (any match "
            "counts); write \\! for a name starting with !"
        )
    # Gitignore drops trailing spaces (unless escaped), and one leading and one trailing "/".
    body = pattern if pattern.endswith("\\ ") else pattern.rstrip()
    body = body.removeprefix("/").removesuffix("/")
    if not body:
        raise ValueError(f"empty pattern {pattern!r}")
    components = body.split("/")
    if "" in components:
        raise ValueError(f"empty path component in pattern {pattern!r}")
    # Beside other characters (or a third "*"), "**" is two "*" to git and to pathspec, not "/".
    if any(c != "**" and "**" in re.sub(r"\\.", "", c) for c in components):
        raise ValueError(
            f"'**' in pattern {pattern!r} crosses directories only as a whole component "
            "(**/name, dir/**, a/**/b); within a name write *"
        )
    if re.search(r"\[:[a-z]+:\]", pattern):
        # Git knows "[[:digit:]]"; pathspec reads a set of ":digt" followed by "]".
        raise ValueError(
            f"character class names such as [:digit:] are not supported in {pattern!r}; "
            "list the characters instead ([0-9])"
        )


def _brackets_never_match_slash(regex: str) -> str:
    """pathspec turns "[!a]" into "[^a]", which also matches "/" (as does a range such as
    "[+-0]"); git never lets a bracket match "/". Guard every class but pathspec's own "[^/]"."""
    out: list[str] = []
    i = 0
    while i < len(regex):
        if regex[i] == "\\":
            out.append(regex[i : i + 2])
            i += 2
        elif regex[i] == "[":
            end = _class_end(regex, i)
            members = regex[i:end]
            out.append(members if members == "[^/]" else "(?!/)" + members)
            i = end
        else:
            out.append(regex[i])
            i += 1
    return "".join(out)


def _class_end(regex: str, start: int) -> int:
    """The index after the "]" closing the regex character class that opens at `start`."""
    i = start + 1
    if regex.startswith("^", i):
        i += 1
    if regex.startswith("]", i):
        i += 1  # a "]" first in a class is a member
    while regex[i] != "]":
        i += 2 if regex[i] == "\\" else 1
    return i + 1
