"""Where a GitHub runner installs gitops-agent from: the plan's `install:`, or this copy's origin.

Two forms, both fixed to one exact build, because the job that installs it later holds the write
token: a commit of a git repository over https (`git+https://HOST/OWNER/REPO@<40-hex commit>`),
or a release on the package index with the hash of its file (`gitops-agent==X
--hash=sha256:...`, installed with `--require-hashes`). Without `install:`, the source is how
the running copy was installed, as its `direct_url.json` records it (PEP 610).
"""

from __future__ import annotations

import enum
import json
import os
import re
import subprocess
import tempfile
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from gitops_agent.errors import PlanError, UserError

DISTRIBUTION = "gitops-agent"
DEFAULT_INDEX = "https://pypi.org/simple/"
GIT_TIMEOUT = 60  # seconds for each git command that reaches the source
INDEX_TIMEOUT = 30

_COMMIT = re.compile(r"[0-9a-f]{40}")
# A host, then a path; no user or password (the workflow file is public to everyone who can read
# the repository), no query or fragment.
_GIT_URL = re.compile(r"https://(?P<host>[A-Za-z0-9.-]+(?::[0-9]+)?)(?P<path>(?:/[^\s@?#/]+)+)")
_REQUIREMENT = re.compile(
    r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?P<op>===|==|~=|!=|<=|>=|<|>)?\s*"
    r"(?P<version>[^\s;]*)(?P<rest>.*)"
)
_VERSION = re.compile(r"[0-9][0-9A-Za-z.+!-]*")
_HASH = re.compile(r"--hash=sha256:(?P<hex>[0-9a-f]{64})")
# A wheel (`gitops_agent-0.2.0-py3-none-any.whl`) or an sdist (`gitops_agent-0.2.0.tar.gz`).
_FILE_NAME = re.compile(r"gitops[-_.]agent-(?P<version>[^-]+?)(?:-.+\.whl|\.tar\.gz|\.zip)$", re.I)
_HREF = re.compile(r"""href\s*=\s*["']([^"']+)["']""", re.IGNORECASE)

FORMS = (
    "`git+https://github.com/OWNER/REPO@<40-hex commit>` or "
    "`gitops-agent==X --hash=sha256:<hash of its file>`"
)


class SourceKind(enum.Enum):
    GIT = "git"
    INDEX = "index"


@dataclass(frozen=True, slots=True)
class InstallSource:
    """One exact build of gitops-agent a runner can install."""

    kind: SourceKind
    spec: str  # what pip is given: `git+https://...@commit` or `gitops-agent==X --hash=...`
    url: str = ""  # GIT: the repository, without `git+`
    commit: str = ""  # GIT
    version: str = ""  # INDEX
    hashes: tuple[str, ...] = ()  # INDEX: sha256 hex digests, any of which pip accepts

    @classmethod
    def create(
        cls, text: object, path: str | None = None, line: int | None = None
    ) -> InstallSource:
        """The `install:` setting, validated; a PlanError naming `path:line` otherwise."""
        if not isinstance(text, str) or not text.strip():
            raise PlanError(f"`install` must be {FORMS}", path, line)
        spec = " ".join(text.split())
        if spec.startswith("git+"):
            return cls._git(spec, path, line)
        return cls._index(spec, path, line)

    @classmethod
    def _git(cls, spec: str, path: str | None, line: int | None) -> InstallSource:
        url, at, commit = spec.removeprefix("git+").rpartition("@")
        if not spec.startswith("git+https://"):
            raise PlanError(
                "`install`: a git source must be `git+https://`: a runner reaches nothing else "
                f"without credentials ({FORMS})",
                path,
                line,
            )
        if not at or not _COMMIT.fullmatch(commit):
            raise PlanError(
                "`install`: a git source must end with `@` and the full 40-hex commit id "
                "(a branch or tag can be moved to other code)",
                path,
                line,
            )
        if not _GIT_URL.fullmatch(url):
            raise PlanError(
                "`install`: the git URL must be `https://HOST/PATH`, with no user, password, "
                "query or fragment",
                path,
                line,
            )
        return cls(SourceKind.GIT, spec, url=url, commit=commit)

    @classmethod
    def _index(cls, spec: str, path: str | None, line: int | None) -> InstallSource:
        found = _REQUIREMENT.fullmatch(spec)
        if found is None or _normalise(found["name"]) != DISTRIBUTION:
            raise PlanError(f"`install` must be {FORMS}", path, line)
        version = found["version"]
        if found["op"] != "==" or not _VERSION.fullmatch(version):
            raise PlanError(
                "`install`: pin one release with `==` (like `gitops-agent==0.2.0`): a range "
                "would install whatever is newest that night",
                path,
                line,
            )
        words = found["rest"].split()
        hashes = [m["hex"] for w in words if (m := _HASH.fullmatch(w))]
        if not words or len(hashes) != len(words):
            raise PlanError(
                "`install`: give the sha256 of the release's file after it, "
                f"`{DISTRIBUTION}=={version} --hash=sha256:<hex>` (repeat --hash for the wheel "
                "and the sdist); pip installs it with --require-hashes",
                path,
                line,
            )
        spec = f"{DISTRIBUTION}=={version} " + " ".join(f"--hash=sha256:{h}" for h in hashes)
        return cls(SourceKind.INDEX, spec, version=version, hashes=tuple(hashes))


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def running_source(plan_path: str | None = None) -> InstallSource:
    """How this copy of gitops-agent was installed, when a runner can install it the same way;
    otherwise a UserError saying to set `install:`."""
    from importlib import metadata  # here: every command reads the plan, few need this

    try:
        recorded = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        recorded = None
    return source_from_direct_url(recorded, plan_path)


def source_from_direct_url(recorded: str | None, plan_path: str | None = None) -> InstallSource:
    """The source a `direct_url.json` (PEP 610) describes: a git commit reachable over https.
    A local directory, an editable install, an archive or an index install (which records no
    hash) is a UserError: the runner could not install that same build."""
    fix = f"set `install:` in the plan's front matter to {FORMS}"
    if recorded is None:
        raise UserError(
            "this copy of gitops-agent does not record where it was installed from (a package "
            f"index, or a source tree), so the workflow cannot install the same build: {fix}",
            plan_path,
        )
    try:
        data = json.loads(recorded)
        url = str(data["url"])
    except (ValueError, KeyError, TypeError):
        raise UserError(f"this copy's direct_url.json cannot be read: {fix}", plan_path) from None
    if isinstance(data.get("dir_info"), dict):
        how = "an editable install" if data["dir_info"].get("editable") else "an install"
        where = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
        raise UserError(
            f"this copy of gitops-agent is {how} from a local directory ({where}), which a "
            f"GitHub runner cannot reach: {fix}",
            plan_path,
        )
    vcs = data.get("vcs_info")
    if isinstance(vcs, dict) and vcs.get("vcs") == "git" and not data.get("subdirectory"):
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        public = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        commit = str(vcs.get("commit_id") or "")
        if parts.scheme == "https" and _COMMIT.fullmatch(commit):
            return InstallSource.create(f"git+{public}@{commit}")
        raise UserError(
            f"this copy of gitops-agent was installed from {public}, which a GitHub runner "
            f"cannot reach without credentials: {fix}",
            plan_path,
        )
    raise UserError(
        f"this copy of gitops-agent was installed from {url}, not a git commit over https: {fix}",
        plan_path,
    )


class Reach(enum.Enum):
    OK = "ok"  # found: the runner can install it
    UNKNOWN = "unknown"  # could not be asked (offline, a timeout): nothing is known
    MISSING = "missing"  # the source answered, and it does not have this build


@dataclass(frozen=True, slots=True)
class Resolution:
    reach: Reach
    message: str  # what was checked, and what was found


def resolve(source: InstallSource, env: Mapping[str, str] | None = None) -> Resolution:
    """Whether the build `source` names can be had, asked of the source itself, anonymously (as
    the runner asks). Never raises for a network problem: that is Reach.UNKNOWN."""
    env = os.environ if env is None else env
    if source.kind is SourceKind.GIT:
        return _resolve_git(source.url, source.commit, env)
    return _resolve_index(source, env.get("PIP_INDEX_URL") or DEFAULT_INDEX)


# Git's words for "the server answered, and there is nothing there for us".
_ABSENT = (
    "not found",
    "not our ref",
    "couldn't find remote ref",
    "does not appear to be a git repository",
    "terminal prompts disabled",  # it asked for a password: private, or no such repository
    "authentication failed",
)


def _resolve_git(url: str, commit: str, env: Mapping[str, str]) -> Resolution:
    # No credential helper and no prompt: the runner has neither.
    git_env = {**env, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""}
    anonymous = ["git", "-c", "credential.helper=", "-c", "core.askPass="]
    listed = _git([*anonymous, "ls-remote", url], git_env)
    if isinstance(listed, str):
        return _unreachable(url, listed)
    if listed.returncode != 0:
        return _unreachable(url, listed.stderr)
    tips = {line.split("\t", 1)[0] for line in listed.stdout.splitlines()}
    if commit in tips:
        return Resolution(Reach.OK, f"{url} answers, and {commit[:12]} is the tip of a ref there")
    # Not a tip: fetch that one commit (GitHub serves any reachable commit by id).
    with tempfile.TemporaryDirectory(prefix="gitops-agent-source-") as tmp:
        made = _git(["git", "init", "-q", "--bare", tmp], git_env)
        if isinstance(made, str) or made.returncode != 0:
            return Resolution(Reach.UNKNOWN, f"could not make a scratch repository in {tmp}")
        fetched = _git(
            [*anonymous, "-C", tmp, "fetch", "-q", "--depth=1", "--no-tags", url, commit],
            git_env,
        )
    if isinstance(fetched, str):
        return _unreachable(url, fetched)
    if fetched.returncode == 0:
        return Resolution(Reach.OK, f"fetched commit {commit[:12]} from {url}")
    said = _last_line(fetched.stderr)
    if any(word in said.lower() for word in _ABSENT):
        return Resolution(Reach.MISSING, f"{url} answers, but has no commit {commit}: {said}")
    return Resolution(Reach.UNKNOWN, f"{url} answers; fetching {commit[:12]} failed: {said}")


def _unreachable(url: str, said: str) -> Resolution:
    said = _last_line(said)
    if any(word in said.lower() for word in _ABSENT):
        return Resolution(Reach.MISSING, f"{url} has no repository a runner can read: {said}")
    return Resolution(Reach.UNKNOWN, f"could not reach {url} from here: {said}")


def _git(args: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str] | str:
    """The finished command, or why it could not finish (a string)."""
    try:
        return subprocess.run(
            args,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return f"no answer in {GIT_TIMEOUT} s"
    except OSError as err:
        return str(err)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(git said nothing)"


def _resolve_index(source: InstallSource, index: str) -> Resolution:
    """Look the release up on a PEP 503 index page: a file of that version with that hash."""
    import urllib.error  # here: 20 ms of imports every command that reads the plan would pay
    import urllib.request

    page = index.rstrip("/") + f"/{DISTRIBUTION}/"
    request = urllib.request.Request(page, headers={"Accept": "text/html"})
    try:
        with urllib.request.urlopen(request, timeout=INDEX_TIMEOUT) as response:
            html = response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return Resolution(Reach.MISSING, f"{page}: {DISTRIBUTION} is not on that index")
        return Resolution(Reach.UNKNOWN, f"{page}: HTTP {err.code}")
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        return Resolution(Reach.UNKNOWN, f"could not reach {page}: {getattr(err, 'reason', err)}")
    files: dict[str, str] = {}  # file name -> sha256 from the link's fragment
    for href in _HREF.findall(html):
        link = urllib.parse.urlsplit(urllib.parse.unquote(href))
        name = link.path.rsplit("/", 1)[-1]
        kind, _, digest = link.fragment.partition("=")
        files[name] = digest if kind == "sha256" else ""
    of_version = {
        name: digest
        for name, digest in files.items()
        if (found := _FILE_NAME.match(name)) is not None and found["version"] == source.version
    }
    matching = [name for name, digest in of_version.items() if digest in source.hashes]
    if matching:
        return Resolution(Reach.OK, f"{matching[0]} on {page} has the pinned sha256")
    if of_version:
        return Resolution(
            Reach.MISSING,
            f"{page} has {', '.join(sorted(of_version))}, none with the pinned sha256",
        )
    return Resolution(Reach.MISSING, f"{page} has no file of {DISTRIBUTION} {source.version}")
