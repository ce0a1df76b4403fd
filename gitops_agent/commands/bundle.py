"""`gitops-agent bundle RESULT.json --out DIR`: a run's result as an artifact another job can check.

The directory holds `result.bundle` (the result's branch and autonomous/memory, less what the
remote already has) and `result.json` (the run's or integrate's JSON). The job that wrote it is
not trusted: `verify` checks it all again, and `publish` writes the pull request's text itself
from what was verified, so no description travels in the artifact.

A run that crashed leaves no result JSON (or an empty one, where its output was redirected):
the artifact then carries the memory branch alone, with a result that names no branch, so the
memory of a failed run is not lost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from gitops_agent.artifact import (
    BUNDLE_FILE,
    NO_RESULT,
    RESULT_FILE,
    STALE_FILES,
    own_branches,
    read_result,
)
from gitops_agent.files import write_atomic
from gitops_agent.git import Repo
from gitops_agent.git.remote import create_bundle
from gitops_agent.project import find_root
from gitops_agent.results import MEMORY_BRANCH


@dataclass(frozen=True, slots=True)
class Packed:
    directory: Path
    branches: tuple[str, ...]  # the branches the bundle carries (none: no bundle was written)
    files: tuple[str, ...]
    crashed: bool = False  # the result JSON was missing or empty: the memory branch alone


def pack(repo_dir: Path | None, result: Path, out: Path) -> Packed:
    """Write the artifact directory for `result` (the JSON `run --json` printed); when that is
    missing or empty (the run crashed), the memory branch alone."""
    crashed = not result.exists() or (result.is_file() and result.stat().st_size == 0)
    data = dict(NO_RESULT) if crashed else read_result(result)
    repo = Repo.open(find_root(repo_dir))
    wanted = [data["branch"]] if data.get("branch") else []
    wanted += [b for b in own_branches(data) if repo.branch_tip(b) is not None]
    if repo.branch_tip(MEMORY_BRANCH) is not None:
        wanted.append(MEMORY_BRANCH)
    out.mkdir(parents=True, exist_ok=True)
    for stale in (BUNDLE_FILE, RESULT_FILE, *STALE_FILES):
        (out / stale).unlink(missing_ok=True)
    carried = create_bundle(repo, out / BUNDLE_FILE, wanted)
    files = [BUNDLE_FILE] if carried else []
    write_atomic(out / RESULT_FILE, json.dumps(data, ensure_ascii=False, indent=2).encode())
    files.append(RESULT_FILE)
    return Packed(out, tuple(carried), tuple(files), crashed)
