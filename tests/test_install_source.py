"""`install:`: the two forms a runner can install, refused otherwise, and asked of the source."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gitops_agent.errors import PlanError, UserError
from gitops_agent.install_source import (
    InstallSource,
    Reach,
    SourceKind,
    resolve,
    source_from_direct_url,
)
from gitops_agent.plan import parse_plan
from testing.fixtures import git, make_repo

COMMIT = "0123456789abcdef0123456789abcdef01234567"
SHA = "ab" * 32


def plan_with(install: str) -> str:
    return f"---\nagent: claude\ninstall: {install}\n---\n# Plan\n"


@pytest.mark.parametrize(
    "written, spec",
    [
        (f"git+https://github.com/octo-org/gitops-agent@{COMMIT}", None),
        (f"git+https://git.example.com:8443/tools/gitops-agent.git@{COMMIT}", None),
        (f"gitops-agent==0.2.0 --hash=sha256:{SHA}", None),
        (
            f"gitops_agent==0.2.0  --hash=sha256:{SHA} --hash=sha256:{'cd' * 32}",
            f"gitops-agent==0.2.0 --hash=sha256:{SHA} --hash=sha256:{'cd' * 32}",
        ),
    ],
)
def test_a_commit_over_https_or_a_hashed_release_is_taken(written: str, spec: str | None) -> None:
    source = parse_plan(plan_with(written), "PROJECT_PLAN.md").settings.install
    assert source is not None
    assert source.spec == (spec or written)
    if written.startswith("git+"):
        assert source.kind is SourceKind.GIT and source.commit == COMMIT
        assert source.url == written.removeprefix("git+").rsplit("@", 1)[0]
    else:
        assert source.kind is SourceKind.INDEX and source.version == "0.2.0"


@pytest.mark.parametrize(
    "written, said",
    [
        ("git+https://github.com/octo-org/gitops-agent@main", "full 40-hex commit"),
        (f"git+https://github.com/octo-org/gitops-agent@{COMMIT[:12]}", "full 40-hex commit"),
        ("git+https://github.com/octo-org/gitops-agent", "full 40-hex commit"),
        (f"git+ssh://git@github.com/octo-org/gitops-agent@{COMMIT}", "git+https://"),
        (f"git+file:///srv/gitops-agent@{COMMIT}", "git+https://"),
        (f"git+https://x-token:ghp_abc@github.com/o/gitops-agent@{COMMIT}", "no user, password"),
        (f"git+https://github.com/o/gitops-agent?x=1@{COMMIT}", "no user, password"),
        ("gitops-agent", "pin one release with `==`"),
        (f"gitops-agent>=0.1 --hash=sha256:{SHA}", "pin one release with `==`"),
        (f"gitops-agent==0.* --hash=sha256:{SHA}", "pin one release with `==`"),
        ("gitops-agent==0.2.0", "sha256 of the release's file"),
        ("gitops-agent==0.2.0 --hash=md5:abc", "sha256 of the release's file"),
        (f"gitops-agent==0.2.0 --hash=sha256:{SHA} --no-deps", "sha256 of the release's file"),
        (f"not-gitops-agent==0.2.0 --hash=sha256:{SHA}", "must be `git+https://"),
        ("https://github.com/octo-org/gitops-agent/archive/main.zip", "must be `git+https://"),
    ],
)
def test_anything_else_is_refused_naming_the_line(written: str, said: str) -> None:
    with pytest.raises(PlanError) as refused:
        parse_plan(plan_with(written), "PROJECT_PLAN.md")
    assert refused.value.line == 3
    assert said in refused.value.message


def test_a_git_install_with_its_commit_becomes_the_default_source() -> None:
    recorded = {
        "url": "https://github.com/octo-org/gitops-agent.git",
        "vcs_info": {"vcs": "git", "commit_id": COMMIT, "requested_revision": "v0.2.0"},
    }
    source = source_from_direct_url(json.dumps(recorded))
    assert source.spec == f"git+https://github.com/octo-org/gitops-agent.git@{COMMIT}"
    # pip may keep a user in the URL: it never reaches the workflow file.
    recorded["url"] = "https://x-access-token:secret@github.com/octo-org/gitops-agent.git"
    assert "secret" not in source_from_direct_url(json.dumps(recorded)).spec


@pytest.mark.parametrize(
    "recorded, said",
    [
        ({"url": "file:///home/me/gitops-agent", "dir_info": {"editable": True}}, "an editable"),
        ({"url": "file:///home/me/gitops-agent", "dir_info": {}}, "local directory"),
        (
            {
                "url": "ssh://git@github.com/o/r.git",
                "vcs_info": {"vcs": "git", "commit_id": COMMIT},
            },
            "without credentials",
        ),
        (
            {"url": "https://example.com/gitops_agent-0.2.0.whl", "archive_info": {}},
            "not a git commit over https",
        ),
        (None, "does not record where it was installed from"),
    ],
)
def test_a_copy_a_runner_cannot_install_the_same_way_says_to_set_install(
    recorded: dict[str, Any] | None, said: str
) -> None:
    with pytest.raises(UserError) as refused:
        source_from_direct_url(json.dumps(recorded) if recorded else None, "PROJECT_PLAN.md")
    assert said in refused.value.message
    assert "set `install:`" in refused.value.message
    assert refused.value.path == "PROJECT_PLAN.md"


@pytest.fixture
def remote(tmp_path: Path) -> tuple[str, str, str]:
    """A bare repository reached over file://, its tip, and an older commit."""
    work = make_repo(tmp_path / "work", {"setup.py": "# one\n"})
    older = git(work, "rev-parse", "HEAD").strip()
    (work / "setup.py").write_text("# two\n", encoding="utf-8")
    git(work, "commit", "-qam", "two")
    tip = git(work, "rev-parse", "HEAD").strip()
    git(tmp_path, "clone", "-q", "--bare", str(work), "remote.git")
    return (tmp_path / "remote.git").as_uri(), tip, older


def git_source(url: str, commit: str) -> InstallSource:
    # `create` accepts https only; a test builds a local one directly.
    return InstallSource(SourceKind.GIT, f"git+{url}@{commit}", url=url, commit=commit)


def test_a_commit_is_found_at_a_tip_or_further_back(remote: tuple[str, str, str]) -> None:
    url, tip, older = remote
    assert resolve(git_source(url, tip)).reach is Reach.OK
    found = resolve(git_source(url, older))
    assert found.reach is Reach.OK and "fetched" in found.message


def test_a_commit_the_repository_does_not_have_is_missing(remote: tuple[str, str, str]) -> None:
    url, _, _ = remote
    found = resolve(git_source(url, COMMIT))
    assert found.reach is Reach.MISSING
    assert COMMIT in found.message


def test_a_source_that_cannot_be_reached_is_unknown_not_missing() -> None:
    found = resolve(InstallSource.create(f"git+https://127.0.0.1:9/octo-org/gitops-agent@{COMMIT}"))
    assert found.reach is Reach.UNKNOWN
    assert "could not reach https://127.0.0.1:9/octo-org/gitops-agent" in found.message


@contextlib.contextmanager
def index(tmp_path: Path, files: dict[str, bytes]) -> Iterator[str]:
    """A PEP 503 index on loopback serving `files` of gitops-agent with their sha256."""
    project = tmp_path / "simple" / "gitops-agent"
    project.mkdir(parents=True)
    links = []
    for name, data in files.items():
        (project / name).write_bytes(data)
        links.append(f'<a href="{name}#sha256={hashlib.sha256(data).hexdigest()}">{name}</a>')
    (project / "index.html").write_text("<html><body>" + "".join(links), encoding="utf-8")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path / "simple"))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_release_is_found_on_the_index_by_its_hash(tmp_path: Path) -> None:
    wheel = b"the wheel's bytes"
    files = {"gitops_agent-0.2.0-py3-none-any.whl": wheel, "gitops_agent-0.1.0.tar.gz": b"old"}
    digest = hashlib.sha256(wheel).hexdigest()
    with index(tmp_path, files) as url:
        env = {"PIP_INDEX_URL": url}
        found = resolve(InstallSource.create(f"gitops-agent==0.2.0 --hash=sha256:{digest}"), env)
        assert found.reach is Reach.OK
        assert "gitops_agent-0.2.0-py3-none-any.whl" in found.message
        wrong = resolve(InstallSource.create(f"gitops-agent==0.2.0 --hash=sha256:{SHA}"), env)
        assert wrong.reach is Reach.MISSING and "none with the pinned sha256" in wrong.message
        absent = resolve(InstallSource.create(f"gitops-agent==9.9.9 --hash=sha256:{digest}"), env)
        assert absent.reach is Reach.MISSING and "no file of gitops-agent 9.9.9" in absent.message
