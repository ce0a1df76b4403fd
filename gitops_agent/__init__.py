"""gitops-agent: run coding agents on a repository from a markdown plan, safely."""

from __future__ import annotations

__version__ = "0.1.0"
