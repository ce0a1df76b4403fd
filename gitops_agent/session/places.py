"""Where a session's workspaces live: outside the user's repository, in memory when there is room.

Each session has the agent's workspace, the gate's, and a scratch directory (the running
command's private HOME and TMPDIR), under one directory per repository.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gitops_agent.files import remove_tree
from gitops_agent.git import Repo, Workspace

WORK_VARIABLE = "GITOPS_AGENT_WORK_DIR"  # where workspaces live, instead of the defaults


@dataclass(frozen=True, slots=True)
class Places:
    """The session's directories, outside the user's repository."""

    agent: Workspace  # where the agent works
    gate: Workspace  # where the gate runs, on exactly the tree to commit
    scratch: Path  # the running command's private HOME and TMPDIR, emptied for each


@contextmanager
def session_places(
    repo: Repo, base_commit: str, session: str, *, agent_leaves: Sequence[str] = ()
) -> Iterator[Places]:
    """The session's places, removed when it ends (or by the next run, if it is killed).

    `agent_leaves`: patterns of what the agent's CLI leaves in its checkout, never committed.
    """
    root = work_dir(repo, repo.tree_bytes(base_commit)) / session
    root.mkdir(parents=True)
    try:
        yield Places(
            agent=Workspace(repo, root / "tree", ignored=agent_leaves),
            gate=Workspace(repo, root / "gate"),
            scratch=root / "scratch",
        )
    finally:
        remove_tree(root)


def remove_leftovers(repo: Repo) -> None:
    """Workspaces of runs that were killed: nothing in them is kept, by design."""
    for place in work_places(repo):
        if place.is_dir():
            for leftover in place.iterdir():
                remove_tree(leftover)


SHM = Path("/dev/shm")
SHM_HEADROOM = 256 << 20  # free memory a session leaves in /dev/shm beyond its two trees


def work_places(repo: Repo) -> list[Path]:
    """Where this repository's workspaces may live, one directory per repository (named by
    a hash of its path): GITOPS_AGENT_WORK_DIR if set; else memory (/dev/shm), then the user's
    cache directory."""
    key = hashlib.sha256(str(repo.common_dir).encode()).hexdigest()[:16]
    name = f"{repo.root.name[:40]}-{key}"
    chosen = os.environ.get(WORK_VARIABLE)
    if chosen:
        return [Path(chosen).resolve() / name]
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return [
        SHM / f"gitops-agent-{os.getuid()}" / name,
        Path(cache).resolve() / "gitops-agent" / "work" / name,
    ]


def work_dir(repo: Repo, tree_bytes: int) -> Path:
    """The place for a session's workspaces: in memory when /dev/shm is a tmpfs with room for
    its two copies of the tree (checkouts there take a tenth of the time), else on disk."""
    places = work_places(repo)
    if len(places) == 1:
        return places[0]
    memory, disk = places
    try:
        free = os.statvfs(SHM)
        room = free.f_bavail * free.f_frsize
        is_tmpfs = any(
            line.split()[1:3] == [str(SHM), "tmpfs"]
            for line in Path("/proc/mounts").read_text().splitlines()
        )
    except OSError:  # no /dev/shm, or no /proc
        return disk
    roomy = is_tmpfs and os.access(SHM, os.W_OK) and room > 2 * tree_bytes + SHM_HEADROOM
    return memory if roomy and private_dir(memory.parent) else disk


def private_dir(path: Path) -> bool:
    """Make `path` (in a directory every user can write) ours alone; False if someone else got
    there first: a directory or link of theirs would let them reach our workspaces."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError:
        return False
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        return False
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return True
