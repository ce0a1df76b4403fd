"""What programs print for a terminal, taken out of text that is stored, matched or shown."""

from __future__ import annotations

import re

# ANSI escape sequences: CSI (colours, cursor moves; 7- and 8-bit), OSC (terminal hyperlinks,
# which ruff and others emit when they think they talk to a terminal), and the two-character
# ones.
ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]"
)


def strip_ansi(text: str) -> str:
    """`text` without its escape sequences."""
    return ANSI.sub("", text)
