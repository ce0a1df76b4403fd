"""`gitops-agent publish`: push a result's branches and open (or update) its one pull request.

In the workflow it runs after `verify` took the artifact's branches in; on a laptop it pushes
what `run` or `integrate` made. No pull request when nothing was committed: then only the
memory branch is pushed, so the next run (in a fresh clone) knows what happened.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gitops_agent.commands.bundle import BODY_FILE, RESULT_FILE, read_result
from gitops_agent.errors import UserError
from gitops_agent.files import read_text
from gitops_agent.git.remote import DEFAULT_REMOTE, push, remote_url
from gitops_agent.github import GitHub, PullRequest, repository_from_url
from gitops_agent.project import load_base
from gitops_agent.render import render
from gitops_agent.results import MEMORY_BRANCH

LABELS = ("gitops-agent",)
TITLE_LIMIT = 120


@dataclass(frozen=True, slots=True)
class Publication:
    pushed: tuple[str, ...]
    pull: PullRequest | None
    created: bool
    labels: tuple[str, ...]


def publish(
    repo_dir: Path | None,
    artifact: Path | None = None,
    *,
    branch: str | None = None,
    body_file: Path | None = None,
    remote: str = DEFAULT_REMOTE,
    repository: str | None = None,
    plan: Path | None = None,
    constraints: Path | None = None,
    require_github: bool = True,
) -> Publication:
    """Push the result's branch and the memory branch to `remote`; open or update the PR.

    The branch and PR text come from an artifact directory (`bundle --out`), or are given.
    """
    if artifact is not None:
        data = read_result(artifact / RESULT_FILE)
        branch = branch or data.get("branch")
        if body_file is None and (artifact / BODY_FILE).is_file():
            body_file = artifact / BODY_FILE
    base = load_base(repo_dir, plan, constraints)
    repo = base.repo
    wanted = [b for b in (branch, MEMORY_BRANCH) if b and repo.branch_tip(b) is not None]
    if branch and branch not in wanted:
        raise UserError(f"branch {branch} does not exist here (run `verify` first)", str(repo.root))
    pushed = push(repo, remote, wanted)
    if not branch:
        return Publication(tuple(pushed), None, False, ())
    tip = repo.branch_tip(branch)
    assert tip is not None  # checked above
    order = {task.id: n for n, task in enumerate(base.project.plan.tasks)}
    found = {c.trailers.get("Task-Id", "") for c in repo.commits_between(tip, base.commit)}
    tasks = sorted(found - {""}, key=lambda t: (order.get(t, len(order)), t))
    if body_file is not None:
        body = read_text(body_file, str(body_file))
    else:
        body = render("integration-pr.md.j2", branch=branch, base=base.branch, tasks=tasks)
    repository = repository or repository_from_url(remote_url(repo, remote))
    if repository is None and not os.environ.get("GITHUB_REPOSITORY") and not require_github:
        return Publication(tuple(pushed), None, False, ())  # not on GitHub: pushed only
    github = GitHub.from_env(repository)
    published = github.open_or_update_pull(branch, base.branch, _title(tasks, branch), body)
    labels = github.add_labels(published.pull.number, LABELS)
    return Publication(tuple(pushed), published.pull, published.created, tuple(labels))


def _title(tasks: list[str], branch: str) -> str:
    if not tasks:
        return f"gitops-agent: {branch}"
    noun = "task" if len(tasks) == 1 else "tasks"
    title = f"gitops-agent: {len(tasks)} {noun} ({', '.join(tasks)})"
    return title if len(title) <= TITLE_LIMIT else title[: TITLE_LIMIT - 3] + "..."
