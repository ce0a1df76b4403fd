"""A 20-task codemod session on a generated 5,000-file repository, against a plain git script.

Run: python bench/bench_session.py [--files N] [--tasks T] [--runs R]
Both sides make the same 20 commits (one edited file each, gate `true`): gitops-agent through
`run` (its own checkout, inspection, gate, write-back), the plain side with the git CLI in one
worktree. Prints both wall times (medians) and their ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
}


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True)


def make_repo(root: Path, files: int, tasks: int) -> None:
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    for i in range(files):
        path = root / "src" / f"pkg{i // 100}" / f"mod{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'"""Module {i}."""\n\nVALUE = 0\n\n\ndef f():\n    return VALUE\n')
    blocks = []
    for t in range(tasks):
        target = f"src/pkg{t}/mod{t * 100}.py"
        blocks.append(
            f"→ **[codemod-{t}]** Set VALUE in {target}\n"
            "  - Alignment score: 90/100\n  - Estimated lines: 2\n"
            "  - Tests defined: ✅ Yes\n  - Status: READY\n"
            f"  - Run: `sed -i 's/VALUE = 0/VALUE = 1/' {target}`\n\n"
        )
    plan = '---\ngate:\n  - "true"\n---\n### Ready for Autonomous Execution\n\n' + "".join(blocks)
    (root / "PROJECT_PLAN.md").write_text(plan, encoding="utf-8")
    rules = root / "docs" / "autonomous-constraints.md"
    rules.parent.mkdir()
    rules.write_text(f"# Rules\n\n```yaml\nmax_tasks_per_session: {tasks}\n```\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "generated")


PLAIN = """
set -e
git worktree add -q -b plain "$1" main
cd "$1"
for t in $(seq 0 $(($2 - 1))); do
  sed -i 's/VALUE = 0/VALUE = 1/' "src/pkg$t/mod$((t * 100)).py"
  git add -A
  git commit -q -m "codemod $t"
done
"""


def gitops_agent() -> list[str]:
    script = Path(sys.executable).parent / "gitops-agent"
    return [str(script)] if script.exists() else [shutil.which("gitops-agent") or "gitops-agent"]


def one_round(base: Path, files: int, tasks: int, plain_base: Path) -> tuple[float, float]:
    repo = base / "repo"
    make_repo(repo, files, tasks)
    plain_repo = plain_base / "plain"
    shutil.copytree(repo, plain_repo, symlinks=True)
    start = time.perf_counter()
    subprocess.run(
        ["bash", "-c", PLAIN, "plain", str(plain_base / "plain-worktree"), str(tasks)],
        cwd=plain_repo,
        env=GIT_ENV,
        check=True,
        capture_output=True,
    )
    plain = time.perf_counter() - start
    start = time.perf_counter()
    result = subprocess.run(
        [*gitops_agent(), "run", "--json"], cwd=repo, capture_output=True, text=True
    )
    ours = time.perf_counter() - start
    if result.returncode != 0 or result.stdout.count('"committed"') != tasks:
        sys.exit(
            f"the session did not commit every task:\n{result.stdout}\n{result.stderr[-3000:]}"
        )
    return plain, ours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--plain-in-memory",
        action="store_true",
        help="give the plain script its repository and worktree in /dev/shm, as gitops-agent "
        "gives its workspaces when there is room",
    )
    options = parser.parse_args()
    plains, ours = [], []
    for _ in range(options.runs):
        with (
            tempfile.TemporaryDirectory(prefix="bench-session-") as tmp,
            tempfile.TemporaryDirectory(
                prefix="bench-plain-", dir="/dev/shm" if options.plain_in_memory else None
            ) as plain_tmp,
        ):
            plain, mine = one_round(Path(tmp), options.files, options.tasks, Path(plain_tmp))
            plains.append(plain)
            ours.append(mine)
    p, o = statistics.median(plains), statistics.median(ours)
    where = "in memory" if options.plain_in_memory else "on disk"
    print(f"repository: {options.files} files; {options.tasks} codemod tasks, gate `true`")
    print(f"plain git script (worktree + {options.tasks} commits, {where}): median {p:.2f} s")
    print(f"  rounds: {', '.join(f'{x:.2f}' for x in plains)}")
    print(f"gitops-agent run: median {o:.2f} s")
    print(f"  rounds: {', '.join(f'{x:.2f}' for x in ours)}")
    print(f"ratio: {o / p:.2f}")


if __name__ == "__main__":
    main()
