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
from gitops_agent.gate.verdict import GateResult, run_baseline, run_gate, tree_lines
from gitops_agent.git import Repo, Workspace
from gitops_agent.runner import Runner


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
        checkout.reset(base_commit)
        base_tree = repo.tree_of(base_commit)
        baseline = run_baseline(
            gate,
            checkout.path,
            tree=base_tree,
            timeout=timeout,
            runner=runner,
            scratch=scratch,
            source_line=tree_lines(repo, base_tree),
        )

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
