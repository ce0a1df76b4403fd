"""Small file-system helpers for the git package: atomic writes and stubborn directory removal."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes, mode: int = 0o644, *, fsync: bool = True) -> None:
    """Replace `path` with `data`: a reader, or a crash, sees the old or the new file, not half."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, stat.S_IMODE(mode))
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_if_changed(path: Path, data: bytes) -> None:
    """Write a file we own only when its bytes differ, so an unchanged one costs one read."""
    if path.is_symlink() or not path.is_file() or path.read_bytes() != data:
        remove_path(path)
        write_atomic(path, data, fsync=False)


def remove_path(path: Path) -> None:
    """Delete a file, symlink or directory tree; read-only directories (Go's module cache) too."""
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


def reset_dir(path: Path, wanted: dict[str, bytes]) -> None:
    """Make `path` a directory holding exactly the `wanted` files (name -> bytes)."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    path.mkdir(parents=True, exist_ok=True)
    for entry in path.iterdir():
        if entry.name not in wanted:
            remove_path(entry)
    for name, data in wanted.items():
        write_if_changed(path / name, data)
