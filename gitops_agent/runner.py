"""How a session runs agents, `Run:` codemods and gates: its sandbox and the constraints' limits.

Each command gets a fresh private directory (`scratch`) holding its HOME and TMPDIR; it may write
there and in its working directory, nowhere else.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from gitops_agent.constraints import Constraints
from gitops_agent.files import remove_tree
from gitops_agent.sandbox import (
    Confinement,
    Jail,
    ProcessResult,
    Sandbox,
    agent_environment,
    choose,
    gate_environment,
    run_confined,
)

# Told to a confined agent: Claude Code then accepts --dangerously-skip-permissions as root,
# which it refuses outside a sandbox (an unconfined run does not pretend).
SANDBOX_VARIABLE = "IS_SANDBOX"


@dataclass(frozen=True, slots=True)
class Runner:
    sandbox: Sandbox
    agent_env: tuple[str, ...]
    gate_env: tuple[str, ...]
    memory_bytes: int | None
    max_processes: int | None

    @classmethod
    def create(cls, constraints: Constraints) -> Runner:
        """The runner the constraints ask for; raises UserError when `required` cannot be met."""
        line = constraints.sources.get("confinement")
        sandbox = choose(
            Confinement(constraints.confinement),
            where=(constraints.path if line else None, line),
        )
        return cls(
            sandbox=sandbox,
            agent_env=constraints.agent_env,
            gate_env=constraints.gate_env,
            memory_bytes=constraints.memory_limit_mb * 1024 * 1024 or None,
            max_processes=constraints.max_processes or None,
        )

    def run_agent(
        self,
        command: str,
        workdir: Path,
        scratch: Path,
        *,
        preset_env: Iterable[str],
        extra_env: Mapping[str, str],
        network: bool,
        files: Mapping[str, bytes] | None = None,
        home_files: Mapping[str, str] | None = None,
        stdin_text: str = "",
        timeout: float,
        idle_timeout: float | None,
        on_output: Callable[[str], None] | None = None,
    ) -> ProcessResult:
        """An agent (network on) or a `Run:` codemod (off), in `workdir`, HOME in `scratch`.

        `files` (name -> bytes) are written into `scratch` for the command (its prompt file),
        `home_files` (path -> text) into its HOME (what its CLI needs to start there).
        """
        home, tmp = fresh_scratch(scratch)
        for name, data in (files or {}).items():
            (scratch / name).write_bytes(data)
        for rel, text in (home_files or {}).items():
            target = home / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        extra = dict(extra_env)
        if self.sandbox.confined:
            extra[SANDBOX_VARIABLE] = "1"
        env = agent_environment(
            os.environ,
            home=home,
            tmp=tmp,
            preset_names=preset_env,
            listed=self.agent_env,
            extra=extra,
        )
        return run_confined(
            self.sandbox,
            command,
            self._jail(workdir, scratch, env, network=network),
            stdin_text=stdin_text,
            timeout=timeout,
            idle_timeout=idle_timeout,
            watch_dir=workdir,
            on_output=on_output,
        )

    def run_gate(
        self, command: str, workdir: Path, scratch: Path, *, timeout: float
    ) -> ProcessResult:
        """One gate command in `workdir`: no network, no API keys; where the sandbox can, it
        writes the workdir only through a throw-away overlay (`gate_leaves_no_trace`)."""
        home, tmp = fresh_scratch(scratch)
        env = gate_environment(os.environ, home=home, tmp=tmp, listed=self.gate_env)
        jail = replace(self._jail(workdir, scratch, env, network=False), overlay=True)
        return run_confined(self.sandbox, command, jail, timeout=timeout)

    @property
    def gate_leaves_no_trace(self) -> bool:
        """Whether gates leave their workdir exactly as they found it."""
        return self.sandbox.leaves_no_trace

    def _jail(self, workdir: Path, scratch: Path, env: Mapping[str, str], *, network: bool) -> Jail:
        return Jail(
            workdir=workdir,
            writable=(scratch,),
            env=env,
            network=network,
            memory_bytes=self.memory_bytes,
            max_processes=self.max_processes,
        )


def fresh_scratch(scratch: Path) -> tuple[Path, Path]:
    """Empty `scratch` and make its `home` and `tmp`: nothing of an earlier command is left."""
    remove_tree(scratch)
    home, tmp = scratch / "home", scratch / "tmp"
    home.mkdir(parents=True)
    tmp.mkdir()
    os.chmod(tmp, 0o700)
    return home, tmp
