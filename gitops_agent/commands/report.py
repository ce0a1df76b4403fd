"""`gitops-agent report`: the morning brief, as markdown, JSON or a page to look at."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta, tzinfo
from pathlib import Path

from gitops_agent.clock import now as clock_now
from gitops_agent.errors import UserError
from gitops_agent.files import write_atomic
from gitops_agent.git import Repo
from gitops_agent.memory import zone_of
from gitops_agent.project import find_root
from gitops_agent.report import Brief, gather, load_at_base

_AGE = re.compile(r"^\s*(\d+)\s*([dh])\s*$", re.IGNORECASE)


def parse_since(text: str, now: datetime, zone: tzinfo) -> datetime:
    """`--since`: an age (`3d`, `12h`), a day (`2026-11-20`, from its midnight in `zone`), or a
    time (`2026-11-20T06:00`, in `zone` unless it names its offset)."""
    age = _AGE.match(text)
    if age is not None:
        amount = int(age[1])
        unit = timedelta(days=1) if age[2].lower() == "d" else timedelta(hours=1)
        return now - amount * unit
    try:
        if len(text.strip()) == 10:
            day = datetime.strptime(text.strip(), "%Y-%m-%d").date()
            return datetime.combine(day, time(), tzinfo=zone)
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserError(
            f"`{text}` is not a date (2026-11-20), a time (2026-11-20T06:00) or an age (3d, 12h)",
            "--since",
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=zone)


def report(
    repo: Path | None,
    *,
    plan: Path | None = None,
    constraints: Path | None = None,
    since: str | None = None,
    sessions: int = 7,
    agent_command: str | None = None,
    now: datetime | None = None,
) -> Brief:
    """The brief for the repository at `repo` (or the one the current directory is in)."""
    if sessions < 1:
        raise UserError("must be at least 1", "--sessions")
    opened = Repo.open(find_root(repo))
    view = load_at_base(opened, plan, constraints)
    now = now or clock_now()  # GITOPS_AGENT_NOW moves it, as it moves `merge`'s quarantine
    start = None if since is None else parse_since(since, now, zone_of(view.timezone))
    return gather(opened, view, agent_command=agent_command, since=start, window=sessions, now=now)


def write_page(path: Path, html: str) -> None:
    """Write the HTML page atomically (a browser never shows half of it), into a directory
    that exists: a mistyped path is an error, never a directory tree made for it."""
    if path.is_dir():
        raise UserError("is a directory; give a file name like report.html", str(path))
    parent = path.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise UserError(f"cannot write the page: {parent} {what}", str(path))
    try:
        write_atomic(path, html.encode("utf-8"))
    except OSError as err:
        raise UserError(f"cannot write the page: {err.strerror}", str(path)) from None
