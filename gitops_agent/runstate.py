"""One run per repository (a lock), and what the running one is doing (for `status`)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import filelock

from gitops_agent.errors import UserError
from gitops_agent.files import write_atomic
from gitops_agent.results import Phase
from gitops_agent.sandbox.process import process_alive

STATE_DIR = "gitops-agent"  # under the repository's (common) git directory: what runs leave here
RUN_FILE = "run.json"
LOCK_FILE = "run.lock"
# A ref lock file (`<ref>.lock`) older than this, found while we hold the run lock, was left by
# a process that died moving the ref: a live writer holds one for milliseconds. It is cleared.
STALE_REF_LOCK = 1.0  # seconds


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def pid_alive(pid: int) -> bool:
    return process_alive(pid)


def read_run_state(state_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((state_dir / RUN_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {"stale": True}
    return data if isinstance(data, dict) else None


class RunState:
    """The live state file of the running session; written atomically on every phase change."""

    def __init__(self, state_dir: Path, session: str) -> None:
        self._path = state_dir / RUN_FILE
        self._data: dict[str, Any] = {
            "session": session,
            "pid": os.getpid(),
            "started": now_iso(),
            "task": None,
            "phase": Phase.STARTING.value,
            "attempt": 0,
            "max_attempts": 0,
            "updated": now_iso(),
        }
        self._write()

    def update(self, **changes: Any) -> None:
        self._data.update(changes, updated=now_iso())
        self._write()

    def _write(self) -> None:
        write_atomic(self._path, json.dumps(self._data).encode(), fsync=False)

    def clear(self) -> None:
        self._path.unlink(missing_ok=True)


@contextmanager
def run_lock(state_dir: Path) -> Iterator[tuple[list[str], dict[str, Any] | None]]:
    """Hold the repository's run lock; yields notes about a killed run's leftovers it cleared,
    and the state file that run left (None when the last run ended as it should).

    The lock is an OS file lock: a killed run's lock is released by the kernel, so a stale
    lock cannot block the next run; what the killed run left (its state file) is cleared here.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(state_dir / LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        other = read_run_state(state_dir) or {}
        who = f" (session {other.get('session')}, pid {other.get('pid')})" if other else ""
        raise UserError(
            f"another gitops-agent run is in progress{who}; wait for it to finish",
            str(state_dir / LOCK_FILE),
        ) from None
    try:
        notes = []
        leftover = read_run_state(state_dir)
        if leftover is not None:
            notes.append(
                f"Cleared what a killed run left behind (session {leftover.get('session')}, "
                f"pid {leftover.get('pid')}, last seen {leftover.get('updated')})."
            )
            (state_dir / RUN_FILE).unlink(missing_ok=True)
        yield notes, leftover
    finally:
        lock.release()
