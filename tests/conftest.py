from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from testing.golden import REGEN_OPTION, Golden


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        REGEN_OPTION,
        action="store_true",
        default=False,
        help="rewrite tests/fixtures/golden/*.md from the templates instead of comparing "
        "(then review the diff)",
    )


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Golden:
    """Compare a text people read with its golden file (testing/golden.py)."""
    return Golden(regenerate=bool(request.config.getoption(REGEN_OPTION)), test=request.node.nodeid)


@pytest.hookimpl(optionalhook=True)  # known only where xdist is loaded
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: at least four workers. Most tests wait on real subprocesses (agents, gates,
    git), so on a 2-core machine four workers finish the suite sooner than two."""
    return max(4, os.cpu_count() or 1)


FIXTURES = Path(__file__).parent / "fixtures"
SEED_PLAN = FIXTURES / "plans" / "seed_queue.md"
SEED_CONSTRAINTS = FIXTURES / "constraints" / "seed_constraints.md"


def git(cwd: Path, *args: str) -> str:
    """Run the git CLI (tests only) and return its stdout."""
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_SYSTEM": os.devnull}
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return result.stdout


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    """A git repository on branch main with `files` committed."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test Person")
    git(path, "config", "user.email", "person@example.com")
    for name, text in (files or {"README.md": "hello\n"}).items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def _console_script() -> list[str]:
    script = Path(sys.executable).parent / "gitops-agent"
    if script.exists():
        return [str(script)]
    found = shutil.which("gitops-agent")
    return [found] if found else [sys.executable, "-m", "gitops_agent"]


CLI = _console_script()


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the installed `gitops-agent` console script."""

    def run(
        *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args],
            cwd=cwd,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    return run
