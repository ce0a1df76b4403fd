"""How a session runs agents, `Run:` codemods and gates: its sandbox and the constraints' limits.

Each command gets a fresh private directory (`scratch`) holding its HOME and TMPDIR; it may write
there and in its working directory, nowhere else.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from gitops_agent.constraints import Constraints
from gitops_agent.files import remove_tree
from gitops_agent.sandbox import (
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
class UserRepository:
    """The user's repository as a gate must not see it: a gate judges its own tree, and an
    editable install or an absolute path into the user's would import the wrong code."""

    root: Path  # its working tree, where bubblewrap shows the gate its own tree instead
    private: tuple[Path, ...]  # every working tree of the repository, and its git directories
    objects: Path  # its object database, which the gate tree's `.git` borrows: read-only

    @classmethod
    def find(cls, root: Path) -> UserRepository:
        """Read from git's own files: `.git` (a directory, or a file naming one), a linked
        worktree's `commondir`, and the `gitdir` of each linked worktree."""
        root = Path(os.path.realpath(root))
        git_dir = _gitfile_target(root / ".git", root) or root / ".git"
        common = git_dir
        with contextlib.suppress(OSError):
            common = _resolved(git_dir, (git_dir / "commondir").read_text().strip())
        places = {root, git_dir, common}
        if common.name == ".git":  # a main working tree holds it
            places.add(common.parent)
        for gitdir in (common / "worktrees").glob("*/gitdir"):
            with contextlib.suppress(OSError):  # one being removed right now
                places.add(_resolved(gitdir.parent, gitdir.read_text().strip()).parent)
        present = [p for p in places if p.exists()]
        outermost = [p for p in present if not any(o in p.parents for o in present)]
        return cls(root, tuple(sorted(outermost)), common / "objects")


def _resolved(base: Path, path: str) -> Path:
    return Path(os.path.realpath(base / path))  # an absolute `path` replaces `base`


def _gitfile_target(dotgit: Path, root: Path) -> Path | None:
    """The git directory a `.git` file names (linked worktrees, submodules, --separate-git-dir)."""
    if not dotgit.is_file():
        return None
    try:
        first = dotgit.read_text(encoding="utf-8").splitlines()[0]
    except (OSError, UnicodeDecodeError, IndexError):
        return None
    if not first.startswith("gitdir:"):
        return None
    return _resolved(root, first.removeprefix("gitdir:").strip())


@dataclass(frozen=True, slots=True)
class Runner:
    sandbox: Sandbox
    agent_env: tuple[str, ...]
    gate_env: tuple[str, ...]
    memory_bytes: int | None
    max_processes: int | None
    repository: UserRepository | None = None  # the user's, kept from gates (None: not known)

    @classmethod
    def create(cls, constraints: Constraints, *, repo_root: Path | None = None) -> Runner:
        """The runner the constraints ask for; raises UserError when `required` cannot be met.

        `repo_root`: the user's repository, whose working tree gates must not see.
        """
        line = constraints.sources.get("confinement")
        sandbox = choose(
            constraints.confinement,
            where=(constraints.path if line else None, line),
        )
        return cls(
            sandbox=sandbox,
            agent_env=constraints.agent_env,
            gate_env=constraints.gate_env,
            memory_bytes=constraints.memory_limit_mb * 1024 * 1024 or None,
            max_processes=constraints.max_processes or None,
            repository=None if repo_root is None else UserRepository.find(repo_root),
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
        self,
        command: str,
        workdir: Path,
        scratch: Path,
        *,
        timeout: float,
        extra_env: Mapping[str, str] | None = None,
        outputs: Mapping[str, str] | None = None,
    ) -> ProcessResult:
        """One gate command in `workdir`: no network, no API keys; where the sandbox can, it
        writes the workdir only through a throw-away overlay (`gate_leaves_no_trace`).
        `extra_env` are the tool's own variables for it (where to write its report).
        `outputs` (path in the workdir -> file name in its TMPDIR) are files it writes in its
        workdir that the caller reads afterwards from its TMPDIR: empty when it wrote none, never
        what the tree held there."""
        home, tmp = fresh_scratch(scratch)
        env = {
            **gate_environment(os.environ, home=home, tmp=tmp, listed=self.gate_env),
            **(extra_env or {}),
        }
        jail = self._gate_jail(workdir, scratch, env)
        kept: list[tuple[str, Path]] = []
        for rel, name in (outputs or {}).items():
            (tmp / name).touch()
            kept.append((rel, tmp / name))
            if not jail.overlay or not self.sandbox.leaves_no_trace:
                (workdir / rel).unlink(missing_ok=True)  # what the tree held there is no report
        jail = replace(jail, outputs=tuple(kept))
        result = run_confined(self.sandbox, command, jail, timeout=timeout)
        if not jail.overlay or not self.sandbox.leaves_no_trace:
            for rel, target in kept:  # written in the workdir itself: taken from there
                written = workdir / rel
                if written.is_file() and not written.is_symlink():
                    os.replace(written, target)
        return result

    @property
    def gate_leaves_no_trace(self) -> bool:
        """Whether gates leave their workdir exactly as they found it."""
        return self.sandbox.leaves_no_trace

    def gate_sees(self, workdir: Path) -> Path:
        """Where a gate run in `workdir` sees it (and the paths in its output begin): at the
        user's repository path where bubblewrap shows it there."""
        if self.repository is not None and self.sandbox.bwrap is not None:
            return self.repository.root
        return workdir

    def _gate_jail(self, workdir: Path, scratch: Path, env: Mapping[str, str]) -> Jail:
        """A gate's jail: where the sandbox can, it writes its workdir only through a
        throw-away overlay; under bubblewrap it sees that tree at the user's repository path.
        Of the user's working trees and git directories it reads only the objects."""
        jail = replace(self._jail(workdir, scratch, env, network=False), overlay=True)
        user = self.repository
        if user is None:
            return jail
        return replace(jail, shown_at=user.root, unreadable=user.private, readable=(user.objects,))

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
