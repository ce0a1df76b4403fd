"""The workflow's artifacts in miniature, honest and forged, for the tests of `verify`.

A `Scene` is what the scheduled workflow has at the moment the publisher job runs: a bare
`origin` holding main and a memory branch, the agent job's clone in which a real
`gitops-agent run --json` and `gitops-agent bundle` ran, and the publisher's fresh clone.
Forgeries are made in the job's clone with the git CLI, as an agent that took over the job
would make them: `git commit-tree` under any identity and date, and trees written byte by byte
(`git hash-object -t tree --literally`) where `git mktree` would refuse them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from testing.redteam import console_script, git_run, plan_text, task_block

TOOL = ("gitops-agent", "gitops-agent@localhost")
PLAN = "PROJECT_PLAN.md"
TOKEN = "ghs_verifytests000000000000000000000000"
REPOSITORY = "o/r"
_CLI = console_script()


def git_bytes(
    cwd: Path, *args: str, input: bytes | None = None, env: Mapping[str, str] | None = None
) -> bytes:
    """Run the git CLI without anyone's configuration; its stdout, or an AssertionError."""
    done = git_run(cwd, *args, input=input, env=env)
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {done.stderr.decode(errors='replace')}")
    return done.stdout


def git(
    cwd: Path, *args: str, input: bytes | None = None, env: Mapping[str, str] | None = None
) -> str:
    return git_bytes(cwd, *args, input=input, env=env).decode("utf-8", "replace").strip()


def tool(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed `gitops-agent`, as a job runs it."""
    return subprocess.run(
        [*_CLI, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )


# -- objects, made as an attacker makes them -------------------------------------------------


def blob(repo: Path, data: bytes) -> str:
    return git(repo, "hash-object", "-w", "--stdin", input=data)


def raw_tree(repo: Path, entries: list[tuple[str, bytes, str]]) -> str:
    """A tree of exactly these (mode, name, id) entries in this order, however odd."""
    data = b"".join(
        mode.encode() + b" " + name + b"\0" + bytes.fromhex(oid) for mode, name, oid in entries
    )
    return git(repo, "hash-object", "-t", "tree", "--literally", "-w", "--stdin", input=data)


def tree_entries(repo: Path, tree: str) -> list[tuple[str, bytes, str]]:
    """The (mode, name, id) entries of a tree, as `raw_tree` takes them."""
    data = git_bytes(repo, "cat-file", "tree", tree)
    entries, at = [], 0
    while at < len(data):
        space, end = data.index(b" ", at), data.index(b"\0", at)
        entries.append(
            (data[at:space].decode(), data[space + 1 : end], data[end + 1 : end + 21].hex())
        )
        at = end + 21
    return entries


def edit_tree(repo: Path, tree: str, files: Mapping[str, bytes | tuple[str, str] | None]) -> str:
    """`tree` with `files` written (bytes, or a (mode, id) entry) or removed (None), through a
    throw-away index: for changes git itself accepts."""
    index = repo / ".git" / "forge-index"
    env = {"GIT_INDEX_FILE": str(index)}
    try:
        git(repo, "read-tree", tree, env=env)
        for path, content in files.items():
            if content is None:
                git(repo, "update-index", "--force-remove", "--", path, env=env)
                continue
            mode, oid = content if isinstance(content, tuple) else ("100644", blob(repo, content))
            git(repo, "update-index", "--add", "--cacheinfo", f"{mode},{oid},{path}", env=env)
        return git(repo, "write-tree", "--missing-ok", env=env)
    finally:
        index.unlink(missing_ok=True)


def commit(
    repo: Path,
    tree: str,
    parents: list[str],
    message: str,
    *,
    author: tuple[str, str] = TOOL,
    committer: tuple[str, str] | None = None,
    date: str | None = None,
) -> str:
    """A commit as anyone can make one: any identity, any date (e.g. "2099-01-01T00:00:00Z")."""
    committer = committer or author
    env = {
        "GIT_AUTHOR_NAME": author[0],
        "GIT_AUTHOR_EMAIL": author[1],
        "GIT_COMMITTER_NAME": committer[0],
        "GIT_COMMITTER_EMAIL": committer[1],
    }
    if date is not None:
        env |= {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    args = [arg for parent in parents for arg in ("-p", parent)]
    return git(repo, "commit-tree", tree, *args, input=message.encode(), env=env)


def raw_commit(repo: Path, text: bytes) -> str:
    """A commit object of exactly these bytes (headers git would not write included)."""
    return git(repo, "hash-object", "-t", "commit", "--literally", "-w", "--stdin", input=text)


def message(title: str, trailers: list[tuple[str, str]], body: str = "") -> str:
    """A commit message laid out as the tool writes one: title, body, trailers."""
    parts = [title, *([body] if body else []), "\n".join(f"{k}: {v}" for k, v in trailers)]
    return "\n\n".join(parts) + "\n"


# -- the scene --------------------------------------------------------------------------------


TASKS = (
    task_block("t1", "Add a", run="printf 'A = 1\\n' > src/a.py", lines=10)
    + task_block("t2", "Add b", run="printf 'B = 2\\n' > src/b.py", lines=10)
    + task_block("t3", "Add c", run="printf 'C = 3\\n' > src/c.py", lines=10)
    + task_block("t4", "Keep the app as it is", run="true", lines=10)
)
PENDING = "\n### Pending Approval ⏳\n\n" + task_block("t9", "Needs a person first", lines=10)
# Two tasks a session (so that three is one too many); small files, to show the size rule.
RULES = "# Rules\n\n```yaml\nmax_tasks_per_session: 2\nmax_file_bytes: 4000\n```\n"


@dataclass(frozen=True, slots=True)
class Scene:
    origin: Path
    job: Path  # the agent job's clone: its run, its bundle, and every forgery
    publisher: Path  # a fresh clone of origin, where `verify` runs
    artifact: Path  # the honest artifact
    result: dict[str, Any]  # the run's JSON

    @property
    def branch(self) -> str:
        return str(self.result["branch"])

    @property
    def session(self) -> str:
        return str(self.result["session"])

    def tip(self, repo: Path, ref: str) -> str:
        return git(repo, "rev-parse", "--verify", "-q", ref)

    def show(self, rev: str, path: str = PLAN) -> str:
        return git_bytes(self.job, "show", f"{rev}:{path}").decode()

    def refs(self, repo: Path) -> dict[str, str]:
        listed = git(repo, "for-each-ref", "--format=%(refname) %(objectname)")
        return dict(tuple(line.split(" ", 1)) for line in listed.splitlines())

    def verify(
        self, *artifacts: Path, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`gitops-agent verify` in the publisher's clone, without GitHub unless `env` says."""
        quiet = {"GITHUB_TOKEN": "", "GH_TOKEN": "", "GITHUB_REPOSITORY": ""}
        return tool(
            "verify", *map(str, artifacts), cwd=self.publisher, env={**quiet, **(env or {})}
        )

    def pack(
        self,
        out: Path,
        branches: Mapping[str, str],
        *,
        result: Mapping[str, Any] | None = None,
        memory: str | None = "job",
    ) -> Path:
        """An artifact directory as `bundle` writes one: these branches (name -> commit), the
        job's memory branch unless `memory` names another commit (or None: no memory), and
        `result` as result.json (by default one that names the single result branch)."""
        heads = dict(branches)
        if memory == "job":
            heads["autonomous/memory"] = self.tip(self.job, "refs/heads/autonomous/memory")
        elif memory is not None:
            heads["autonomous/memory"] = memory
        for name, target in heads.items():
            git(self.job, "update-ref", f"refs/heads/{name}", target)
        out.mkdir(parents=True)
        refs = [f"refs/heads/{name}" for name in heads]
        git(
            self.job,
            "bundle",
            "create",
            "-q",
            str(out / "result.bundle"),
            *refs,
            "--not",
            "--remotes",
        )
        work = [name for name in branches if name != "autonomous/memory"]
        if result is None:
            result = {"branch": work[0] if len(work) == 1 else None}
        (out / "result.json").write_text(json.dumps(result), encoding="utf-8")
        return out


def handmade_bundle(
    repo: Path, out: Path, branch: str, tip: str, objects: list[str], prerequisite: str
) -> Path:
    """An artifact whose bundle is written byte by byte: `git bundle create` walks the trees it
    packs and refuses some of them; an attacker needs no such tool. The pack holds exactly
    `objects`; the receiver must have `prerequisite`."""
    pack = git_bytes(
        repo, "pack-objects", "--stdout", input="".join(f"{o}\n" for o in objects).encode()
    )
    head = f"# v2 git bundle\n-{prerequisite} base\n{tip} refs/heads/{branch}\n\n".encode()
    out.mkdir(parents=True)
    (out / "result.bundle").write_bytes(head + pack)
    (out / "result.json").write_text(json.dumps({"branch": branch}), encoding="utf-8")
    return out


def build_scene(root: Path) -> Scene:
    """origin with main and a memory branch; the job's honest session (t1 and t2 committed, t3
    and t4 left for the session limit), bundled; the publisher's fresh clone."""
    seed = root / "seed"
    seed.mkdir(parents=True)
    files = {
        PLAN: plan_text(TASKS + PENDING),
        "docs/autonomous-constraints.md": RULES,
        "src/app.py": "def hello():\n    return 'hello'\n",
        "tests/test_app.py": "from app import hello\n\n\ndef test_hello():\n    assert hello()\n",
        "README.md": "readme\n",
    }
    for name, text in files.items():
        (seed / name).parent.mkdir(parents=True, exist_ok=True)
        (seed / name).write_text(text, encoding="utf-8")
    git(seed, "init", "-q", "-b", "main")
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "initial")
    origin = root / "origin.git"
    git(root, "init", "-q", "--bare", "-b", "main", str(origin))
    git(seed, "remote", "add", "origin", str(origin))
    git(seed, "push", "-q", "origin", "main")
    # An earlier session that ran nothing, so that origin has a memory to continue.
    earlier = tool("run", "--json", "--task", "t9", cwd=seed)
    assert earlier.returncode == 0, earlier.stderr
    git(seed, "push", "-q", "origin", "autonomous/memory")
    job = root / "job"
    git(root, "clone", "-q", str(origin), str(job))
    ran = tool("run", "--json", cwd=job)
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    outcomes = [(t["id"], t["outcome"]) for t in result["tasks"]]
    left = [("t3", "skipped"), ("t4", "skipped")]
    assert outcomes == [("t1", "committed"), ("t2", "committed"), *left], outcomes
    (root / "run.json").write_text(ran.stdout, encoding="utf-8")
    packed = tool("bundle", str(root / "run.json"), "--out", str(root / "artifact"), cwd=job)
    assert packed.returncode == 0, packed.stderr
    publisher = root / "publisher"
    git(root, "clone", "-q", str(origin), str(publisher))
    return Scene(origin, job, publisher, root / "artifact", result)


def copy_scene(scene: Scene, root: Path) -> Scene:
    """The same scene under `root`, its clones' origin pointing at the copied origin."""
    old_root = scene.origin.parent
    shutil.copytree(old_root, root, symlinks=True)
    moved = replace(
        scene,
        origin=root / scene.origin.name,
        job=root / scene.job.name,
        publisher=root / scene.publisher.name,
        artifact=root / scene.artifact.name,
    )
    for clone in (moved.job, moved.publisher):
        git(clone, "remote", "set-url", "origin", str(moved.origin))
    return moved


# -- a GitHub API that knows a few closed pull requests ----------------------------------------


@dataclass(frozen=True, slots=True)
class ClosedPull:
    number: int
    head: str
    task_ids: tuple[str, ...]
    merged: bool = False


@contextlib.contextmanager
def fake_github(pulls: list[ClosedPull]) -> Iterator[dict[str, str]]:
    """A GitHub API on 127.0.0.1 answering for `o/r` what `rejected` asks: its closed pull
    requests and their commits. Yields the environment that points the tool at it."""

    def pull_json(pull: ClosedPull) -> dict[str, Any]:
        return {
            "number": pull.number,
            "html_url": f"https://github.com/{REPOSITORY}/pull/{pull.number}",
            "title": f"gitops-agent: {', '.join(pull.task_ids)}",
            "state": "closed",
            "merged_at": "2026-01-01T00:00:00Z" if pull.merged else None,
            "head": {"ref": pull.head, "sha": "0" * 40, "repo": {"full_name": REPOSITORY}},
            "base": {"ref": "main"},
        }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            body: Any = {"message": "Not Found"}
            status = 404
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                status, body = 401, {"message": "Bad credentials"}
            elif path == f"/repos/{REPOSITORY}/pulls":
                status, body = 200, [pull_json(p) for p in pulls]
            elif found := re.fullmatch(rf"/repos/{REPOSITORY}/pulls/(\d+)/commits", path):
                pull = next((p for p in pulls if p.number == int(found[1])), None)
                if pull is not None:
                    status = 200
                    body = [
                        {"commit": {"message": f"Task\n\nTask-Id: {t}\n"}} for t in pull.task_ids
                    ]
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {
            "GITHUB_API_URL": f"http://127.0.0.1:{server.server_address[1]}",
            "GITHUB_TOKEN": TOKEN,
            "GITHUB_REPOSITORY": REPOSITORY,
        }
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
