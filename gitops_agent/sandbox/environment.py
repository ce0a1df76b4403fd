"""The allow-listed environments of agents and gates: named variables only, never the tool's own.

Nothing is inherited by default. A command gets the basics a program needs (PATH, locale,
terminal, time zone), a private HOME and TMPDIR, and the variables named for it: the API keys
of its agent preset, and whatever the constraints list in `agent_env:` or `gate_env:`. The
repository host's tokens are never passed, even when listed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

# Tokens that can write to the repository's host: gitops-agent pushes and opens pull requests
# itself, so no agent or gate ever needs them.
WITHHELD = frozenset({"GITHUB_TOKEN", "GH_TOKEN", "GITOPS_AGENT_TOKEN", "GH_ENTERPRISE_TOKEN"})
_BASICS = ("PATH", "LANG", "LANGUAGE", "TERM", "TZ", "COLORTERM", "NO_COLOR", "USER", "LOGNAME")
_LOCALE = re.compile(r"LC_[A-Z_]+")
# Agents talk to their model's API: the usual ways of reaching it through a proxy or a private
# certificate authority, which a gate (offline) never needs.
_NETWORK = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
)


def _pick(environ: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    return {name: environ[name] for name in names if name in environ and name not in WITHHELD}


def _base(environ: Mapping[str, str], home: Path, tmp: Path) -> dict[str, str]:
    env = _pick(environ, _BASICS)
    env.update(_pick(environ, (n for n in environ if _LOCALE.fullmatch(n))))
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["HOME"] = str(home)
    env["TMPDIR"] = str(tmp)
    return env


def agent_environment(
    environ: Mapping[str, str],
    *,
    home: Path,
    tmp: Path,
    preset_names: Iterable[str],
    listed: Iterable[str],
    extra: Mapping[str, str],
) -> dict[str, str]:
    """An agent's (or `Run:` command's) environment: basics, its preset's API variables, the
    constraints' `agent_env:` names, and `extra` (set by the tool, e.g. the task id)."""
    env = _base(environ, home, tmp)
    env.update(_pick(environ, _NETWORK))
    env.update(_pick(environ, preset_names))
    env.update(_pick(environ, listed))
    env.update(extra)
    return env


def gate_environment(
    environ: Mapping[str, str], *, home: Path, tmp: Path, listed: Iterable[str]
) -> dict[str, str]:
    """A gate's environment: basics and the constraints' `gate_env:` names; no API keys."""
    env = _base(environ, home, tmp)
    env.update(_pick(environ, listed))
    return env
