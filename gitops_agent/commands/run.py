"""`gitops-agent run`: one session, and (with --push) its branches pushed and its pull request.

With --push the run also coordinates with runs on other machines through the remote: it claims
each task there before running it (`claims`), and gives the claims back once its results are
pushed, so that the other runs see them awaiting review.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitops_agent import __version__
from gitops_agent.claims import Claims
from gitops_agent.git.remote import DEFAULT_REMOTE
from gitops_agent.project import load_base
from gitops_agent.publication import offer_branch, publish
from gitops_agent.render import render
from gitops_agent.results import Listener, SessionResult
from gitops_agent.session import RunOptions, run_session


def run(
    options: RunOptions, listener: Listener, *, push: bool, check_claims: bool = False
) -> tuple[SessionResult, dict[str, Any], list[str]]:
    """The session's result, the contract's JSON object, and lines for people (push results).
    `check_claims` without `push`: skip the tasks other runs claimed, claim none."""
    claims = None
    if push or check_claims:
        claims = Claims.open(options.repo, DEFAULT_REMOTE, read_only=not push)
    said: list[str] = []
    try:
        result = run_session(options, listener, claims=claims)
        data = result.to_contract()
        if push:
            body = Path(result.pr_body) if result.pr_body else None
            published = publish(
                options.repo,
                branch=result.branch,
                body_file=body,
                plan=options.plan,
                constraints=options.constraints,
                require_github=False,
                pull_failure_ok=True,
                own=[t.branch for t in result.tasks if t.branch and t.commit],
            )
            said.append(f"Pushed: {', '.join(published.pushed) or 'nothing'}")
            # The session's PR, then one for each task on a branch of its own (per-task, auto).
            for pull in (published.pull, *published.others):
                if pull is not None:
                    said.append(f"Pull request: {pull.url}")
            said += [f"Opened the missing pull request {pull.url}" for pull in published.repaired]
            said += published.notes
            data["pushed"] = list(published.pushed)
            data["pull_request"] = published.pull.url if published.pull else None
            data["pull_requests_repaired"] = [pull.url for pull in published.repaired]
            if published.others:
                data["pull_requests"] = [pull.url for pull in published.others]
            said += _offer_drafts(options, result, data)
    finally:
        if claims is not None:
            said += claims.release_all()
    return result, data, said


def _offer_drafts(options: RunOptions, result: SessionResult, data: dict[str, Any]) -> list[str]:
    """Push each rolled-back task's draft branch and open it as a draft pull request."""
    drafts = [task for task in result.tasks if task.draft]
    if not drafts:
        return []
    base = load_base(options.repo, options.plan, options.constraints)
    said: list[str] = []
    for task in drafts:
        assert task.draft is not None
        body = render("draft-pr.md.j2", task=task, session=result.session, version=__version__)
        title = f"gitops-agent: draft of {task.id} (failed the gate)"
        offer = offer_branch(base, task.draft, title, body, push_it=True, draft=True)
        said += list(offer.notes)
        if offer.pull is not None:
            said.append(f"Draft pull request: {offer.pull.url}")
            data.setdefault("draft_pull_requests", []).append(offer.pull.url)
    return said
