"""What a run must leave alone in the user's .git (refs, HEAD, config, hooks): kept and put back."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pygit2
from pygit2.enums import ReferenceType

from gitops_agent.files import write_atomic

from ._files import remove_path

_SYMBOLIC = "ref: "


@dataclass(frozen=True, slots=True)
class FileCopy:
    """A file's bytes (a symlink's target for a symlink) and its `st_mode`, type bits included."""

    data: bytes
    mode: int


@dataclass(frozen=True, slots=True)
class MetadataSnapshot:
    """Refs (name -> id, or "ref: <target>" when symbolic; HEAD included), config and hooks."""

    refs: Mapping[str, str]
    config: FileCopy | None
    hooks: Mapping[str, FileCopy]  # relative POSIX path under .git/hooks -> content
    hook_dirs: frozenset[str]  # directories under .git/hooks ("" is the hooks directory itself)
    locks: frozenset[str]  # lock files that existed already; others are ours to clear


def take(repo: pygit2.Repository, git_dir: Path, common_dir: Path) -> MetadataSnapshot:
    """Record everything `restore` can put back."""
    hooks, hook_dirs = _scan(common_dir / "hooks")
    return MetadataSnapshot(
        refs=_refs(repo),
        config=_read(common_dir / "config"),
        hooks=hooks,
        hook_dirs=frozenset(hook_dirs),
        locks=frozenset(str(p) for p in _lock_files(git_dir, common_dir)),
    )


def restore(
    repo: pygit2.Repository,
    git_dir: Path,
    common_dir: Path,
    snapshot: MetadataSnapshot,
    own_prefix: str,
) -> list[str]:
    """Put back whatever changed since `snapshot` outside `own_prefix`; one sentence per repair."""
    done: list[str] = []
    for lock in _lock_files(git_dir, common_dir):
        if str(lock) not in snapshot.locks:  # left by a killed process; blocks every ref write
            lock.unlink()
            done.append(f"stale lock file {_show(lock, common_dir)} removed")
    done += _restore_refs(repo, snapshot.refs, own_prefix)
    config = common_dir / "config"
    if _read(config) != snapshot.config:
        _put(config, snapshot.config)
        done.append(f"{_show(config, common_dir)} was changed; restored")
    done += _restore_hooks(common_dir / "hooks", snapshot)
    return done


def _refs(repo: pygit2.Repository) -> dict[str, str]:
    refs = {ref.name: _value(ref) for ref in repo.references.iterator()}
    refs["HEAD"] = _value(repo.lookup_reference("HEAD"))
    return refs


def _value(ref: pygit2.Reference) -> str:
    return f"{_SYMBOLIC}{ref.target}" if ref.type == ReferenceType.SYMBOLIC else str(ref.target)


def _target(value: str) -> str | pygit2.Oid:
    return value.removeprefix(_SYMBOLIC) if value.startswith(_SYMBOLIC) else pygit2.Oid(hex=value)


def _restore_refs(repo: pygit2.Repository, was: Mapping[str, str], own_prefix: str) -> list[str]:
    now = _refs(repo)
    done: list[str] = []

    def ours(name: str) -> bool:
        return name.startswith(own_prefix) or name == "HEAD"

    # Deletions first: a created refs/heads/a blocks recreating a deleted refs/heads/a/b.
    for name in sorted(n for n in now.keys() - was.keys() if not ours(n)):
        repo.references.delete(name)
        done.append(f"ref {name} was created; deleted")
    for name in sorted(n for n in now.keys() & was.keys() if not ours(n) and now[n] != was[n]):
        ref = repo.lookup_reference(name)
        target = _target(was[name])
        if isinstance(target, pygit2.Oid) == (ref.type == ReferenceType.DIRECT):
            ref.set_target(target, "gitops-agent: restored")  # fails if it moves meanwhile
        else:
            ref.delete()
            repo.create_reference(name, target, False, "gitops-agent: restored")
        done.append(f"ref {name} was moved; restored")
    for name in sorted(n for n in was.keys() - now.keys() if not ours(n)):
        repo.create_reference(name, _target(was[name]), False, "gitops-agent: restored")
        done.append(f"ref {name} was deleted; recreated")
    if now["HEAD"] != was["HEAD"]:
        repo.set_head(_target(was["HEAD"]))
        done.append("HEAD was changed; restored")
    return done


def _restore_hooks(hooks: Path, was: MetadataSnapshot) -> list[str]:
    now, now_dirs = _scan(hooks)
    done: list[str] = []
    for rel in sorted(now.keys() - was.hooks.keys()):
        (hooks / rel).unlink()
        done.append(f"hook {rel} was added; removed")
    for rel in sorted(now_dirs - was.hook_dirs, reverse=True):  # children before parents
        remove_path(hooks / rel)
    for rel in sorted(was.hook_dirs):
        (hooks / rel).mkdir(exist_ok=True)
    for rel, copy in sorted(was.hooks.items()):
        if now.get(rel) != copy:
            _put(hooks / rel, copy)
            done.append(f"hook {rel} was {'changed' if rel in now else 'removed'}; restored")
    return done


def _scan(top: Path) -> tuple[dict[str, FileCopy], set[str]]:
    """Files (and symlinks) under `top` by relative path, and its directories ("" for `top`)."""
    files: dict[str, FileCopy] = {}
    dirs: set[str] = set()
    if not top.is_dir():
        return files, dirs
    pending = [""]
    while pending:
        rel = pending.pop()
        dirs.add(rel)
        with os.scandir(top / rel) as entries:
            for entry in entries:
                path = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_dir(follow_symlinks=False):
                    pending.append(path)
                else:
                    files[path] = _read(Path(entry.path)) or FileCopy(b"", 0)
    return files, dirs


def _read(path: Path) -> FileCopy | None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return FileCopy(os.fsencode(os.readlink(path)), st.st_mode)
    if stat.S_ISREG(st.st_mode):
        return FileCopy(path.read_bytes(), st.st_mode)
    return FileCopy(b"", st.st_mode)  # a fifo or the like: compared by type only


def _put(path: Path, copy: FileCopy | None) -> None:
    if copy is None or (path.is_dir() and not path.is_symlink()):
        remove_path(path)
    if copy is None:
        return
    if stat.S_ISLNK(copy.mode):
        if path.is_symlink() or path.exists():
            path.unlink()
        os.symlink(os.fsdecode(copy.data), path)
    else:
        write_atomic(path, copy.data, copy.mode)


def _lock_files(git_dir: Path, common_dir: Path) -> list[Path]:
    """Lock files of refs and config; never index.lock, which the user's own `git` may hold."""
    named = [git_dir / "HEAD.lock", common_dir / "packed-refs.lock", common_dir / "config.lock"]
    return sorted([*(p for p in named if p.exists()), *(common_dir / "refs").rglob("*.lock")])


def _show(path: Path, common_dir: Path) -> str:
    if not path.is_relative_to(common_dir):
        return str(path)
    return f".git/{path.relative_to(common_dir).as_posix()}"
