"""`gitops-agent run`: one session, and (with --push) its branches pushed and its pull request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitops_agent.results import Listener, SessionResult
from gitops_agent.session import RunOptions, run_session


def run(
    options: RunOptions, listener: Listener, *, push: bool
) -> tuple[SessionResult, dict[str, Any], list[str]]:
    """The session's result, the contract's JSON object, and lines for people (push results)."""
    result = run_session(options, listener)
    data = result.to_contract()
    said: list[str] = []
    if push:
        from gitops_agent.commands.publish import publish

        body = Path(result.pr_body) if result.pr_body else None
        published = publish(
            options.repo,
            branch=result.branch,
            body_file=body,
            plan=options.plan,
            constraints=options.constraints,
            require_github=False,
        )
        said.append(f"Pushed: {', '.join(published.pushed) or 'nothing'}")
        if published.pull is not None:
            said.append(f"Pull request: {published.pull.url}")
        data["pushed"] = list(published.pushed)
        data["pull_request"] = published.pull.url if published.pull else None
    return result, data, said
