"""Whether commits and trees that came from a job we do not trust are what the tool writes.

Pure: raw commits and trees (read by `git.objects`) and changes in, problems out, in words. The
tool commits as one fixed identity, at the time of its session, with trailers it writes once;
its trees hold plain files, executables and symlinks under sane names. `verify` adds these
rules to the post-flight ones (`inspect`) for everything an artifact brings.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ..change import Change, FileChange, FileStatus
from ..constraints import Constraints
from ..git.objects import TREE_MODE, RawCommit, RawTree
from . import Violation
from .inspect import approved, resolve_link, show

# Trojan Source (CVE-2021-42574): embeddings, overrides and isolates, and the invisible marks.
BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
)
# No person reviews a line longer than this; a minified or generated blob hides anything.
MAX_LINE_CHARS = 10_000
# Where GitHub reads CODEOWNERS: whoever writes one decides who must approve what.
CODEOWNERS_PATHS = ("CODEOWNERS", ".github/CODEOWNERS", "docs/CODEOWNERS")
GITLINK_MODE = 0o160000
FUTURE_SLACK = 3600  # seconds a job's clock may run ahead of ours
CLOCK_SLACK = 86400  # seconds a commit may seem older than its session or its parent
# What a session id (`session.new_session_id`) looks like: its start, UTC, and 4 hex digits.
_SESSION_ID = re.compile(r"(?P<when>\d{8}-\d{6})-[0-9a-f]{4}")
_PERSON = re.compile(rb"(?P<name>[^<>\n]*) <(?P<email>[^<>\n]*)> (?P<time>\d+) (?P<tz>[+-]\d{4})")
_HEADER_ORDER = ("tree", "parent", "author", "committer")
_FILE_MODES = frozenset({b"100644", b"100755", b"120000"})
_GITLINK = b"160000"
_CONTROL = re.compile("[\x00-\x1f\x7f]")
# Code points HFS+ ignores in names, so that ".g\u200cit" is ".git" there (git's is_hfs_dotgit).
_IGNORED_BY_HFS = re.compile("[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]")
# Files git itself reads from the tree (the 8.3 short name of .gitmodules too), by their bare name.
_GIT_FILES = {
    ".gitmodules": ".gitmodules",
    "gitmod~1": ".gitmodules",
    ".gitattributes": ".gitattributes",
    ".gitignore": ".gitignore",
    ".mailmap": ".mailmap",
}
_TRAILER = re.compile(r"(?P<key>[A-Za-z0-9][A-Za-z0-9-]*)[ \t]*:[ \t]*(?P<value>.*)")
# Read by `github.pull_task_ids` and `rejected` on any line of a message, so once in all of it.
_ONCE_IN_MESSAGE = ("Task-Id", "Task-Status")


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    email: str
    time: int  # seconds since the epoch
    offset: str  # "+0000"


def session_start(session: str) -> int | None:
    """When a session started (epoch seconds), from its id; None when it is no session id."""
    found = _SESSION_ID.fullmatch(session)
    if found is None:
        return None
    try:
        when = datetime.strptime(found["when"], "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(when.timestamp())


def parse_person(value: bytes) -> Person | None:
    found = _PERSON.fullmatch(value)
    if found is None:
        return None
    try:
        name, email = found["name"].decode(), found["email"].decode()
    except UnicodeDecodeError:
        return None
    return Person(name, email, int(found["time"]), found["tz"].decode())


def header_problem(commit: RawCommit) -> str:
    """Why a commit's headers are not the ones the tool writes ("" when they are): a tree, its
    parents, an author and a committer, in that order, and nothing else (no signature, no
    encoding: the tool writes neither)."""
    keys = [key for key, _ in commit.headers]
    expected = ["tree", *(["parent"] * keys.count("parent")), "author", "committer"]
    if keys == expected:
        return ""
    extra = sorted({k for k in keys if k not in _HEADER_ORDER})
    said = f"it has {', '.join(extra)}" if extra else "they are out of order or repeated"
    return f"its headers are not the tool's (tree, parents, author, committer): {said}"


def commit_problems(
    commit: RawCommit,
    *,
    identity: tuple[str, str],
    parent_times: Sequence[int],
    session: int | None,
    session_seconds: float,
    now: int,
) -> list[str]:
    """Why a commit (whose headers are the tool's) is not one the tool made: its identities and
    dates, and a message that is not text.

    Dates must not lie ahead of `now` (beyond a job's clock running fast), nor long before the
    parents' or the start of the `session` they name, nor long after that session's time.
    """
    problems = []
    for role in ("author", "committer"):
        person = parse_person(commit.header(role)[0])
        if person is None:
            problems.append(f"its {role} line does not parse")
            continue
        if (person.name, person.email) != identity:
            problems.append(
                f'its {role} is "{show(person.name)} <{show(person.email)}>", not the tool\'s '
                f"{identity[0]} <{identity[1]}>: the tool makes every commit itself"
            )
        problems += _date_problems(role, person.time, parent_times, session, session_seconds, now)
    try:
        text = commit.message.decode("utf-8")
    except UnicodeDecodeError:
        return [*problems, "its message is not UTF-8"]
    if "\0" in text:
        problems.append("its message holds a NUL byte")
    if any(ch in BIDI_CONTROLS for ch in text):
        problems.append(f"its message holds bidirectional controls ({_bidi(text)})")
    return problems


def _date_problems(
    role: str,
    when: int,
    parent_times: Sequence[int],
    session: int | None,
    session_seconds: float,
    now: int,
) -> Iterator[str]:
    said = f"its {role} date {_date(when)}"
    if when > now + FUTURE_SLACK:
        yield f"{said} is in the future"
    elif parent_times and when < max(parent_times) - CLOCK_SLACK:
        yield f"{said} is long before its parent's ({_date(max(parent_times))})"
    elif session is not None and when < session - CLOCK_SLACK:
        yield f"{said} is long before its session started ({_date(session)})"
    elif session is not None and when > session + session_seconds + CLOCK_SLACK:
        yield f"{said} is long after its session's time ({_date(session)})"


def _date(when: int) -> str:
    try:
        return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):
        return str(when)


def trailer_lines(message: str) -> list[tuple[str, str]]:
    """The `Key: value` lines of the message's last paragraph, in order, repeats kept (a dict of
    trailers, as pygit2 gives them, hides a second `Task-Id`)."""
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", message.strip()) if p.strip()]
    if len(paragraphs) < 2:
        return []
    found = []
    for line in paragraphs[-1].splitlines():
        match = _TRAILER.fullmatch(line.strip())
        if match is not None:
            found.append((match["key"], match["value"].strip()))
    return found


def trailer_problems(message: str, allowed: Iterable[str], required: Iterable[str]) -> list[str]:
    """Trailers the tool never writes here, writes once, or always writes, as a message has them."""
    problems = []
    for key in _ONCE_IN_MESSAGE:
        count = len(re.findall(rf"(?im)^[ \t]*{key}[ \t]*:", message))
        if count > 1:
            problems.append(f"carries {count} `{key}` lines; the tool writes one")
    lines = trailer_lines(message)
    counts = Counter(key.casefold() for key, _ in lines)
    allowed_keys = {key.casefold() for key in allowed}
    once = {key.casefold() for key in _ONCE_IN_MESSAGE}
    for folded, count in counts.items():
        key = next(k for k, _ in lines if k.casefold() == folded)
        if folded not in allowed_keys:
            problems.append(f"carries a `{key}` trailer, which the tool does not write here")
        elif count > 1 and folded not in once:  # those are counted above
            problems.append(f"carries {count} `{key}` trailers; the tool writes one")
    problems += [f"carries no `{k}` trailer" for k in required if k.casefold() not in counts]
    return problems


def tree_problems(tree: RawTree) -> list[str]:
    """Why a tree is not one git (or the tool) would write: odd names, modes or entries.

    The tool's trees hold files, executables, symlinks and trees under unique, sorted, plain
    names; anything else can check out differently on different systems, or into `.git`.
    """
    where = tree.path or "the root tree"
    if tree.malformed:
        return [f"{where} ({tree.id[:12]}): {tree.malformed}"]
    problems = []
    names: dict[bytes, int] = {}
    previous: bytes | None = None
    for entry in tree.entries:
        shown = f"{tree.path}{show(entry.name.decode('utf-8', 'replace'))}"
        why = name_problem(entry.name)
        if not why and entry.mode == b"120000":
            bare = _bare(entry.name.decode("utf-8", "replace"))
            if bare in _GIT_FILES:
                why = f"a symlink named {_GIT_FILES[bare]}, which git refuses to follow"
        if why:
            problems.append(f"{shown or where}: {why}")
        names[entry.name] = names.get(entry.name, 0) + 1
        key = entry.name + (b"/" if entry.mode == TREE_MODE else b"")
        if previous is not None and key <= previous and names[entry.name] == 1:
            problems.append(f"{where}: its entries are not in git's order (at {shown})")
        previous = key
        kind = {TREE_MODE: "tree", _GITLINK: None}.get(entry.mode, "blob")
        if entry.mode not in _FILE_MODES and entry.mode not in (TREE_MODE, _GITLINK):
            mode = entry.mode.decode("ascii", "replace")
            problems.append(f"{shown}: mode {mode!r} is not one git writes")
        elif kind is not None and entry.kind != kind:
            found = entry.kind or "missing"
            problems.append(f"{shown}: its mode says {kind}, but the object is {found}")
    for name, count in names.items():
        if count > 1:
            shown = f"{tree.path}{show(name.decode('utf-8', 'replace'))}"
            problems.append(f"{shown}: {count} entries with this name in one tree")
    return problems


def name_problem(name: bytes) -> str:
    """Why one path component may not come in ("" when it may)."""
    if not name:
        return "an empty name"
    if b"/" in name or b"\0" in name:
        return "a name holding '/' or NUL"
    if name in (b".", b".."):
        return f"named {name.decode()!r}"
    try:
        text = name.decode("utf-8")
    except UnicodeDecodeError:
        return "a name that is not UTF-8"
    if _CONTROL.search(text):
        return "a name holding a control character"
    if any(ch in BIDI_CONTROLS for ch in text):
        return f"a name holding a bidirectional control ({_bidi(text)}), which hides what it is"
    bare = _bare(text)
    if bare in (".git", "git~1"):
        return "named like git's own directory (.git), which git refuses to check out"
    if bare in _GIT_FILES and text != _GIT_FILES[bare]:
        return f"named like {_GIT_FILES[bare]}, which git reads as that on some systems"
    return ""


def _bare(name: str) -> str:
    """A name as case-insensitive file systems see it: HFS+ ignores some code points, NTFS
    trailing dots and spaces."""
    return unicodedata.normalize("NFC", _IGNORED_BY_HFS.sub("", name)).casefold().rstrip(". ")


def change_problems(
    change: Change, constraints: Constraints, repo_files: frozenset[str]
) -> list[Violation]:
    """What the post-flight rules (`inspect`) leave to `verify`: lines nobody can review,
    bidirectional controls, CODEOWNERS, submodules, and symlinks out of the approved dirs."""
    found: list[Violation] = []
    for f in change.files:
        found += _long_lines(f)
        found += _bidi_in(f)
        found += _codeowners(f)
        found += _gitlink(f, repo_files)
        found += _symlink_leaves_approved(f, constraints)
    return found


def _long_lines(f: FileChange) -> Iterator[Violation]:
    if f.is_binary:
        return
    longest = max((len(line) for line in f.added_lines), default=0)
    if longest > MAX_LINE_CHARS:
        yield Violation(
            "long-line",
            f"{show(f.path)}: an added line is {longest:,} characters long, over the limit of "
            f"{MAX_LINE_CHARS:,}; no person can review it",
            f.path,
        )


def _bidi_in(f: FileChange) -> Iterator[Violation]:
    for path in filter(None, (f.path, f.old_path, f.symlink_target)):
        if any(ch in BIDI_CONTROLS for ch in path):
            yield Violation(
                "bidi-control",
                f"{show(f.path)}: its path or link target holds a bidirectional control "
                f"({_bidi(path)}), which makes it read as something else",
                f.path,
            )
            return
    lines = [n for n, line in enumerate(f.added_lines, 1) if any(c in BIDI_CONTROLS for c in line)]
    if lines and not f.is_binary:
        yield Violation(
            "bidi-control",
            f"{show(f.path)}: {len(lines)} added line(s) hold bidirectional controls "
            f"({_bidi(f.added_lines[lines[0] - 1])}), which make code read otherwise than it "
            "runs (Trojan Source)",
            f.path,
        )


def _codeowners(f: FileChange) -> Iterator[Violation]:
    owners = {p.casefold() for p in CODEOWNERS_PATHS}
    why = "a CODEOWNERS file, which GitHub reads to choose who must approve a change"
    for path in filter(None, (f.path, f.old_path)):
        if path.casefold() in owners:
            yield Violation(
                "protected-file",
                f"{show(path)}: {f.status.value}, but it is {why}; the tool never writes one",
                path,
            )
            return
    if f.is_symlink and f.status is not FileStatus.DELETED and f.symlink_target:
        target = resolve_link(f.path, f.symlink_target)
        if target is not None and target.casefold() in owners:
            yield Violation(
                "protected-file", f"{show(f.path)}: symlink to {show(target)}, {why}", f.path
            )


def _gitlink(f: FileChange, repo_files: frozenset[str]) -> Iterator[Violation]:
    if f.mode == GITLINK_MODE and f.status is not FileStatus.DELETED:
        declared = "" if ".gitmodules" in repo_files else ", and no .gitmodules declares it"
        yield Violation(
            "submodule",
            f"{show(f.path)}: a submodule (gitlink, mode 160000){declared}; a task may not add "
            "or move submodules",
            f.path,
        )


def _symlink_leaves_approved(f: FileChange, c: Constraints) -> Iterator[Violation]:
    if not f.is_symlink or f.status is FileStatus.DELETED or not f.symlink_target:
        return
    resolved = resolve_link(f.path, f.symlink_target)
    if resolved is None:
        return  # it leaves the repository: `inspect` says so
    if not approved(resolved, c):
        yield Violation(
            "symlink-outside",
            f'{show(f.path)}: symlink to "{show(f.symlink_target)}", which leads to '
            f'"{show(resolved) or "the repository root"}", outside the approved directories',
            f.path,
        )


def _bidi(text: str) -> str:
    return ", ".join(sorted({f"U+{ord(ch):04X}" for ch in text if ch in BIDI_CONTROLS}))
