"""Notifications of a session's state changes, through apprise (one URL form, 100+ services).

A notifier that fails is reported as a sentence and never raises: a chat service being down must
not fail the session whose work it announces.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from gitops_agent.policy.masking import mask
from gitops_agent.render import macro
from gitops_agent.results import Outcome, SessionResult

if TYPE_CHECKING:
    import apprise

ENV_VARIABLE = "GITOPS_AGENT_NOTIFY"
_SEPARATORS = re.compile(r"[\s,]+")
_TEMPLATE = "report.md.j2"


def notify_urls(
    configured: Iterable[str] | None, environ: Mapping[str, str] | None = None
) -> list[str]:
    """The plan's `notify` URLs and those in GITOPS_AGENT_NOTIFY (comma or space separated).

    Both count: a CI secret in the environment keeps a token out of the plan.
    """
    env = os.environ if environ is None else environ
    found: list[str] = []
    for text in [*(configured or ()), env.get(ENV_VARIABLE, "")]:
        for url in _SEPARATORS.split(text):
            if url and url not in found:
                found.append(url)
    return found


def session_notification(result: SessionResult) -> tuple[str, str] | None:
    """(title, body) for a session that changed something a person cares about; else None.

    A state change: a task committed or rolled back, or the session stopped early. A session
    that only blocked or skipped tasks says nothing (no chatter every night).
    """
    progressed = any(t.outcome in (Outcome.COMMITTED, Outcome.ROLLED_BACK) for t in result.tasks)
    if not progressed and result.stopped is None and not result.gate_failed_on_base:
        return None
    title = macro(_TEMPLATE, "notification_title", result).strip()
    body = macro(_TEMPLATE, "notification_body", result).strip()
    return title, body


def notify(urls: Sequence[str], title: str, body: str) -> list[str]:
    """Send to every URL; the problems, one sentence each (empty when all were delivered).

    `title` and `body` are masked here, whoever wrote them: a chat service is a log we cannot
    take back.
    """
    if not urls:
        return []
    import apprise  # imported here: it is slow to import and most commands never notify

    title, body = mask(title), mask(body)

    problems: list[str] = []
    for url in urls:
        sender = apprise.Apprise()
        with _warnings_of("apprise") as log:
            added = sender.add(url)
            delivered = added and bool(
                sender.notify(body=body, title=title, body_format=apprise.NotifyFormat.TEXT)
            )
        if delivered:
            continue
        shown = _shown(sender, url) if added else _scheme(url)
        why = " ".join(" ".join(log).replace(url, shown).split()) or "no reason given"
        if not added:
            problems.append(f"Notification URL {shown} is not one apprise understands ({why}).")
        else:
            problems.append(f"Notification to {shown} failed: {why}")
    return problems


def _shown(sender: apprise.Apprise, url: str) -> str:
    """The URL with its secrets masked (a token in a problem message would leak into logs)."""
    for service in sender:
        masked = str(service.url(privacy=True))  # type: ignore[no-untyped-call]
        return masked.partition("?")[0]  # the options apprise adds by default say nothing
    return _scheme(url)


@contextlib.contextmanager
def _warnings_of(name: str) -> Iterator[list[str]]:
    """Collect the warnings and errors logger `name` emits meanwhile: apprise's reasons."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    logger = logging.getLogger(name)
    handler = Collect(logging.WARNING)
    level = logger.level
    logger.addHandler(handler)
    if level == logging.NOTSET or level > logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _scheme(url: str) -> str:
    scheme, sep, _rest = url.partition("://")
    return f"{scheme}://..." if sep else "(not a URL)"
