"""What the gate's baseline costs: one gate run per base tree, not one per task.

Run: python bench/bench_baseline.py [--tests N] [--tasks T]
A generated project with N pytest tests; a session of T codemod tasks, then a second session of
T more on the same base. The gate counts its own runs (unconfined, so that it can write the
count outside its checkout). Prints the gate runs and the wall time of each session.
"""

from __future__ import annotations

import argparse
import json
import os
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


def make_project(root: Path, tests: int, tasks: int, counter: Path) -> None:
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "src").mkdir()
    (root / "src" / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (root / "tests").mkdir()
    body = "from calc import add\n\n" + "".join(
        f"\ndef test_{i}():\n    assert add({i}, 1) == {i + 1}\n" for i in range(tests)
    )
    (root / "tests" / "test_calc.py").write_text(body)
    blocks = []
    for t in range(2 * tasks):
        blocks.append(
            f"→ **[t{t}]** Add module {t}\n"
            "  - Alignment score: 90/100\n  - Estimated lines: 2\n"
            "  - Tests defined: ✅ Yes\n  - Status: READY\n"
            f"  - Run: `echo 'V = {t}' > src/m{t}.py`\n\n"
        )
    pytest = f"{sys.executable} -m pytest -q -p no:cacheprovider tests"
    gate = f"echo run >> {counter}; PYTHONPATH=src {pytest}"
    plan = (
        f"---\ngate:\n  - {json.dumps(gate)}\n---\n### Ready for Autonomous Execution\n\n"
        + "".join(blocks)
    )
    (root / "PROJECT_PLAN.md").write_text(plan, encoding="utf-8")
    rules = root / "docs" / "autonomous-constraints.md"
    rules.parent.mkdir()
    rules.write_text(
        f'# Rules\n\n```yaml\nmax_tasks_per_session: {tasks}\nconfinement: "off"\n```\n'
    )
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "generated")


def session(root: Path, task_ids: list[str]) -> float:
    args = [sys.executable, "-m", "gitops_agent", "run", "--json"]
    for task_id in task_ids:
        args += ["--task", task_id]
    start = time.perf_counter()
    result = subprocess.run(args, cwd=root, capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - start
    outcomes = {t["outcome"] for t in json.loads(result.stdout)["tasks"]}
    assert outcomes == {"committed"}, result.stdout
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tests", type=int, default=500)
    parser.add_argument("--tasks", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, counter = Path(tmp) / "repo", Path(tmp) / "gate-runs"
        make_project(root, options.tests, options.tasks, counter)
        first = session(root, [f"t{i}" for i in range(options.tasks)])
        after_first = counter.read_text().count("run")
        second = session(root, [f"t{i}" for i in range(options.tasks, 2 * options.tasks)])
        after_second = counter.read_text().count("run")
    print(f"{options.tests} tests, {options.tasks} tasks a session")
    print(f"first session:  {after_first} gate runs (baseline + tasks), {first:.2f} s")
    print(
        f"second session: {after_second - after_first} gate runs (baseline reused), {second:.2f} s"
    )


if __name__ == "__main__":
    main()
