"""Projects for the lifecycle after a session: approval modes, quarantine and merges."""

from __future__ import annotations

import json
from pathlib import Path

from testing.fixtures import make_repo


def lifecycle_project(
    tmp_path: Path,
    tasks: str,
    *,
    front: str = "",
    gate: str = "test -f src/app.py",
    rules: str = "",
) -> Path:
    """tmp_path/repo: `tasks` in the Ready queue, `front` added to the plan's front matter."""
    plan = (
        "---\ngate:\n"
        f"  - {json.dumps(gate)}\n{front}---\n"
        "# Plan\n\n### Ready for Autonomous Execution ✅\n\n" + tasks
    )
    files = {
        "PROJECT_PLAN.md": plan,
        "src/app.py": "def hello():\n    return 'hello'\n",
        "README.md": "readme\n",
    }
    if rules:
        files["docs/autonomous-constraints.md"] = "# Rules\n\n```yaml\n" + rules + "```\n"
    return make_repo(tmp_path / "repo", files)
