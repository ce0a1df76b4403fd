"""Small file-system helpers for the git package: stubborn directory removal, owned files."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from gitops_agent.files import write_atomic


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
