"""The gate on commits that are not a task's attempt: a merge of results (`integrate`), or an
auto-approved result merged with the latest base (`merge`'s re-tests). Each commit is
materialised fresh from its tree in one checkout, and judged against the base's baseline, so
only what the merge broke counts."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from gitops_agent.constraints import Constraints
from gitops_agent.gate import Gate
from gitops_agent.gate.baseline import cached_baseline
from gitops_agent.gate.verdict import GateResult, GateRun, run_baseline, run_gate, tree_lines
from gitops_agent.git import Repo, Workspace
from gitops_agent.runner import Runner
from gitops_agent.runstate import STATE_DIR


@contextmanager
def gate_bench(
    repo: Repo, gate: Gate, base_commit: str, constraints: Constraints, path: Path
) -> Iterator[Callable[[str], GateResult]]:
    """Yield `judged(commit)`: the gate on that commit's tree, against the baseline of
    `base_commit`; everything under `path` is removed afterwards."""
    timeout = constraints.task_timeout_minutes * 60
    runner = Runner.create(constraints, repo_root=repo.root)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    checkout = Workspace(repo, path / "tree")
    scratch = path / "scratch"
    try:
        base_tree = repo.tree_of(base_commit)

        def run_on_base() -> GateRun:
            checkout.reset(base_commit)
            return run_baseline(
                gate,
                checkout.path,
                tree=base_tree,
                timeout=timeout,
                runner=runner,
                scratch=scratch,
                source_line=tree_lines(repo, base_tree),
            )

        # A base and a gate judged before (a session's, another result's re-test) are not
        # judged again: the cache sessions keep.
        state_dir = repo.common_dir / STATE_DIR
        baseline, _cached = cached_baseline(state_dir, base_tree, gate.key, run_on_base)

        def judged(commit: str) -> GateResult:
            checkout.reset(commit)
            return run_gate(
                gate,
                checkout.path,
                timeout=timeout,
                runner=runner,
                scratch=scratch,
                source_line=tree_lines(repo, repo.tree_of(commit)),
                baseline=baseline,
            )

        yield judged
    finally:
        shutil.rmtree(path)
