"""Leases on tasks, so that two runs from two clones never take the same task at once.

A claim is the ref `refs/gitops-agent/claims/<task>` on the remote, pointing at a small commit
whose trailers name the session, the machine and process that hold it, and when it expires. It
is created only where there is none, or where the one there is dead (expired, or its process
is gone on this machine), by a compare-and-swap push: of two runs claiming at once, exactly one
wins. It is deleted, by the same compare-and-swap, once the run has pushed its results, so that
the next run finds those results awaiting review rather than a free task. A run killed before
it releases its claims blocks their tasks only until they expire.

Only `run --push` claims: a run that does not push its results cannot tell other runs about
them either, and may hold no token that can write.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gitops_agent.errors import UserError
from gitops_agent.git import RefMovedError, Repo
from gitops_agent.git.remote import (
    fetch_refs,
    push_cas,
    record_commit,
    remote_url,
    tracking_prefix,
)
from gitops_agent.git.repo import OWN_PREFIX, TOOL_REF_PREFIX
from gitops_agent.project import find_root
from gitops_agent.runstate import pid_alive

CLAIMS_PREFIX = f"{TOOL_REF_PREFIX}claims/"
SEEN_PREFIX = f"{TOOL_REF_PREFIX}claims-seen/"  # the remote's claims as last fetched, here
# Past the session's time budget: recording, pushing and opening the PR take a few minutes.
MARGIN = timedelta(minutes=30)
# Each attempt reads the claim again; losing more than a few races in a row means the ref is
# being rewritten by something that is not one of us.
ATTEMPTS = 4


@dataclass(frozen=True, slots=True)
class Claim:
    """Who holds a task, until when: one claim commit, as read back from the remote."""

    task: str
    session: str
    expires: datetime
    host: str
    pid: int

    @classmethod
    def parse(cls, message: str) -> Claim | None:
        """The claim a commit message records; None when it is not one (then it counts as dead)."""
        fields: dict[str, str] = {}
        for line in message.strip().splitlines():
            key, sep, value = line.partition(": ")
            if sep:
                fields[key] = value.strip()
        try:
            expires = datetime.fromisoformat(fields["Claim-Expires"])
            return cls(
                task=fields["Claim-Task"],
                session=fields["Session"],
                expires=expires if expires.tzinfo else expires.replace(tzinfo=UTC),
                host=fields.get("Claim-Host", ""),
                pid=int(fields.get("Claim-Pid", "0")),
            )
        except (KeyError, ValueError):
            return None

    def trailers(self) -> dict[str, str]:
        return {
            "Claim-Task": self.task,
            "Session": self.session,
            "Claim-Expires": self.expires.astimezone(UTC).isoformat(timespec="seconds"),
            "Claim-Host": self.host,
            "Claim-Pid": str(self.pid),
        }

    def alive(self, now: datetime, host: str) -> bool:
        """Not expired, and (on this machine, where we can tell) its process still runs."""
        if self.expires <= now:
            return False
        return self.host != host or pid_alive(self.pid)


def claim_ref(task_id: str) -> str:
    """The claim's ref name; a task id that is no valid ref component is spelled in hex."""
    plain = not (task_id.startswith(".") or task_id.endswith((".", ".lock")) or ".." in task_id)
    return CLAIMS_PREFIX + (task_id if plain else "x-" + task_id.encode().hex())


class Claims:
    """The claims one run takes on one remote, and gives back at its end."""

    def __init__(self, repo: Repo, remote: str, *, read_only: bool = False) -> None:
        self._repo = repo
        self._remote = remote
        self._read_only = read_only  # respect other runs' claims, take none (cannot push)
        self._host = socket.gethostname()
        self._held: dict[str, str] = {}  # task id -> our claim commit on the remote

    @property
    def read_only(self) -> bool:
        """A job that cannot push (the workflow's agent jobs): what it leaves is checked by
        `verify`, which takes in no lifecycle event from it."""
        return self._read_only

    @classmethod
    def open(cls, repo_dir: Path | None, remote: str, *, read_only: bool = False) -> Claims | None:
        """Claims on `remote`; None where the repository has no such remote (a laptop).
        `read_only`: for a job that cannot push (the workflow's agent jobs), which skips the
        tasks another run holds but claims nothing itself."""
        repo = Repo.open(find_root(repo_dir))
        if remote_url(repo, remote) is None:
            return None
        return cls(repo, remote, read_only=read_only)

    def refresh(self) -> None:
        """Fetch the remote's autonomous branches and claims: what other runs did meanwhile."""
        branches = tracking_prefix(self._repo, self._remote)
        fetch_refs(
            self._repo,
            self._remote,
            [f"+{OWN_PREFIX}*:{branches}*", f"+{CLAIMS_PREFIX}*:{SEEN_PREFIX}*"],
        )

    def take(self, task_id: str, session: str, expires: datetime) -> Claim | None:
        """Claim the task for `session` until `expires`. None when it is ours now (the remote's
        branches were fetched after, so a result pushed before our claim is seen); otherwise
        the live claim of the run that holds it."""
        if task_id in self._held:
            return None
        refname = claim_ref(task_id)
        mine = Claim(task_id, session, expires, self._host, os.getpid())
        for _attempt in range(ATTEMPTS):
            self.refresh()
            seen = SEEN_PREFIX + refname.removeprefix(CLAIMS_PREFIX)
            current = self._repo.tool_refs(seen).get(seen)
            if current is not None:
                theirs = Claim.parse(self._repo.commit_message(current[0]))
                if theirs is not None and theirs.alive(datetime.now(UTC), self._host):
                    return theirs
            if self._read_only:
                return None
            commit = record_commit(self._repo, f"Claim {task_id}", mine.trailers())
            expected = None if current is None else current[0]
            try:
                push_cas(self._repo, self._remote, refname, commit, expected=expected)
            except RefMovedError:
                continue  # another run claimed (or released) it meanwhile: read it again
            self._held[task_id] = commit
            self.refresh()
            return None
        raise UserError(
            f"{refname} on {self._remote} kept changing ({ATTEMPTS} attempts to claim it)"
        )

    def release(self, task_id: str) -> str | None:
        """Give the claim back; a note for people when that could not be done."""
        commit = self._held.pop(task_id, None)
        if commit is None:
            return None
        try:
            push_cas(self._repo, self._remote, claim_ref(task_id), None, expected=commit)
        except RefMovedError:
            return f"The claim on {task_id} was taken over by another run (it had expired)."
        except UserError as err:
            return f"The claim on {task_id} stays until it expires: removing it failed ({err})."
        return None

    def release_all(self) -> list[str]:
        return [note for task in list(self._held) if (note := self.release(task)) is not None]
