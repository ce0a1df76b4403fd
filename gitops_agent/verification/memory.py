"""The memory branch from an artifact: it may only grow.

It continues the remote's (whose tip must be an ancestor), each new commit only appends to the
files it had (a session's record never changes), records its own session only, and it holds
nothing but plain files under memory/ and state/.
"""

from __future__ import annotations

from gitops_agent.events import EVENTS_DIR
from gitops_agent.git import Repo
from gitops_agent.git.objects import files_of
from gitops_agent.git.remote import incoming_commits
from gitops_agent.policy.provenance import trailer_problems
from gitops_agent.results import MEMORY_BRANCH, MEMORY_DIR, SESSIONS_DIR

from . import Check, raw_problems

_MEMORY_ROOTS = (f"{MEMORY_DIR}/", f"{SESSIONS_DIR.split('/')[0]}/")
_PLAIN_FILE = 0o100644
_MEMORY_TRAILERS = ("Session", "Gitops-Agent-Version")


def memory_problems(checking: Check, tip: str) -> list[str]:
    """The memory branch may only grow: it continues the remote's, and every file it had keeps
    its bytes at the start (a log appended to, a record unchanged)."""
    repo = checking.base.repo
    on_remote = checking.origin.get(MEMORY_BRANCH)
    known = [on_remote] if on_remote is not None else []
    problems, malformed = raw_problems(checking, MEMORY_BRANCH, tip, known, memory=True)
    if malformed:
        return problems
    if on_remote is not None and not repo.is_merged(on_remote, tip):
        return [
            *problems,
            f"{MEMORY_BRANCH} does not continue {checking.remote}/{MEMORY_BRANCH} "
            f"({on_remote[:12]}): its history was rewritten, emptied or replaced, and the "
            "memory may only grow",
        ]
    for commit in incoming_commits(repo, tip, known):
        short = f"{MEMORY_BRANCH} {commit.info.id[:12]}"
        merge_commit = len(commit.info.parents) > 1
        required = () if merge_commit else ("Session",)  # a join records no session itself
        said = trailer_problems(commit.info.message, _MEMORY_TRAILERS, required)
        problems += [f"{short}: {p}" for p in said]
        bad = sorted(
            path
            for path, mode in commit.paths.items()
            if not path.startswith(_MEMORY_ROOTS) or mode != _PLAIN_FILE
        )
        if bad:
            shown = ", ".join(bad[:5]) + (" ..." if len(bad) > 5 else "")
            problems.append(
                f"{short}: holds more than plain files under memory/ and state/: {shown}"
            )
        own = f"{SESSIONS_DIR}/{commit.info.trailers.get('Session')}.json"
        stray = [
            f.path
            for f in commit.change.files
            if f.path.startswith(f"{SESSIONS_DIR}/") and f.path != own and not merge_commit
        ]
        if stray:
            problems.append(f"{short}: writes another session's record: {', '.join(stray)}")
        if commit.info.parents:
            problems += [
                f"{short}: {p}" for p in _shrinks(repo, commit.info.parents[0], commit.info.id)
            ]
    known_events = set() if on_remote is None else set(files_of(repo, on_remote))
    events = sorted(
        path
        for path in files_of(repo, tip)
        if path.startswith(f"{EVENTS_DIR}/") and path not in known_events
    )
    if events:
        problems.append(
            f"{MEMORY_BRANCH}: records lifecycle events ({', '.join(events[:3])}); only merge, "
            "scan, propose and rollback record them, never a job that ran an agent"
        )
    if on_remote is not None and not problems:  # a commit that took something away said so
        problems += [f"{MEMORY_BRANCH}: {p}" for p in _shrinks(repo, on_remote, tip)]
    return problems


def _shrinks(repo: Repo, old: str, new: str) -> list[str]:
    """How `new` takes away from what `old` recorded: a file gone, or changed other than by
    appending; a session's record (state/sessions/*.json) may not change at all."""
    problems = []
    after_files = files_of(repo, new)
    for path, (blob, _mode) in sorted(files_of(repo, old).items()):
        now = after_files.get(path)
        if now is None:
            problems.append(f"removes {path}, which the memory recorded")
            continue
        if now[0] == blob:
            continue
        before, after = repo.read_blob(old, path) or b"", repo.read_blob(new, path) or b""
        if path.startswith(f"{SESSIONS_DIR}/"):
            problems.append(f"rewrites {path}, a session's record")
        elif not after.startswith(before):
            problems.append(f"rewrites {path}, which may only be appended to")
    return problems
