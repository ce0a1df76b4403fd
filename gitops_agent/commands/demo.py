"""`gitops-agent demo`: the whole loop on a copy of the bundled demo project, offline."""

from __future__ import annotations

import shutil
import tempfile
from importlib import resources
from pathlib import Path

from gitops_agent.errors import UserError
from gitops_agent.git import init_repository

DEMO = "demo-project"


def make_demo_repository(parent: Path | None) -> Path:
    """Copy the demo project into a new directory as a fresh git repository; returns its root."""
    source = Path(str(resources.files("gitops_agent.examples").joinpath(DEMO)))
    if not source.is_dir():
        raise UserError("the demo project is missing from this installation", str(source))
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix="gitops-agent-demo-", dir=parent)) / DEMO
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (target / ".gitignore").write_text("__pycache__/\n*.pyc\n", encoding="utf-8")
    init_repository(target, "Start the demo project")
    return target
