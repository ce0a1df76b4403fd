"""What confinement and the gate's fresh tree cost per task, measured apart from the rest.

Run: python bench/bench_confinement.py [--files N] [--runs R]
- a command (`true`) started unconfined, then under each mechanism this machine offers;
- the gate's workspace made exactly the next task's tree (one file changed) on N files,
  against the agent's workspace being reset to the same commit.
Prints medians in milliseconds; never fails.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from gitops_agent.git import Repo, Workspace
from gitops_agent.sandbox import Confinement, Jail, Sandbox, probe, run_command, run_confined

GIT_ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_SYSTEM": os.devnull}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True
    ).stdout


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def time_commands(work: Path, runs: int) -> None:
    found = probe()
    scratch = work / "scratch"
    scratch.mkdir()
    jail = Jail(workdir=work, writable=(scratch,), env={"PATH": os.environ["PATH"]})
    kinds: list[tuple[str, Sandbox | None]] = [("unconfined", None)]
    if found.bwrap and found.landlock_abi:
        kinds.append(("bubblewrap + Landlock", Sandbox(Confinement.REQUIRED, found.bwrap, 7)))
    if found.bwrap:
        kinds.append(("bubblewrap", Sandbox(Confinement.REQUIRED, found.bwrap, None)))
    if found.landlock_abi:
        kinds.append(("Landlock", Sandbox(Confinement.REQUIRED, None, found.landlock_abi)))
    for name, sandbox in kinds:
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            if sandbox is None:
                run_command("true", work, env=jail.env, timeout=30)
            else:
                run_confined(sandbox, "true", jail, timeout=30)
            samples.append(time.perf_counter() - start)
        print(f"start and reap `true`, {name}: {median_ms(samples):.1f} ms")


def time_gate_tree(base: Path, files: int, runs: int) -> None:
    repo_dir = base / "repo"
    repo_dir.mkdir()
    git(repo_dir, "init", "-q", "-b", "main")
    for i in range(files):
        path = repo_dir / "src" / f"pkg{i // 100}" / f"mod{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"VALUE = {i}\n")
    git(repo_dir, "add", "-A")
    git(repo_dir, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "base")
    for n in range(runs):
        (repo_dir / "src" / "pkg0" / "mod0.py").write_text(f"VALUE = -{n}\n")
        git(repo_dir, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qam", f"c{n}")
    repo = Repo.open(repo_dir)
    commits = git(repo_dir, "rev-list", "--reverse", "main").split()
    start = time.perf_counter()
    gate = Workspace(repo, base / "gate" / "tree")
    gate.reset(commits[0])
    first = time.perf_counter() - start
    print(f"gate tree made from nothing, {files} files: {first * 1000:.0f} ms (once a session)")
    samples = []
    for commit in commits[1:]:
        start = time.perf_counter()
        gate.reset(commit)
        samples.append(time.perf_counter() - start)
    print(f"gate tree made exactly the next task's tree: {median_ms(samples):.1f} ms a task")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=21)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gitops-agent-bench-") as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        time_commands(work, options.runs)
        time_gate_tree(Path(tmp), options.files, options.runs)


if __name__ == "__main__":
    main()
