"""Real git repositories for the tests, and the console script they drive (as pre-commit's
testing/fixtures.py builds its repositories)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from testing.redteam import console_script

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
SEED_PLAN = FIXTURES / "plans" / "seed_queue.md"
SEED_CONSTRAINTS = FIXTURES / "constraints" / "seed_constraints.md"

CLI = console_script()  # the installed `gitops-agent`, as the `cli` fixture runs it


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


def bare_remote(tmp_path: Path, repo: Path) -> Path:
    """A bare `origin` for `repo`, with its main pushed."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    return remote


def fresh_clone(tmp_path: Path, remote: Path, name: str) -> Path:
    """A new clone of `remote` at tmp_path/name, as a CI job starts from."""
    clone = tmp_path / name
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    return clone
