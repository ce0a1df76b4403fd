"""How to give the agent a checkout: what the choice between mechanisms was measured on.

Run: python bench/bench_checkout.py [--files N] [--runs R]
On a generated repository: our workspace (files written by the tool, outside the repository,
with a fresh .git borrowing the user's objects), `git worktree add` and `git clone --shared`
(medians), then our per-task reset and capture.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gitops_agent.git import Repo, Workspace

sys.path.insert(0, str(Path(__file__).parent))
from bench_session import GIT_ENV, make_repo


def median_time(action: Callable[[int], object], runs: int) -> float:
    times = []
    for run in range(runs):
        start = time.perf_counter()
        action(run)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-checkout-") as tmp:
        base = Path(tmp)
        root = base / "repo"
        make_repo(root, options.files, 1)
        repo = Repo.open(root)
        tip = repo.resolve_commit("main")

        def ours(run: int) -> None:
            Workspace(repo, base / f"ours-{run}" / "tree").reset(tip)

        def worktree(run: int) -> None:
            subprocess.run(
                ["git", "worktree", "add", "-q", "--detach", str(base / f"wt-{run}"), "main"],
                cwd=root,
                env=GIT_ENV,
                check=True,
            )

        def shared_clone(run: int) -> None:
            subprocess.run(
                ["git", "clone", "-q", "--shared", str(root), str(base / f"clone-{run}")],
                env=GIT_ENV,
                check=True,
            )

        print(f"repository: {options.files} files; medians of {options.runs}")
        for label, action in (
            ("our workspace", ours),
            ("git worktree add", worktree),
            ("git clone --shared", shared_clone),
        ):
            print(f"  {label:24} {median_time(action, options.runs):.2f} s")

        checkout = Workspace(repo, base / "per-task" / "tree")
        checkout.reset(tip)
        target = checkout.path / "src" / "pkg0" / "mod0.py"

        def one_task(_run: int) -> None:
            checkout.reset(tip)
            target.write_text(target.read_text().replace("VALUE = 0", "VALUE = 1"))
            edits, _refused = checkout.capture(max_bytes=1_000_000)
            checkout.change(edits)

        per_task = median_time(one_task, 10)
        print(
            f"  per task: reset + one-file edit + capture {per_task * 1000:.0f} ms (median of 10)"
        )
        shutil.rmtree(base / "per-task")


if __name__ == "__main__":
    main()
