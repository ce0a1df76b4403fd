"""Secrets of the tool's own environment, replaced with `***` in everything it writes.

The promise is GitHub Actions': whatever the tool stores or publishes (memory log, PR description,
reports, notifications, gate and agent output, JSON, messages on stderr, the crash log) shows
`***` where a secret value of its environment would be. Which variables hold secrets is decided
by name, since a value cannot be told apart from ordinary text by looking at it.

Pure except for `masker()`, the process-wide accessor that reads `os.environ`.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import markupsafe

MASK = "***"

# Shorter values would mask ordinary words and numbers everywhere (a `PASS=admin` would turn every
# "admin" into ***), so they are left alone; a real token is much longer.
MIN_LENGTH = 6

# A variable is secret when one part of its name, split on `_` (or any non-alphanumeric), is one
# of these words, case-insensitively: GITHUB_TOKEN, ANTHROPIC_API_KEY, AWS_SECRET_ACCESS_KEY,
# NPM_AUTH, GH_PAT. Whole parts only, so KEYBOARD_LAYOUT, PATH and PASSAGE_COUNT are not.
SECRET_WORDS = frozenset(
    {
        "TOKEN",
        "TOKENS",
        "KEY",
        "KEYS",
        "APIKEY",
        "SECRET",
        "SECRETS",
        "PASSWORD",
        "PASSWORDS",
        "PASSWD",
        "PASS",
        "PASSPHRASE",
        "CREDENTIAL",
        "CREDENTIALS",
        "CREDS",
        "AUTH",
        "COOKIE",
        "COOKIES",
        "PRIVATE",
        "PAT",
        "WEBHOOK",
        "DSN",
    }
)

# Secret whatever their names say: notification URLs carry the services' tokens, a database URL
# its password.
ALWAYS_SECRET = frozenset({"GITOPS_AGENT_NOTIFY", "DATABASE_URL"})

# Variables that hold a list of secrets, each of which may be quoted alone (one notification URL
# in a delivery problem), with what separates them.
_LISTS = {"GITOPS_AGENT_NOTIFY": re.compile(r"[\s,]+")}

# A name ending in one of these names a place, not a secret (SSH_AUTH_SOCK, PASSWORD_STORE_DIR,
# SSL_KEY_FILE): masking a path would garble every message that mentions the directory.
_PLACE_WORDS = frozenset({"DIR", "DIRS", "PATH", "FILE", "SOCK", "SOCKET", "HOME"})

# Values that say how something is configured, not what the secret is (`CI_AUTH=disabled`).
# The shorter ones (true, false, 1, yes...) are already under MIN_LENGTH.
_NOT_SECRETS = frozenset({"enabled", "disabled", "required", "optional"})

_NAME_PARTS = re.compile(r"[^A-Za-z0-9]+")


def is_secret_name(name: str) -> bool:
    """Whether a variable of this name holds a secret (see SECRET_WORDS and ALWAYS_SECRET)."""
    if name.upper() in ALWAYS_SECRET:
        return True
    parts = [part.upper() for part in _NAME_PARTS.split(name) if part]
    if not parts or parts[-1] in _PLACE_WORDS:
        return False
    return any(part in SECRET_WORDS for part in parts)


def secret_values(
    environ: Mapping[str, str], always: Iterable[str] = ALWAYS_SECRET
) -> tuple[str, ...]:
    """The values to mask, longest first, so a value that contains another is masked whole.

    Each value of a secret variable (`is_secret_name`, or named in `always`) of MIN_LENGTH or
    more; for a value of several lines (a PEM key) each line too, and for a list of URLs
    (GITOPS_AGENT_NOTIFY) each URL: a log may quote one of them alone.
    """
    named = {name.upper() for name in always}
    found: set[str] = set()
    for name, value in environ.items():
        if not (name.upper() in named or is_secret_name(name)):
            continue
        candidates = [value, value.strip()]
        if "\n" in value or "\r" in value:
            candidates += [line.strip() for line in value.splitlines()]
        if name.upper() in _LISTS:
            candidates += _LISTS[name.upper()].split(value)
        found.update(c for c in candidates if _maskable(c))
    return tuple(sorted(found, key=lambda v: (-len(v), v)))


def _maskable(value: str) -> bool:
    return len(value) >= MIN_LENGTH and value.lower() not in _NOT_SECRETS


def _written_forms(value: str) -> list[str]:
    """`value` as it appears once written into JSON or HTML, where its quotes, `<` or `&` or a
    non-ASCII character are escaped: a mask applied after the escaping must still find it."""
    return [
        value,
        json.dumps(value, ensure_ascii=False)[1:-1],
        json.dumps(value, ensure_ascii=True)[1:-1],
        str(markupsafe.escape(value)),
    ]


@dataclass(frozen=True, slots=True)
class Masker:
    """Replaces every secret value in a text with `***`.

    `forms` are the exact strings replaced, longest first. A loop of `str.replace` is used rather
    than one regex alternation: Python's regex engine tries each alternative at each position,
    which takes ~100 ms on 1 MB with 80 forms; the loop takes a few ms (bench in the tests).
    """

    forms: tuple[str, ...] = ()

    @classmethod
    def from_values(cls, values: Iterable[str]) -> Masker:
        forms = {form for value in values for form in _written_forms(value) if _maskable(form)}
        return cls(tuple(sorted(forms, key=lambda v: (-len(v), v))))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Masker:
        return cls.from_values(secret_values(environ))

    def mask(self, text: str) -> str:
        for form in self.forms:
            if form in text:
                text = text.replace(form, MASK)
        return text


def masker() -> Masker:
    """The masker for this process's environment, the one whose secrets must never be written.

    The environment is read at each call (cheap: the masker is cached by its contents), so a
    variable set after start (a test's monkeypatch, a token read at run time) is masked too.
    """
    return _masker_for(tuple(os.environ.items()))


@functools.lru_cache(maxsize=4)
def _masker_for(items: tuple[tuple[str, str], ...]) -> Masker:
    return Masker.from_environ(dict(items))


def mask(text: str) -> str:
    """`text` with the secrets of this process's environment replaced with `***`."""
    return masker().mask(text)
