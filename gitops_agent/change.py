"""What a task changed, as plain records: produced by `git`, judged by `policy.inspect`."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class FileStatus(enum.Enum):
    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"
    RENAMED = "renamed"
    TYPECHANGE = "typechange"


SYMLINK_MODE = 0o120000


@dataclass(frozen=True, slots=True)
class FileChange:
    """One changed path, relative to the repository root (POSIX)."""

    path: str
    status: FileStatus
    old_path: str | None  # for renames
    added: int  # added lines (0 for binary files)
    deleted: int  # deleted lines (0 for binary files)
    added_lines: tuple[str, ...]  # text of the added lines, without newlines
    is_binary: bool
    mode: int  # new file mode: 0o100644, 0o100755, SYMLINK_MODE; 0 when deleted
    size: int  # new blob size in bytes; 0 when deleted
    symlink_target: str | None  # for symlinks: where the link points

    @property
    def is_symlink(self) -> bool:
        return self.mode == SYMLINK_MODE


@dataclass(frozen=True, slots=True)
class Change:
    """The difference between the commit a task started from and the tree it left."""

    base: str  # commit id (hex) the task started from
    tree: str  # tree id (hex) of the result, stored in the user's object database
    files: tuple[FileChange, ...]

    @property
    def lines_changed(self) -> int:
        return sum(f.added + f.deleted for f in self.files)

    @property
    def is_empty(self) -> bool:
        return not self.files


@dataclass(frozen=True, slots=True)
class Refusal:
    """An entry of the work tree that is never committed (a hard link, a `.git` name...)."""

    path: str  # as found, relative to the work tree; may hold any character
    reason: str
