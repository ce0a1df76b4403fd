"""One attempt at a task: the agent (or `Run:` command) in its workspace, then every check.

The agent works in its own workspace; when it and everything it started are gone, the change is
read from the work tree's files alone, judged by the rules, written into a tree with the task's
status set to DONE, and that exact tree is materialised in the gate's workspace and gated there.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from gitops_agent.agents import AgentResult, AgentSpec, RateLimit, run_agent, run_shell
from gitops_agent.change import Refusal
from gitops_agent.constraints import Constraints
from gitops_agent.files import decode
from gitops_agent.gate import Gate, run_gate
from gitops_agent.git import Repo
from gitops_agent.plan import Task, set_status
from gitops_agent.policy.inspect import inspect_change, show
from gitops_agent.policy.masking import mask
from gitops_agent.runner import Runner
from gitops_agent.session.places import Places


class Verdict(enum.Enum):
    PASSED = "passed"  # every rule and the gate passed: `tree` may be committed
    FAILED = "failed"  # worth another attempt, with the failure as feedback
    STOPPED = "stopped"  # timed out or fell silent: another attempt would do the same
    LIMITED = "limited"  # the agent hit its usage limit: the session stops, not the task


@dataclass(frozen=True, slots=True)
class AttemptResult:
    verdict: Verdict
    failure: str = ""  # one sentence, "" when it passed
    violations: tuple[str, ...] = ()
    output: str = ""  # the failing gate's (or agent's) output, the end of it
    tree: str | None = None  # the tree to commit, when it passed
    changed: tuple[str, ...] = ()  # paths the change touched, when it passed
    rate_limit: RateLimit | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """What every attempt of a session shares."""

    repo: Repo
    places: Places
    runner: Runner
    constraints: Constraints
    gate: Gate
    agent: AgentSpec | None
    plan_path: str
    protected_paths: tuple[str, ...]


def attempt(
    ctx: Context,
    task: Task,
    tip: str,
    prompt: str | None,
    phase: Callable[[str], None] = lambda _name: None,
) -> AttemptResult:
    """Run the task once on top of `tip`; `prompt` is None for a `Run:` task. `phase` hears
    when the attempt moves on to "inspect" and to "gate"."""
    ran = _run(ctx, task, tip, prompt)
    c = ctx.constraints
    if ran.rate_limit is not None:
        return AttemptResult(Verdict.LIMITED, rate_limit=ran.rate_limit)
    if ran.timed_out:
        return AttemptResult(
            Verdict.STOPPED,
            f"The agent ran past the task timeout of {c.task_timeout_minutes:g} minutes and was "
            "stopped.",
        )
    if ran.idle:
        return AttemptResult(
            Verdict.STOPPED,
            f"The agent was silent for {c.idle_timeout_minutes:g} minutes and was stopped.",
        )
    if ran.exit_code != 0:
        return AttemptResult(
            Verdict.FAILED,
            f"The agent exited with status {ran.exit_code}.",
            output=mask(ran.output)[-2000:],  # masked whole: a cut may not split a secret
        )
    phase("inspect")
    edits, refusals = ctx.places.agent.capture(max_bytes=c.max_file_bytes)
    if refusals:
        found = tuple(_refused(r) for r in refusals)
        return _broke(found)
    change = ctx.places.agent.change(edits)
    if change.is_empty:
        return AttemptResult(Verdict.FAILED, "The agent changed nothing.")
    violations = inspect_change(
        change, c, estimated_lines=task.estimated_lines, protected_paths=ctx.protected_paths
    )
    if violations:
        return _broke(tuple(v.message for v in violations))
    data = ctx.repo.read_tree_blob(change.tree, ctx.plan_path)
    assert data is not None  # the plan is protected: the change cannot remove it
    updated = set_status(decode(data, ctx.plan_path), task.id, "DONE", ctx.plan_path)
    tree = ctx.repo.replace_in_tree(change.tree, {ctx.plan_path: updated.encode()})
    phase("gate")
    ctx.places.gate.reset(tip, tree=tree)
    gated = run_gate(
        ctx.gate,
        ctx.places.gate.path,
        c.task_timeout_minutes * 60.0,
        ctx.runner,
        ctx.places.scratch,
    )
    if ctx.runner.gate_leaves_no_trace:
        ctx.places.gate.untouched()
    if not gated.passed:
        return AttemptResult(
            Verdict.FAILED, f"The quality gate failed: `{gated.command}`.", output=gated.output
        )
    return AttemptResult(Verdict.PASSED, tree=tree, changed=tuple(f.path for f in change.files))


def _run(ctx: Context, task: Task, tip: str, prompt: str | None) -> AgentResult:
    workspace = ctx.places.agent
    workspace.reset(tip)
    c = ctx.constraints
    timeout = c.task_timeout_minutes * 60.0
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
    )


def _refused(refusal: Refusal) -> str:
    return f"{show(refusal.path)}: refused, because {refusal.reason}"


def _broke(found: tuple[str, ...]) -> AttemptResult:
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return AttemptResult(Verdict.FAILED, f"The change broke a rule{more}: {found[0]}", found)
