"""The linters a generated workflow must pass: actionlint (with shellcheck for its scripts) and
zizmor. Installed with the test extra; a test skips where they are not."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPENDABOT = Path(__file__).resolve().parent.parent / "templates" / "dependabot.yml"


def tool(name: str) -> str:
    """A linter installed with the test extra, beside this Python or on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return found


def actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    """actionlint on one workflow file; shellcheck beside it checks the `run:` scripts too."""
    git_dir = Path(shutil.which("git") or "/usr/bin/git").parent
    return subprocess.run(
        [tool("actionlint"), "-no-color", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": f"{Path(sys.executable).parent}:{git_dir}"},
    )


def zizmor(root: Path, workflow: str) -> subprocess.CompletedProcess[str]:
    """zizmor on `root` holding `workflow` as .github/workflows/gitops-agent.yml and the
    dependabot.yml init writes; run in `root`, so no zizmor.yml of ours or the user's applies."""
    github = root / ".github"
    (github / "workflows").mkdir(parents=True, exist_ok=True)
    (github / "workflows" / "gitops-agent.yml").write_text(workflow, encoding="utf-8")
    (github / "dependabot.yml").write_bytes(DEPENDABOT.read_bytes())
    return subprocess.run(
        [tool("zizmor"), "--offline", "--persona=regular", "--no-progress", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(root)},
    )
