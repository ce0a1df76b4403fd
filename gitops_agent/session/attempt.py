"""One attempt at a task: the agent (or `Run:` command) in its workspace, then every check.

The agent works in its own workspace; when it and everything it started are gone, the change is
read from the work tree's files alone, judged by the rules, written into a tree with the task's
status set to DONE, and that exact tree is materialised in the gate's workspace and gated there.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from gitops_agent.agents import AgentResult, AgentSpec, RateLimit, run_agent, run_shell
from gitops_agent.change import Refusal
from gitops_agent.constraints import Constraints
from gitops_agent.files import decode
from gitops_agent.gate import Gate
from gitops_agent.gate.verdict import GateRun, run_gate, tree_lines
from gitops_agent.git import Repo
from gitops_agent.plan import TESTS_YES, Task, TaskStatus, set_status
from gitops_agent.policy.inspect import inspect_change, show
from gitops_agent.policy.masking import mask
from gitops_agent.policy.provenance import change_problems
from gitops_agent.policy.tests_guard import (
    TASK_CHANGES_TESTS_KEY,
    guard_tests,
    title_says_it_writes_tests,
)
from gitops_agent.results import OutputOf, Phase
from gitops_agent.runner import Runner
from gitops_agent.session.places import Places


class Verdict(enum.Enum):
    PASSED = "passed"  # every rule and the gate passed: `tree` may be committed
    FAILED = "failed"  # worth another attempt, with the failure as feedback
    STOPPED = "stopped"  # timed out or fell silent: another attempt would do the same
    LIMITED = "limited"  # the agent hit its usage limit: the session stops, not the task
    NOTHING = "nothing"  # a `Run:` command that ran well and changed nothing: nothing to do


TRANSCRIPT_MAX = 64_000  # characters of an agent's output kept as evidence (the end of it)


@dataclass(frozen=True, slots=True)
class AttemptResult:
    verdict: Verdict
    failure: str = ""  # one sentence, "" when it passed
    violations: tuple[str, ...] = ()  # rules broken, failing tests, new findings
    output: str = ""  # the failing gate's (or agent's) output, the end of it
    tree: str | None = None  # the tree to commit, when it passed
    changed: tuple[str, ...] = ()  # paths the change touched, when it passed
    rate_limit: RateLimit | None = None
    candidate: str | None = None  # the tree the attempt left, passed or not (evidence)
    transcript: str = ""  # the agent's (or command's) own output, masked, the end of it
    already_failing: tuple[str, ...] = ()  # gate failures that were already on the base
    output_of: OutputOf = OutputOf.GATE  # whose `output` it is
    # Every rule of the change passed and only the gate failed: the `candidate` may be shown
    # to people as a draft (on_failure: draft-pr), since it broke no safety rule.
    rules_passed: bool = False


@dataclass(frozen=True, slots=True)
class Context:
    """What every attempt of a session shares."""

    repo: Repo
    places: Places
    runner: Runner
    constraints: Constraints
    gate: Gate
    baseline: GateRun
    agent: AgentSpec | None
    plan_path: str
    protected_paths: tuple[str, ...]
    output: Callable[[str], None] | None = None  # hears the agent's (or command's) output


def attempt(
    ctx: Context,
    task: Task,
    tip: str,
    prompt: str | None,
    phase: Callable[[Phase], None] = lambda _name: None,
    *,
    timeout: float,
) -> AttemptResult:
    """Run the task once on top of `tip` within `timeout` seconds, agent and gate together;
    `prompt` is None for a `Run:` task. `phase` hears when the attempt moves on to "inspect"
    and to "gate"."""
    deadline = time.monotonic() + timeout
    ran = _run(ctx, task, tip, prompt, timeout)
    transcript = mask(ran.output)[-TRANSCRIPT_MAX:]  # masked whole: a cut may not split one
    judged = _judge(ctx, task, tip, ran, phase, deadline)
    return replace(judged, transcript=transcript)


def _judge(
    ctx: Context,
    task: Task,
    tip: str,
    ran: AgentResult,
    phase: Callable[[Phase], None],
    deadline: float,
) -> AttemptResult:
    c = ctx.constraints
    who = "The command" if task.run is not None else "The agent"
    if ran.rate_limit is not None:
        return AttemptResult(Verdict.LIMITED, rate_limit=ran.rate_limit)
    if ran.timed_out:
        return AttemptResult(
            Verdict.STOPPED,
            f"{who} ran past its timeout and was stopped (a task may take "
            f"{c.task_timeout_minutes:g} minutes, a session {c.max_session_minutes:g}).",
        )
    if ran.idle:
        return AttemptResult(
            Verdict.STOPPED,
            f"{who} was silent for {c.idle_timeout_minutes:g} minutes and was stopped.",
        )
    phase(Phase.INSPECT)
    edits, refusals = ctx.places.agent.capture(max_bytes=c.max_file_bytes)
    if refusals:
        return _broke(tuple(_refused(r) for r in refusals))
    change = ctx.places.agent.change(edits)
    if not _exit_ok(task, ran, changed=not change.is_empty, constraints=c):
        return AttemptResult(
            Verdict.FAILED,
            f"{who} exited with status {ran.exit_code}.",
            output=mask(ran.output)[-2000:],  # masked whole: a cut may not split a secret
            candidate=change.tree,
            output_of=OutputOf.COMMAND if task.run is not None else OutputOf.AGENT,
        )
    if change.is_empty:
        if task.run is not None:
            return AttemptResult(Verdict.NOTHING, candidate=change.tree)
        return AttemptResult(Verdict.FAILED, f"{who} changed nothing.", candidate=change.tree)
    violations = inspect_change(
        change, c, estimated_lines=task.estimated_lines, protected_paths=ctx.protected_paths
    )
    # What `verify` refuses in the publisher, refused here first: never commit what the
    # publisher would throw away with the whole artifact.
    violations += change_problems(change, c, frozenset())
    may_change_tests = tests_may_change(task, c)
    if not may_change_tests:
        violations += guard_tests(
            change,
            read_base=lambda path: ctx.repo.read_blob(tip, path),
            read_new=lambda path: ctx.repo.read_tree_blob(change.tree, path),
        )
    if violations:
        ranked = sorted(violations, key=lambda v: _RANK.get(v.rule, len(_RANK)))
        return replace(_broke(tuple(v.message for v in ranked)), candidate=change.tree)
    data = ctx.repo.read_tree_blob(change.tree, ctx.plan_path)
    assert data is not None  # the plan is protected: the change cannot remove it
    updated = set_status(decode(data, ctx.plan_path), task.id, TaskStatus.DONE, ctx.plan_path)
    tree = ctx.repo.replace_in_tree(change.tree, {ctx.plan_path: updated.encode()})
    phase(Phase.GATE)
    ctx.places.gate.reset(tip, tree=tree)
    gated = run_gate(
        ctx.gate,
        ctx.places.gate.path,
        timeout=max(deadline - time.monotonic(), 1.0),
        runner=ctx.runner,
        scratch=ctx.places.scratch,
        source_line=tree_lines(ctx.repo, tree),
        baseline=ctx.baseline,
        tests_may_change=may_change_tests,
    )
    if ctx.runner.gate_leaves_no_trace:
        ctx.places.gate.untouched()
    if not gated.passed:
        return AttemptResult(
            Verdict.FAILED,
            gated.failure,
            violations=gated.details,
            output=gated.output,
            candidate=change.tree,
            already_failing=gated.already_failing,
            rules_passed=True,
        )
    return AttemptResult(
        Verdict.PASSED,
        tree=tree,
        changed=tuple(f.path for f in change.files),
        candidate=change.tree,
        already_failing=gated.already_failing,
    )


# Which broken rule a reason's headline names, when several are: the one that matters most to
# a person (a secret, a protected file, a tampered test) before the ones that follow from it.
_RANK = {
    rule: rank
    for rank, rule in enumerate(
        (
            "secret",
            "protected-file",
            "symlink-to-protected",
            "symlink-outside",
            "test-infrastructure",
            "test-hook",
            "test-config",
            "skip-added",
            "test-file-changed",
            "forbidden-content",
            "deleted-file",
            "binary-file",
            "oversized-file",
            "outside-approved-dirs",
            "line-budget",
        )
    )
}


def tests_may_change(task: Task, constraints: Constraints) -> bool:
    """Whether the task may change existing tests and test infrastructure: the constraints
    turn the rule off, the plan says so (`Changes tests: yes`), or its title says it writes
    tests."""
    if not constraints.protect_tests:
        return True
    said = task.detail(TASK_CHANGES_TESTS_KEY)
    if said is not None:
        return said.value.strip().lower().rstrip(".") in TESTS_YES
    return title_says_it_writes_tests(task.title)


def _exit_ok(task: Task, ran: AgentResult, *, changed: bool, constraints: Constraints) -> bool:
    """An agent must exit 0. A `Run:` codemod succeeds by its effect: exit 0, or 1 when it
    changed files (pyupgrade, ruff --fix, black and isort say "I changed something" so), or a
    status the constraints list in `run_ok_exit_codes`."""
    if ran.exit_code == 0:
        return True
    if task.run is None:
        return False
    if constraints.run_ok_exit_codes:
        return ran.exit_code in constraints.run_ok_exit_codes
    return ran.exit_code == 1 and changed


def _run(ctx: Context, task: Task, tip: str, prompt: str | None, timeout: float) -> AgentResult:
    workspace = ctx.places.agent
    workspace.reset(tip)
    c = ctx.constraints
    idle = c.idle_timeout_minutes * 60.0 or None
    if task.run is not None:
        return run_shell(
            task.run,
            workspace.path,
            runner=ctx.runner,
            scratch=ctx.places.scratch,
            task_id=task.id,
            timeout=timeout,
            idle_timeout=idle,
            on_output=ctx.output,
        )
    assert ctx.agent is not None and prompt is not None  # pre-flight refuses a task with neither
    return run_agent(
        ctx.agent,
        prompt,
        workspace.path,
        runner=ctx.runner,
        scratch=ctx.places.scratch,
        task_id=task.id,
        timeout=timeout,
        idle_timeout=idle,
        on_output=ctx.output,
    )


def _refused(refusal: Refusal) -> str:
    return f"{show(refusal.path)}: refused, because {refusal.reason}"


def _broke(found: tuple[str, ...]) -> AttemptResult:
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return AttemptResult(Verdict.FAILED, f"The change broke a rule{more}: {found[0]}", found)
