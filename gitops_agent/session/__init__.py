"""A session: the eligible tasks, one after another, each kept only if it obeys every rule.

This module only sequences: `queue` chooses the tasks (pure), `attempt` runs one attempt and
judges it, and the loop here applies the session's limits, commits what passed on
`autonomous/<session>` (compare-and-swap) and writes the results back. Agents and gates work in
directories outside the user's repository, confined (`runner`), so nothing they do reaches it.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from gitops_agent import __version__, clock, evidence, quarantine
from gitops_agent.agents import SHELL, AgentSpec, require_installed, resolve_agent
from gitops_agent.checkpoints import tag_merges
from gitops_agent.claims import MARGIN as CLAIM_MARGIN
from gitops_agent.claims import Claims
from gitops_agent.constraints import Constraints, NothingToDo
from gitops_agent.errors import Interrupted, UserError
from gitops_agent.files import decode, write_atomic
from gitops_agent.gate import Gate, resolve_gate
from gitops_agent.gate.baseline import cached_baseline
from gitops_agent.gate.verdict import (
    GateRun,
    base_failures,
    cannot_judge,
    run_baseline,
    tree_lines,
)
from gitops_agent.git import RefMovedError, Repo
from gitops_agent.git.remote import DEFAULT_REMOTE, remote_url
from gitops_agent.github import PullRequest
from gitops_agent.memory import (
    catch_up_memory,
    load_session,
    load_sessions,
    record_or_keep,
    record_pending,
)
from gitops_agent.notify import notify, notify_urls, session_notification
from gitops_agent.plan import Approval, OnFailure, Task, TaskStatus, set_status
from gitops_agent.policy.eligibility import verdicts as check
from gitops_agent.policy.masking import mask
from gitops_agent.project import Project, base_of, find_root
from gitops_agent.rejected import (
    STATUS_TRAILER,
    marked_awaiting_review,
    rejected_tasks,
    status_trailer,
)
from gitops_agent.render import fence, render
from gitops_agent.results import (
    BRANCH_PREFIX,
    MEMORY_BRANCH,
    Listener,
    Outcome,
    OutputOf,
    Phase,
    SessionResult,
    TaskResult,
)
from gitops_agent.review import tasks_awaiting_review
from gitops_agent.runner import Runner
from gitops_agent.runstate import STALE_REF_LOCK, STATE_DIR, RunState, now_iso, run_lock
from gitops_agent.session import queue as selection
from gitops_agent.session.attempt import AttemptResult, Context, Verdict, attempt
from gitops_agent.session.places import Places, remove_leftovers, session_places

NOTHING_TO_DO_TRAILER = "Nothing-To-Do"


@dataclass(frozen=True, slots=True)
class RunOptions:
    repo: Path | None = None
    plan: Path | None = None
    constraints: Path | None = None
    task_ids: tuple[str, ...] = ()
    agent_command: str | None = None


def new_session_id(now: datetime) -> str:
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def run_session(
    options: RunOptions, listener: Listener | None = None, *, claims: Claims | None = None
) -> SessionResult:
    """Run one session in the repository; returns what happened to every task it considered.

    With `claims` (run --push), each task is claimed on the remote before it is queued.
    """
    listener = listener or Listener()
    repo = Repo.open(find_root(options.repo))
    state_dir = repo.common_dir / STATE_DIR
    with run_lock(state_dir) as (notes, killed):
        for note in notes:
            listener.note(note)
        # No run of ours writes a ref while we hold the run lock: a ref lock a killed run left
        # is ours to clear, and so is any other that has outlived a live writer's milliseconds.
        for lock in repo.clear_own_ref_locks(older_than=0.0 if notes else STALE_REF_LOCK):
            listener.note(f"Removed {lock}, left by a killed process.")
        for note in record_pending(repo, state_dir):
            listener.note(note)
        remove_leftovers(repo)
        session = _Session.start(repo, state_dir, options, listener, claims)
        if killed is not None:
            for note in _record_killed(session, killed):
                listener.note(note)
        if session.constraints.keep_attempts_days:
            evidence.prune(repo, session.constraints.keep_attempts_days)
        return session.run()


def _iso_or_now(value: object, default: str | None = None) -> str:
    """A time from a state file a killed run left (ISO 8601), or `default` (now) if it is not."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).isoformat(timespec="seconds")
        except ValueError:
            pass  # a damaged file: the time is not known
    return default or now_iso()


def _record_killed(session: _Session, left: dict[str, Any]) -> list[str]:
    """Record a session that died without a word (kill -9, a crash, a power cut) from the state
    file it left, so that the report shows it; nothing when it was recorded after all."""
    name = left.get("session")
    if not isinstance(name, str) or not name or load_session(session.repo, name) is not None:
        return []
    task, phase = left.get("task"), left.get("phase") or Phase.STARTING.value
    doing = f"{phase} of task {task} (attempt {left.get('attempt')})" if task else str(phase)
    finished = _iso_or_now(left.get("updated"))
    started = _iso_or_now(left.get("started"), finished)
    branch = f"{BRANCH_PREFIX}{name}"
    result = SessionResult(
        session=name,
        branch=branch if session.repo.branch_tip(branch) is not None else None,
        base=session.base,
        base_commit=session.base_commit,
        started=started,
        finished=finished,
        agent=None,
        tasks=(),
        stopped=(
            f"killed: the process (pid {left.get('pid')}) ended without a word during {doing}; "
            "what it had not committed was thrown away"
        ),
    )
    timezone = session.project.plan.settings.timezone
    return record_or_keep(session.repo, result, timezone=timezone, state_dir=session.state_dir)


@dataclass
class _Session:
    """One session's state; made whole by `start`, then `run` once."""

    repo: Repo
    state_dir: Path
    options: RunOptions
    listener: Listener
    started_at: datetime
    session: str
    branch: str
    project: Project
    base: str
    base_commit: str
    constraints: Constraints
    runner: Runner
    agent: AgentSpec | None
    gate: Gate | None
    run_state: RunState
    tip: str  # the session branch's tip (the base until a first commit)
    claims: Claims | None = None  # tasks are claimed on the remote (run --push)
    branch_made: bool = False
    marked: dict[str, str] | None = None  # task -> branch marking it NEEDS_HUMAN
    stopped: str | None = None  # why the session ended early
    gate_failed_on_base: bool = False
    baseline: GateRun | None = None
    started_clock: float = field(default_factory=time.monotonic)
    attempts_made: int = 0  # by every task of the session together
    results: list[TaskResult] = field(default_factory=list)
    current: Task | None = None  # the task under way (an interruption rolls it back)

    @classmethod
    def start(
        cls,
        repo: Repo,
        state_dir: Path,
        options: RunOptions,
        listener: Listener,
        claims: Claims | None = None,
    ) -> _Session:
        """Read the plan and constraints on the base; refuse (UserError) before writing
        anything when they cannot be run, the confinement they require included."""
        started_at = datetime.now(UTC)
        session = new_session_id(started_at)
        chosen = base_of(repo, options.plan, options.constraints)
        project = chosen.project
        runner = Runner.create(project.constraints, repo_root=repo.root)
        if claims is not None:
            claims.refresh()  # what other runs pushed since this clone was made
        # A fresh clone (every scheduled run) continues the remote's memory branch; a clone
        # whose memory moved on beside the remote's joins the two.
        if remote_url(repo, DEFAULT_REMOTE) is not None:
            timezone = project.plan.settings.timezone
            try:
                catch_up_memory(repo, DEFAULT_REMOTE, timezone=timezone)
            except RefMovedError as err:
                listener.note(f"{MEMORY_BRANCH} is left as it is for now ({err}).")
        if claims is None or not claims.read_only:  # a job that cannot push records no event
            # The tool's work a person merged since: each such state of the base is tagged.
            try:
                tag_merges(repo, chosen.branch, timezone=project.plan.settings.timezone)
            except RefMovedError as err:
                listener.note(f"Checkpoints are left for the next run ({err}).")
        for note in project.notes:
            listener.note(note)
        agent_word = options.agent_command or project.plan.settings.agent
        return cls(
            repo=repo,
            state_dir=state_dir,
            options=options,
            listener=listener,
            started_at=started_at,
            session=session,
            branch=f"{BRANCH_PREFIX}{session}",
            project=project,
            base=chosen.branch,
            base_commit=chosen.commit,
            constraints=project.constraints,
            runner=runner,
            agent=resolve_agent(agent_word) if agent_word else None,
            gate=resolve_gate(repo, chosen.commit, project.plan.settings),
            run_state=RunState(state_dir, session),
            tip=chosen.commit,
            claims=claims,
        )

    def run(self) -> SessionResult:
        interrupted: Interrupted | None = None
        queue: list[Task] = []
        try:
            queue = self._queue()
            if queue:
                self.run_state.update(phase=Phase.CHECKOUT.value)
                leaves = self.agent.leaves if self.agent is not None else ()
                with session_places(
                    self.repo, self.base_commit, self.session, agent_leaves=leaves
                ) as places:
                    self._run_queue(queue, places)
        except Interrupted as stop:
            # What ran is recorded; the attempt under way is thrown away, as a failed one is.
            interrupted = stop
            self.stopped = f"interrupted ({stop.name}) by the person or system running it"
            if self.current is not None and self.current.id not in {r.id for r in self.results}:
                self._record(
                    self.current,
                    Outcome.ROLLED_BACK,
                    f"The session was {self.stopped} during this task; its change was thrown away.",
                )
            done = {r.id for r in self.results}
            self._skip_all(
                [t for t in queue if t.id not in done], f"Not run: the session was {self.stopped}."
            )
        finally:
            self.run_state.clear()
        result = self._finish(self.started_at)
        settings = self.project.plan.settings
        for note in record_or_keep(
            self.repo, result, timezone=settings.timezone, state_dir=self.state_dir
        ):
            self.listener.note(note)
        # A job that cannot push leaves the quarantine's start to `merge`, which sees the
        # result right after `publish` pushed it: `verify` takes in no event from such a job.
        trusted = self.claims is None or not self.claims.read_only
        for task in result.tasks if trusted else ():
            if task.approval == Approval.AUTO.value and task.branch and task.commit:
                notes = quarantine.begin(
                    self.repo, settings, task.branch, task.commit, (task.id,), clock.now()
                )
                for note in notes:
                    self.listener.note(note)
        message = session_notification(result)  # None unless something changed
        if message is not None:
            for problem in notify(notify_urls(settings.notify), *message):
                self.listener.note(problem)
        if interrupted is not None:
            raise interrupted
        return result

    # -- choosing the tasks ------------------------------------------------------------------

    def _queue(self) -> list[Task]:
        """Record blocked and skipped tasks; return the ones to run, in plan order."""
        verdicts = check(self.project, self.options.agent_command)
        known = {v.task.id for v in verdicts}
        for task_id in self.options.task_ids:
            if task_id not in known:
                raise UserError(f"no task `{task_id}` in the plan (--task)", self.project.plan.path)
        considered = selection.considered(verdicts, self.options.task_ids)
        awaiting = tasks_awaiting_review(self.repo, self.base_commit)
        # Eligible means READY under the Ready heading: never DONE (merged) on the base.
        rejected = self._rejected([v.task.id for v in considered if v.eligible])
        failing = self._failing([v.task.id for v in considered if v.eligible])
        queue: list[Task] = []
        for choice in selection.choose(considered, awaiting, rejected, failing):
            if choice.decision is selection.Decision.BLOCKED:
                self._record(choice.task, Outcome.BLOCKED, choice.reason)
            elif choice.decision is selection.Decision.NEEDS_HUMAN and choice.pull is not None:
                pull = choice.pull
                self._mark_needs_human(
                    choice.task,
                    f"Its pull request #{pull.number} ({pull.url}) was closed without merging, "
                    "so it is not run again.",
                    f"Its pull request #{pull.number} was closed without merging; a person must "
                    f"decide what to do with it (its status is set to {TaskStatus.NEEDS_HUMAN}).",
                )
            elif choice.decision is selection.Decision.NEEDS_HUMAN:
                self._mark_needs_human(
                    choice.task,
                    f"It was rolled back in each of the last {choice.failed} sessions that ran "
                    "it, so it is not run again until a person looks at it.",
                    f"It was rolled back in each of the last {choice.failed} sessions that ran "
                    "it (`max_failed_sessions`); a person must rewrite or split it, then set its "
                    f"status back to READY (its status is set to {TaskStatus.NEEDS_HUMAN}).",
                )
            elif choice.decision is selection.Decision.AWAITING:
                self._record(choice.task, Outcome.SKIPPED, choice.reason)
            elif (taken := self._claim(choice.task, len(queue))) is not None:
                self._record(choice.task, Outcome.SKIPPED, taken)
            else:
                queue.append(choice.task)
        if self.agent is not None and any(task.run is None for task in queue):
            settings = self.project.plan.settings
            from_plan = self.options.agent_command is None
            require_installed(
                self.agent,
                self.project.plan.path if from_plan else None,
                settings.line_of("agent") if from_plan else None,
            )
        if queue and self.gate is None:
            for task in queue:
                self._record(
                    task,
                    Outcome.ROLLED_BACK,
                    "There is no quality gate, so no change can be committed: add `gate:` to "
                    "the plan's front matter or commit .ai-validation/check_quality.sh.",
                )
            return []
        return queue

    def _claim(self, task: Task, queued: int) -> str | None:
        """None when the task may run here; else why not. With claims, the tasks the session
        may run (up to its task limit) are claimed first, so no other run takes them meanwhile;
        the claim lasts the session's time budget and a margin, then it expires."""
        if self.claims is None or queued >= self.constraints.max_tasks_per_session:
            return None
        budget = timedelta(minutes=self.constraints.max_session_minutes)
        held = self.claims.take(task.id, self.session, self.started_at + budget + CLAIM_MARGIN)
        if held is not None:
            return (
                f"Another run is on it: session {held.session} claimed it until "
                f"{held.expires.astimezone(UTC):%Y-%m-%d %H:%M} UTC."
            )
        # Fetched after the claim: a run that pushed this task's result and released it is seen.
        waiting = tasks_awaiting_review(self.repo, self.base_commit).get(task.id)
        if waiting is not None:
            self.claims.release(task.id)
            return f"Its result already awaits review on {waiting.branch} ({waiting.tip[:12]})."
        return None

    def _rejected(self, task_ids: list[str]) -> dict[str, PullRequest]:
        """Which of these tasks a person rejected on GitHub. Not on GitHub or no token: nothing is
        asked, silently (`doctor` covers that); a failure to ask is a note, never the end."""
        try:
            return rejected_tasks(self.repo, task_ids)
        except UserError as err:  # GitHub refused, or its answer could not be read
            self.listener.note(
                "The session goes on without knowing which pull requests were closed without "
                f"merging, because GitHub could not be asked ({err})."
            )
            return {}

    def _marked(self) -> dict[str, str]:
        """Task -> the unmerged branch that sets it NEEDS_HUMAN; read once a session."""
        if self.marked is None:
            self.marked = marked_awaiting_review(self.repo, self.base_commit)
        return self.marked

    def _failing(self, task_ids: list[str]) -> dict[str, int]:
        """The tasks rolled back in `max_failed_sessions` sessions in a row, with how many: at
        the head of the queue, such a task would fail every night and hold the rest back."""
        limit = self.constraints.max_failed_sessions
        if not limit or not task_ids:
            return {}
        marked = self._marked()
        sessions = load_sessions(self.repo)
        counts = {t: selection.failed_sessions(sessions, t) for t in task_ids}
        # Marked already, on a branch that awaits review: the count restarted there, but the
        # task still waits for a person (until that branch is merged or deleted).
        counts |= {t: limit for t in task_ids if t in marked and counts[t] < limit}
        return {t: n for t, n in counts.items() if n >= limit}

    def _mark_needs_human(self, task: Task, why: str, reason: str) -> None:
        """Block the task, and (unless an unmerged branch does already) commit its status set to
        NEEDS_HUMAN, so that merging the session's pull request takes it out of the queue.
        `why` goes into the commit message, `reason` into the task's result."""
        marked = self._marked()
        if task.id not in marked:
            plan_rel = self.project.plan.path
            data = self.repo.read_blob(self.tip, plan_rel)
            assert data is not None  # the session's plan was read from the base
            updated = set_status(decode(data, plan_rel), task.id, TaskStatus.NEEDS_HUMAN, plan_rel)
            tree = self.repo.replace_in_tree(self.tip, {plan_rel: updated.encode()})
            message = (
                f"Mark {task.id} as needing a person\n\n{why} Merging this sets its status in "
                f"{plan_rel} to {TaskStatus.NEEDS_HUMAN}."
            )
            message = mask(message)
            trailers = {
                STATUS_TRAILER: status_trailer(task.id),
                "Session": self.session,
                "Gitops-Agent-Version": __version__,
            }
            self._ensure_branch()
            self.tip = self.repo.commit_tree(self.branch, tree, self.tip, message, trailers)
            marked[task.id] = self.branch
        self._record(task, Outcome.BLOCKED, reason, needs_human=True)

    # -- running them ------------------------------------------------------------------------

    def _run_queue(self, queue: list[Task], places: Places) -> None:
        assert self.gate is not None
        self.run_state.update(phase=Phase.BASELINE_GATE.value)
        self.baseline = self._baseline(places)
        broken = cannot_judge(self.baseline)
        if broken is not None:
            self.gate_failed_on_base = True
            self.stopped = f"the quality gate cannot judge a change: {broken}; fix the base first"
            self._skip_all(queue, f"Not run: {self.stopped}.")
            return
        run_count = 0
        consecutive_failures = 0
        limits = self.constraints
        for position, task in enumerate(queue):
            rest = queue[position:]
            if self.stopped is not None:
                self._skip_all(rest, f"Not run: the session stopped ({self.stopped}).")
                return
            if run_count >= limits.max_tasks_per_session:
                self._skip_all(
                    rest,
                    f"Not run: the session limit is {limits.max_tasks_per_session} tasks.",
                )
                return
            if self._attempts_spent():
                self._skip_all(
                    rest,
                    f"Not run: the session's budget of {limits.max_session_attempts} attempts "
                    "is spent.",
                )
                return
            if self._session_left() <= 0:
                self._skip_all(
                    rest,
                    f"Not run: the session time limit of {limits.max_session_minutes:g} "
                    "minutes was reached.",
                )
                return
            self.current = task
            result = self._run_task(task, places)
            self.current = None
            if result.outcome is Outcome.SKIPPED:  # usage limit: the session stops here
                continue
            run_count += 1
            if result.outcome is Outcome.COMMITTED:
                consecutive_failures = 0
            else:
                consecutive_failures += 1
                more_left = position + 1 < len(queue)
                if more_left and consecutive_failures >= limits.max_consecutive_failures:
                    self.stopped = f"{consecutive_failures} consecutive failures"

    def _baseline(self, places: Places) -> GateRun:
        """What the gate finds on the base tree: from the cache when this base and this gate
        were judged before, else run once, on a fresh tree."""
        assert self.gate is not None
        gate = self.gate
        tree = self.repo.tree_of(self.base_commit)

        def run() -> GateRun:
            places.gate.reset(self.base_commit)
            found = run_baseline(
                gate,
                places.gate.path,
                tree=tree,
                timeout=self._task_timeout(),
                runner=self.runner,
                scratch=places.scratch,
                source_line=tree_lines(self.repo, tree),
            )
            if self.runner.gate_leaves_no_trace:
                places.gate.untouched()
            return found

        baseline, cached = cached_baseline(self.state_dir, tree, gate.key, run)
        if cached:
            self.listener.note(f"The gate's result on {self.base} was judged before: reused.")
        return baseline

    def _attempts_spent(self) -> bool:
        limit = self.constraints.max_session_attempts
        return bool(limit) and self.attempts_made >= limit

    def _session_left(self) -> float:
        """Seconds left of the session's time budget."""
        spent = time.monotonic() - self.started_clock
        return self.constraints.max_session_minutes * 60.0 - spent

    def _skip_all(self, tasks: list[Task], reason: str) -> None:
        for task in tasks:
            self._record(task, Outcome.SKIPPED, reason)

    def _task_timeout(self) -> float:
        return self.constraints.task_timeout_minutes * 60.0

    def _run_task(self, task: Task, places: Places) -> TaskResult:
        assert self.gate is not None and self.baseline is not None
        ctx = Context(
            repo=self.repo,
            places=places,
            runner=self.runner,
            constraints=self.constraints,
            gate=self.gate,
            baseline=self.baseline,
            agent=self.agent.with_turns(self.constraints.max_agent_turns) if self.agent else None,
            plan_path=self.project.plan.path,
            protected_paths=(*self.project.protected_paths, *self._gate_paths()),
            output=partial(self.listener.output, task.id),
        )
        attempts = self.constraints.max_attempts
        started = time.monotonic()
        task_budget = self._task_timeout()
        feedback: str | None = None
        seen: set[str | None] = set()
        kept: list[str] = []
        result = AttemptResult(Verdict.FAILED, "The task was not attempted.")
        number = 0
        for number in range(1, attempts + 1):
            left = min(task_budget - (time.monotonic() - started), self._session_left())
            if self._attempts_spent():
                result = replace(
                    result,
                    failure=f"{result.failure} The session's budget of "
                    f"{self.constraints.max_session_attempts} attempts is spent, so it was not "
                    "tried again.",
                )
                number -= 1
                break
            if left <= 0:
                result = replace(result, failure=self._out_of_time(result, task_budget))
                number -= 1
                break
            self._phase(
                task, Phase.COMMAND if task.run is not None else Phase.AGENT, number, attempts
            )
            prompt = None if task.run is not None else self._prompt(task, feedback)
            phase = partial(self._phase, task, attempt=number, attempts=attempts)
            start = self._start_of(task)
            result = attempt(ctx, task, start, prompt, phase, timeout=left)
            self.attempts_made += 1
            kept += self._keep(task, number, result, start)
            if result.verdict is Verdict.LIMITED:
                assert result.rate_limit is not None
                when = result.rate_limit.resume_at
                resume = f" It can resume after {when:%Y-%m-%d %H:%M %Z}." if when else ""
                said = result.rate_limit.message.strip()
                self.stopped = f"the agent hit its usage limit: {said}"
                return self._record(
                    task,
                    Outcome.SKIPPED,
                    f"Not finished: the agent hit its usage limit ({said}).{resume}",
                    attempts=number,
                    duration=time.monotonic() - started,
                    evidence=tuple(kept),
                )
            if result.verdict is Verdict.NOTHING:
                return self._nothing_to_do(task, number, started, tuple(kept))
            if result.verdict is Verdict.PASSED:
                assert result.tree is not None
                self._phase(task, Phase.COMMIT, number, attempts)
                commit = self._commit(task, result.tree)
                return self._record(
                    task,
                    Outcome.COMMITTED,
                    f"Passed every rule and the quality gate ({self.gate.source}).",
                    commit=commit,
                    **self._own_branch_fields(task),
                    attempts=number,
                    duration=time.monotonic() - started,
                    changed_files=result.changed,
                    evidence=tuple(kept),
                    already_failing=result.already_failing,
                )
            feedback = _feedback(number, result.failure, result.violations, result.output)
            if result.verdict is Verdict.STOPPED:
                break
            if task.run is not None:
                break  # a command given the same tree does the same again: never retried
            if result.candidate in seen:
                result = replace(
                    result,
                    failure=f"{result.failure} No retry: the attempt changed nothing new "
                    "(its result was the same as an earlier attempt's).",
                )
                break
            seen.add(result.candidate)
        return self._record(
            task,
            Outcome.ROLLED_BACK,
            result.failure,
            attempts=number,
            duration=time.monotonic() - started,
            violations=result.violations,
            gate_output=result.output,
            output_of=result.output_of,
            evidence=tuple(kept),
            already_failing=result.already_failing,
            draft=self._draft(task, result),
        )

    def _nothing_to_do(
        self, task: Task, attempts: int, started: float, kept: tuple[str, ...]
    ) -> TaskResult:
        """A `Run:` command that changed no file: the codebase already is as it asks. Its
        status is set to DONE in a commit of its own (`nothing_to_do: done`), or it is left for
        a person (`leave`); neither counts as a failure."""
        said = "Nothing to do: the command ran and changed no file"
        duration = time.monotonic() - started
        if self.constraints.nothing_to_do is NothingToDo.LEAVE:
            return self._record(
                task,
                Outcome.SKIPPED,
                f"{said}; the task is left for a person (nothing_to_do: leave).",
                attempts=attempts,
                duration=duration,
                evidence=kept,
            )
        plan_rel = self.project.plan.path
        start = self._start_of(task)
        data = self.repo.read_blob(start, plan_rel)
        assert data is not None  # the session's plan was read from the base
        updated = set_status(decode(data, plan_rel), task.id, TaskStatus.DONE, plan_rel)
        tree = self.repo.replace_in_tree(self.repo.tree_of(start), {plan_rel: updated.encode()})
        commit = self._commit(
            task,
            tree,
            note="There was nothing to do: the command changed no file.",
            trailers={NOTHING_TO_DO_TRAILER: "yes"},  # a result that is only its status
        )
        return self._record(
            task,
            Outcome.COMMITTED,
            f"{said}, so only its status is set to DONE.",
            commit=commit,
            **self._own_branch_fields(task),
            attempts=attempts,
            duration=duration,
            changed_files=(plan_rel,),
            evidence=kept,
        )

    def _out_of_time(self, last: AttemptResult, task_budget: float) -> str:
        if self._session_left() <= 0:
            spent = f"The session's time budget of {self.constraints.max_session_minutes:g} "
        else:
            spent = f"The task's time budget of {task_budget / 60:g} "
        return f"{last.failure} {spent}minutes is spent, so it was not tried again."

    def _keep(self, task: Task, number: int, result: AttemptResult, tip: str) -> list[str]:
        """Keep the attempt's evidence under refs/gitops-agent/attempts/ (unless the
        constraints say `keep_attempts_days: 0`); returns the ref, as a list of zero or one."""
        if self.constraints.keep_attempts_days == 0:
            return []
        record = evidence.Evidence(
            session=self.session,
            task_id=task.id,
            number=number,
            verdict=result.verdict.value,
            failure=result.failure,
            details=result.violations,
            already_failing=result.already_failing,
            # An agent's (or command's) own failure output is in its transcript already.
            gate_output=result.output if result.output_of is OutputOf.GATE else "",
            output_label="Gate output",
            transcript=result.transcript,
            transcript_label="Command output" if task.run is not None else "Agent output",
            tip=tip,
            tree=result.candidate,
        )
        return [evidence.keep(self.repo, record)]

    def _prompt(self, task: Task, feedback: str | None) -> str:
        c = self.constraints
        budget = int((task.estimated_lines or c.max_estimated_lines) * c.line_budget_factor)
        return render(
            "prompt.md.j2",
            task=task,
            objective=self.project.plan.objective,
            approved_dirs=c.approved_dirs,
            approved_files=c.approved_files,
            protected=(*self.project.protected_paths, *self._gate_paths(), *c.protected),
            line_budget=budget,
            allow_delete=c.allow_delete,
            gate=self.gate.source if self.gate else "none",
            feedback=feedback,
            constraints_prose=c.prose or "(no constraints document: the default rules apply)",
        )

    def _gate_paths(self) -> tuple[str, ...]:
        return self.gate.paths if self.gate is not None else ()

    def _ensure_branch(self) -> None:
        if not self.branch_made:
            self.repo.create_branch(self.branch, self.base_commit)
            self.branch_made = True

    def _approval(self, task: Task) -> Approval:
        """The task's approval as it takes effect: `auto` is `per-task` where the
        constraints forbid the tool to merge (`auto_merge: false`)."""
        wanted = task.approval_in(self.project.plan.settings)
        if wanted is Approval.AUTO and not self.constraints.auto_merge:
            return Approval.PER_TASK
        return wanted

    def _own_branch(self, task: Task) -> str | None:
        """The task's own branch (per-task and auto approval), None: the session's."""
        if self._approval(task) is Approval.FINAL:
            return None
        return f"{self.branch}-{task.id}"

    def _own_branch_fields(self, task: Task) -> dict[str, Any]:
        own = self._own_branch(task)
        return {} if own is None else {"branch": own, "approval": self._approval(task).value}

    def _draft(self, task: Task, last: AttemptResult) -> str | None:
        """A rolled-back task's last attempt on a draft branch for people to look at, where the
        plan asks for it (`on_failure: draft-pr`, per-task and auto only) and the attempt broke
        no rule (only the gate failed). It carries no Task-Id: it is not a result."""
        wanted = self.project.plan.settings.on_failure is OnFailure.DRAFT_PR
        if not wanted or self._own_branch(task) is None or not last.rules_passed:
            return None
        if last.candidate is None:
            return None
        draft = f"{BRANCH_PREFIX}draft-{self.session}-{task.id}"
        self.repo.create_branch(draft, self.base_commit)
        message = mask(
            f"Draft: {task.title}\n\nThe last attempt at task {task.id}, which the quality "
            f"gate refused: {last.failure}\nNot a result: for a person to look at."
        )
        trailers = {"Draft-Of": task.id, "Session": self.session}
        self.repo.commit_tree(
            draft,
            last.candidate,
            self.base_commit,
            message,
            {**trailers, "Gitops-Agent-Version": __version__},
        )
        return draft

    def _start_of(self, task: Task) -> str:
        """Where a task's attempt starts: the session branch's tip, or the base for a task
        with a branch of its own (stacked on nothing, so a person can take it alone)."""
        return self.tip if self._own_branch(task) is None else self.base_commit

    def _commit(
        self, task: Task, tree: str, note: str = "", trailers: dict[str, str] | None = None
    ) -> str:
        own = self._own_branch(task)
        if own is None:
            self._ensure_branch()
        else:
            self.repo.create_branch(own, self.base_commit)
        agent = SHELL if task.run is not None or self.agent is None else self.agent.name
        message = mask(
            f"{task.title}\n\nTask {task.id} of {self.project.plan.path}, done unattended."
            + (f" {note}" if note else "")
        )
        approval = {} if own is None else {"Approval": self._approval(task).value}
        commit = self.repo.commit_tree(
            own or self.branch,
            tree,
            self.base_commit if own is not None else self.tip,
            message,
            {
                "Task-Id": task.id,
                "Agent": agent,
                "Session": self.session,
                "Gitops-Agent-Version": __version__,
                **approval,
                **(trailers or {}),
            },
        )
        if own is None:
            self.tip = commit
        return commit

    def _phase(self, task: Task, phase: Phase, attempt: int, attempts: int) -> None:
        self.run_state.update(
            task=task.id, phase=phase.value, attempt=attempt, max_attempts=attempts
        )
        self.listener.phase(task, phase, attempt, attempts)

    def _record(self, task: Task, outcome: Outcome, reason: str, **fields: object) -> TaskResult:
        result = TaskResult(task.id, task.title, outcome, reason, **fields)  # type: ignore[arg-type]
        self.results.append(result)
        self.listener.task_done(result)
        return result

    # -- writing back ------------------------------------------------------------------------

    def _agent_label(self) -> str | None:
        """Who did the session's work, in the words of its commits' `Agent:` trailer: the
        agent, else SHELL when only `Run:` commands ran, else None (nothing ran)."""
        if self.agent is not None:
            return self.agent.name
        tasks = {task.id: task for task in self.project.plan.tasks}
        ran = [r for r in self.results if r.outcome in (Outcome.COMMITTED, Outcome.ROLLED_BACK)]
        return SHELL if any(tasks[r.id].run is not None for r in ran) else None

    def _finish(self, started_at: datetime) -> SessionResult:
        order = {task.id: position for position, task in enumerate(self.project.plan.tasks)}
        self.results.sort(key=lambda r: order[r.id])
        result = SessionResult(
            session=self.session,
            branch=self.branch if self.branch_made else None,
            base=self.base,
            base_commit=self.base_commit,
            started=started_at.isoformat(timespec="seconds"),
            finished=datetime.now(UTC).isoformat(timespec="seconds"),
            agent=self._agent_label(),
            tasks=tuple(self.results),
            stopped=self.stopped,
            gate_failed_on_base=self.gate_failed_on_base,
            confinement=self.runner.sandbox.describe(),
            unconfined=not self.runner.sandbox.confined,
            base_failures=base_failures(self.baseline) if self.baseline is not None else (),
        )
        if self.branch_made:
            pr_path = self.state_dir / "sessions" / self.session / "pr-body.md"
            hours = self.project.plan.settings.quarantine_hours
            write_atomic(pr_path, pr_body(result, self.constraints, hours).encode())
            result = replace(result, pr_body=str(pr_path))
        return result


def _feedback(attempt: int, failure: str, violations: tuple[str, ...], output: str) -> str:
    lines = [f"Attempt {attempt}: {failure}"]
    lines += [f"- {v}" for v in violations]
    if output:
        lines += ["", "Output (the end of it):", fence(output.strip()[-3000:])]
    return "\n".join(lines)


def pr_body(
    result: SessionResult, constraints: Constraints, quarantine_hours: float | None = None
) -> str:
    """The pull request's description of a session's branch (also for a PR opened later, from
    the session's record). A task on a branch of its own (approval per-task or auto) is
    described by that branch's PR: `task_pr_body`."""
    committed = [
        t
        for t in result.tasks
        if t.outcome is Outcome.COMMITTED and t.branch in (None, result.branch)
    ]
    own = [
        t
        for t in result.tasks
        if t.outcome is Outcome.COMMITTED and t.branch not in (None, result.branch)
    ]
    others = [t for t in result.tasks if t.outcome is not Outcome.COMMITTED]
    return render(
        "pr-body.md.j2",
        result=result,
        committed=committed,
        own=own,
        others=others,
        auto=any(t.approval == Approval.AUTO.value for t in committed),
        quarantine_hours=f"{quarantine_hours:g}" if quarantine_hours is not None else "48",
        constraints=constraints.path or "the default rules",
        version=__version__,
    )


def task_pr_body(
    result: SessionResult, branch: str, constraints: Constraints, quarantine_hours: float
) -> str | None:
    """The description of a task's own branch (per-task, auto), from its session's record;
    None when the record holds no task on that branch."""
    mine = tuple(t for t in result.tasks if t.branch == branch)
    if not mine:
        return None
    return pr_body(replace(result, branch=branch, tasks=mine), constraints, quarantine_hours)
