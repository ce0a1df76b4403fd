"""Auto-approved results on their way into the base: quarantine, re-tests, and the decision.

A task whose approval is `auto` is committed on its own branch (`autonomous/<session>-<task>`,
its commit carrying `Approval: auto`). From then on it waits `quarantine_hours`. Each `merge`
re-tests it: the base's gate on its merge with the latest base, materialised fresh and run
confined. A failed re-test (or a merge that conflicts) ends its way to the base for good: a
person decides. One that stayed green to the end is merged by the tool.

Every step is an event on the memory branch (`events.Event`), keyed by the branch and its tip:
the state is read back from them, so a step is never taken (or announced) twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from gitops_agent.clock import iso
from gitops_agent.constraints import Constraints
from gitops_agent.events import Event, EventKind
from gitops_agent.gate import Gate
from gitops_agent.gate.bench import gate_bench
from gitops_agent.git import Repo
from gitops_agent.git.base import changed_paths, merge_base
from gitops_agent.git.merge import commit_merge, merge
from gitops_agent.memory import record_event
from gitops_agent.notify import notify, notify_urls
from gitops_agent.plan import Approval, Plan, Settings
from gitops_agent.policy.paths import matches
from gitops_agent.render import parse_time
from gitops_agent.review import every_awaiting_review

RETEST_HOURS = 6.0  # a result is re-tested at least this often, and whenever the base moved
APPROVAL_TRAILER = "Approval"


@dataclass(frozen=True, slots=True)
class Candidate:
    """An unmerged branch whose every commit is an auto-approved task's."""

    branch: str  # without a remote's prefix: how events name it
    tip: str
    tasks: tuple[str, ...]
    sessions: tuple[str, ...]
    remote: bool  # only the remote has it (a fresh clone: every scheduled run)


@dataclass(frozen=True, slots=True)
class State:
    """What the events say of one candidate (branch at tip)."""

    started: datetime | None = None
    last_retest: Event | None = None
    cancelled: Event | None = None
    merged: Event | None = None

    def ends(self, hours: float) -> datetime | None:
        return None if self.started is None else self.started + timedelta(hours=hours)


def candidates(repo: Repo, base_commit: str, remote: str) -> list[Candidate]:
    """The auto-approved branches awaiting the base, ours and the remote's (as fetched)."""
    found: list[Candidate] = []
    for waiting in every_awaiting_review(repo, base_commit, remote):
        commits = repo.commits_between(waiting.tip, base_commit)
        if not commits or any(
            c.trailers.get(APPROVAL_TRAILER) != Approval.AUTO.value or "Task-Id" not in c.trailers
            for c in commits
        ):
            continue
        name = waiting.branch.removeprefix(f"{remote}/")
        if any(c.branch == name for c in found):
            continue
        found.append(
            Candidate(
                branch=name,
                tip=waiting.tip,
                tasks=waiting.tasks,
                sessions=tuple(dict.fromkeys(c.trailers.get("Session", "") for c in commits)),
                remote=waiting.branch != name,
            )
        )
    return found


def state_of(events: Sequence[Event], branch: str, tip: str) -> State:
    mine = [e for e in events if e.branch == branch and e.data.get("tip") == tip]
    started = next((e for e in mine if e.kind is EventKind.QUARANTINED), None)
    retests = [e for e in mine if e.kind is EventKind.RETESTED]
    return State(
        started=None if started is None else parse_time(started.time),
        last_retest=retests[-1] if retests else None,
        cancelled=next((e for e in mine if e.kind is EventKind.CANCELLED), None),
        merged=next((e for e in mine if e.kind is EventKind.MERGED), None),
    )


def retest_due(state: State, base_commit: str, now: datetime) -> bool:
    """A re-test is due when there was none, the base moved since, or RETEST_HOURS passed."""
    last = state.last_retest
    if last is None or last.data.get("base_commit") != base_commit:
        return True
    return now - parse_time(last.time) >= timedelta(hours=RETEST_HOURS)


def forbidden(
    repo: Repo, candidate: Candidate, base_commit: str, plan: Plan, rules: Constraints
) -> str | None:
    """Why the tool may not merge this result, or None: the constraints forbid it, the plan on
    the base does not (or no longer) give its tasks `auto`, or it changes what the rules keep
    for people. The branch's own `Approval:` trailer is never enough on its own."""
    if not rules.auto_merge:
        return "the constraints forbid the tool to merge (auto_merge: false)"
    for task_id in candidate.tasks:
        task = plan.task(task_id)
        if task is None or task.approval_in(plan.settings) is not Approval.AUTO:
            return f"the plan on the base does not give task `{task_id}` approval auto"
    fork = merge_base(repo, candidate.tip, base_commit) or base_commit
    for path in changed_paths(repo, fork, candidate.tip):
        kept = next((p for p in rules.protected if matches(p, path)), None)
        if kept is not None:
            return f"it changes {path}, which the rules protect ({kept})"
        pattern = next((p for p in rules.no_auto_merge if matches(p, path)), None)
        if pattern is not None:
            return f"it changes {path}, which a person must merge (no_auto_merge: {pattern})"
    return None


@dataclass(frozen=True, slots=True)
class Retest:
    passed: bool
    why: str  # one sentence
    output: str = ""


def merged_with_base(repo: Repo, tip: str, base_commit: str) -> str | tuple[str, ...]:
    """The commit the result would become on the base: its tip when the base is already in it,
    else a merge commit (on no branch); the conflicting paths when it does not merge."""
    if repo.is_merged(base_commit, tip):
        return tip
    done = merge(repo, base_commit, tip)
    if done.tree is None:
        return done.conflicts
    return commit_merge(repo, done.tree, [base_commit, tip], "Re-test: the result on the base")


def retest(
    repo: Repo,
    candidate: Candidate,
    base_commit: str,
    gate: Gate | None,
    rules: Constraints,
    place: Path,
) -> Retest:
    """The base's gate on the result merged with the latest base, in a fresh confined tree."""
    if gate is None:
        return Retest(False, "there is no quality gate on the base to re-test it with")
    merged = merged_with_base(repo, candidate.tip, base_commit)
    if isinstance(merged, tuple):
        return Retest(False, f"it no longer merges with the base: {', '.join(merged)} conflict")
    with gate_bench(repo, gate, base_commit, rules, place) as judged:
        result = judged(merged)
    if result.passed:
        return Retest(True, f"the gate passed on its merge with the base ({gate.source})")
    return Retest(
        False,
        f"the gate failed on its merge with the base ({result.command}): {result.failure}",
        result.output,
    )


def begin(
    repo: Repo,
    settings: Settings,
    branch: str,
    tip: str,
    tasks: Sequence[str],
    moment: datetime,
) -> list[str]:
    """Start a result's quarantine: its event (the clock starts here) and a 🔬 notification.
    Returns the notification's problems, for people."""
    hours = settings.quarantine_hours
    ends = moment + timedelta(hours=hours)
    event = Event.create(
        EventKind.QUARANTINED,
        moment,
        f"{branch} is in quarantine for {hours:g} h",
        branch=branch,
        commit=tip,
        tasks=tasks,
        lines=[f"Re-tested on every run; merged after {iso(ends)} if it stays green."],
        data={"tip": tip, "ends": iso(ends), "hours": hours},
    )
    record_event(repo, event, timezone=settings.timezone)
    return notify(
        notify_urls(settings.notify),
        f"🔬 gitops-agent: {', '.join(tasks)} in quarantine",
        f"{branch} passed the gate and waits {hours:g} h (until {iso(ends)}), re-tested on "
        "every run, before gitops-agent merges it.",
    )
