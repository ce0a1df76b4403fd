"""Run one program so that nothing it starts outlives it, pumping its output and its input.

The program runs in its own session (so its own process group), and this process is a child
subreaper: a daemon that double-forks or calls setsid is re-parented to us, not to init, so it
stays findable. When the program ends, times out or falls silent, its group, its descendants and
every process re-parented to us meanwhile are terminated (SIGTERM, a grace period, SIGKILL).
Inside a PID namespace (bubblewrap) the kernel does the same on its own when the program exits.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gitops_agent.errors import UserError

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
WATCH_INTERVAL = 1.0  # least time between two walks of watch_dir
WATCH_MAX_SHARE = 0.05  # a walk may use at most this share of the time (bigger trees: rarer walks)

_POLL = 0.05  # how often we look at the child when it is quiet
_READ_SIZE = 65536
_DRAIN_LIMIT = 2.0  # after the group is gone, how long to wait for the pipe to close


@dataclass(frozen=True, slots=True)
class ProcessResult:
    """How a command ended; `output` is its combined stdout and stderr (the tail, when long)."""

    exit_code: int | None  # None when we killed it; 128 + N when signal N killed it otherwise
    output: str
    timed_out: bool  # killed at the overall timeout
    idle: bool  # killed because it printed nothing and changed no file for idle_timeout
    duration: float


def find_bash(env: Mapping[str, str]) -> str:
    """bash, as the command's PATH finds it; raises UserError when there is none."""
    bash = shutil.which("bash", path=env.get("PATH", os.defpath))
    if bash is None:
        raise UserError("bash was not found on PATH; gitops-agent runs every command with bash -c")
    return bash


def run_command(
    command: str,
    cwd: Path,
    *,
    stdin_text: str = "",
    env: Mapping[str, str] | None = None,
    timeout: float,
    idle_timeout: float | None = None,
    watch_dir: Path | None = None,
    max_output: int = 200_000,
    on_output: Callable[[str], None] | None = None,
) -> ProcessResult:
    """Run `bash -c command` in `cwd`, unconfined; see `run_program`."""
    child_env = dict(os.environ if env is None else env)
    return run_program(
        [find_bash(child_env), "-c", command],
        cwd,
        stdin_text=stdin_text,
        env=child_env,
        timeout=timeout,
        idle_timeout=idle_timeout,
        watch_dir=watch_dir,
        max_output=max_output,
        on_output=on_output,
    )


def run_program(
    argv: Sequence[str],
    cwd: Path,
    *,
    stdin_text: str = "",
    env: Mapping[str, str],
    timeout: float,
    idle_timeout: float | None = None,
    watch_dir: Path | None = None,
    max_output: int = 200_000,
    on_output: Callable[[str], None] | None = None,
) -> ProcessResult:
    """Run `argv` in `cwd`, feed it `stdin_text` then close stdin, and reap all it started.

    Never raises for how the program ended; raises UserError when it cannot start at all.
    """
    if not cwd.is_dir():
        problem = "is not a directory" if cwd.exists() else "does not exist"
        raise UserError(f"the working directory {problem}", path=str(cwd))
    _become_subreaper()
    children_before = frozenset(_own_children())
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            bufsize=0,
        )
    except OSError as exc:
        raise UserError(f"cannot start {argv[0]}: {exc.strerror}", path=str(cwd)) from exc
    run = _Run(proc, children_before, max_output, on_output)
    try:
        run.feed(stdin_text.encode("utf-8"))
        timed_out, idle = run.wait(timeout, idle_timeout, watch_dir)
    except BaseException:
        # KeyboardInterrupt, or on_output raised: the caller is leaving, but nothing may outlive it.
        run.on_output = None
        run.finish()
        raise
    run.finish()
    exit_code: int | None = None
    if not (timed_out or idle) and proc.returncode is not None:
        code = proc.returncode
        exit_code = code if code >= 0 else 128 - code
    return ProcessResult(
        exit_code=exit_code,
        output=run.output(),
        timed_out=timed_out,
        idle=idle,
        duration=time.monotonic() - run.started,
    )


class _Run:
    """The state of one running command: its pipes, its output tail and its process group."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        children_before: frozenset[int],
        max_output: int,
        on_output: Callable[[str], None] | None,
    ) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self.proc = proc
        self.children_before = children_before
        self.started = time.monotonic()
        self.last_activity = self.started
        self.max_output = max_output
        self.on_output = on_output
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.tail = bytearray()
        self.cut = 0
        self.selector = selectors.DefaultSelector()
        self.stdout_fd = proc.stdout.fileno()
        os.set_blocking(self.stdout_fd, False)
        self.selector.register(self.stdout_fd, selectors.EVENT_READ)
        self.stdin_data = b""
        self.stdin_fd: int | None = proc.stdin.fileno()
        self.stdin_pos = 0

    def feed(self, data: bytes) -> None:
        """Start writing `data` to the child's stdin; closed as soon as it is all written."""
        self.stdin_data = data
        if not data:
            self._close_stdin()
            return
        assert self.stdin_fd is not None
        os.set_blocking(self.stdin_fd, False)
        self.selector.register(self.stdin_fd, selectors.EVENT_WRITE)

    def wait(
        self, timeout: float, idle_timeout: float | None, watch_dir: Path | None
    ) -> tuple[bool, bool]:
        """Pump the pipes until the main process exits; returns (timed_out, idle)."""
        deadline = self.started + timeout
        watch = _TreeWatch(watch_dir) if watch_dir is not None and idle_timeout else None
        while True:
            self._pump(_POLL)
            if self.proc.poll() is not None:
                return False, False
            now = time.monotonic()
            if now >= deadline:
                return True, False
            if watch is not None and watch.changed(now):
                self.last_activity = now
            if idle_timeout is not None and now - self.last_activity >= idle_timeout:
                # One fresh look before giving up: the tree may have changed since the last walk.
                if watch is None or not watch.changed(now, force=True):
                    return False, True
                self.last_activity = now

    def finish(self) -> None:
        """Terminate whatever is left of the process group, then read the pipe to its end."""
        self._close_stdin()
        if _survivors(self.proc.pid, self.children_before):
            _terminate(self.proc, self.children_before)
        self.proc.wait()
        _reap_adopted(self.children_before | {self.proc.pid})
        drain_until = time.monotonic() + _DRAIN_LIMIT
        while self.stdout_fd in self.selector.get_map() and time.monotonic() < drain_until:
            self._pump(_POLL)
        self._flush_decoder()
        self.selector.close()
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def output(self) -> str:
        """The kept tail, decoded, with a marker saying how much was cut from the front."""
        text = bytes(self.tail).decode("utf-8", errors="replace")
        return f"[... {self.cut} bytes cut ...]\n{text}" if self.cut else text

    def _pump(self, wait: float) -> None:
        for key, _ in self.selector.select(wait):
            if key.fd == self.stdout_fd:
                self._read()
            else:
                self._write()

    def _read(self) -> None:
        try:
            chunk = os.read(self.stdout_fd, _READ_SIZE)
        except BlockingIOError:
            return
        if not chunk:
            self.selector.unregister(self.stdout_fd)
            return
        self.last_activity = time.monotonic()
        self._keep(chunk)
        if self.on_output is not None:
            text = self.decoder.decode(chunk)
            if text:
                self.on_output(text)

    def _keep(self, chunk: bytes) -> None:
        self.tail += chunk
        excess = len(self.tail) - self.max_output
        if excess > 0:
            # Never start the tail inside a UTF-8 sequence: skip its continuation bytes too.
            while excess < len(self.tail) and self.tail[excess] & 0xC0 == 0x80:
                excess += 1
            del self.tail[:excess]
            self.cut += excess

    def _write(self) -> None:
        assert self.stdin_fd is not None
        try:
            self.stdin_pos += os.write(
                self.stdin_fd, self.stdin_data[self.stdin_pos : self.stdin_pos + _READ_SIZE]
            )
        except BlockingIOError:
            return
        except BrokenPipeError:
            # The child exited or closed stdin without reading it all: its business, not an error.
            self._close_stdin()
            return
        if self.stdin_pos >= len(self.stdin_data):
            self._close_stdin()

    def _close_stdin(self) -> None:
        if self.stdin_fd is None:
            return
        if self.stdin_fd in self.selector.get_map():
            self.selector.unregister(self.stdin_fd)
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # nothing is buffered; the fd closes anyway
            self.proc.stdin.close()
        self.stdin_fd = None

    def _flush_decoder(self) -> None:
        if self.on_output is not None:
            text = self.decoder.decode(b"", final=True)
            if text:
                self.on_output(text)


class _TreeWatch:
    """Notices file changes under a directory by a cheap signature over a walk that skips .git."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # No walk at start: a command that ends within the first interval (most codemods)
        # never pays for one. The first walk takes the baseline and counts as activity.
        self.signature: tuple[int, int, int] | None = None
        self.next_walk = time.monotonic() + WATCH_INTERVAL

    def changed(self, now: float, *, force: bool = False) -> bool:
        if not force and now < self.next_walk:
            return False
        began = time.monotonic()
        signature = tree_signature(self.root)
        cost = time.monotonic() - began
        self.next_walk = began + max(WATCH_INTERVAL, cost / WATCH_MAX_SHARE)
        if signature == self.signature:
            return False
        self.signature = signature
        return True


def tree_signature(root: Path) -> tuple[int, int, int]:
    """(entries, sum of mtimes in ns, sum of sizes) of everything under `root` except `.git`.

    Directory mtimes change when entries are added, removed or renamed, so those count too.
    """
    count = mtimes = sizes = 0
    stack = [str(root)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.name == ".git":
                        continue
                    try:
                        st = entry.stat(follow_symlinks=False)
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                    except OSError:
                        continue  # removed while we walked
                    count += 1
                    mtimes += st.st_mtime_ns
                    sizes += st.st_size
        except OSError:
            continue  # a directory removed or unreadable while we walked
    return count, mtimes, sizes


_PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> None:
    """Orphans of our children come to us instead of init, so none can slip away by forking."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "cannot become a child subreaper")


def _process_table() -> dict[int, tuple[int, int, bool]] | None:
    """pid -> (parent pid, process group, is a zombie); None without procfs."""
    try:
        names = os.listdir("/proc")
    except FileNotFoundError:
        return None
    table: dict[int, tuple[int, int, bool]] = {}
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: read after the last ")".
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) >= 3:
            table[int(name)] = (int(fields[1]), int(fields[2]), fields[0] in (b"Z", b"X"))
    return table


def _own_children() -> list[int]:
    """Our children, from /proc/self/task/*/children (cheap), else from the process table."""
    found: list[int] = []
    try:
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children", "rb") as f:
                found += [int(pid) for pid in f.read().split()]
    except OSError:  # no procfs, or a kernel without CONFIG_PROC_CHILDREN
        table = _process_table() or {}
        return [child for child, (parent, _, _) in table.items() if parent == os.getpid()]
    return found


def process_alive(pid: int, *, group: bool = False) -> bool:
    """Whether the process (or process group) `pid` exists; one we may not signal counts."""
    try:
        if group:
            os.killpg(pid, 0)
        else:
            os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _survivors(root: int, children_before: frozenset[int]) -> list[int]:
    """Live processes the program started: its group, its descendants, and orphans adopted by us.

    Zombies do not count: they are dead (and we reap the ones adopted by us).
    """
    adopted = set(_own_children()) - children_before - {root}
    if not adopted and not process_alive(root, group=True) and not process_alive(root):
        return []  # the usual end: nothing of it left, and no full scan of /proc needed
    table = _process_table()
    if table is None:  # no procfs (macOS): fall back to asking about the group only
        return [root] if process_alive(root, group=True) else []
    me = os.getpid()
    tops = {root} | {
        pid for pid, (parent, _, _) in table.items() if parent == me and pid not in children_before
    }
    found = {pid for pid, (_, group, _) in table.items() if group == root} | tops
    grew = True
    while grew:
        more = {pid for pid, (parent, _, _) in table.items() if parent in found} - found
        found |= more
        grew = bool(more)
    return sorted(pid for pid in found if pid in table and not table[pid][2])


def _reap_adopted(children_before: frozenset[int]) -> None:
    """Collect the exit status of orphans re-parented to us, so they do not stay zombies."""
    for pid in _own_children():
        if pid not in children_before:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


def _terminate(proc: subprocess.Popen[bytes], children_before: frozenset[int]) -> None:
    """SIGTERM the group and its escapees, wait up to KILL_GRACE, then SIGKILL what is left."""
    pgid = proc.pid
    _signal_all(pgid, _survivors(pgid, children_before), signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE
    while time.monotonic() < deadline:
        proc.poll()  # reap the main process, or it lingers as a member of the group
        _reap_adopted(children_before | {proc.pid})
        if not _survivors(pgid, children_before):
            return
        time.sleep(_POLL)
    # A process may fork while we kill; a few rounds catch the newborns.
    for _ in range(20):
        left = _survivors(pgid, children_before)
        if not left:
            return
        _signal_all(pgid, left, signal.SIGKILL)
        proc.poll()
        _reap_adopted(children_before | {proc.pid})
        time.sleep(_POLL)


def _signal_all(pgid: int, pids: list[int], sig: signal.Signals) -> None:
    # Whoever is gone by now (ProcessLookupError) is what we wanted.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
