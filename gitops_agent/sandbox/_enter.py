"""Enter the sandbox, then become the command: Landlock, limits, no capabilities, exec.

Run as `python -I -S _enter.py OPTIONS -- PROGRAM ARGS...` (inside bubblewrap when there is
one), so it imports nothing of the package and nothing from site-packages, and as little of the
standard library as it can (every millisecond here is paid by every confined command). OPTIONS
are made by `options()`. Whatever cannot be applied is an error (exit status 125): a command
never runs less confined than it was promised.
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys

# Syscall numbers are the same on every architecture Linux gives Landlock to (asm-generic).
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2

# Filesystem rights (include/uapi/linux/landlock.h), and the ABI that introduced the last ones.
FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13  # ABI 2: links and renames across directories
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1

# Everything that changes the file system. Reading and executing stay unrestricted.
_WRITE_ABI1 = (
    FS_WRITE_FILE
    | FS_REMOVE_DIR
    | FS_REMOVE_FILE
    | FS_MAKE_CHAR
    | FS_MAKE_DIR
    | FS_MAKE_REG
    | FS_MAKE_SOCK
    | FS_MAKE_FIFO
    | FS_MAKE_BLOCK
    | FS_MAKE_SYM
)
# In a writable directory: anything but device nodes (root could otherwise reach a raw disk).
_DIR_RIGHTS = _WRITE_ABI1 & ~(FS_MAKE_CHAR | FS_MAKE_BLOCK)
_READ = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
_FILE_ONLY = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV

_PR_SET_NO_NEW_PRIVS = 38
_PR_CAPBSET_DROP = 24
_PR_SET_SECUREBITS = 28
_PR_SET_PDEATHSIG = 1
_CAP_SETPCAP = 8
_LAST_CAP_GUESS = 63  # capabilities past the kernel's last one fail harmlessly with EINVAL
# SECBIT_NOROOT, SECBIT_NO_SETUID_FIXUP and SECBIT_KEEP_CAPS_LOCKED, each with its lock.
_SECUREBITS = 0b101111


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


class SandboxError(Exception):
    """Something that was asked for could not be applied."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _fail(what: str) -> SandboxError:
    err = ctypes.get_errno()
    return SandboxError(f"{what}: {os.strerror(err)} (errno {err})")


def abi_version() -> int:
    """The Landlock ABI this kernel offers; raises SandboxError when it offers none."""
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    version = libc.syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    if version < 0:
        raise _fail("Landlock is not available")
    return int(version)


def read_rules(hidden: list[str]) -> list[tuple[str, int]]:
    """Read everything but `hidden` (absolute, resolved paths): whole subtrees where nothing is
    hidden; on the way down to a hidden path, only the listing of each directory."""
    hide = {os.path.normpath(h) for h in hidden}
    rules: list[tuple[str, int]] = []

    def visit(path: str) -> None:
        if path in hide:
            return
        prefix = path.rstrip("/") + "/"
        if not any(h.startswith(prefix) for h in hide):
            rules.append((path, _READ))
            return
        rules.append((path, FS_READ_DIR))  # names only: what is in it stays unreadable
        try:
            names = sorted(os.listdir(path))
        except OSError:
            return
        for name in names:
            child = prefix + name
            if os.path.islink(child):
                continue  # a rule would follow it; its target has a rule of its own
            if os.path.isdir(child):
                visit(child)
            elif child not in hide:
                rules.append((child, _READ))

    visit("/")
    return rules


def restrict(
    writable: list[str],
    write_files: list[str],
    *,
    network: bool,
    abi: int,
    hidden: list[str] | None = None,
    readable: list[str] | None = None,
) -> None:
    """Allow writes only beneath `writable` (and to `write_files`); TCP only when `network`;
    no reading of `hidden` paths, but for `readable` ones beneath them (and `writable`)."""
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    handled = _WRITE_ABI1 | (_READ if hidden else 0)
    file_rights = FS_WRITE_FILE | (FS_READ_FILE if hidden else 0)
    if abi >= 2:
        handled |= FS_REFER
    if abi >= 3:
        handled |= FS_TRUNCATE
        file_rights |= FS_TRUNCATE
    dir_rights = _DIR_RIGHTS | (handled & (FS_REFER | FS_TRUNCATE | _READ))
    attr = _RulesetAttr(handled, 0, 0)
    if abi >= 4 and not network:
        attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP  # and no rule allows any port
    if abi >= 6:
        # No signals to processes outside the sandbox (the tool, the person's shell) and no
        # connecting to their abstract unix sockets.
        attr.scoped = SCOPE_SIGNAL | SCOPE_ABSTRACT_UNIX_SOCKET
    size = ctypes.sizeof(_RulesetAttr) if abi >= 4 else 8
    if abi < 6:
        size = min(size, 16)
    fd = libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if fd < 0:
        raise _fail("cannot create a Landlock ruleset")
    try:
        for path, rights in [
            *(read_rules(hidden) if hidden else []),
            *((p, _READ) for p in (readable or []) if hidden),
            *((p, dir_rights) for p in writable),
            *((p, file_rights) for p in write_files),
        ]:
            try:
                target = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # e.g. /dev/tty on a machine without one
            try:
                is_dir = os.path.isdir(f"/proc/self/fd/{target}")
                rule = _PathBeneathAttr(rights if is_dir else rights & _FILE_ONLY & handled, target)
                if libc.syscall(_ADD_RULE, fd, _RULE_PATH_BENEATH, ctypes.byref(rule), 0) < 0:
                    raise _fail(f"cannot add a Landlock rule for {path}")
            finally:
                os.close(target)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise _fail("cannot set no_new_privs")
        if libc.syscall(_RESTRICT_SELF, fd, 0) < 0:
            raise _fail("cannot enforce the Landlock ruleset")
    finally:
        os.close(fd)


def drop_capabilities() -> None:
    """As root: give up every capability for good, so the command is root in name only."""
    libc = _libc()
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise _fail("cannot read capabilities")
    if data[0].effective & (1 << _CAP_SETPCAP):
        if libc.prctl(_PR_SET_SECUREBITS, _SECUREBITS, 0, 0, 0) != 0:
            raise _fail("cannot set securebits")
        for cap in range(_LAST_CAP_GUESS + 1):
            libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the last one: fine
    data = (_CapData * 2)()
    if libc.capset(ctypes.byref(header), data) != 0:
        raise _fail("cannot drop capabilities")


_FLAGS = ("--network", "--die-with-parent")
_VALUES = ("--landlock-abi", "--memory-bytes", "--max-processes")
_LISTS = ("--write", "--write-file", "--hide", "--read")


def options(
    *,
    landlock_abi: int | None,
    writable: list[str],
    write_files: list[str],
    hidden: list[str],
    readable: list[str],
    network: bool,
    memory_bytes: int | None,
    max_processes: int | None,
    die_with_parent: bool,
) -> list[str]:
    """The command line that asks `main` for this confinement."""
    args: list[str] = []
    for name, value in (
        ("--landlock-abi", landlock_abi),
        ("--memory-bytes", memory_bytes),
        ("--max-processes", max_processes),
    ):
        if value is not None:
            args += [name, str(value)]
    for name, paths in (
        ("--write", writable),
        ("--write-file", write_files),
        ("--hide", hidden),
        ("--read", readable),
    ):
        for path in paths:
            args += [name, path]
    if network:
        args.append("--network")
    if die_with_parent:
        args.append("--die-with-parent")
    return args


def _parse(args: list[str]) -> dict[str, object]:
    """`options()` read back (no argparse: it would import re, 8 ms of every command)."""
    spec: dict[str, object] = {name: [] for name in _LISTS}
    i = 0
    while i < len(args):
        name = args[i]
        if name in _FLAGS:
            spec[name] = True
            i += 1
        elif name in _VALUES and i + 1 < len(args):
            spec[name] = int(args[i + 1])
            i += 2
        elif name in _LISTS and i + 1 < len(args):
            paths = spec[name]
            assert isinstance(paths, list)
            paths.append(args[i + 1])
            i += 2
        else:
            raise ValueError(f"unknown option {name!r}")
    return spec


def _apply(spec: dict[str, object]) -> None:
    libc = _libc()
    if spec.get("--die-with-parent"):
        libc.prctl(_PR_SET_PDEATHSIG, 9, 0, 0, 0)
    memory = spec.get("--memory-bytes")
    if isinstance(memory, int):
        # RLIMIT_DATA, not RLIMIT_AS: runtimes that reserve address space they never touch
        # (V8's pointer cage, WebAssembly guard regions, Go arenas, the JVM) still start.
        resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    processes = spec.get("--max-processes")
    if isinstance(processes, int):
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if os.getuid() == 0 or os.geteuid() == 0:
        drop_capabilities()
    abi = spec.get("--landlock-abi")
    if isinstance(abi, int):
        restrict(
            list(spec["--write"]),  # type: ignore[call-overload]
            list(spec["--write-file"]),  # type: ignore[call-overload]
            network=bool(spec.get("--network")),
            abi=abi,
            hidden=list(spec["--hide"]),  # type: ignore[call-overload]
            readable=list(spec["--read"]),  # type: ignore[call-overload]
        )
    elif libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise _fail("cannot set no_new_privs")


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print("usage: _enter.py OPTIONS -- PROGRAM [ARGS...]", file=sys.stderr)
        return 125
    split = argv.index("--")
    program = argv[split + 1 :]
    try:
        _apply(_parse(argv[1:split]))
    except (SandboxError, OSError, ValueError) as err:
        print(f"gitops-agent: cannot confine the command: {err}", file=sys.stderr)
        return 125
    try:
        os.execv(program[0], program)
    except OSError as err:
        print(f"gitops-agent: cannot run {program[0]}: {err.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv))
