from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from testing.fixtures import CLI, make_repo
from testing.fixtures import git as git  # re-exported: tests/test_check.py imports it
from testing.golden import REGEN_OPTION, Golden
from testing.inbox import Inbox, receiving


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


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


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


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    """An HTTP server that records every JSON body posted to it (testing/inbox.py)."""
    with receiving() as box:
        yield box
