"""Projects for end-to-end sessions: a repository with a plan, the `run --json` it gives, and
what of the user's a run must leave alone."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import testing.redteam
from testing.fixtures import SEED_CONSTRAINTS, SEED_PLAN, git, make_repo

STAND_INS = Path(__file__).resolve().parent.parent / "tests" / "stand_ins"


def task_block(task_id: str, title: str, run: str | None = None, lines: int = 10) -> str:
    """One eligible task of the Ready queue, estimated at `lines` lines."""
    return testing.redteam.task_block(task_id, title, run=run, lines=lines)


def make_project(
    tmp_path: Path,
    tasks: str,
    *,
    gate: str | None = "test -f src/app.py",
    rules: str = "",
    agent: str | None = None,
    extra_files: dict[str, str] | None = None,
) -> Path:
    """tmp_path/repo: a plan of `tasks` in the Ready queue, a source file the default gate
    looks for, and `rules` as the constraints document."""
    front = ["---"]
    if gate is not None:
        front += ["gate:", f"  - {json.dumps(gate)}"]
    if agent is not None:
        front.append(f"agent: {json.dumps(agent)}")
    front.append("---")
    plan = "\n".join(front) + "\n# Plan\n\n### Ready for Autonomous Execution ✅\n\n" + tasks
    files = {
        "PROJECT_PLAN.md": plan,
        "src/app.py": "def hello():\n    return 'hello'\n",
        "README.md": "readme\n",
        ".gitignore": "*.log\n",
        **(extra_files or {}),
    }
    if rules:
        files["docs/autonomous-constraints.md"] = "# Rules\n\n```yaml\n" + rules + "```\n"
    return make_repo(tmp_path / "repo", files)


def seed_repo(tmp_path: Path, front_matter: str = "") -> Path:
    """The seed's plan and constraints, committed on main (a run reads them from there)."""
    plan = SEED_PLAN.read_text(encoding="utf-8")
    if "schedule:" not in front_matter:  # as the workflow runs it, unless a test says otherwise
        front_matter = 'schedule: "0 2 * * *"\n' + front_matter
    plan = f"---\n{front_matter}---\n{plan}"
    return make_repo(
        tmp_path / "repo",
        {
            "PROJECT_PLAN.md": plan,
            "docs/autonomous-constraints.md": SEED_CONSTRAINTS.read_text(encoding="utf-8"),
            # The seed's executor runs this as the quality gate; without one nothing can run.
            ".ai-validation/check_quality.sh": "exit 0\n",
        },
    )


def run(cli: Any, repo: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """`run --json` through the `cli` fixture; it must succeed. Returns its JSON."""
    result = cli("run", "--json", *args, cwd=repo, env=env)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def outcomes(data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(t["id"], t["outcome"]) for t in data["tasks"]]


def agent_script(tmp_path: Path, body: str) -> str:
    """A stand-in agent: a small bash script that really runs, given as --agent-command."""
    script = tmp_path / f"agent-{len(list(tmp_path.glob('agent-*')))}.sh"
    script.write_text("set -eu\n" + textwrap.dedent(body), encoding="utf-8")
    return f"bash {script}"


def user_state(repo: Path) -> dict[str, Any]:
    """Everything of the user's that a run must leave alone."""
    files = {}
    for path in sorted(repo.rglob("*")):
        rel = path.relative_to(repo)
        if rel.parts[0] == ".git" and (len(rel.parts) < 2 or rel.parts[1] == "gitops-agent"):
            continue
        if rel.parts[0] == ".git" and rel.parts[1] in ("objects", "logs", "refs"):
            continue  # refs are compared below, except our own autonomous/ ones
        if path.is_file():
            files[rel.as_posix()] = path.read_bytes()
    refs = git(repo, "for-each-ref", "--format=%(refname) %(objectname)")
    own = ("refs/heads/autonomous/", "refs/gitops-agent/")
    user_refs = [r for r in refs.splitlines() if not r.startswith(own)]
    return {"files": files, "refs": user_refs, "head": git(repo, "symbolic-ref", "HEAD")}


def session_branches(repo: Path) -> list[str]:
    """Branches a person would merge: autonomous/* but the memory branch."""
    names = git(repo, "branch", "--list", "--format=%(refname:short)", "autonomous/*").split()
    return [name for name in names if name != "autonomous/memory"]


def show(repo: Path, rev: str, path: str) -> str:
    """The text of `path` at `rev`."""
    return git(repo, "show", f"{rev}:{path}")
