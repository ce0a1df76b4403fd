"""The quality gate: the base branch's checks, run confined on exactly the tree to commit."""

from __future__ import annotations

import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gitops_agent.git import Repo
from gitops_agent.plan import Settings
from gitops_agent.policy.masking import mask
from gitops_agent.runner import Runner

GATE_SCRIPT = ".ai-validation/check_quality.sh"
OUTPUT_TAIL = 4000  # characters of a failing gate's output kept as feedback and evidence


@dataclass(frozen=True, slots=True)
class Gate:
    """What to run: the plan's `gate:` commands, else the base's gate script (by content)."""

    commands: tuple[str, ...]
    script: bytes | None  # the script as committed on the base, so a changed copy never runs
    source: str  # where it came from, for messages

    @property
    def paths(self) -> tuple[str, ...]:
        """Files in the repository that define the gate (protected from the agent)."""
        return (GATE_SCRIPT,) if self.script is not None else ()


@dataclass(frozen=True, slots=True)
class GateResult:
    passed: bool
    command: str | None  # the command that failed
    output: str  # the tail of the failing command's output ("" when it passed)
    duration: float


def resolve_gate(repo: Repo, base_commit: str, settings: Settings) -> Gate | None:
    """The gate as the base commit defines it, or None when there is none."""
    if settings.gate:
        return Gate(settings.gate, None, "`gate:` in the plan's front matter")
    script = repo.read_blob(base_commit, GATE_SCRIPT)
    if script is not None:
        return Gate((), script, f"{GATE_SCRIPT} as committed on the base")
    return None


def run_gate(gate: Gate, cwd: Path, timeout: float, runner: Runner, scratch: Path) -> GateResult:
    """Run every command in order in `cwd`, each confined with a fresh `scratch` (HOME, TMPDIR);
    stop at the first failure."""
    total = 0.0
    with tempfile.TemporaryDirectory(prefix="gitops-agent-gate-") as tmp:
        commands = list(gate.commands)
        if gate.script is not None:
            # Run the base's copy from outside the checkout: the change must not judge itself.
            script = Path(tmp) / "check_quality.sh"
            script.write_bytes(gate.script)
            commands = [f"bash {shlex.quote(str(script))}"]
        for command in commands:
            result = runner.run_gate(command, cwd, scratch, timeout=max(timeout - total, 1.0))
            total += result.duration
            if result.exit_code != 0:
                shown = GATE_SCRIPT if gate.script is not None else command
                if result.timed_out:
                    why = f"[stopped: the gate ran past {timeout:.0f} s]\n"
                else:
                    why = f"[exit status {result.exit_code}]\n"
                # Masked whole before the cut, so a cut cannot leave part of a secret.
                output = mask(result.output + why)[-OUTPUT_TAIL:]
                return GateResult(False, shown, output, total)
    return GateResult(True, None, "", total)
