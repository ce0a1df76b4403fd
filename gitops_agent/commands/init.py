"""`gitops-agent init`: a starter plan and constraints document that teach the format."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from gitops_agent.constraints import DEFAULT_PATH
from gitops_agent.errors import UserError
from gitops_agent.files import write_atomic
from gitops_agent.project import PLAN_FILE

STARTERS: tuple[tuple[str, str], ...] = (
    ("PROJECT_PLAN.md", PLAN_FILE),
    ("autonomous-constraints.md", DEFAULT_PATH),
)


def template(name: str) -> bytes:
    return resources.files("gitops_agent.templates").joinpath(name).read_bytes()


def init(root: Path, *, force: bool) -> list[str]:
    """Write the starter files; refuse (writing nothing) when one exists and not `force`."""
    if not force:
        existing = [target for _name, target in STARTERS if (root / target).exists()]
        if existing:
            raise UserError(
                "already exists; nothing was written (use --force to overwrite)", existing[0]
            )
    for name, target in STARTERS:
        write_atomic(root / target, template(name))
    return [target for _name, target in STARTERS]
