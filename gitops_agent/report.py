"""The morning brief: what the last sessions did, what needs a person, and what runs next.

`build_brief` is a function of data (the recorded sessions, the plan's verdicts, the branches
awaiting review, the lifecycle events, the time); the git and file reading around it is in
`gather`, so the rules here (success rate, heartbeat, "failed three nights running") are easy
to test. What the events say became of results (quarantine, merges, rollbacks, scans) is read
in `report_lifecycle`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from croniter import croniter  # type: ignore[import-untyped]

from gitops_agent.errors import UserError
from gitops_agent.events import Event
from gitops_agent.gate import resolve_gate
from gitops_agent.git import Repo
from gitops_agent.git.remote import DEFAULT_REMOTE, remote_url
from gitops_agent.github import WORKFLOW_PATH, repository_from_url
from gitops_agent.memory import load_events, load_sessions, zone_of
from gitops_agent.plan import DEFAULT_QUARANTINE_HOURS
from gitops_agent.policy.eligibility import (
    CountedQueue,
    QueueStats,
    Verdict,
    queue_name,
    queue_stats,
)
from gitops_agent.policy.eligibility import verdicts as check
from gitops_agent.project import Project, base_of
from gitops_agent.quarantine import Candidate, candidates, state_of
from gitops_agent.render import duration, localtime, parse_time, render
from gitops_agent.report_lifecycle import (
    Change,
    Proposed,
    Quarantined,
    Scan,
    changes_since,
    in_quarantine,
    scans_since,
)
from gitops_agent.results import Outcome, SessionResult, TaskResult
from gitops_agent.review import Awaiting, Kept, Place, every_awaiting_review, places_of

DEFAULT_SCHEDULE = "0 2 * * *"  # the plan setting's documented default
DEFAULT_WINDOW = timedelta(hours=24)
FAILING_RUNS = 3  # rolled back this many times running: a person should look
RAN = (Outcome.COMMITTED, Outcome.ROLLED_BACK)


class ProblemKind(enum.Enum):
    PLAN = "plan"  # the plan or the constraints do not load
    GATE_FAILED_ON_BASE = "gate_failed_on_base"
    FAILING = "failing"  # a task rolled back in each of the last FAILING_RUNS sessions it ran in
    HEARTBEAT = "heartbeat"  # no successful session as recently as the schedule expects
    NEEDS_HUMAN = "needs_human"  # the last session that judged a task set it to NEEDS_HUMAN
    CANCELLED = "auto_merge_cancelled"  # an auto-approved result the tool will not merge
    MEMORY = "memory"  # the events on the memory branch do not load


@dataclass(frozen=True, slots=True)
class Problem:
    kind: ProblemKind
    message: str
    task: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "message": self.message, "task": self.task}


@dataclass(frozen=True, slots=True)
class PlanRow:
    """One task of the plan as the brief shows it."""

    id: str
    title: str
    queue: CountedQueue
    eligible: bool
    awaiting: str | None  # the branch its result waits on
    why_not: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "queue": self.queue.value,
            "eligible": self.eligible,
            "awaiting_review": self.awaiting,
            "why_not": self.why_not,
        }


@dataclass(frozen=True, slots=True)
class SuccessRate:
    sessions: int
    committed: int
    rolled_back: int

    @property
    def rate(self) -> float | None:
        ran = self.committed + self.rolled_back
        return None if ran == 0 else self.committed / ran

    def to_json(self) -> dict[str, Any]:
        return {
            "sessions": self.sessions,
            "committed": self.committed,
            "rolled_back": self.rolled_back,
            "rate": None if self.rate is None else round(self.rate, 4),
        }


@dataclass(frozen=True, slots=True)
class Heartbeat:
    schedule: str
    every: str  # "every day", from the schedule
    expected: datetime  # the latest scheduled start that has had time to finish
    last_success: datetime | None  # when the last successful session finished
    overdue: bool
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "schedule": self.schedule,
            "every": self.every,
            "expected": _iso(self.expected),
            "last_success": None if self.last_success is None else _iso(self.last_success),
            "overdue": self.overdue,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class Brief:
    generated: datetime
    zone: tzinfo
    zone_name: str
    since: datetime
    sessions: tuple[SessionResult, ...]  # the ones to report, newest first
    older: bool  # none started since `since`: `sessions` holds the last one before it
    rate: SuccessRate
    heartbeat: Heartbeat
    problems: tuple[Problem, ...]
    queue: QueueStats | None  # None when the plan does not load
    next_tasks: tuple[PlanRow, ...]
    awaiting: tuple[Awaiting, ...]
    places: dict[str, Place]  # a reported committed task's commit -> where its result is now
    plan_rows: tuple[PlanRow, ...]
    plan_path: str | None
    base: str | None
    repository: str  # the repository's directory name, for titles
    recent: tuple[SessionResult, ...]  # the sessions the success rate covers, newest first
    chart: Chart | None = None  # the track record of the last CHART_SESSIONS sessions
    web: str | None = None  # the repository's web page (GitHub), for links; None: no links
    quarantine: tuple[Quarantined, ...] = ()  # auto-approved results waiting now
    changes: tuple[Change, ...] = ()  # merges, cancelled merges, rollbacks since `since`
    scans: tuple[Scan, ...] = ()  # problem scans since `since`, newest first
    proposals: tuple[Proposed, ...] = ()  # `propose`'s proposals since `since`, newest first

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "generated": _iso(self.generated),
            "timezone": self.zone_name,
            "since": _iso(self.since),
            "sessions": [s.to_record() for s in self.sessions],
            "older": self.older,
            "success_rate": self.rate.to_json(),
            "heartbeat": self.heartbeat.to_json(),
            "problems": [p.to_json() for p in self.problems],
            "queue": None if self.queue is None else self.queue.to_json(),
            "next_tasks": [{"id": t.id, "title": t.title} for t in self.next_tasks],
            "awaiting_review": [a.to_json() for a in self.awaiting],
            "results": {commit: place.to_json() for commit, place in self.places.items()},
            "plan": None
            if self.plan_path is None
            else {
                "path": self.plan_path,
                "base": self.base,
                "tasks": [row.to_json() for row in self.plan_rows],
            },
            "quarantine": [q.to_json() for q in self.quarantine],
            "lifecycle": [c.to_json() for c in self.changes],
            "scans": [scan.to_json() for scan in self.scans],
            "proposals": [p.to_json() for p in self.proposals],
        }

    def own_branch(self, session: SessionResult) -> str | None:
        """The branch to review for `session`: its own, here or on the remote; None when that
        branch is gone (left out of an integration and never pushed, merged and deleted)."""
        if session.branch is None:
            return None
        if not any(t.commit in self.places for t in session.tasks):
            return session.branch  # nothing known of where it is: as the session left it
        names = (session.branch, f"{DEFAULT_REMOTE}/{session.branch}")
        return next((a.branch for a in self.awaiting if a.branch in names), None)

    def kept_note(self, session: SessionResult, task: TaskResult) -> str:
        """Where a committed task's result is, when it is not on its session's branch: a
        sentence with `code` spans, or "" when there is nothing to add."""
        place = self.places.get(task.commit or "")
        if place is None:
            return ""
        if place.kept is Kept.MERGED:
            return f"merged into `{self.base or 'the base'}`"
        if place.kept is Kept.NOT_KEPT:
            return "on no branch (never pushed, or deleted): the task runs again"
        if place.branch in (session.branch, f"{DEFAULT_REMOTE}/{session.branch}"):
            return ""
        return f"under review on `{place.branch}`"

    @property
    def tasks(self) -> list[tuple[SessionResult, TaskResult]]:
        """Every task of the reported sessions, newest session first."""
        return [(s, t) for s in self.sessions for t in s.tasks]

    @property
    def failing_runs(self) -> int:
        return FAILING_RUNS

    @property
    def failing(self) -> set[str]:
        """Ids of the tasks rolled back in each of their last FAILING_RUNS sessions."""
        return {p.task for p in self.problems if p.kind is ProblemKind.FAILING and p.task}

    def by_outcome(self, outcome: str) -> list[tuple[SessionResult, TaskResult]]:
        return [(s, t) for s, t in self.tasks if t.outcome.value == outcome]


@dataclass(frozen=True, slots=True)
class BaseView:
    """The plan and rules as committed on the base branch: what the next run will obey."""

    project: Project | None
    base: str | None
    base_commit: str | None
    problem: str | None  # why `project` is None

    @property
    def timezone(self) -> str | None:
        return None if self.project is None else self.project.plan.settings.timezone


# -- reading ---------------------------------------------------------------------------------


def load_at_base(repo: Repo, plan: Path | None = None, constraints: Path | None = None) -> BaseView:
    """The project as `run` would load it (HEAD's branch, or the base its plan names).

    A plan that does not load is a finding to report, unless a path was given explicitly.
    """
    try:
        base = base_of(repo, plan, constraints)
    except UserError as err:
        if plan is not None or constraints is not None:
            raise
        branch = repo.head_branch()
        tip = None if branch is None else repo.branch_tip(branch)
        return BaseView(None, branch, tip, f"The plan does not load: {err}")
    return BaseView(base.project, base.branch, base.commit, None)


def gather(
    repo: Repo,
    view: BaseView,
    *,
    agent_command: str | None = None,
    since: datetime | None = None,
    window: int = 7,
    now: datetime | None = None,
) -> Brief:
    """Read what the brief needs from the repository, then build it."""
    sessions = load_sessions(repo)
    verdicts: list[Verdict] | None = None
    if view.project is not None:
        # The next run uses the agent it is given; where the plan names none, the last
        # session's agent is the best guess (CI passes it on the command line).
        agent = agent_command or view.project.plan.settings.agent
        if agent is None and sessions and sessions[0].agent is not None:
            agent = sessions[0].agent
        gate = None
        if view.base_commit is not None:
            gate = resolve_gate(repo, view.base_commit, view.project.plan.settings)
        verdicts = check(view.project, agent, has_gate=gate is not None)
    awaiting = every_awaiting_review(repo, view.base_commit)
    committed = [
        (task.commit, session.branch)
        for session in sessions[:window]
        for task in session.tasks
        if task.outcome is Outcome.COMMITTED and task.commit
    ]
    settings = view.project.plan.settings if view.project is not None else None
    scheduled = (settings is not None and settings.schedule is not None) or (
        view.base_commit is not None and repo.read_blob(view.base_commit, WORKFLOW_PATH) is not None
    )
    events_problem = None
    try:
        events = load_events(repo)
    except UserError as err:  # one bad record must not cost the person the whole brief
        events, events_problem = [], f"The events on the memory branch do not load: {err}"
    auto = candidates(repo, view.base_commit, DEFAULT_REMOTE) if view.base_commit else []
    return build_brief(
        sessions=sessions,
        project=view.project,
        verdicts=verdicts,
        awaiting=awaiting,
        scheduled=scheduled,
        web=web_page(repo),
        places=places_of(repo, committed, view.base_commit, awaiting),
        base=view.base,
        plan_problem=view.problem,
        events=events,
        candidates=auto,
        events_problem=events_problem,
        repository=repo.root.name,
        since=since,
        window=window,
        now=now or datetime.now(UTC),
    )


# -- the rules -------------------------------------------------------------------------------


def build_brief(
    *,
    sessions: Sequence[SessionResult],
    project: Project | None,
    verdicts: Sequence[Verdict] | None,
    awaiting: Sequence[Awaiting],
    base: str | None,
    plan_problem: str | None,
    places: Mapping[str, Place] | None = None,
    scheduled: bool = True,
    web: str | None = None,
    events: Sequence[Event] = (),
    candidates: Sequence[Candidate] = (),
    events_problem: str | None = None,
    repository: str,
    since: datetime | None,
    window: int,
    now: datetime,
) -> Brief:
    """The brief from data alone. `sessions` newest first; `since` None means the last 24 h;
    `events` oldest first (`memory.load_events`); `candidates` the auto-approved results that
    await the base now (`quarantine.candidates`)."""
    settings = project.plan.settings if project is not None else None
    zone_name = (settings.timezone if settings else None) or "UTC"
    zone = zone_of(zone_name)
    start = since if since is not None else now - DEFAULT_WINDOW
    shown = [s for s in sessions if parse_time(s.started) >= start]
    older = not shown and bool(sessions)
    if older:
        shown = [sessions[0]]
    schedule = (settings.schedule if settings else None) or DEFAULT_SCHEDULE
    grace = timedelta(minutes=project.constraints.max_session_minutes if project else 240)
    beat = heartbeat(sessions, schedule, now, grace, zone, zone_name, project, scheduled=scheduled)

    problems: list[Problem] = []
    if plan_problem is not None:
        problems.append(Problem(ProblemKind.PLAN, plan_problem))
    if sessions and sessions[0].gate_failed_on_base:
        last = sessions[0]
        problems.append(
            Problem(
                ProblemKind.GATE_FAILED_ON_BASE,
                f"The quality gate fails on `{last.base}` itself (session {last.session}, "
                f"at `{last.base_commit[:7]}`): no change can be committed until a person "
                "fixes the base.",
            )
        )
    marked = needs_human(sessions)
    problems.extend(marked)
    named = {p.task for p in marked}
    problems.extend(p for p in failing_repeatedly(sessions) if p.task not in named)
    problems.extend(cancelled_merges(candidates, events))
    if events_problem is not None:
        problems.append(Problem(ProblemKind.MEMORY, events_problem))
    if beat.overdue:
        problems.append(Problem(ProblemKind.HEARTBEAT, beat.message))
    hours = settings.quarantine_hours if settings else DEFAULT_QUARANTINE_HOURS
    scans, proposals = scans_since(events, start)

    waiting = {task: a.branch for a in awaiting for task in a.tasks}
    rows = _plan_rows(verdicts or (), waiting)
    limit = project.constraints.max_tasks_per_session if project else 0
    next_tasks = tuple(r for r in rows if r.eligible and r.awaiting is None)[:limit]
    return Brief(
        generated=now,
        zone=zone,
        zone_name=zone_name,
        since=start,
        sessions=tuple(shown),
        older=older,
        rate=success_rate(sessions[:window]),
        heartbeat=beat,
        problems=tuple(problems),
        queue=None if verdicts is None else queue_stats(verdicts, waiting),
        next_tasks=next_tasks,
        awaiting=tuple(awaiting),
        places=dict(places or {}),
        plan_rows=rows,
        plan_path=project.plan.path if project else None,
        base=base,
        repository=repository,
        recent=tuple(sessions[:window]),
        chart=track_record(sessions[:CHART_SESSIONS], zone) if sessions else None,
        web=web,
        quarantine=in_quarantine(candidates, events, hours, now),
        changes=changes_since(events, start),
        scans=scans,
        proposals=proposals,
    )


def cancelled_merges(waiting: Sequence[Candidate], events: Sequence[Event]) -> list[Problem]:
    """Auto-approved results whose auto-merge was cancelled and that still await the base: a
    person merges them or throws them away, for as long as they wait."""
    problems = []
    for candidate in waiting:
        state = state_of(events, candidate.branch, candidate.tip)
        if state.cancelled is None or state.merged is not None:
            continue
        reason = state.cancelled.data.get("reason")
        why = f": {reason}" if isinstance(reason, str) and reason else ""
        problems.append(
            Problem(
                ProblemKind.CANCELLED,
                f"gitops-agent will not merge `{candidate.branch}` "
                f"({', '.join(candidate.tasks)}){why}. Review it and merge it, or delete the "
                "branch.",
            )
        )
    return problems


def success_rate(sessions: Sequence[SessionResult]) -> SuccessRate:
    """Committed over committed + rolled back; blocked and skipped tasks never ran."""
    return SuccessRate(
        sessions=len(sessions),
        committed=sum(s.count(Outcome.COMMITTED) for s in sessions),
        rolled_back=sum(s.count(Outcome.ROLLED_BACK) for s in sessions),
    )


def is_successful(session: SessionResult) -> bool:
    """It committed something, or it had nothing to do: nothing rolled back, not stopped early
    (a usage limit, an interruption, a kill), and not by a base whose gate fails."""
    if session.gate_failed_on_base:
        return False
    if session.count(Outcome.COMMITTED):
        return True
    return not session.count(Outcome.ROLLED_BACK) and session.stopped is None


CHART_SESSIONS = 30  # how many sessions the page's track record draws


@dataclass(frozen=True, slots=True)
class ChartBar:
    """One session in the track record: where its two bars stand (the page's SVG units)."""

    session: str
    label: str  # its start, for the tooltip
    x: float
    rate: float | None  # committed / (committed + rolled back); None: no task ran
    rate_height: float
    minutes: float
    minutes_height: float
    committed: int
    rolled_back: int


@dataclass(frozen=True, slots=True)
class Chart:
    """Success rate and duration per session, oldest first, laid out for an inline SVG."""

    bars: tuple[ChartBar, ...]
    width: float  # of each bar
    longest: float  # minutes of the longest session: the top of the duration scale

    HEIGHT = 70.0  # of each of the two panels
    WIDTH = 600.0


def track_record(sessions: Sequence[SessionResult], zone: tzinfo) -> Chart:
    """The chart of `sessions` (newest first, as recorded), drawn oldest first."""
    ordered = list(reversed(sessions))
    slot = Chart.WIDTH / max(len(ordered), 1)
    minutes = [
        max(0.0, (parse_time(s.finished) - parse_time(s.started)).total_seconds() / 60)
        for s in ordered
    ]
    longest = max([*minutes, 1.0])
    bars = []
    for n, (session, spent) in enumerate(zip(ordered, minutes, strict=True)):
        tally = success_rate([session])
        rate = tally.rate
        bars.append(
            ChartBar(
                session=session.session,
                label=localtime(parse_time(session.started), zone),
                x=round(n * slot + slot * 0.15, 2),
                rate=rate,
                rate_height=round((rate or 0.0) * Chart.HEIGHT, 2),
                minutes=round(spent, 1),
                minutes_height=round(spent / longest * Chart.HEIGHT, 2),
                committed=tally.committed,
                rolled_back=tally.rolled_back,
            )
        )
    return Chart(tuple(bars), round(slot * 0.7, 2), round(longest, 1))


def web_page(repo: Repo) -> str | None:
    """https://github.com/OWNER/NAME for a repository whose origin is on GitHub, else None."""
    found = repository_from_url(remote_url(repo, DEFAULT_REMOTE))
    return f"https://github.com/{found}" if found else None


def needs_human(sessions: Sequence[SessionResult]) -> list[Problem]:
    """Tasks the latest session that judged them set to NEEDS_HUMAN (a rejected pull request,
    or `max_failed_sessions` failures in a row): the queue goes on without them."""
    latest: dict[str, TaskResult] = {}
    for session in sessions:  # newest first
        for task in session.tasks:
            if task.outcome is not Outcome.SKIPPED:
                latest.setdefault(task.id, task)
    return [
        Problem(ProblemKind.NEEDS_HUMAN, f"{task_id} needs a person: {result.reason}", task=task_id)
        for task_id, result in latest.items()
        if result.needs_human
    ]


def failing_repeatedly(sessions: Sequence[SessionResult]) -> list[Problem]:
    """Tasks rolled back in each of the last FAILING_RUNS sessions they ran in."""
    history: dict[str, list[TaskResult]] = {}
    for session in sessions:  # newest first
        for task in session.tasks:
            if task.outcome in RAN:
                history.setdefault(task.id, []).append(task)
    problems = []
    for task_id, runs in history.items():
        last = runs[:FAILING_RUNS]
        if len(last) == FAILING_RUNS and all(t.outcome is Outcome.ROLLED_BACK for t in last):
            problems.append(
                Problem(
                    ProblemKind.FAILING,
                    f"{task_id} was rolled back in each of the last {FAILING_RUNS} sessions it "
                    f"ran in; the latest reason: {' '.join(last[0].reason.split())} "
                    "Rewrite the task, split it, or move it out of the Ready queue.",
                    task=task_id,
                )
            )
    return problems


def heartbeat(
    sessions: Sequence[SessionResult],
    schedule: str,
    now: datetime,
    grace: timedelta,
    zone: tzinfo,
    zone_name: str,
    project: Project | None = None,
    *,
    scheduled: bool = True,
) -> Heartbeat:
    """When the last successful session was, and whether that is older than the schedule allows.

    The schedule (cron, UTC, as GitHub Actions reads it) is expected to have produced a
    successful session at its latest start that is at least `grace` (a session's longest
    run) ago. A success up to half an interval earlier counts too (a run by hand, a cron
    line written in local time); anything older means a scheduled run was missed: loud.
    Where nothing is `scheduled`, no run can be missed: it says so, and is never loud.
    """
    try:
        times = croniter(schedule, now.astimezone(UTC) - grace)
        expected: datetime = times.get_prev(datetime)
        earlier: datetime = times.get_prev(datetime)
    except (ValueError, KeyError) as err:
        where = project.plan.path if project else None
        line = project.plan.settings.line_of("schedule") if project else None
        raise UserError(f"`schedule` is not a cron line I can read: {err}", where, line) from None
    every = _every(expected - earlier)
    last = next((s for s in sessions if is_successful(s)), None)
    if scheduled:
        said = f"the schedule `{schedule}` (UTC) expects one {every}"
    else:
        said = (
            "no schedule is set up (no `schedule:` in the plan, no workflow), so no run can be "
            "missed"
        )
    if last is None:
        overdue = scheduled and bool(sessions)
        if overdue:
            message = f"⚠️ No successful session yet ({len(sessions)} recorded); {said}."
        elif sessions:
            message = f"No successful session yet; {said}."
        else:
            message = f"No session has run yet; {said}."
        return Heartbeat(schedule, every, expected, None, overdue, message)
    finished = parse_time(last.finished)
    when = localtime(finished, zone)
    ago = duration((now - finished).total_seconds())
    overdue = scheduled and finished < expected - (expected - earlier) / 2
    if overdue:
        message = (
            f"⚠️ No successful session for {ago} (the last finished {when} {zone_name}); {said}."
        )
    else:
        sign = "✅ " if scheduled else ""
        message = (
            f"{sign}The last successful session finished {when} {zone_name}, {ago} ago; {said}."
        )
    return Heartbeat(schedule, every, expected, finished, overdue, message)


def _plan_rows(verdicts: Sequence[Verdict], waiting: dict[str, str]) -> tuple[PlanRow, ...]:
    return tuple(
        PlanRow(
            id=v.task.id,
            title=v.task.title,
            queue=queue_name(v.task),
            eligible=v.eligible,
            awaiting=waiting.get(v.task.id),
            why_not=" ".join(v.reasons),
        )
        for v in verdicts
    )


def _every(interval: timedelta) -> str:
    hours = interval.total_seconds() / 3600
    if hours == 24:
        return "every day"
    if hours == 24 * 7:
        return "every week"
    if hours < 24 and hours.is_integer():
        return "every hour" if hours == 1 else f"every {hours:.0f} hours"
    if (hours / 24).is_integer():
        return f"every {hours / 24:.0f} days"
    return f"every {duration(interval.total_seconds())}"


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds")


# -- output ----------------------------------------------------------------------------------


def to_markdown(brief: Brief) -> str:
    return render("report.md.j2", brief=brief)


def to_html(brief: Brief) -> str:
    return render("report.html.j2", brief=brief)
