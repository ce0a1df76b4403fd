"""Path matching on the post-flight path: every changed file against the protected patterns.

Run: python bench/bench_paths.py [--paths N] [--runs R]
Prints the median and the spread, in milliseconds, of matching N generated paths against the
default protected patterns: once as inspect does it (the first pattern that matches), once
every pair. The compiled patterns are cached, as in a run, by a warm-up pass.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from gitops_agent.constraints import DEFAULT_PROTECTED
from gitops_agent.policy.paths import matches

NAMES = ("app.py", "test_app.py", "README.md", ".env", "package.json", "Dockerfile", "x.go")
DIRS = ("src", "tests", "docs", ".github/workflows", "packages/web", "requirements", "a/b/c")


def generate(count: int) -> list[str]:
    rng = random.Random(7)
    return [f"{rng.choice(DIRS)}/{rng.randrange(50)}/{rng.choice(NAMES)}" for _ in range(count)]


def first_match(paths: list[str]) -> int:
    return sum(any(matches(p, path) for p in DEFAULT_PROTECTED) for path in paths)


def every_pair(paths: list[str]) -> int:
    return sum(matches(p, path) for path in paths for p in DEFAULT_PROTECTED)


def timed(job: object, paths: list[str], runs: int) -> tuple[float, float, float, int]:
    found = 0
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        found = job(paths)  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times), max(times), found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--paths", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    paths = generate(args.paths)
    first_match(paths[:100])  # compile and cache every pattern
    patterns = len(DEFAULT_PROTECTED)
    for name, job in (("first match", first_match), ("every pair", every_pair)):
        median, low, high, found = timed(job, paths, args.runs)
        print(
            f"{name:>11}: {args.paths} paths x {patterns} patterns: median {median:.0f} ms "
            f"({low:.0f}-{high:.0f}), {found} matches"
        )


if __name__ == "__main__":
    main()
