"""The quality gate: the base branch's checks, run confined on exactly the tree to commit, and
judged against what they found on the base (`baseline`), so a task fails only for what it broke.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from gitops_agent import __version__
from gitops_agent.git import Repo
from gitops_agent.plan import Settings

GATE_SCRIPT = ".ai-validation/check_quality.sh"
OUTPUT_TAIL = 4000  # characters of a failing gate's output kept as feedback and evidence

# A command that runs pytest gets its JUnit report collected without being asked.
_RUNS_PYTEST = re.compile(r"(?<![\w./-])(?:py\.test|pytest)\b")
_JUNIT_OPTION = re.compile(r"--junit-?xml(?:=|\s+)(\S+)")


@dataclass(frozen=True, slots=True)
class GateCommand:
    """One command of the gate, and how its result is read."""

    run: str  # given to bash -c
    shown: str  # how messages name it
    findings: bool = False  # only `path:line:` findings the change introduces count
    junit: str | None = None  # a report the command writes in the checkout (relative)
    pytest: bool = False  # runs pytest: its JUnit report is collected through PYTEST_ADDOPTS

    @property
    def expects_report(self) -> bool:
        """Whether a missing JUnit report means the command did not do its job."""
        return self.junit is not None or self.pytest


@dataclass(frozen=True, slots=True)
class Gate:
    """What to run: the plan's `gate:` commands, else the base's gate script (by content)."""

    commands: tuple[GateCommand, ...]
    script: bytes | None  # the script as committed on the base, so a changed copy never runs
    source: str  # where it came from, for messages

    @property
    def paths(self) -> tuple[str, ...]:
        """Files in the repository that define the gate (protected from the agent)."""
        return (GATE_SCRIPT,) if self.script is not None else ()

    @property
    def key(self) -> str:
        """Names this gate's definition, for the baseline cache: a new gate is a new baseline."""
        digest = hashlib.sha256(__version__.encode())
        for command in self.commands:
            digest.update(repr(command).encode())
        digest.update(self.script or b"")
        return digest.hexdigest()[:16]


def resolve_gate(repo: Repo, base_commit: str, settings: Settings) -> Gate | None:
    """The gate as the base commit defines it, or None when there is none."""
    if settings.gate:
        commands = tuple(
            _command(entry.run, entry.run, findings=entry.findings, junit=entry.junit)
            for entry in settings.gate
        )
        return Gate(commands, None, "`gate:` in the plan's front matter")
    script = repo.read_blob(base_commit, GATE_SCRIPT)
    if script is not None:
        # Run the base's copy from outside the checkout (see run.py): the change must not
        # judge itself. `{script}` is filled in with where that copy lies.
        text = script.decode("utf-8", "replace")
        command = _command("bash {script}", GATE_SCRIPT, findings=False, junit=None, body=text)
        return Gate((command,), script, f"{GATE_SCRIPT} as committed on the base")
    return None


def _command(
    run: str, shown: str, *, findings: bool, junit: str | None, body: str | None = None
) -> GateCommand:
    text = run if body is None else body
    if junit is None and not findings:
        named = _JUNIT_OPTION.search(text)
        if named is not None:
            path = named[1].strip("'\"")
            if not _plain_relative(path):
                # Somewhere the tool cannot read it from: judged by exit status alone.
                return GateCommand(run, shown)
            junit = path
    pytest = not findings and junit is None and _RUNS_PYTEST.search(text) is not None
    return GateCommand(run, shown, findings=findings, junit=junit, pytest=pytest)


def _plain_relative(path: str) -> bool:
    return (
        bool(path)
        and not path.startswith(("/", "~"))
        and "$" not in path
        and (".." not in path.split("/"))
    )
