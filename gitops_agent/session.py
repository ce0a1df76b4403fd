"""A session: the eligible tasks, one after another, each kept only if it obeys every rule.

For each task: reset the session's own checkout to the session branch's tip, run the agent (or
the task's `Run:` command), put back any git metadata it touched in the user's repository,
inspect what changed, run the base's gate on exactly the tree to commit, then commit it on
`autonomous/<session>` or throw it away and try again with the failure as feedback.
"""

from __future__ import annotations

import secrets
import shutil
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from gitops_agent import __version__
from gitops_agent.agents import (
    AgentResult,
    AgentSpec,
    require_installed,
    resolve_agent,
    run_agent,
    run_shell,
)
from gitops_agent.commands.check import check
from gitops_agent.constraints import Constraints
from gitops_agent.errors import UserError
from gitops_agent.files import decode, write_atomic
from gitops_agent.gate import resolve_gate, run_gate
from gitops_agent.git import Checkout, Repo
from gitops_agent.git.remote import DEFAULT_REMOTE, adopt_remote_branch, remote_url
from gitops_agent.github import PullRequest
from gitops_agent.memory import record_session
from gitops_agent.notify import notify, notify_urls, session_notification
from gitops_agent.plan import Queue, Task, set_status
from gitops_agent.policy.inspect import inspect_change
from gitops_agent.project import base_of, find_root
from gitops_agent.rejected import (
    NEEDS_HUMAN,
    STATUS_TRAILER,
    left_behind,
    marked_awaiting_review,
    rejected_tasks,
    status_trailer,
)
from gitops_agent.render import render
from gitops_agent.results import MEMORY_BRANCH, Listener, Outcome, SessionResult, TaskResult
from gitops_agent.review import tasks_awaiting_review
from gitops_agent.runstate import RunState, run_lock

BRANCH_PREFIX = "autonomous/"
STATE_DIR = "gitops-agent"  # under the repository's git directory


@dataclass(frozen=True, slots=True)
class RunOptions:
    repo: Path | None = None
    plan: Path | None = None
    constraints: Path | None = None
    task_ids: tuple[str, ...] = ()
    agent_command: str | None = None


def new_session_id(now: datetime) -> str:
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def run_session(options: RunOptions, listener: Listener | None = None) -> SessionResult:
    """Run one session in the repository; returns what happened to every task it considered."""
    listener = listener or Listener()
    repo = Repo.open(find_root(options.repo))
    state_dir = repo.common_dir / STATE_DIR
    with run_lock(state_dir) as notes:
        for note in notes:
            listener.note(note)
        if notes:  # a run was killed: what it held is ours to clear now
            for lock in repo.clear_own_ref_locks():
                listener.note(f"Removed {lock}, left by the killed run.")
        _remove_leftover_checkouts(state_dir)
        return _Session(repo, state_dir, options, listener).run()


def _remove_leftover_checkouts(state_dir: Path) -> None:
    """Checkouts of runs that were killed: nothing in them is kept, by design."""
    checkouts = state_dir / "checkouts"
    if checkouts.is_dir():
        for leftover in checkouts.iterdir():
            shutil.rmtree(leftover, ignore_errors=False)


@dataclass
class _Session:
    repo: Repo
    state_dir: Path
    options: RunOptions
    listener: Listener
    results: list[TaskResult] = field(default_factory=list)

    def run(self) -> SessionResult:
        started_at = datetime.now(UTC)
        self.session = new_session_id(started_at)
        self.branch = f"{BRANCH_PREFIX}{self.session}"
        chosen = base_of(self.repo, self.options.plan, self.options.constraints)
        project, base, base_commit = chosen.project, chosen.branch, chosen.commit
        # A fresh clone (every scheduled run) continues the remote's memory branch.
        has_remote = remote_url(self.repo, DEFAULT_REMOTE) is not None
        if (
            has_remote
            and adopt_remote_branch(self.repo, DEFAULT_REMOTE, MEMORY_BRANCH) == "diverged"
        ):
            self.listener.note(
                f"{MEMORY_BRANCH} and {DEFAULT_REMOTE}/{MEMORY_BRANCH} have diverged; "
                "this session appends to the local one."
            )
        for note in project.notes:
            self.listener.note(note)
        self.project, self.base, self.base_commit = project, base, base_commit
        self.constraints: Constraints = project.constraints
        agent_word = self.options.agent_command or project.plan.settings.agent
        self.agent: AgentSpec | None = resolve_agent(agent_word) if agent_word else None
        self.gate = resolve_gate(self.repo, base_commit, project.plan.settings)
        self.tip = base_commit
        self.branch_made = False
        self.marked: dict[str, str] | None = None  # task -> branch marking it NEEDS_HUMAN
        self.stopped: str | None = None
        self.gate_failed_on_base = False
        self.run_state = RunState(self.state_dir, self.session)
        checkout_dir = self.state_dir / "checkouts" / self.session
        self.checkout: Checkout | None = None
        try:
            queue = self._queue()
            if queue:
                self.run_state.update(phase="checkout")
                checkout_dir.parent.mkdir(parents=True, exist_ok=True)
                self.checkout = Checkout.create(self.repo, checkout_dir, base_commit)
                self._run_queue(queue)
        finally:
            if self.checkout is not None:
                self.checkout.remove()
            elif checkout_dir.exists():
                shutil.rmtree(checkout_dir)
            self.run_state.clear()
        result = self._finish(started_at)
        settings = project.plan.settings
        record_session(self.repo, result, timezone=settings.timezone)
        message = session_notification(result)  # None unless something changed
        if message is not None:
            for problem in notify(notify_urls(settings.notify), *message):
                self.listener.note(problem)
        return result

    # -- choosing the tasks ------------------------------------------------------------------

    def _queue(self) -> list[Task]:
        """Record blocked and skipped tasks; return the ones to run, in plan order."""
        verdicts = check(self.project, self.options.agent_command)
        wanted = set(self.options.task_ids)
        known = {v.task.id for v in verdicts}
        for task_id in self.options.task_ids:
            if task_id not in known:
                raise UserError(f"no task `{task_id}` in the plan (--task)", self.project.plan.path)
        # Tasks named with --task whatever their queue; otherwise the Ready ones not yet done.
        considered = [
            v
            for v in verdicts
            if (
                v.task.id in wanted
                if wanted
                else v.task.queue is Queue.READY and v.task.status != "DONE"
            )
        ]
        awaiting = tasks_awaiting_review(self.repo, self.base_commit)
        # Eligible means READY under the Ready heading: never DONE (merged) on the base.
        rejected = self._rejected([v.task.id for v in considered if v.eligible])
        queue: list[Task] = []
        for verdict in considered:
            task = verdict.task
            waiting = awaiting.get(task.id)
            pull = rejected.get(task.id)
            if not verdict.eligible:
                self._record(task, Outcome.BLOCKED, " ".join(verdict.reasons))
            elif pull is not None and (waiting is None or left_behind(waiting.branch, pull)):
                self._mark_needs_human(task, pull)
            elif waiting is not None:
                self._record(
                    task,
                    Outcome.SKIPPED,
                    f"Its result already awaits review on {waiting.branch} ({waiting.tip[:12]}).",
                )
            else:
                queue.append(task)
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

    def _rejected(self, task_ids: list[str]) -> dict[str, PullRequest]:
        """Which of these tasks a person rejected on GitHub. Not on GitHub or no token: nothing is
        asked, silently (`doctor` covers that); a failure to ask is a note, never the end."""
        try:
            return rejected_tasks(self.repo, task_ids)
        except (UserError, ValueError) as err:  # ValueError: an answer that is not JSON
            self.listener.note(
                "The session goes on without knowing which pull requests were closed without "
                f"merging, because GitHub could not be asked ({err})."
            )
            return {}

    def _mark_needs_human(self, task: Task, pull: PullRequest) -> None:
        """Block the task, and (unless an unmerged branch does already) commit its status set to
        NEEDS_HUMAN, so that merging the session's pull request takes it out of the queue."""
        if self.marked is None:
            self.marked = marked_awaiting_review(self.repo, self.base_commit)
        if task.id not in self.marked:
            plan_rel = self.project.plan.path
            data = self.repo.read_blob(self.tip, plan_rel)
            assert data is not None  # the session's plan was read from the base
            updated = set_status(decode(data, plan_rel), task.id, NEEDS_HUMAN, plan_rel)
            tree = self.repo.replace_in_tree(self.tip, {plan_rel: updated.encode()})
            message = (
                f"Mark {task.id} as needing a person\n\n"
                f"Its pull request #{pull.number} ({pull.url}) was closed without merging, so "
                f"it is not run again. Merging this sets its status in {plan_rel} to "
                f"{NEEDS_HUMAN}."
            )
            trailers = {
                STATUS_TRAILER: status_trailer(task.id),
                "Session": self.session,
                "Gitops-Agent-Version": __version__,
            }
            self._ensure_branch()
            self.tip = self.repo.commit_tree(self.branch, tree, self.tip, message, trailers)
            self.marked[task.id] = self.branch
        self._record(
            task,
            Outcome.BLOCKED,
            f"Its pull request #{pull.number} was closed without merging; a person must decide "
            f"what to do with it (its status is set to {NEEDS_HUMAN}).",
        )

    # -- running them ------------------------------------------------------------------------

    def _run_queue(self, queue: list[Task]) -> None:
        assert self.gate is not None and self.checkout is not None
        self.run_state.update(phase="baseline gate")
        baseline = run_gate(self.gate, self.checkout.path, self._task_timeout())
        if not baseline.passed:
            self.gate_failed_on_base = True
            self.stopped = (
                f"the quality gate fails on {self.base} itself (`{baseline.command}`); "
                "fix the base first"
            )
            for task in queue:
                self._record(task, Outcome.SKIPPED, f"Not run: {self.stopped}.")
            return
        start = time.monotonic()
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
            if time.monotonic() - start >= limits.max_session_minutes * 60:
                self._skip_all(
                    rest,
                    f"Not run: the session time limit of {limits.max_session_minutes} "
                    "minutes was reached.",
                )
                return
            result = self._run_task(task)
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

    def _skip_all(self, tasks: list[Task], reason: str) -> None:
        for task in tasks:
            self._record(task, Outcome.SKIPPED, reason)

    def _task_timeout(self) -> float:
        return self.constraints.task_timeout_minutes * 60.0

    def _run_task(self, task: Task) -> TaskResult:
        assert self.checkout is not None and self.gate is not None
        attempts = self.constraints.max_attempts
        started = time.monotonic()
        feedback: str | None = None
        failure = ""
        violations: tuple[str, ...] = ()
        gate_output = ""
        for attempt in range(1, attempts + 1):
            self._phase(task, "agent", attempt, attempts)
            self.checkout.reset(self.tip)
            snapshot = self.repo.snapshot_metadata()
            ran = self._run_agent(task, feedback)
            restored = self.repo.restore_metadata(snapshot)
            if ran.rate_limit is not None:
                when = ran.rate_limit.resume_at
                resume = f" It can resume after {when:%Y-%m-%d %H:%M %Z}." if when else ""
                said = ran.rate_limit.message.strip()
                self.stopped = f"the agent hit its usage limit: {said}"
                return self._record(
                    task,
                    Outcome.SKIPPED,
                    f"Not finished: the agent hit its usage limit ({said}).{resume}",
                    attempts=attempt,
                    duration=time.monotonic() - started,
                )
            failure, violations, gate_output = "", (), ""
            retry = True
            if restored:
                violations = tuple(f"Outside its checkout: {what}" for what in restored)
                failure = "The agent changed git metadata outside its own checkout (restored)."
            elif ran.timed_out:
                failure = (
                    f"The agent ran past the task timeout of "
                    f"{self.constraints.task_timeout_minutes} minutes and was stopped."
                )
                retry = False
            elif ran.idle:
                failure = (
                    f"The agent was silent for {self.constraints.idle_timeout_minutes} minutes "
                    "and was stopped."
                )
                retry = False
            elif ran.exit_code != 0:
                failure = f"The agent exited with status {ran.exit_code}."
                gate_output = ran.output[-2000:]
            if not failure:
                self._phase(task, "inspect", attempt, attempts)
                failure, violations, tree, changed = self._inspect(task)
                if not failure:
                    self._phase(task, "gate", attempt, attempts)
                    gate = run_gate(self.gate, self.checkout.path, self._task_timeout())
                    if gate.passed:
                        self._phase(task, "commit", attempt, attempts)
                        commit = self._commit(task, tree)
                        return self._record(
                            task,
                            Outcome.COMMITTED,
                            f"Passed every rule and the quality gate ({self.gate.source}).",
                            commit=commit,
                            attempts=attempt,
                            duration=time.monotonic() - started,
                            changed_files=changed,
                        )
                    failure = f"The quality gate failed: `{gate.command}`."
                    gate_output = gate.output
            feedback = _feedback(attempt, failure, violations, gate_output)
            if not retry:
                break
        return self._record(
            task,
            Outcome.ROLLED_BACK,
            failure,
            attempts=attempt,
            duration=time.monotonic() - started,
            violations=violations,
            gate_output=gate_output,
        )

    def _run_agent(self, task: Task, feedback: str | None) -> AgentResult:
        assert self.checkout is not None
        timeout = self._task_timeout()
        idle = self.constraints.idle_timeout_minutes * 60.0 or None
        if task.run is not None:
            return run_shell(
                task.run, self.checkout.path, task_id=task.id, timeout=timeout, idle_timeout=idle
            )
        assert self.agent is not None  # pre-flight refuses a task with neither
        prompt = self._prompt(task, feedback)
        return run_agent(
            self.agent,
            prompt,
            self.checkout.path,
            task_id=task.id,
            timeout=timeout,
            idle_timeout=idle,
        )

    def _prompt(self, task: Task, feedback: str | None) -> str:
        c = self.constraints
        budget = int((task.estimated_lines or c.max_estimated_lines) * c.line_budget_factor)
        return render(
            "prompt.md.j2",
            task=task,
            objective=self.project.plan.objective,
            approved_dirs=c.approved_dirs,
            protected=(*self.project.protected_paths, *self._gate_paths(), *c.protected),
            line_budget=budget,
            allow_delete=c.allow_delete,
            gate=self.gate.source if self.gate else "none",
            feedback=feedback,
            constraints_prose=c.prose or "(no constraints document: the default rules apply)",
        )

    def _gate_paths(self) -> tuple[str, ...]:
        return self.gate.paths if self.gate is not None else ()

    def _inspect(self, task: Task) -> tuple[str, tuple[str, ...], str, tuple[str, ...]]:
        """(failure, violations, tree to commit, changed paths); failure "" when it may go on.

        The plan's status line is written into the checkout before the gate runs, so the gate
        judges exactly the tree that is committed.
        """
        assert self.checkout is not None
        change = self.checkout.capture(self.tip)
        if change.is_empty:
            return "The agent changed nothing.", (), "", ()
        found = inspect_change(
            change,
            self.constraints,
            estimated_lines=task.estimated_lines,
            protected_paths=(*self.project.protected_paths, *self._gate_paths()),
        )
        if found:
            count = len(found)
            more = f" (and {count - 1} more)" if count > 1 else ""
            failure = f"The change broke a rule{more}: {found[0].message}"
            return failure, tuple(v.message for v in found), "", ()
        plan_rel = self.project.plan.path
        plan_file = self.checkout.path / plan_rel
        text = decode(plan_file.read_bytes(), plan_rel)
        updated = set_status(text, task.id, "DONE", plan_rel).encode()
        write_atomic(plan_file, updated)
        tree = self.repo.replace_in_tree(change.tree, {plan_rel: updated})
        return "", (), tree, tuple(f.path for f in change.files)

    def _ensure_branch(self) -> None:
        if not self.branch_made:
            self.repo.create_branch(self.branch, self.base_commit)
            self.branch_made = True

    def _commit(self, task: Task, tree: str) -> str:
        self._ensure_branch()
        agent = "shell" if task.run is not None else (self.agent.name if self.agent else "shell")
        message = f"{task.title}\n\nTask {task.id} of {self.project.plan.path}, done unattended."
        commit = self.repo.commit_tree(
            self.branch,
            tree,
            self.tip,
            message,
            {
                "Task-Id": task.id,
                "Agent": agent,
                "Session": self.session,
                "Gitops-Agent-Version": __version__,
            },
        )
        self.tip = commit
        return commit

    def _phase(self, task: Task, phase: str, attempt: int, attempts: int) -> None:
        self.run_state.update(task=task.id, phase=phase, attempt=attempt, max_attempts=attempts)
        self.listener.phase(task, phase, attempt, attempts)

    def _record(self, task: Task, outcome: Outcome, reason: str, **fields: object) -> TaskResult:
        result = TaskResult(task.id, task.title, outcome, reason, **fields)  # type: ignore[arg-type]
        self.results.append(result)
        self.listener.task_done(result)
        return result

    # -- writing back ------------------------------------------------------------------------

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
            agent=self.agent.name if self.agent else None,
            tasks=tuple(self.results),
            stopped=self.stopped,
            gate_failed_on_base=self.gate_failed_on_base,
        )
        if self.branch_made:
            pr_path = self.state_dir / "sessions" / self.session / "pr-body.md"
            write_atomic(pr_path, _pr_body(result, self.constraints).encode())
            result = replace(result, pr_body=str(pr_path))
        return result


def _feedback(attempt: int, failure: str, violations: tuple[str, ...], output: str) -> str:
    lines = [f"Attempt {attempt}: {failure}"]
    lines += [f"- {v}" for v in violations]
    if output:
        lines += ["", "Output (the end of it):", "```", output.strip()[-3000:], "```"]
    return "\n".join(lines)


def _pr_body(result: SessionResult, constraints: Constraints) -> str:
    committed = [t for t in result.tasks if t.outcome is Outcome.COMMITTED]
    others = [t for t in result.tasks if t.outcome is not Outcome.COMMITTED]
    return render(
        "pr-body.md.j2",
        result=result,
        committed=committed,
        others=others,
        constraints=constraints.path or "the default rules",
        version=__version__,
    )
