"""The baseline cache: what the gate found on a base tree, kept under the tool's state directory
so that later sessions on the same base (and the same gate) do not run it again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from gitops_agent.files import write_atomic
from gitops_agent.gate.verdict import GateRun

BASELINES_DIR = "baselines"  # under the tool's state directory


def cached_baseline(
    state_dir: Path, tree: str, gate_key: str, run: Callable[[], GateRun]
) -> tuple[GateRun, bool]:
    """The baseline of `tree` for the gate named `gate_key`: from the cache, else `run()` and
    cached. The second value says whether it came from the cache."""
    path = state_dir / BASELINES_DIR / f"{tree}-{gate_key}.json"
    found = _load(path)
    if found is not None and found.tree == tree and found.gate_key == gate_key:
        return found, True
    fresh = run()
    write_atomic(path, json.dumps(fresh.to_record(), indent=1).encode())
    return fresh, False


def _load(path: Path) -> GateRun | None:
    """A cached baseline; None when there is none or it cannot be read (then it is run again:
    the cache is the tool's own file, and a damaged copy only costs one gate run)."""
    try:
        data = json.loads(path.read_bytes())
        return GateRun.from_record(data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
