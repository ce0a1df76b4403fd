"""Secrets in added lines, found in memory by detect-secrets' plugins and default filters, and
by the key shapes the mask hides (`masking.KEY_SHAPES`).

detect-secrets knows no Anthropic, Google or fine-grained GitHub key, nor OpenAI's project keys.
They are matched here with the mask's own shapes rather than as detect-secrets plugins: a custom
plugin is loaded only from a file path named in the process-wide settings, through a cache
(`get_mapping_from_secret_type_to_class`) that would have to be emptied and refilled around each
scan, re-executing the file. One table for both also keeps the scan and the mask in agreement.

Scanning takes detect-secrets' process-wide settings for its duration, so calls are serialised.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

# The loop that `scan_file` and `scan_diff` share; the public entry points need a file on disk
# (scan_file) or the optional unidiff package (scan_diff), and `scan_line` skips the line filters.
from detect_secrets.core.scan import _process_line_based_plugins
from detect_secrets.filters.heuristic import is_lock_file, is_non_text_file
from detect_secrets.plugins.base import BasePlugin
from detect_secrets.settings import transient_settings

from .masking import KEY_SHAPES

# A public IP address is not a credential, and ordinary code and docs are full of them.
_NOT_SECRETS = frozenset({"IPPublicDetector"})

# `is_invalid_file` would look for the file on disk. `is_line_allowlisted` honours
# "pragma: allowlist secret" comments, which would let an agent wave its own secret through.
_DISABLED_FILTERS = (
    "detect_secrets.filters.common.is_invalid_file",
    "detect_secrets.filters.allowlist.is_line_allowlisted",
)

_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True, order=True)
class SecretHit:
    """A line that looks like it holds a secret; never the secret itself, so it is safe to show."""

    line: int  # index within the lines given to find_secrets (0-based)
    kind: str  # detect-secrets' secret type, e.g. "AWS Access Key"


def find_secrets(path: str, lines: Sequence[str]) -> list[SecretHit]:
    """The lines of `path` that detect-secrets flags or that hold a key of a known shape, sorted,
    one hit per line and kind.

    `path` picks the file-type rules (e.g. keyword assignments in .py); images and lock files,
    which detect-secrets skips by name, give no hits.
    """
    if not lines or is_non_text_file(path) or is_lock_file(path):
        return []
    numbered = [(number, line) for number, line in enumerate(lines, start=1)]
    with _LOCK, transient_settings(_plugin_settings()) as settings:
        settings.disable_filters(*_DISABLED_FILTERS)
        found = {
            SecretHit(line=secret.line_number - 1, kind=str(secret.type))
            for secret in _process_line_based_plugins(numbered, filename=path)
        }
    found.update(
        SecretHit(line=index, kind=shape.kind)
        for index, line in enumerate(lines)
        for shape in KEY_SHAPES
        if next(shape.keys(line), None) is not None
    )
    return sorted(found)


def _plugin_settings() -> dict[str, list[dict[str, str]]]:
    """Every built-in plugin at its default settings, as the detect-secrets CLI uses them."""
    plugins: Mapping[str, type[BasePlugin]] = get_mapping_from_secret_type_to_class()
    names = sorted(plugin.__name__ for plugin in plugins.values())
    return {"plugins_used": [{"name": name} for name in names if name not in _NOT_SECRETS]}
