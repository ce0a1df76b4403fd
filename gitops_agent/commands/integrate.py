"""`gitops-agent integrate`: many task branches into one integration branch, one pull request.

Each branch is merged in memory (no checkout) onto `autonomous/integration-<id>`, in the order
its tasks have in the plan. A branch that conflicts with those merged before it is left out, with
the files that clashed. The base's gate then runs on the merged tree; if it fails there (and not
on the base itself), the branches are added again one at a time, each kept only if the gate
still passes, so one bad combination does not sink the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gitops_agent.errors import UserError
from gitops_agent.files import write_atomic
from gitops_agent.gate import Gate, resolve_gate
from gitops_agent.gate.bench import gate_bench
from gitops_agent.git.merge import commit_merge, merge
from gitops_agent.project import Base, load_base
from gitops_agent.render import render
from gitops_agent.results import BRANCH_PREFIX, INTEGRATION_PREFIX, MEMORY_BRANCH
from gitops_agent.runstate import STATE_DIR
from gitops_agent.session import new_session_id
from gitops_agent.session.places import work_dir
from gitops_agent.verification import BranchKind, branch_kind


@dataclass(frozen=True, slots=True)
class Candidate:
    branch: str
    tip: str
    tasks: tuple[str, ...]  # Task-Id trailers of the commits it adds, oldest first


@dataclass(frozen=True, slots=True)
class LeftOut:
    candidate: Candidate
    reason: str
    files: tuple[str, ...] = ()  # the files that conflicted
    output: str = ""  # the gate's output, when the gate left it out


@dataclass(frozen=True, slots=True)
class Integration:
    id: str
    branch: str | None  # None when nothing could be merged
    base: str
    base_commit: str
    merged: tuple[Candidate, ...]
    left_out: tuple[LeftOut, ...]
    gate: str  # what the gate said, in one sentence
    pr_body: str | None
    removed: tuple[str, ...] = ()  # earlier integration branches merged or made redundant

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "branch": self.branch,
            "base": self.base,
            "base_commit": self.base_commit,
            "merged": [{"branch": c.branch, "tasks": list(c.tasks)} for c in self.merged],
            "left_out": [
                {
                    "branch": o.candidate.branch,
                    "tasks": list(o.candidate.tasks),
                    "reason": o.reason,
                    "files": list(o.files),
                }
                for o in self.left_out
            ],
            "gate": self.gate,
            "pr_body": self.pr_body,
            "removed": list(self.removed),
        }


def candidates(base: Base, branches: list[str], prefix: str) -> list[Candidate]:
    """The branches to integrate, in plan order: the ones named, or ours under `prefix` that are
    not merged yet (never the memory branch or an earlier integration)."""
    repo = base.repo
    if branches:
        names = branches
        for name in names:
            if not name.startswith(BRANCH_PREFIX):
                raise UserError(f"{name}: only autonomous/ branches can be integrated")
            if repo.branch_tip(name) is None:
                raise UserError(f"no branch {name} here", str(repo.root))
    else:
        names = [
            name
            for name, tip in repo.autonomous_branches().items()
            if name.startswith(prefix)
            and name != MEMORY_BRANCH
            and not name.startswith(INTEGRATION_PREFIX)
            and branch_kind(name) is BranchKind.SESSION  # not a task's own, a proposal...
            and not repo.is_merged(tip, base.commit)
        ]
    found = []
    for name in dict.fromkeys(names):
        tip = repo.branch_tip(name)
        assert tip is not None
        commits = reversed(repo.commits_between(tip, base.commit))
        tasks = tuple(c.trailers["Task-Id"] for c in commits if "Task-Id" in c.trailers)
        found.append(Candidate(name, tip, tasks))
    order = {task.id: n for n, task in enumerate(base.project.plan.tasks)}
    unknown = len(order)
    return sorted(
        found,
        key=lambda c: (min((order.get(t, unknown) for t in c.tasks), default=unknown), c.branch),
    )


def integrate(
    repo_dir: Path | None,
    branches: list[str],
    *,
    prefix: str = BRANCH_PREFIX,
    integration_id: str | None = None,
    plan: Path | None = None,
    constraints: Path | None = None,
) -> Integration:
    """Merge the task branches onto a new integration branch and gate the result."""
    base = load_base(repo_dir, plan, constraints)
    ident = integration_id or new_session_id(datetime.now(UTC))
    name = f"{INTEGRATION_PREFIX}{ident}"
    repo = base.repo
    if repo.branch_tip(name) is not None:
        raise UserError(f"branch {name} exists already; give another --id", str(repo.root))
    found = candidates(base, branches, prefix)
    tip, merged, left_out = _merge_all(base, found)
    gate = resolve_gate(repo, base.commit, base.project.plan.settings)
    work = repo.common_dir / STATE_DIR / "integrations" / ident
    if not merged:
        said = "not run: nothing was merged"
    elif gate is None:
        said = "no gate (add `gate:` to the plan): nothing is integrated unchecked"
        left_out += [
            LeftOut(c, "there is no quality gate to run on the merged result") for c in merged
        ]
        merged, tip = [], base.commit
    else:
        place = work_dir(repo, repo.tree_bytes(tip)) / f"integration-{ident}"
        tip, merged, gate_left, said = _gate(base, gate, tip, merged, place)
        left_out += gate_left
    branch = None
    body_path = None
    if merged:
        repo.create_branch(name, tip)
        branch = name
    removed = _clean_up(base, name, {t for c in merged for t in c.tasks})
    result = Integration(
        ident,
        branch,
        base.branch,
        base.commit,
        tuple(merged),
        tuple(left_out),
        said,
        None,
        removed,
    )
    if branch is not None:
        body = render(
            "integration-pr.md.j2",
            branch=branch,
            base=base.branch,
            tasks=[t for c in merged for t in c.tasks],
            merged=[
                {"tasks": c.tasks, "sessions": [c.branch.removeprefix(BRANCH_PREFIX)]}
                for c in result.merged
            ],
            left_out=[
                {
                    "tasks": o.candidate.tasks,
                    "branch": o.candidate.branch,
                    "reason": o.reason,
                    "files": o.files,
                }
                for o in result.left_out
            ],
            gate=said,
        )
        body_path = work / "pr-body.md"
        work.mkdir(parents=True, exist_ok=True)
        write_atomic(body_path, body.encode())
        result = replace(result, pr_body=str(body_path))
    return result


def _clean_up(base: Base, new: str, carried: set[str]) -> tuple[str, ...]:
    """Delete our earlier integration branches here that are merged into the base, or whose
    every task the new one (`new`, carrying `carried`) brings again: they would only stay
    "awaiting review" forever. A branch checked out, or moved meanwhile, is left alone."""
    repo = base.repo
    removed = []
    for name, tip in repo.autonomous_branches().items():
        if not name.startswith(INTEGRATION_PREFIX) or name == new:
            continue
        commits = repo.commits_between(tip, base.commit)
        tasks = {c.trailers["Task-Id"] for c in commits if "Task-Id" in c.trailers}
        gone = repo.is_merged(tip, base.commit) or (bool(carried) and tasks <= carried)
        if gone and repo.delete_branch(name, tip):
            removed.append(name)
    return tuple(removed)


def _merge_all(base: Base, found: list[Candidate]) -> tuple[str, list[Candidate], list[LeftOut]]:
    """Merge each candidate in turn onto the last result; leave out the ones that conflict."""
    tip = base.commit
    merged: list[Candidate] = []
    left_out: list[LeftOut] = []
    for candidate in found:
        if not candidate.tasks:
            left_out.append(LeftOut(candidate, "it adds no task commit"))
            continue
        step = _merge_one(base, tip, candidate)
        if isinstance(step, LeftOut):
            left_out.append(step)
        else:
            tip = step
            merged.append(candidate)
    return tip, merged, left_out


def _merge_one(base: Base, onto: str, candidate: Candidate) -> str | LeftOut:
    done = merge(base.repo, onto, candidate.tip)
    if done.tree is None:
        return LeftOut(candidate, "it conflicts with the branches merged before it", done.conflicts)
    return commit_merge(
        base.repo,
        done.tree,
        [onto, candidate.tip],
        f"Merge {candidate.branch} ({', '.join(candidate.tasks)})",
        {"Integrates": candidate.branch},
    )


def _gate(
    base: Base, gate: Gate, tip: str, merged: list[Candidate], path: Path
) -> tuple[str, list[Candidate], list[LeftOut], str]:
    """Gate the merged tree; on failure, re-merge one branch at a time behind the gate."""
    constraints = base.project.constraints
    with gate_bench(base.repo, gate, base.commit, constraints, path) as judged:
        first = judged(tip)
        if first.passed:
            return tip, merged, [], f"passed on the merged result ({gate.source})"
        kept: list[Candidate] = []
        left_out: list[LeftOut] = []
        current = base.commit
        for candidate in merged:
            step = _merge_one(base, current, candidate)
            if isinstance(step, LeftOut):  # cannot happen: it merged onto more before
                left_out.append(step)
                continue
            result = judged(step)
            if result.passed:
                current = step
                kept.append(candidate)
            else:
                left_out.append(
                    LeftOut(
                        candidate,
                        f"the gate failed once it was merged ({result.command}): {result.failure}",
                        output=result.output,
                    )
                )
        said = f"failed on the whole merge; passed with {len(kept)} of {len(merged)} branches"
        return current, kept, left_out, said
