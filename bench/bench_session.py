"""A 20-task codemod session on generated repositories, against a plain git script; and the
peak memory of gitops-agent's own process.

Run: python bench/bench_session.py [--files N [N ...]] [--tasks T] [--runs R]
                                   [--gate true|pytest] [--tests K] [--plain-in-memory]
Both sides make the same commits (one edited file each): gitops-agent through `run` (its own
checkout, inspection, gate, write-back), the plain side with the git CLI in one worktree,
running the same gate before each commit. `--gate pytest` gives the repository a `tests/`
directory of K small tests importing modules from across the tree, and gates every commit with
`PYTHONPATH=src python -m pytest -q -p no:cacheprovider tests`.

For each size it prints both wall times (medians), their ratio, and the peak resident memory
(ru_maxrss) of gitops-agent's own process, not of the commands it starts: the session runs in
a small wrapper that calls the console script's `main()` and reads its own rusage.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
}
PYTEST_GATE = f"PYTHONPATH=src {sys.executable} -m pytest -q -p no:cacheprovider tests"
GATES = {"true": "true", "pytest": PYTEST_GATE}


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True)


def module(i: int) -> str:
    return f"src/pkg{i // 100}/mod{i}.py"


def targets(files: int, tasks: int) -> list[str]:
    """The file each codemod edits: one per package while there are enough, else spread out."""
    step = 100 if files >= 100 * tasks else files // tasks
    return [module(t * step) for t in range(tasks)]


def make_repo(root: Path, files: int, tasks: int, *, gate: str = "true", tests: int = 0) -> None:
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    for i in range(files):
        path = root / module(i)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'"""Module {i}."""\n\nVALUE = 0\n\n\ndef f():\n    return VALUE\n')
    if tests:
        write_tests(root / "tests", files, tests)
    blocks = []
    for t, target in enumerate(targets(files, tasks)):
        blocks.append(
            f"→ **[codemod-{t}]** Set VALUE in {target}\n"
            "  - Alignment score: 90/100\n  - Estimated lines: 2\n"
            "  - Tests defined: ✅ Yes\n  - Status: READY\n"
            f"  - Run: `sed -i 's/VALUE = 0/VALUE = 1/' {target}`\n\n"
        )
    head = f"---\ngate:\n  - {json.dumps(gate)}\n---\n"  # a JSON string is a YAML scalar
    plan = head + "### Ready for Autonomous Execution\n\n" + "".join(blocks)
    (root / "PROJECT_PLAN.md").write_text(plan, encoding="utf-8")
    (root / ".gitignore").write_text("__pycache__/\n")
    rules = root / "docs" / "autonomous-constraints.md"
    rules.parent.mkdir()
    rules.write_text(f"# Rules\n\n```yaml\nmax_tasks_per_session: {tasks}\n```\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "generated")


def write_tests(where: Path, files: int, tests: int) -> None:
    """`tests` small tests, ten to a file, each importing one module; spread over the tree."""
    where.mkdir()
    per_file = 10
    for first in range(0, tests, per_file):
        numbers = [k * files // tests for k in range(first, min(first + per_file, tests))]
        lines = [f"from pkg{i // 100} import mod{i}\n" for i in numbers]
        for i in numbers:
            lines.append(f"\n\ndef test_mod{i}():\n    assert mod{i}.f() == mod{i}.VALUE\n")
        (where / f"test_part{first // per_file}.py").write_text("".join(lines))


PLAIN = """
set -e
git worktree add -q -b plain "$1" main
cd "$1"
gate=$2
shift 2
for target in "$@"; do
  sed -i 's/VALUE = 0/VALUE = 1/' "$target"
  bash -c "$gate" >/dev/null
  git add -A
  git commit -q -m "codemod $target"
done
"""

# gitops-agent's console script, in a process that reports its own peak memory (kilobytes on
# Linux) to the file named by its first argument: the commands it starts are not counted.
MEASURED = """
import resource, sys
from gitops_agent.cli import main
report = sys.argv.pop(1)
sys.argv[0] = "gitops-agent"
try:
    main()
    code = 0
except SystemExit as stop:
    code = stop.code
with open(report, "w") as f:
    f.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
sys.exit(code)
"""

# The same process with the modules a session uses imported, before any work.
IMPORTED = """
import resource
import gitops_agent.cli, gitops_agent.commands.run, gitops_agent.console, gitops_agent.session
import gitops_agent.policy.secrets, gitops_agent.policy.tests_guard, gitops_agent.gate.verdict
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


class Round(NamedTuple):
    plain: float  # seconds
    ours: float  # seconds
    peak_kb: int  # gitops-agent's own peak resident memory
    complete: bool  # every task committed


def one_round(base: Path, files: int, tasks: int, plain_base: Path, gate: str, tests: int) -> Round:
    repo = base / "repo"
    make_repo(repo, files, tasks, gate=gate, tests=tests)
    plain_repo = plain_base / "plain"
    shutil.copytree(repo, plain_repo, symlinks=True)
    worktree = str(plain_base / "plain-worktree")
    start = time.perf_counter()
    subprocess.run(
        ["bash", "-c", PLAIN, "plain", worktree, gate, *targets(files, tasks)],
        cwd=plain_repo,
        env=GIT_ENV,
        check=True,
        capture_output=True,
    )
    plain = time.perf_counter() - start
    report = base / "peak"
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", MEASURED, str(report), "run", "--json"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    ours = time.perf_counter() - start
    complete = result.returncode == 0 and result.stdout.count('"committed"') == tasks
    if not complete:
        print(
            f"  (the session did not commit every task: {result.stdout[-1500:]}"
            f"{result.stderr[-1500:]})",
            file=sys.stderr,
        )
    peak = int(report.read_text()) if report.exists() else 0
    return Round(plain, ours, peak, complete)


def imported_kb() -> int:
    out = subprocess.run(
        [sys.executable, "-c", IMPORTED], capture_output=True, text=True, check=False
    ).stdout
    return int(out) if out.strip().isdigit() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, nargs="+", default=[500, 2000, 7000])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--gate", choices=sorted(GATES), default="true")
    parser.add_argument("--tests", type=int, default=300, help="tests, for --gate pytest")
    parser.add_argument(
        "--plain-in-memory",
        action="store_true",
        help="give the plain script its repository and worktree in /dev/shm, as gitops-agent "
        "gives its workspaces when there is room",
    )
    options = parser.parse_args()
    gate = GATES[options.gate]
    tests = options.tests if options.gate == "pytest" else 0
    where = "in memory" if options.plain_in_memory else "on disk"
    print(f"{options.tasks} codemod tasks, gate `{gate}`" + (f", {tests} tests" if tests else ""))
    print(f"plain git script: worktree + a gate and a commit per task, {where}")
    print(f"medians of {options.runs}; peak RSS of gitops-agent's own process (max of the runs)")
    print(f"  imported, before any work: {imported_kb() / 1024:.0f} MB")
    print(f"{'files':>7} {'plain s':>9} {'ours s':>9} {'ratio':>6} {'peak RSS MB':>12}")
    for files in options.files:
        rounds = []
        for _ in range(options.runs):
            with (
                tempfile.TemporaryDirectory(prefix="bench-session-") as tmp,
                tempfile.TemporaryDirectory(
                    prefix="bench-plain-", dir="/dev/shm" if options.plain_in_memory else None
                ) as plain_tmp,
            ):
                rounds.append(
                    one_round(Path(tmp), files, options.tasks, Path(plain_tmp), gate, tests)
                )
        p = statistics.median(r.plain for r in rounds)
        o = statistics.median(r.ours for r in rounds)
        peak = max(r.peak_kb for r in rounds) / 1024
        note = "" if all(r.complete for r in rounds) else "  (not every task committed)"
        print(f"{files:>7} {p:>9.2f} {o:>9.2f} {o / p:>6.2f} {peak:>12.1f}{note}")
        print(
            "        rounds: plain "
            + ", ".join(f"{r.plain:.2f}" for r in rounds)
            + "; ours "
            + ", ".join(f"{r.ours:.2f}" for r in rounds)
            + "; peak MB "
            + ", ".join(f"{r.peak_kb / 1024:.1f}" for r in rounds),
            flush=True,
        )


if __name__ == "__main__":
    main()
