"""Per-task results on the Actions trust path: a job's artifact carries each task's own branch,
`verify` judges each (the approval its commits claim included), `publish` opens a PR for each."""

from __future__ import annotations

import json
from pathlib import Path

from testing.artifacts import commit
from testing.fixtures import bare_remote, fresh_clone, git
from testing.github_api import serve
from testing.lifecycle import lifecycle_project
from testing.project import task_block

TASKS = task_block("t1", "One", "echo 'A = 1' > src/a.py") + task_block(
    "t2", "Two", "echo 'B = 2' > src/b.py"
)


def job(cli, tmp_path: Path, remote: Path) -> tuple[Path, dict]:
    """What the agent job does: run, then pack its result."""
    clone = fresh_clone(tmp_path, remote, "job")
    done = cli("run", "--json", cwd=clone)
    assert done.returncode == 0, done.stderr
    (tmp_path / "result.json").write_text(done.stdout)
    return clone, json.loads(done.stdout)


def pack(cli, clone: Path, tmp_path: Path) -> Path:
    out = tmp_path / "artifact"
    packed = cli("bundle", str(tmp_path / "result.json"), "--out", str(out), cwd=clone)
    assert packed.returncode == 0, packed.stderr
    return out


def test_each_tasks_own_branch_is_verified_and_gets_its_pull_request(tmp_path, cli) -> None:
    repo = lifecycle_project(tmp_path, TASKS, front="approval: per-task\n")
    remote = bare_remote(tmp_path, repo)
    clone, data = job(cli, tmp_path, remote)
    artifact = pack(cli, clone, tmp_path)
    publisher = fresh_clone(tmp_path, remote, "publisher")
    verified = cli("verify", str(artifact), "--json", cwd=publisher)
    assert verified.returncode == 0, verified.stderr
    taken = json.loads(verified.stdout)["artifacts"][0]["branches"]
    own = sorted(t["branch"] for t in data["tasks"])
    assert sorted(b["branch"] for b in taken if b["branch"] in own) == own
    with serve() as github:
        published = cli("publish", str(artifact), "--json", cwd=publisher, env=github.env())
        assert published.returncode == 0, published.stderr
        assert sorted(p["head"]["ref"] for p in github.pulls) == own
        for pull in github.pulls:
            assert "### Committed" in pull["body"]
    assert sorted(git(remote, "branch", "--list", "autonomous/*-t*").split()) == own


def test_an_auto_approval_the_base_does_not_give_is_refused(tmp_path, cli) -> None:
    repo = lifecycle_project(tmp_path, TASKS, front="approval: per-task\n")
    remote = bare_remote(tmp_path, repo)
    clone, data = job(cli, tmp_path, remote)
    # The job forges t1's commit to say auto: the tool would merge it with no person.
    t1 = data["tasks"][0]
    text = git(clone, "log", "-1", "--format=%B", t1["commit"])
    forged = commit(
        clone,
        git(clone, "rev-parse", f"{t1['commit']}^{{tree}}").strip(),
        [git(clone, "rev-parse", "main").strip()],
        text.replace("Approval: per-task", "Approval: auto"),
    )
    git(clone, "update-ref", f"refs/heads/{t1['branch']}", forged)
    data["tasks"][0]["commit"] = forged
    (tmp_path / "result.json").write_text(json.dumps(data))
    artifact = pack(cli, clone, tmp_path)
    publisher = fresh_clone(tmp_path, remote, "publisher")
    refused = cli("verify", str(artifact), cwd=publisher)
    assert refused.returncode == 2
    said = " ".join(refused.stderr.split())
    assert "says `Approval: auto`, but the base gives task `t1` approval per-task" in said
    assert "autonomous/" not in git(publisher, "branch", "--list", "autonomous/*-t1")


def test_a_task_branch_the_result_does_not_name_is_refused(tmp_path, cli) -> None:
    repo = lifecycle_project(tmp_path, TASKS, front="approval: per-task\n")
    remote = bare_remote(tmp_path, repo)
    clone, data = job(cli, tmp_path, remote)
    hidden = data["tasks"][1]["branch"]
    data["tasks"][1].pop("branch")
    (tmp_path / "result.json").write_text(json.dumps(data))
    out = tmp_path / "artifact"
    out.mkdir()
    git(
        clone,
        "bundle",
        "create",
        "-q",
        str(out / "result.bundle"),
        data["tasks"][0]["branch"],
        hidden,
        "^main",
    )
    (out / "result.json").write_text(json.dumps(data))
    publisher = fresh_clone(tmp_path, remote, "publisher")
    refused = cli("verify", str(out), cwd=publisher)
    assert refused.returncode == 2
    assert f"carries {hidden}, which result.json does not name" in " ".join(refused.stderr.split())


def test_a_job_records_no_lifecycle_event_and_may_not_forge_one(tmp_path, cli) -> None:
    repo = lifecycle_project(tmp_path, TASKS, front="approval: auto\n")
    remote = bare_remote(tmp_path, repo)
    clone = fresh_clone(tmp_path, remote, "job")
    done = cli("run", "--check-claims", "--json", cwd=clone)  # as the workflow's job runs it
    assert done.returncode == 0, done.stderr
    (tmp_path / "result.json").write_text(done.stdout)
    events = git(clone, "ls-tree", "-r", "--name-only", "autonomous/memory", "state/events")
    assert events == ""  # the quarantine starts when `merge` first sees the result
    artifact = pack(cli, clone, tmp_path)
    publisher = fresh_clone(tmp_path, remote, "publisher")
    assert cli("verify", str(artifact), cwd=publisher).returncode == 0

    # A job that plants a quarantine begun three days ago, to be merged at once, is refused.
    forged_at = "2026-11-27T00:00:00+00:00"
    event = json.dumps({"id": "x", "kind": "quarantined", "time": forged_at, "title": "x"})
    git(clone, "checkout", "-q", "autonomous/memory")
    (clone / "state" / "events").mkdir(parents=True)
    (clone / "state" / "events" / "x.json").write_text(event)
    git(clone, "add", "state/events/x.json")
    session = json.loads(done.stdout)["session"]
    identity = ("-c", "user.name=gitops-agent", "-c", "user.email=gitops-agent@localhost")
    git(clone, *identity, "commit", "-q", "-m", f"Record\n\nSession: {session}")
    git(clone, "checkout", "-q", "main")
    forged = pack(cli, clone, tmp_path)
    other = fresh_clone(tmp_path, remote, "publisher2")
    refused = cli("verify", str(forged), cwd=other)
    assert refused.returncode == 2
    assert "records lifecycle events (state/events/x.json)" in " ".join(refused.stderr.split())
