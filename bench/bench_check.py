"""`gitops-agent check` on a generated 10,000-task plan: whole-process wall time.

Run: python bench/bench_check.py [--tasks N] [--runs R]
Prints the median and the spread for `check --json` and for the table.
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


def generate_plan(tasks: int) -> str:
    parts = [
        "---\nobjective: A generated plan for measuring check\nagent: claude\n---\n",
        "# Plan\n\n## Task Queue\n\n### Ready for Autonomous Execution ✅\nRun tonight:\n\n",
    ]
    for i in range(tasks):
        if i == tasks * 8 // 10:
            parts.append("### Pending Approval ⏳\n\n")
        if i == tasks * 9 // 10:
            parts.append("### Not Ready ❌\n\n")
        marker = "→" if i % 2 else "-"
        parts.append(
            f"{marker} **[task_{i}]** Add helper number {i} to src/module_{i % 50}.py\n"
            f"  - Alignment score: {70 + i % 31}/100\n"
            f"  - Estimated lines: {5 + i % 40}\n"
            f"  - Tests defined: {'✅ Yes (tests/test_x.py)' if i % 7 else '⏳ Needs definition'}\n"
            "  - Safety check: ✅ No dependencies\n"
            f"  - Status: {'READY' if i < tasks * 8 // 10 else 'PENDING'}\n"
            f"  - Owner: person-{i % 9}\n\n"
        )
    return "".join(parts)


def command() -> list[str]:
    script = Path(sys.executable).parent / "gitops-agent"
    return [str(script)] if script.exists() else [shutil.which("gitops-agent") or "gitops-agent"]


def measure(args: list[str], cwd: Path, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(
            args, cwd=cwd, capture_output=True, env={**os.environ, "COLUMNS": "120"}
        )
        times.append(time.perf_counter() - start)
        if result.returncode != 0:
            sys.exit(f"check failed: {result.stderr.decode()[-2000:]}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "PROJECT_PLAN.md").write_text(generate_plan(options.tasks), encoding="utf-8")
        size = (root / "PROJECT_PLAN.md").stat().st_size
        print(f"plan: {options.tasks} tasks, {size / 1e6:.1f} MB")
        for label, extra in (("check --json", ["--json"]), ("check (table)", [])):
            times = measure([*command(), "check", "--repo", str(root), *extra], root, options.runs)
            print(
                f"{label:14} median {statistics.median(times):.3f} s "
                f"(min {min(times):.3f}, max {max(times):.3f}, {options.runs} runs)"
            )


if __name__ == "__main__":
    main()
