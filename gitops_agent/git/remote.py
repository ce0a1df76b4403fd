"""Our branches on a remote: push them, see what awaits review there, carry them in bundles.

pygit2 pushes and fetches. The git CLI is used for bundles only, here and nowhere else: libgit2
can neither write nor read git's bundle format, and `git fetch` from a bundle with
`transfer.fsckObjects` checks every object it brings in before any ref points at it.
"""

from __future__ import annotations

import enum
import os
import shutil
import subprocess
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pygit2
from pygit2.enums import CredentialType, FetchPrune, FileMode, ReferenceType

from gitops_agent.change import Change
from gitops_agent.errors import RefMovedError, UserError
from gitops_agent.files import write_atomic
from gitops_agent.results import BRANCH_PREFIX

from .repo import OWN_PREFIX, TOOL_REF_PREFIX, CommitInfo, Repo
from .workspace import file_changes

TOKEN_VARIABLES = ("GITHUB_TOKEN", "GH_TOKEN")
TOKEN_USER = "x-access-token"  # what GitHub expects as the user name beside a token
INCOMING_PREFIX = f"{TOOL_REF_PREFIX}incoming/"  # where a bundle's refs wait while it is checked
GIT_TIMEOUT = 300.0  # seconds for one git CLI call on a bundle


class BranchUpdate(enum.StrEnum):
    """What bringing one of our branches up to another's tip did. `adopt_remote_branch` gives
    the first five; joining two memories (`memory`) and taking an artifact in (`verify`) add
    theirs. The values are what `verify` prints and its JSON gives as `how`."""

    ABSENT = "absent"  # there is nothing to bring: no such remote branch
    CREATED = "created"
    FAST_FORWARDED = "fast-forwarded"
    KEPT = "kept"  # ours already has it all
    DIVERGED = "diverged"  # both moved; ours left as it was
    JOINED = "joined"  # both moved; a merge of the two now holds everything
    ALREADY_HERE = "already here"  # ours was already at that tip


DEFAULT_REMOTE = "origin"


@dataclass(frozen=True, slots=True)
class IncomingCommit:
    """One commit a remote or bundle brought, with what it changed against its first parent."""

    info: CommitInfo
    change: Change  # against the first parent (against an empty tree for a root commit)
    paths: Mapping[str, int]  # every file of its tree -> mode, for rules that need the whole tree


def token_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """The token for pushes and API calls: GITHUB_TOKEN, else GH_TOKEN (as `gh` reads them)."""
    env = os.environ if env is None else env
    return next((env[name] for name in TOKEN_VARIABLES if env.get(name)), None)


class _Callbacks(pygit2.RemoteCallbacks):
    """Token credentials for https, and the refs a push was refused for."""

    def __init__(self, token: str | None) -> None:
        super().__init__()
        self._token = token
        self._asked = 0
        self.refused: dict[str, str] = {}

    def credentials(
        self, url: str, username_from_url: str | None, allowed_types: CredentialType
    ) -> pygit2.UserPass:
        self._asked += 1
        if self._token is None:
            raise UserError(
                f"{url} asks for credentials: set GITHUB_TOKEN (or GH_TOKEN) to a token that "
                "may push"
            )
        if self._asked > 1 or not allowed_types & CredentialType.USERPASS_PLAINTEXT:
            # libgit2 asks again after a refusal; answering the same forever would loop.
            raise UserError(f"{url} refused the token in GITHUB_TOKEN/GH_TOKEN")
        return pygit2.UserPass(TOKEN_USER, self._token)

    def push_update_reference(self, refname: str, message: str | None) -> None:
        if message is not None:
            self.refused[refname] = message


def push(
    repo: Repo, remote: str, branches: Sequence[str], *, token: str | None = None
) -> list[str]:
    """Push our `branches` to `remote` (a remote's name, a URL or a path); never forced.

    A branch the remote has moved elsewhere is refused rather than overwritten. The token comes
    from the environment unless given; a local path needs none. Returns the refs pushed.
    """
    specs = []
    for branch in branches:
        refname = repo.own_branch_ref(branch)
        if repo.branch_tip(branch) is None:
            raise UserError(f"branch {branch} does not exist; nothing was pushed", str(repo.root))
        specs.append(f"{refname}:{refname}")
    if not specs:
        return []
    callbacks = _Callbacks(token if token is not None else token_from_env())
    handle = _remote(repo, remote)
    try:
        handle.push(specs, callbacks=callbacks)
    except pygit2.GitError as err:
        raise UserError(f"push to {_show_url(handle)} failed: {err}", str(repo.root)) from err
    if callbacks.refused:
        refused = "; ".join(f"{ref}: {why}" for ref, why in sorted(callbacks.refused.items()))
        raise UserError(f"{_show_url(handle)} refused the push ({refused})", str(repo.root))
    return [spec.split(":", 1)[0] for spec in specs]


def fetch_autonomous(
    repo: Repo, remote: str = DEFAULT_REMOTE, *, token: str | None = None
) -> dict[str, str]:
    """Update the remote's autonomous branches here as `git fetch --prune` would; nothing else.
    Returns them (`autonomous/x` -> tip), sorted.

    They go to `refs/remotes/<remote>/autonomous/` for a configured remote, and to
    `refs/gitops-agent/fetched/autonomous/` for a path or URL. Pruning matters: a branch deleted
    after its pull request was merged no longer awaits review.
    """
    prefix = tracking_prefix(repo, remote)
    fetch_refs(repo, remote, [f"+{OWN_PREFIX}*:{prefix}*"], token=token)
    return _tips_under(repo, prefix)


def tracking_prefix(repo: Repo, remote: str) -> str:
    """Where the autonomous branches of `remote` (a name, path or URL) are kept once fetched."""
    if remote in repo.raw.remotes.names():
        return f"refs/remotes/{remote}/{BRANCH_PREFIX}"
    return f"{TOOL_REF_PREFIX}fetched/{BRANCH_PREFIX}"


def fetch_refs(repo: Repo, remote: str, specs: Sequence[str], *, token: str | None = None) -> None:
    """Fetch `specs` (`+refs/x/*:refs/y/*`, destinations in our namespaces) from the configured
    `remote`, pruning what it no longer has. Nothing else of the repository changes.

    Two libgit2 habits are kept out: a named remote also brings the tags that point into what it
    fetched (refs/tags/ is the person's), so the fetch goes through an anonymous remote with the
    same URL; and every fetch rewrites FETCH_HEAD, so the person's FETCH_HEAD is put back.
    """
    url = _fetch_url(repo, remote)
    callbacks = _Callbacks(token if token is not None else token_from_env())
    handle = repo.raw.remotes.create_anonymous(url)
    fetch_head = repo.git_dir / "FETCH_HEAD"
    before = fetch_head.read_bytes() if fetch_head.is_file() else None
    try:
        handle.fetch(list(specs), callbacks=callbacks, prune=FetchPrune.PRUNE)
    except pygit2.GitError as err:
        raise UserError(f"fetch from {remote} failed: {err}", str(repo.root)) from err
    finally:
        _restore_fetch_head(fetch_head, before, url)


def remote_branches(repo: Repo, remote: str = DEFAULT_REMOTE) -> dict[str, str]:
    """The remote's autonomous branches as last fetched (`autonomous/x` -> tip), sorted."""
    return _tips_under(repo, f"refs/remotes/{remote}/{BRANCH_PREFIX}")


def _tips_under(repo: Repo, prefix: str) -> dict[str, str]:
    tips: dict[str, str] = {}
    for refname in repo.raw.references:
        if refname.startswith(prefix):
            ref = repo.raw.references[refname]
            if ref.type == ReferenceType.DIRECT:
                tips[f"{BRANCH_PREFIX}{refname.removeprefix(prefix)}"] = str(ref.target)
    return dict(sorted(tips.items()))


def adopt_remote_branch(repo: Repo, remote: str, branch: str) -> BranchUpdate:
    """Bring our local `branch` up to the remote's, for a fresh clone that only has `origin/...`.

    Returns what happened: ABSENT, CREATED, FAST_FORWARDED, KEPT or DIVERGED (left as it was).
    """
    repo.own_branch_ref(branch)
    remote_ref = repo.raw.references.get(f"refs/remotes/{remote}/{branch}")
    if remote_ref is None:
        return BranchUpdate.ABSENT
    theirs = str(remote_ref.peel(pygit2.Commit).id)
    ours = repo.branch_tip(branch)
    if ours is None:
        repo.create_branch(branch, theirs)
        return BranchUpdate.CREATED
    if repo.is_merged(theirs, ours):
        return BranchUpdate.KEPT
    if not repo.is_merged(ours, theirs):
        return BranchUpdate.DIVERGED
    move_branch(repo, branch, theirs, expected=ours)
    return BranchUpdate.FAST_FORWARDED


def move_branch(repo: Repo, branch: str, target: str, *, expected: str) -> None:
    """Point our `branch` at `target` only if it still points at `expected` (compare-and-swap)."""
    refname = repo.own_branch_ref(branch)
    if repo.is_checked_out(refname):
        raise UserError(f"{refname} is checked out; refusing to move it", str(repo.root))
    ref = repo.raw.references.get(refname)
    if ref is None or str(repo.direct_target(ref)) != expected:
        raise RefMovedError(f"branch {branch} is no longer at {expected}; left as it is")
    oid = repo.lookup_commit(target).id
    try:
        ref.set_target(oid, f"gitops-agent: {branch} moved to {str(oid)[:12]}")
    except (pygit2.GitError, OSError) as err:  # OSError: its lock file is there
        raise RefMovedError(f"{refname} changed while moving it; left as it is") from err


def push_cas(
    repo: Repo,
    remote: str,
    refname: str,
    new: str | None,
    *,
    expected: str | None,
    token: str | None = None,
) -> None:
    """Set `refname` on `remote` to the commit `new` (None deletes it), only if it is still at
    `expected` (None: only if it does not exist): a push with `--force-with-lease` semantics.

    Raises RefMovedError when the remote's ref is elsewhere; the caller reads it again and
    decides. Over the network the server checks the old value under its ref lock (the push
    protocol sends it); libgit2's local transport does not, so a remote on this machine is
    updated here, with libgit2's own compare-and-swap on that repository's ref.
    """
    if not refname.startswith((OWN_PREFIX, TOOL_REF_PREFIX)):
        raise ValueError(f"not one of our refs: {refname!r}")
    if new is None and expected is None:
        return
    handle = _remote(repo, remote)
    local = _local_repository(repo, handle.push_url or handle.url or "")
    if local is not None:
        _swap_local(repo, local, refname, new, expected)
        return
    callbacks = _Lease(token if token is not None else token_from_env(), refname, expected)
    spec = f"+{new}:{refname}" if new is not None else f":{refname}"
    try:
        handle.push([spec], callbacks=callbacks)
    except pygit2.GitError as err:
        raise UserError(f"push to {_show_url(handle)} failed: {err}", str(repo.root)) from err
    why = callbacks.refused.get(refname)
    if why is not None:
        if any(word in why for word in _MOVED_WORDS):
            raise RefMovedError(f"{refname} moved on {_show_url(handle)} ({why})")
        raise UserError(f"{_show_url(handle)} refused {refname} ({why})", str(repo.root))


def record_commit(repo: Repo, message: str, trailers: Mapping[str, str]) -> str:
    """A commit of the empty tree, with no parent and on no ref: a small record to push (a
    claim), whose `trailers` say what it records."""
    return str(repo.write_commit(repo.raw.TreeBuilder().write(), [], message, trailers))


# -- bundles (git CLI) ---------------------------------------------------------------------


def create_bundle(repo: Repo, path: Path, branches: Sequence[str]) -> list[str]:
    """Write our `branches` to a git bundle at `path`, leaving out what the remotes already have.

    A branch with nothing new is left out; when none has anything new, no file is written.
    Returns the branches the bundle carries.
    """
    known = [
        ref.peel(pygit2.Commit).id
        for name in repo.raw.references
        if name.startswith("refs/remotes/")
        and (ref := repo.raw.references[name]).type == ReferenceType.DIRECT
    ]
    carried = []
    for branch in branches:
        repo.own_branch_ref(branch)
        tip = repo.branch_tip(branch)
        if tip is None:
            raise UserError(f"branch {branch} does not exist", str(repo.root))
        oid = pygit2.Oid(hex=tip)
        if not any(k == oid or repo.raw.descendant_of(k, oid) for k in known):
            carried.append(branch)
    if not carried:
        return []
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    refs = [f"refs/heads/{b}" for b in carried]
    _git(repo.root, "bundle", "create", "--quiet", str(partial), *refs, "--not", "--remotes")
    os.replace(partial, path)
    return carried


def bundle_heads(repo: Repo, path: Path) -> dict[str, str]:
    """The refs a bundle carries (refname -> id), once git confirmed this repository has every
    commit it builds on; a bundle that needs more is a UserError."""
    if not path.is_file():
        raise UserError("no such bundle", str(path))
    verified = _git(repo.root, "bundle", "verify", "--quiet", str(path), check=False)
    if verified.returncode != 0:
        detail = verified.stderr.strip().splitlines()
        raise UserError(
            "not a bundle this repository can read"
            + (f": {detail[-1]}" if detail else "")
            + " (is the base branch fetched in full? use fetch-depth: 0)",
            str(path),
        )
    heads: dict[str, str] = {}
    for line in _git(repo.root, "bundle", "list-heads", str(path)).stdout.splitlines():
        oid, _, refname = line.partition(" ")
        if refname in heads and heads[refname] != oid:
            raise UserError(f"the bundle names {refname} twice", str(path))
        heads[refname] = oid
    return heads


def fetch_bundle(repo: Repo, path: Path, heads: Mapping[str, str]) -> None:
    """Bring the objects of a bundle's `heads` into the repository, every object checked (fsck).

    No ref is left behind: the ones a fetch needs are made under refs/gitops-agent/incoming/ and
    deleted at once. Objects nothing points to are git's to collect later.
    """
    specs = [f"{ref}:{INCOMING_PREFIX}{n}" for n, ref in enumerate(sorted(heads))]
    try:
        result = _git(
            repo.root,
            *("-c", "transfer.fsckObjects=true", "-c", "core.hooksPath=/dev/null"),
            *("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-auto-gc"),
            *("--no-recurse-submodules", "--no-show-forced-updates", str(path.resolve())),
            *specs,
            check=False,
        )
        if result.returncode != 0:
            detail = result.stderr.strip().splitlines()
            raise UserError(
                "the bundle's objects were refused" + (f": {detail[-1]}" if detail else ""),
                str(path),
            )
    finally:
        for name in list(repo.raw.references):
            if name.startswith(INCOMING_PREFIX):
                repo.raw.references.delete(name)
    for refname, oid in heads.items():
        if pygit2.Oid(hex=oid) not in repo.raw.odb:
            raise UserError(f"the bundle lacks the commit {refname} points to", str(path))


def incoming_commits(repo: Repo, tip: str, known: Sequence[str]) -> list[IncomingCommit]:
    """Commits reachable from `tip` but from none of the `known` commits, oldest first."""
    raw = repo.raw
    infos = repo.commits_between(tip, known)
    result = []
    for info in reversed(infos):
        commit = raw[info.id].peel(pygit2.Commit)
        old = commit.parents[0].tree if commit.parents else raw[raw.TreeBuilder().write()]
        new = commit.tree
        change = Change(
            base=info.parents[0] if info.parents else "",
            tree=str(new.id),
            files=file_changes(raw, old.peel(pygit2.Tree), new),
        )
        result.append(IncomingCommit(info, change, _tree_paths(new)))
    return result


def merge_is_clean_of(repo: Repo, commit: str) -> bool:
    """Whether a two-parent commit's tree is exactly what merging its parents gives: a merge
    that adds nothing of its own."""
    raw = repo.raw
    found = raw[commit].peel(pygit2.Commit)
    if len(found.parents) != 2:
        return False
    index = raw.merge_commits(found.parents[0], found.parents[1])
    if index.conflicts is not None:
        return False
    return index.write_tree(raw) == found.tree_id


# -- internals -------------------------------------------------------------------------------

# What a server says when a ref was not where the push found it (the push was a lease).
_MOVED_WORDS = ("failed to update ref", "cannot lock ref", "stale info", "fetch first")
_ZERO = pygit2.Oid(hex="0" * 40)


class _Lease(_Callbacks):
    """Refuses the push, before anything is sent, unless the remote's ref is where we expect."""

    def __init__(self, token: str | None, refname: str, expected: str | None) -> None:
        super().__init__(token)
        self._refname = refname
        self._expected = expected

    def push_negotiation(self, updates: list[pygit2.remotes.PushUpdate]) -> None:
        for update in updates:
            if update.dst_refname != self._refname:
                continue
            found = None if update.src == _ZERO else str(update.src)
            if found != self._expected:
                raise RefMovedError(
                    f"{self._refname} on the remote is at {found or 'nothing'}, "
                    f"not {self._expected or 'nothing'}"
                )


def _local_repository(repo: Repo, url: str) -> Path | None:
    """The directory of a remote on this machine (a path or file:// URL); None for a server."""
    if url.startswith("file://"):
        return Path(urllib.parse.unquote(url.removeprefix("file://")))
    if not url or "://" in url or ":" in url.split("/", 1)[0]:  # scheme, or scp-like host:path
        return None
    path = Path(url)
    return path if path.is_absolute() else repo.root / path


def _swap_local(
    repo: Repo, path: Path, refname: str, new: str | None, expected: str | None
) -> None:
    try:
        theirs = pygit2.Repository(str(path))
    except pygit2.GitError as err:
        raise UserError(f"cannot open the remote repository: {err}", str(path)) from err
    if new is not None:
        _copy_objects(repo.raw, theirs, pygit2.Oid(hex=new))
    ref = theirs.references.get(refname)
    found = None if ref is None else str(ref.target)
    if found != expected:
        raise RefMovedError(f"{refname} on {path} is at {found or 'nothing'}, not {expected}")
    log = f"gitops-agent: push {refname}"
    try:
        if new is None:
            assert ref is not None
            ref.delete()  # libgit2 checks, under the ref's lock, that it is still at `expected`
        elif ref is None:
            theirs.create_reference(refname, pygit2.Oid(hex=new), False, log)
        else:
            ref.set_target(pygit2.Oid(hex=new), log)  # the same check, then the move
    except (pygit2.GitError, OSError, ValueError) as err:  # OSError: its lock file is there
        raise RefMovedError(f"{refname} on {path} changed while it was pushed") from err


def _copy_objects(source: pygit2.Repository, target: pygit2.Repository, tip: pygit2.Oid) -> None:
    """Write into `target` every object reachable from `tip` that it lacks, each one only after
    all it points to, so that an interrupted copy never leaves an object whose parts are missing.
    """
    done: set[pygit2.Oid] = set()
    stack: list[tuple[pygit2.Oid, bool]] = [(tip, False)]
    while stack:
        oid, expanded = stack.pop()
        if oid in done or oid in target.odb:
            continue
        if expanded:
            kind, data = source.odb.read(oid)
            target.odb.write(kind, data)
            done.add(oid)
            continue
        stack.append((oid, True))
        obj = source[oid]
        if isinstance(obj, pygit2.Commit):
            children = [obj.tree_id, *obj.parent_ids]
        elif isinstance(obj, pygit2.Tree):
            children = [entry.id for entry in obj if entry.filemode != FileMode.COMMIT]
        elif isinstance(obj, pygit2.Tag):
            children = [obj.target]
        else:
            children = []
        stack.extend((child, False) for child in children)


def _restore_fetch_head(path: Path, before: bytes | None, url: str) -> None:
    """Put back the FETCH_HEAD a fetch of ours replaced, unless a person's own fetch wrote it
    meanwhile: libgit2 writes lines that name the URL fetched from, `... of <url>`."""
    try:
        now = path.read_bytes()
    except FileNotFoundError:
        return
    ours = all(line.endswith(f" of {url}".encode()) for line in now.splitlines())
    if now == before or not ours:
        return
    if before is None:
        path.unlink(missing_ok=True)
    else:
        write_atomic(path, before, fsync=False)


def _fetch_url(repo: Repo, remote: str) -> str:
    """The URL to fetch from: a configured remote's, or the path or URL given."""
    if remote in repo.raw.remotes.names():
        url = repo.raw.remotes[remote].url
        if not url:
            raise UserError(f"the remote {remote!r} has no URL", str(repo.root))
    elif "://" in remote or remote.startswith("git@"):
        url = remote
    elif Path(remote).exists():
        url = str(Path(remote).resolve())
    else:
        raise UserError("no such remote: neither a remote's name nor a path", remote)
    local = _local_repository(repo, url)
    return str(local) if local is not None else url


def remote_url(repo: Repo, remote: str) -> str | None:
    """The URL of a configured remote (its push URL when set), or None when there is none."""
    if remote not in repo.raw.remotes.names():
        return None
    handle = repo.raw.remotes[remote]
    url = handle.push_url or handle.url
    return None if url is None else str(url)


def _remote(repo: Repo, remote: str) -> pygit2.Remote:
    if remote in repo.raw.remotes.names():
        return repo.raw.remotes[remote]
    if "://" not in remote and not remote.startswith("git@"):
        path = Path(remote)
        if not path.exists():
            raise UserError("no such remote: neither a remote's name nor a path", remote)
        remote = str(path.resolve())
    return repo.raw.remotes.create_anonymous(remote)


def _show_url(remote: pygit2.Remote) -> str:
    url = remote.push_url or remote.url or "the remote"
    # A URL may carry a token (https://x:TOKEN@host/...): show only the host and path.
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        url = f"{scheme}://{rest.split('@', 1)[1]}"
    return url


def _tree_paths(tree: pygit2.Tree, prefix: str = "") -> dict[str, int]:
    paths: dict[str, int] = {}
    for entry in tree:
        path = f"{prefix}{entry.name}"
        if entry.filemode == FileMode.TREE:
            paths.update(_tree_paths(entry.peel(pygit2.Tree), f"{path}/"))
        else:
            paths[path] = int(entry.filemode)
    return paths


def _git(
    cwd: Path, *args: str, check: bool = True, timeout: float = GIT_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    git = shutil.which("git")
    if git is None:
        raise UserError("the git command is needed to read and write bundles; install git")
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        result = subprocess.run(
            [git, *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as err:
        raise UserError(f"git {args[0]} took over {timeout:.0f} s; stopped", str(cwd)) from err
    if check and result.returncode != 0:
        raise UserError(f"git {' '.join(args[:2])} failed: {result.stderr.strip()}", str(cwd))
    return result


CHECKPOINT_TAGS = "refs/tags/checkpoint/"


def push_checkpoints(repo: Repo, remote: str, *, token: str | None = None) -> list[str]:
    """Push every local `checkpoint/*` tag the remote lacks; never one it has (a tag is never
    moved, here or there). Returns the refs pushed."""
    mine = {
        refname: str(repo.raw.references[refname].peel(pygit2.Commit).id)
        for refname in repo.raw.references
        if refname.startswith(CHECKPOINT_TAGS)
    }
    if not mine:
        return []
    callbacks = _Callbacks(token if token is not None else token_from_env())
    handle = _remote(repo, remote)
    try:
        theirs = {head.name for head in handle.list_heads(callbacks)}
        wanted = sorted(ref for ref in mine if ref not in theirs)
        if wanted:
            handle.push([f"{ref}:{ref}" for ref in wanted], callbacks=callbacks)
    except pygit2.GitError as err:
        raise UserError(f"pushing checkpoint tags to {_show_url(handle)} failed: {err}") from err
    refused = {ref: why for ref, why in callbacks.refused.items() if ref in wanted}
    return [ref for ref in wanted if ref not in refused]
