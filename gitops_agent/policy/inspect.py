"""Post-flight: what a task changed, judged against the constraints; pure, so `check` shares it."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath

from ..change import Change, FileChange, FileStatus
from ..constraints import Constraints
from ..errors import ConstraintsError
from . import Violation
from .paths import in_dir, matches
from .secrets import find_secrets

# Statuses that leave a file (or symlink) at `path` in the resulting tree.
_PRESENT = frozenset(
    {FileStatus.ADDED, FileStatus.MODIFIED, FileStatus.RENAMED, FileStatus.TYPECHANGE}
)
_VERBS = {
    FileStatus.ADDED: "added",
    FileStatus.MODIFIED: "modified",
    FileStatus.DELETED: "deleted",
    FileStatus.TYPECHANGE: "changed type",
}
_QUOTE_CHARS = 80
_BIGGEST_SHOWN = 3


def inspect_change(
    change: Change,
    constraints: Constraints,
    *,
    estimated_lines: int | None,
    protected_paths: Iterable[str] = (),
    repo_files: frozenset[str] | None = None,
) -> list[Violation]:
    """Every rule `change` breaks, sorted by path then rule; an empty list lets it through.

    `protected_paths` are exact paths the run itself protects (plan, constraints, gate script).
    `repo_files`, every path in the resulting tree, lets symlinks through other links be caught.
    Raises ConstraintsError for a protected glob or forbidden_content regex that is malformed.
    """
    exact = frozenset(PurePosixPath(p).as_posix() for p in protected_paths)
    links = frozenset(f.path for f in change.files if f.is_symlink and f.status in _PRESENT)
    known = links | (repo_files or frozenset())
    violations: list[Violation] = []
    for f in change.files:
        violations += _outside_approved_dirs(f, constraints)
        violations += _protected(f, constraints, exact)
        violations += _deleted(f, constraints)
        violations += _content(f, constraints)
        violations += _symlink_outside(f, known)
        violations += _symlink_to_protected(f, constraints, exact)
        violations += _binary(f, constraints)
        violations += _oversized(f, constraints)
    violations += _line_budget(change, constraints, estimated_lines)
    return sorted(violations, key=lambda v: (v.path or "", v.rule, v.message))


def _outside_approved_dirs(f: FileChange, c: Constraints) -> Iterator[Violation]:
    dirs = ", ".join(c.approved_dirs) or "(none)"
    for path, verb in _touched(f):
        if not approved(path, c):
            yield Violation(
                "outside-approved-dirs",
                f"{show(path)}: {verb}, but it is outside the approved directories {dirs} "
                f"({_setting(c, 'approved_dirs')})",
                path,
            )


def _protected(f: FileChange, c: Constraints, exact: frozenset[str]) -> Iterator[Violation]:
    for path, verb in _touched(f):
        if path in exact:
            why = "the run protects it (plan, constraints or gate file)"
        else:
            pattern = next((p for p in c.protected if _matches(c, p, path)), None)
            if pattern is None:
                continue
            why = f'it matches protected pattern "{pattern}" ({_setting(c, "protected")})'
        yield Violation("protected-file", f"{show(path)}: {verb}, but {why}", path)


def _deleted(f: FileChange, c: Constraints) -> Iterator[Violation]:
    if f.status is FileStatus.DELETED and not c.allow_delete:
        yield Violation(
            "deleted-file",
            f"{show(f.path)}: deleted, but deleting files is not allowed "
            f"({_setting(c, 'allow_delete')})",
            f.path,
        )


def _content(f: FileChange, c: Constraints) -> Iterator[Violation]:
    """Forbidden patterns and secrets; a line holding a secret is never quoted back."""
    if f.is_binary or not f.added_lines:
        return
    secret_lines: set[int] = set()
    if c.scan_secrets:
        by_kind: dict[str, int] = {}
        for hit in find_secrets(f.path, f.added_lines):
            secret_lines.add(hit.line)
            by_kind[hit.kind] = by_kind.get(hit.kind, 0) + 1
        for kind, count in by_kind.items():
            yield Violation(
                "secret",
                f"{show(f.path)}: {_lines(count)} look{'s' if count == 1 else ''} like a "
                f"secret ({kind}); secrets must not be committed: read them from the environment",
                f.path,
            )
    for pattern in c.forbidden_content:
        regex = _forbidden_regex(c, pattern)
        found = [(i, m) for i, line in enumerate(f.added_lines) if (m := regex.search(line))]
        if not found:
            continue
        quotable = [(i, m) for i, m in found if i not in secret_lines]
        quote = f': "{_quote(f.added_lines[quotable[0][0]], quotable[0][1])}"' if quotable else ""
        yield Violation(
            "forbidden-content",
            f"{show(f.path)}: {_lines(len(found))} match{'es' if len(found) == 1 else ''} "
            f"forbidden pattern {_readable(pattern)} ({_setting(c, 'forbidden_content')}){quote}",
            f.path,
        )


def _symlink_outside(f: FileChange, known: frozenset[str]) -> Iterator[Violation]:
    if f.is_symlink and f.status in _PRESENT:
        problem = _symlink_problem(f.path, f.symlink_target or "", known)
        if problem is not None:
            yield Violation(
                "symlink-outside",
                f'{show(f.path)}: symlink to "{show(f.symlink_target or "")}" {problem}',
                f.path,
            )


def _symlink_to_protected(
    f: FileChange, c: Constraints, exact: frozenset[str]
) -> Iterator[Violation]:
    """A link to the plan, the gate or a protected file: whatever writes through it, or reads
    it as ordinary content, reaches what the rules protect."""
    if not (f.is_symlink and f.status in _PRESENT and f.symlink_target):
        return
    resolved = resolve_link(f.path, f.symlink_target)
    if resolved is None:
        return  # leaves the tree: _symlink_outside says so
    if resolved in exact or any(_matches(c, p, resolved) for p in c.protected):
        yield Violation(
            "symlink-to-protected",
            f'{show(f.path)}: symlink to "{show(f.symlink_target)}", a protected path',
            f.path,
        )


def resolve_link(path: str, target: str) -> str | None:
    """Where a relative link leads inside the tree, resolved lexically; None if it leaves it."""
    if target.startswith("/"):
        return None
    parts = list(PurePosixPath(path).parent.parts)
    for step in target.split("/"):
        if step in ("", "."):
            continue
        if step == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(step)
    return "/".join(parts)


def _symlink_problem(path: str, target: str, known: frozenset[str]) -> str | None:
    """Why the link may lead out of the repository or into .git, resolving `..` lexically.

    Lexical resolution is only right through directories, so going through a known file or link
    (which `..` would resolve from wherever that link points) is refused too.
    """
    if not target:
        return "has no target"
    if target.startswith("/"):
        return "points to an absolute path, outside the repository"
    resolved = list(PurePosixPath(path).parent.parts)
    steps = [part for part in target.split("/") if part not in ("", ".")]
    for index, step in enumerate(steps):
        if step == "..":
            if not resolved:
                return "points outside the repository"
            resolved.pop()
        else:
            resolved.append(step)
            if step.casefold() == ".git":
                return "points into .git"
        here = "/".join(resolved)
        if index + 1 < len(steps) and here in known:
            return f"goes through {show(here)}, a file or symlink, so where it leads is unclear"
    return None


def _binary(f: FileChange, c: Constraints) -> Iterator[Violation]:
    # A rename counts: FileChange cannot tell a moved binary from one rewritten on the way.
    if f.is_binary and f.status in _PRESENT and not c.allow_binary:
        verb = "renamed" if f.status is FileStatus.RENAMED else _VERBS[f.status]
        yield Violation(
            "binary-file",
            f"{show(f.path)}: binary file {verb}, but binary files are not allowed "
            f"({_setting(c, 'allow_binary')})",
            f.path,
        )


def _oversized(f: FileChange, c: Constraints) -> Iterator[Violation]:
    if f.status in _PRESENT and f.size > c.max_file_bytes:
        yield Violation(
            "oversized-file",
            f"{show(f.path)}: {f.size:,} bytes, over the limit of {c.max_file_bytes:,} bytes "
            f"({_setting(c, 'max_file_bytes')})",
            f.path,
        )


def _line_budget(change: Change, c: Constraints, estimated: int | None) -> Iterator[Violation]:
    if estimated is None:
        basis = f"no estimate, so max_estimated_lines {c.max_estimated_lines}"
        budget = math.ceil(c.max_estimated_lines * c.line_budget_factor)
    else:
        basis = f"estimate {estimated}"
        budget = math.ceil(estimated * c.line_budget_factor)
    total = change.lines_changed
    if total <= budget:
        return
    biggest = sorted(change.files, key=lambda f: (-(f.added + f.deleted), f.path))
    shown = ", ".join(f"{show(f.path)} ({f.added + f.deleted})" for f in biggest[:_BIGGEST_SHOWN])
    yield Violation(
        "line-budget",
        f"the change adds or deletes {total} lines, over its budget of {budget} ({basis} x "
        f"line_budget_factor {c.line_budget_factor}); biggest: {shown}",
    )


def _touched(f: FileChange) -> Iterator[tuple[str, str]]:
    """Each path the change concerns with what happened to it; a rename concerns both ends."""
    if f.status is FileStatus.RENAMED:
        if f.old_path is not None:
            yield f.old_path, f"renamed to {show(f.path)}"
            yield f.path, f"renamed from {show(f.old_path)}"
        else:
            yield f.path, "renamed"
    else:
        yield f.path, _VERBS[f.status]


def _setting(c: Constraints, name: str) -> str:
    """Where a setting came from, so a person knows which line to edit."""
    line = c.sources.get(name)
    if c.path is not None and line is not None:
        return f"{name}, set at {c.path}:{line}"
    return f"{name}, the default"


def approved(path: str, c: Constraints) -> bool:
    """Under an approved directory, or one of the approved files (README.md, CHANGELOG.md...)."""
    return in_dir(path, c.approved_dirs) or any(matches(p, path) for p in c.approved_files)


def _matches(c: Constraints, pattern: str, path: str) -> bool:
    try:
        return matches(pattern, path)
    except ValueError as error:
        raise ConstraintsError(str(error), c.path, c.sources.get("protected")) from error


def _forbidden_regex(c: Constraints, pattern: str) -> re.Pattern[str]:
    try:
        return _compile_forbidden(pattern)
    except re.error as error:
        raise ConstraintsError(
            f"forbidden_content pattern {pattern!r} is not a valid regular expression: {error}",
            c.path,
            c.sources.get("forbidden_content"),
        ) from error


@functools.lru_cache(maxsize=256)
def _compile_forbidden(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def _readable(pattern: str) -> str:
    r"""`\bDROP\s+TABLE\b` reads as "DROP TABLE"; a pattern beyond plain words stays a regex."""
    words = re.sub(r"\\s[+*]?", " ", pattern.replace(r"\b", "")).strip()
    if words and not re.search(r"[\\\[\](){}.*+?^$|]", words):
        return words
    return f"/{pattern}/"


def _quote(line: str, match: re.Match[str]) -> str:
    """At most about 80 characters of `line` around `match`, printable."""
    start = max(0, match.start() - _QUOTE_CHARS // 4)
    end = start + _QUOTE_CHARS
    text = line[start:end].strip() if start else line[:end].lstrip()
    return ("..." if start else "") + show(text) + ("..." if end < len(line) else "")


def _lines(count: int) -> str:
    return "an added line" if count == 1 else f"{count} added lines"


def show(text: str) -> str:
    """Escape control characters: paths and lines come from the agent and end up in terminals."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
