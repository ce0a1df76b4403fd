"""Runs on two machines at once, and runs that died half way: nothing lost, nothing done twice.

Real clones of one bare remote in tmp_path, the installed console script in real processes, a
GitHub stand-in on loopback. The remote is a path, as on a laptop; the compare-and-swap push
is also proved against a real git server (`git daemon`), as GitHub's push protocol behaves.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitops_agent.git import RefMovedError, Repo
from gitops_agent.git.remote import fetch_autonomous, push_cas
from gitops_agent.memory import join_memory, load_sessions, record_session
from gitops_agent.results import MEMORY_BRANCH, Outcome, SessionResult, TaskResult
from testing.fixtures import git, make_repo
from testing.github_api import serve
from testing.redteam import console_script, plan_text, task_block

CLAIM_REF = "refs/gitops-agent/claims/"


def project(tmp_path: Path, tasks: str, rules: str = "") -> Path:
    """A bare remote holding a project with `tasks` (the seed's default rules, plus `rules`)."""
    files = {
        "PROJECT_PLAN.md": plan_text(tasks),
        "src/app.py": "def hello():\n    return 'hello'\n",
    }
    if rules:
        files["docs/autonomous-constraints.md"] = "# Rules\n\n```yaml\n" + rules + "```\n"
    source = make_repo(tmp_path / "source", files)
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(source), str(remote))
    return remote


def clone(remote: Path, name: str) -> Path:
    path = remote.parent / name
    git(remote.parent, "clone", "-q", str(remote), str(path))
    return path


def start(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*console_script(), *args],
        cwd=repo,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[dict[str, Any], str]:
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err
    return json.loads(out), err


def run_push(repo: Path, env: dict[str, str] | None = None) -> tuple[dict[str, Any], str]:
    return finish(start(repo, "run", "--push", "--json", env=env))


def outcomes(data: dict[str, Any]) -> dict[str, str]:
    return {t["id"]: t["outcome"] for t in data["tasks"]}


def heads(remote: Path, prefix: str) -> dict[str, str]:
    listed = git(remote, "for-each-ref", "--format=%(refname) %(objectname)", prefix)
    return dict(line.split(" ", 1) for line in listed.splitlines())


def recorded_sessions(remote: Path) -> list[str]:
    index = git(remote, "show", f"{MEMORY_BRANCH}:state/sessions.tsv")
    return [line.split("\t")[1] for line in index.splitlines()]


def task_ids_on(remote: Path, branch: str) -> list[str]:
    log = git(remote, "log", "--format=%(trailers:key=Task-Id,valueonly)", f"main..{branch}")
    return [line for line in log.split() if line]


def make_claim(remote: Path, task: str, *, session: str, expires: str, host: str, pid: int) -> str:
    """A claim as another run writes one, put straight into the remote."""
    empty = _empty_tree(remote)
    message = (
        f"Claim {task}\n\nClaim-Task: {task}\nSession: {session}\nClaim-Expires: {expires}\n"
        f"Claim-Host: {host}\nClaim-Pid: {pid}\n"
    )
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_SYSTEM": os.devnull}
    env |= {"GIT_AUTHOR_NAME": "o", "GIT_AUTHOR_EMAIL": "o@x", "GIT_COMMITTER_NAME": "o"}
    env |= {"GIT_COMMITTER_EMAIL": "o@x"}
    commit = subprocess.run(
        ["git", "commit-tree", empty, "-m", message],
        cwd=remote,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    git(remote, "update-ref", f"{CLAIM_REF}{task}", commit)
    return commit


def _empty_tree(repo: Path) -> str:
    return subprocess.run(
        ["git", "hash-object", "-w", "-t", "tree", "--stdin"],
        cwd=repo,
        input="",
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


# -- two runs at once ----------------------------------------------------------------------


def test_two_clones_pushing_at_once_do_each_task_once_and_both_records_land(tmp_path) -> None:
    tasks = task_block("t1", "First", run="sleep 1; echo 'a = 1' > src/a.py") + task_block(
        "t2", "Second", run="sleep 1; echo 'b = 2' > src/b.py"
    )
    remote = project(tmp_path, tasks, rules="max_tasks_per_session: 1\n")
    left, right = clone(remote, "left"), clone(remote, "right")

    # Both start together; each task's command takes a second, so their sessions overlap.
    first, second = start(left, "run", "--push", "--json"), start(right, "run", "--push", "--json")
    (one, _), (two, _) = finish(first), finish(second)

    committed = [
        task
        for data in (one, two)
        for task, outcome in outcomes(data).items()
        if outcome == "committed"
    ]
    assert sorted(committed) == ["t1", "t2"], (one, two)  # each task once, by one run
    for data in (one, two):
        [left_out] = [t for t in data["tasks"] if t["outcome"] == "skipped"]
        why = ("claimed it until", "awaits review", "session limit")
        assert any(words in left_out["reason"] for words in why), left_out
    # Both sessions' branches are on the remote, each carrying its own task only.
    branches = heads(remote, "refs/heads/autonomous/")
    for data in (one, two):
        assert f"refs/heads/{data['branch']}" in branches
        assert task_ids_on(remote, data["branch"]) == [
            t["id"] for t in data["tasks"] if t["outcome"] == "committed"
        ]
    # Both records are in the remote's memory, and both days' entries are whole.
    assert sorted(recorded_sessions(remote)) == sorted([one["session"], two["session"]])
    day = next(
        name
        for name in git(remote, "ls-tree", "-r", "--name-only", MEMORY_BRANCH).split()
        if name.startswith("memory/")
    )
    log = git(remote, "show", f"{MEMORY_BRANCH}:{day}")
    for data in (one, two):
        assert f"Session {data['session']} started" in log
        assert f"Session {data['session']} finished" in log
    assert log.count("# Memory log") == 1
    # No claim outlives the runs that took them.
    assert heads(remote, CLAIM_REF) == {}

    # Later pushes from either clone go through (its memory copy had diverged from the remote's).
    for repo in (left, right):
        again, _ = run_push(repo)
        assert set(outcomes(again).values()) == {"skipped"}
        assert again["session"] in recorded_sessions(remote)
    assert len(recorded_sessions(remote)) == 4


def test_a_live_claim_skips_its_task_and_expired_or_dead_ones_are_taken_over(tmp_path) -> None:
    tasks = "".join(
        task_block(t, t, run=f"echo 'v = 1' > src/{t}.py") for t in ("live", "old", "dead")
    )
    remote = project(tmp_path, tasks)
    held = make_claim(
        remote, "live", session="other-1", expires="2999-01-01T00:00:00+00:00", host="far", pid=1
    )
    make_claim(
        remote, "old", session="other-2", expires="2000-01-01T00:00:00+00:00", host="far", pid=1
    )
    make_claim(  # on this machine, by a process that is gone: a killed run's
        remote,
        "dead",
        session="other-3",
        expires="2999-01-01T00:00:00+00:00",
        host=socket.gethostname(),
        pid=dead_pid(),
    )
    data, _ = run_push(clone(remote, "work"))
    assert outcomes(data) == {"live": "skipped", "old": "committed", "dead": "committed"}
    reason = next(t["reason"] for t in data["tasks"] if t["id"] == "live")
    assert reason == "Another run is on it: session other-1 claimed it until 2999-01-01 00:00 UTC."
    # Ours were given back; the live one is untouched.
    assert heads(remote, CLAIM_REF) == {f"{CLAIM_REF}live": held}


def test_a_job_that_cannot_push_skips_claimed_tasks_and_claims_none(tmp_path) -> None:
    """The workflow's agent job holds no write token: it respects a laptop's claim."""
    tasks = "".join(task_block(t, t, run=f"echo 'v = 1' > src/{t}.py") for t in ("live", "free"))
    remote = project(tmp_path, tasks)
    held = make_claim(
        remote, "live", session="laptop-1", expires="2999-01-01T00:00:00+00:00", host="far", pid=1
    )
    work = clone(remote, "work")
    data, _ = finish(start(work, "run", "--check-claims", "--json"))
    assert outcomes(data) == {"live": "skipped", "free": "committed"}
    assert "session laptop-1 claimed it" in data["tasks"][0]["reason"]
    assert heads(remote, CLAIM_REF) == {f"{CLAIM_REF}live": held}  # nothing claimed, or pushed
    assert heads(remote, "refs/heads/autonomous/") == {}


def test_without_a_remote_nothing_is_claimed_and_the_run_works(tmp_path) -> None:
    repo = make_repo(
        tmp_path / "laptop",
        {"PROJECT_PLAN.md": plan_text(task_block("t1", "One", run="echo 1 > src/x.py"))},
    )
    (repo / "src").mkdir(exist_ok=True)
    result = subprocess.run(
        [*console_script(), "run", "--json"], cwd=repo, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert git(repo, "for-each-ref", CLAIM_REF) == ""


# -- a branch pushed without its pull request ------------------------------------------------


def test_a_pull_request_github_would_not_open_is_opened_by_the_next_run(tmp_path) -> None:
    remote = project(tmp_path, task_block("t1", "Add a module", run="echo 'a = 1' > src/a.py"))
    with serve() as github:
        github.fail_creates = 1
        first, err = run_push(clone(remote, "night1"), env=github.env())
        assert outcomes(first) == {"t1": "committed"}
        assert first["pull_request"] is None
        assert f"The pull request for {first['branch']} was not opened" in err
        assert f"refs/heads/{first['branch']}" in heads(remote, "refs/heads/autonomous/")
        assert github.pulls == []

        second, err = run_push(clone(remote, "night2"), env=github.env())
        assert outcomes(second) == {"t1": "skipped"}  # it awaits review, and now it says so
        [pull] = github.pulls
        assert pull["head"]["ref"] == first["branch"] and pull["base"]["ref"] == "main"
        assert pull["title"] == "gitops-agent: 1 task (t1)"
        assert "t1" in pull["body"] and first["session"] in pull["body"]
        assert github.labels[pull["number"]] == ["gitops-agent"]
        assert second["pull_requests_repaired"] == [pull["html_url"]]
        assert f"Opened the missing pull request {pull['html_url']}" in err

        third, _ = run_push(clone(remote, "night3"), env=github.env())
        assert len(github.pulls) == 1 and third["pull_requests_repaired"] == []


# -- locks a killed process left ---------------------------------------------------------------


def test_a_stale_memory_lock_is_cleared_and_the_session_is_recorded(tmp_path) -> None:
    remote = project(tmp_path, task_block("t1", "One", run="echo 'a = 1' > src/a.py"))
    repo = clone(remote, "work")
    first, _ = run_push(repo)
    # What kill -9 while moving the memory branch leaves: its lock, and no run state at all.
    lock = repo / ".git" / "refs" / "heads" / "autonomous" / "memory.lock"
    lock.write_text("")
    data, err = run_push(repo)
    assert "Removed refs/heads/autonomous/memory.lock" in err
    assert not lock.exists()
    assert recorded_sessions(remote) == [first["session"], data["session"]]


def test_a_record_the_branch_cannot_take_waits_and_the_next_run_stores_it(tmp_path) -> None:
    repo = make_repo(
        tmp_path / "repo",
        {
            "PROJECT_PLAN.md": plan_text(task_block("t1", "One", run="echo 'a = 1' > src/a.py")),
            "src/app.py": "x = 1\n",
        },
    )
    first = subprocess.run(
        [*console_script(), "run", "--json"], cwd=repo, capture_output=True, text=True, timeout=120
    )
    assert first.returncode == 0, first.stderr
    # A writer that holds the memory branch's lock all through the next run (frozen, not dead).
    lock = repo / ".git" / "refs" / "heads" / "autonomous" / "memory.lock"
    lock.write_text("")
    process = start(repo, "run", "--json")
    while process.poll() is None:
        os.utime(lock)
        time.sleep(0.1)
    data, err = finish(process)
    assert outcomes(data) == {"t1": "skipped"}  # awaiting review: the run did its job
    pending = repo / ".git" / "gitops-agent" / "pending" / f"{data['session']}.json"
    assert pending.is_file() and "the next run stores it" in " ".join(err.split())
    lock.unlink()  # the writer is gone

    later = subprocess.run(
        [*console_script(), "run", "--json"], cwd=repo, capture_output=True, text=True, timeout=120
    )
    assert later.returncode == 0, later.stderr
    assert "an earlier run could not" in later.stderr
    assert not pending.exists()
    stored = [s.session for s in load_sessions(Repo.open(repo))]
    assert data["session"] in stored and json.loads(later.stdout)["session"] in stored


# -- the pieces: compare-and-swap pushes, fetches, joined memories -----------------------------


@pytest.fixture(params=["path", "git-daemon"])
def bare_remote(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A repository with a commit, and a bare remote (directory, URL) that has main."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    if request.param == "path":
        yield remote, str(remote)
        return
    if (
        shutil.which("git") is None
        or not Path(
            subprocess.run(["git", "--exec-path"], capture_output=True, text=True).stdout.strip(),
            "git-daemon",
        ).exists()
    ):
        pytest.skip("git daemon is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    daemon = subprocess.Popen(
        [
            "git",
            "daemon",
            "--listen=127.0.0.1",
            f"--port={port}",
            f"--base-path={tmp_path}",
            "--export-all",
            "--enable=receive-pack",
            "--reuseaddr",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield remote, f"git://127.0.0.1:{port}/remote.git"
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


def test_a_lease_push_moves_a_remote_ref_only_from_where_it_was_seen(tmp_path, bare_remote) -> None:
    remote, url = bare_remote
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    first = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "commit", "-q", "--allow-empty", "-m", "second")
    second = git(repo, "rev-parse", "HEAD").strip()
    opened = Repo.open(repo)
    ref = "refs/gitops-agent/claims/t1"

    push_cas(opened, url, ref, first, expected=None)  # created where there was none
    assert heads(remote, ref) == {ref: first}
    with pytest.raises(RefMovedError):
        push_cas(opened, url, ref, second, expected=None)  # someone created it first
    with pytest.raises(RefMovedError):
        push_cas(opened, url, ref, second, expected=second)  # it is not where we think
    push_cas(opened, url, ref, second, expected=first)  # moved from where it was seen
    assert heads(remote, ref) == {ref: second}
    with pytest.raises(RefMovedError):
        push_cas(opened, url, ref, None, expected=first)
    push_cas(opened, url, ref, None, expected=second)  # deleted from where it was seen
    assert heads(remote, ref) == {}
    assert git(remote, "fsck", "--no-dangling").strip() == ""


def test_a_fetch_brings_no_tag_and_leaves_fetch_head_alone(tmp_path) -> None:
    source = make_repo(tmp_path / "source", {"a.txt": "a\n"})
    git(source, "tag", "v1.0")
    git(source, "branch", "autonomous/s1")
    repo = make_repo(tmp_path / "repo", {"b.txt": "b\n"})
    git(repo, "remote", "add", "origin", str(source))
    (repo / ".git" / "FETCH_HEAD").write_text("the person's own\n")
    tips = fetch_autonomous(Repo.open(repo), "origin")
    assert tips == {"autonomous/s1": git(source, "rev-parse", "main").strip()}
    assert git(repo, "tag", "--list") == ""
    assert (repo / ".git" / "FETCH_HEAD").read_text() == "the person's own\n"
    (repo / ".git" / "FETCH_HEAD").unlink()
    fetch_autonomous(Repo.open(repo), "origin")
    assert not (repo / ".git" / "FETCH_HEAD").exists()


def session(name: str, started: str) -> SessionResult:
    task = TaskResult(f"task-{name}", "Do it", Outcome.SKIPPED, "The session limit was reached.")
    return SessionResult(
        session=name,
        branch=None,
        base="main",
        base_commit="0" * 40,
        started=started,
        finished=started,
        agent=None,
        tasks=(task,),
    )


def test_two_memory_copies_are_joined_keeping_every_record_and_all_of_theirs(tmp_path) -> None:
    root = make_repo(tmp_path / "repo")
    repo = Repo.open(root)
    record_session(repo, session("s-0", "2026-11-23T01:00:00+00:00"), timezone=None)
    common = repo.branch_tip(MEMORY_BRANCH)
    assert common is not None
    record_session(repo, session("s-theirs", "2026-11-23T02:00:00+00:00"), timezone=None)
    theirs = repo.branch_tip(MEMORY_BRANCH)
    assert theirs is not None
    git(root, "update-ref", f"refs/heads/{MEMORY_BRANCH}", common)
    record_session(repo, session("s-ours", "2026-11-23T02:01:00+00:00"), timezone=None)
    ours = repo.branch_tip(MEMORY_BRANCH)
    assert ours is not None

    joined = join_memory(repo, ours, theirs, timezone=None)
    assert git(root, "rev-list", "--parents", "-n1", joined).split()[1:] == [theirs, ours]
    log_then = git(root, "show", f"{theirs}:memory/2026-11-23.md")
    log_now = git(root, "show", f"{joined}:memory/2026-11-23.md")
    assert log_now.startswith(log_then)  # nothing of theirs changes; ours comes after
    assert "Session s-ours started" in log_now[len(log_then) :]
    for name in ("s-0", "s-theirs", "s-ours"):
        path = f"state/sessions/{name}.json"
        source = ours if name == "s-ours" else theirs
        assert git(root, "show", f"{joined}:{path}") == git(root, "show", f"{source}:{path}")
    index = git(root, "show", f"{joined}:state/sessions.tsv")
    assert [line.split("\t")[1] for line in index.splitlines()] == ["s-0", "s-theirs", "s-ours"]
