"""Reading the user's documents strictly and writing ours atomically."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

from gitops_agent.errors import UserError


def decode(data: bytes, display: str) -> str:
    """UTF-8 text (a leading BOM is allowed); a bad byte is a UserError naming its line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise UserError(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at column {column}); "
            "save the file as UTF-8",
            display,
            line,
        ) from None


def read_text(path: Path, display: str) -> str:
    """The file's text; missing, unreadable or non-UTF-8 files are UserErrors."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError("file not found", display) from None
    except IsADirectoryError:
        raise UserError("is a directory, expected a markdown file", display) from None
    except PermissionError:
        raise UserError("permission denied", display) from None
    return decode(data, display)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_atomic(path: Path, data: bytes, mode: int | None = None, *, fsync: bool = True) -> None:
    """Write `data` to `path` so that a crash leaves the old file or the new one, never half.

    `mode` defaults to what a new file gets (0o666 less the umask): mkstemp's own 0o600 would
    make a user's plan unreadable to others. `fsync=False` for files that only matter while
    this process lives (the live run state, copies of our own state).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.chmod(tmp, stat.S_IMODE(mode) if mode is not None else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_tree(path: Path) -> None:
    """Delete a file, symlink or directory tree if it exists; read-only directories too.

    A symlink is removed, never followed.
    """
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    elif path.is_dir():
        try:
            shutil.rmtree(path)
        except PermissionError:
            _make_writable(path)
            shutil.rmtree(path)


def _make_writable(directory: Path) -> None:
    os.chmod(directory, stat.S_IRWXU)
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                _make_writable(Path(entry.path))
