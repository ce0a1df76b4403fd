"""The artifact one job hands to the next: a git bundle of a result's branches and its JSON.

`bundle` writes it, `verify` and `publish` read it; the job that wrote it is not trusted, so
everything here is read as untrusted input (`read_result` checks the JSON's shape only: what
it claims is judged by `verify`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gitops_agent.errors import UserError
from gitops_agent.results import BRANCH_PREFIX

BUNDLE_FILE = "result.bundle"
RESULT_FILE = "result.json"
STALE_FILES = ("pr-body.md",)  # what older versions packed, removed from a reused directory


# What a run that printed nothing (it crashed) is packed as: no session, no branch, no tasks.
NO_RESULT: dict[str, Any] = {"session": None, "branch": None, "tasks": []}


def read_result(path: Path) -> dict[str, Any]:
    """A result JSON (`run --json` or `integrate --json`): an object whose `branch` is ours."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("no such file", str(path)) from None
    except (ValueError, UnicodeDecodeError) as err:
        raise UserError(f"not a result JSON: {err}", str(path)) from None
    if not isinstance(data, dict):
        raise UserError("not a result JSON: expected an object", str(path))
    branch = data.get("branch")
    if branch is not None and (not isinstance(branch, str) or not branch.startswith(BRANCH_PREFIX)):
        raise UserError(
            f"`branch` must be an autonomous/ branch or null, not {branch!r}", str(path)
        )
    return data


def own_branches(data: dict[str, Any]) -> list[str]:
    """The task branches (approval per-task or auto) a `run --json` result names: each task
    entry's `branch`, in order; what is not a string under autonomous/ is left out."""
    found: list[str] = []
    for task in data.get("tasks") or []:
        branch = task.get("branch") if isinstance(task, dict) else None
        if isinstance(branch, str) and branch.startswith(BRANCH_PREFIX) and branch not in found:
            found.append(branch)
    return found
