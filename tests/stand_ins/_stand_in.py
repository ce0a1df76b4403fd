"""What every stand-in agent does once it has parsed its flags like the real CLI would."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# What each real CLI prints for --version, at the version its preset was proven with.
VERSIONS = {
    "claude": "{} (Claude Code)",
    "codex": "codex-cli {}",
    "aider": "aider {}",
    "gemini": "{}",
}
PROVEN = {"claude": "2.1.332", "codex": "0.171.0", "aider": "0.86.2", "gemini": "0.61.0"}


def parser(name: str) -> argparse.ArgumentParser:
    """A parser that, like the real CLIs, exits 2 on any flag it does not know, and says its
    version (STAND_IN_VERSION, else the proven one) as the real CLI words it."""
    made = argparse.ArgumentParser(prog=name, allow_abbrev=False)
    version = os.environ.get("STAND_IN_VERSION") or PROVEN[name]
    made.add_argument("--version", action="version", version=VERSIONS[name].format(version))
    return made


def require(name: str, ok: bool, why: str) -> None:
    """Fail when a preset leaves out a flag without which the real CLI would not work unattended."""
    if not ok:
        print(f"stand-in {name}: {why}", file=sys.stderr)
        sys.exit(3)


def do_the_task(name: str, prompt: str, model: str | None) -> None:
    """Write agent_was_here.txt in the cwd and say what arrived where."""
    first_line = prompt.splitlines()[0] if prompt else ""
    Path("agent_was_here.txt").write_text(f"{first_line}\nmodel={model or '-'}\n")
    prompt_file = os.environ.get("GITOPS_AGENT_PROMPT_FILE", "")
    from_file = Path(prompt_file).read_text().splitlines()[0] if prompt_file else "-"
    print(f"stand-in {name}: task={os.environ.get('GITOPS_AGENT_TASK_ID', '-')}")
    print(f"stand-in {name}: prompt_file={prompt_file}")
    print(f"stand-in {name}: prompt_file_first_line={from_file}")
    print(f"stand-in {name}: prompt_first_line={first_line}")


def fail_plainly(name: str) -> None:
    """STAND_IN_FAIL=1: an ordinary failure whose output mentions numbers and limits innocently."""
    if os.environ.get("STAND_IN_FAIL") == "1":
        print(f"{name}: error: tests failed: tests/test_limits.py line 429: assert limit == 5")
        sys.exit(1)
