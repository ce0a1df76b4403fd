"""Confinement, proved with real processes under each mechanism this machine offers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops_agent.errors import UserError
from gitops_agent.git import Repo, Workspace
from gitops_agent.runner import Runner, UserRepository
from gitops_agent.sandbox import (
    MECHANISMS_VARIABLE,
    Confinement,
    Jail,
    Sandbox,
    choose,
    gate_environment,
    probe,
    run_confined,
)
from gitops_agent.sandbox.confine import _probe
from testing.fixtures import git, make_repo

FOUND = probe()
MECHANISMS = [
    pytest.param(
        Sandbox(Confinement.REQUIRED, FOUND.bwrap, FOUND.landlock_abi),
        id="bwrap+landlock",
        marks=pytest.mark.skipif(
            FOUND.bwrap is None or FOUND.landlock_abi is None, reason="needs both"
        ),
    ),
    pytest.param(
        Sandbox(Confinement.REQUIRED, FOUND.bwrap, None),
        id="bwrap",
        marks=pytest.mark.skipif(FOUND.bwrap is None, reason="needs bubblewrap"),
    ),
    pytest.param(
        Sandbox(Confinement.REQUIRED, None, FOUND.landlock_abi),
        id="landlock",
        marks=pytest.mark.skipif(FOUND.landlock_abi is None, reason="needs Landlock"),
    ),
]


def test_this_machine_offers_confinement() -> None:
    # CI must prove confinement for real: a machine without it fails here, not silently.
    assert FOUND.any, FOUND.problems


@pytest.fixture
def jail(tmp_path: Path) -> Jail:
    work, scratch = tmp_path / "work", tmp_path / "scratch"
    work.mkdir()
    (scratch / "home").mkdir(parents=True)
    (scratch / "tmp").mkdir()
    env = gate_environment(
        {**os.environ, "GITHUB_TOKEN": "ghp_secretsecretsecret"},
        home=scratch / "home",
        tmp=scratch / "tmp",
        listed=(),
    )
    return Jail(workdir=work, writable=(scratch,), env=env, memory_bytes=2 << 30)


def confined(sandbox: Sandbox, jail: Jail, command: str, **kwargs: object) -> str:
    result = run_confined(sandbox, command, jail, timeout=20, **kwargs)  # type: ignore[arg-type]
    return result.output


@pytest.mark.parametrize("sandbox", MECHANISMS)
def test_writes_go_only_to_the_workdir_and_scratch(
    sandbox: Sandbox, jail: Jail, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "kept.txt").write_text("kept\n")
    out = confined(
        sandbox,
        jail,
        f"""
        echo in > inside.txt && echo wrote-inside
        echo x > "$HOME/h" && echo wrote-home
        echo x > "$TMPDIR/t" && echo wrote-tmp
        echo x > {outside}/new.txt || echo refused-new
        echo x >> {outside}/kept.txt || echo refused-append
        rm {outside}/kept.txt || echo refused-remove
        mv {outside}/kept.txt moved.txt || echo refused-rename
        ln {outside}/kept.txt linked.txt || echo refused-link
        echo x > /tmp/gitops-agent-sandbox-test-{os.getpid()} || echo refused-tmp
        """,
    )
    for word in ("wrote-inside", "wrote-home", "wrote-tmp"):
        assert word in out
    for word in ("new", "append", "remove", "rename", "link", "tmp"):
        assert f"refused-{word}" in out, out
    assert (outside / "kept.txt").read_text() == "kept\n"
    assert sorted(p.name for p in outside.iterdir()) == ["kept.txt"]
    assert not Path(f"/tmp/gitops-agent-sandbox-test-{os.getpid()}").exists()


@pytest.mark.parametrize("sandbox", MECHANISMS)
def test_the_tools_environment_is_out_of_reach(sandbox: Sandbox, jail: Jail) -> None:
    out = confined(
        sandbox,
        jail,
        f"env; cat /proc/{os.getpid()}/environ; cat /proc/$PPID/environ; cat /proc/1/environ; true",
    )
    assert "ghp_secretsecretsecret" not in out
    assert "GITHUB_TOKEN" not in out


@pytest.mark.parametrize("sandbox", MECHANISMS)
def test_no_process_outlives_the_command(sandbox: Sandbox, jail: Jail, tmp_path: Path) -> None:
    marker = f"outlive-{os.getpid()}-{tmp_path.name}"
    confined(
        sandbox,
        jail,
        f"(setsid env -i bash -c 'exec -a {marker} sleep 300' &); "
        f"(nohup bash -c 'exec -a {marker} sleep 300' >/dev/null 2>&1 &); "
        f"bash -c 'exec -a {marker} sleep 300' & disown; sleep 0.3",
    )
    assert _processes_named(marker) == []


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP server on loopback that records who connected."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    seen: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            seen.append(conn.recv(100))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    server.close()


@pytest.mark.parametrize("sandbox", MECHANISMS)
def test_no_network_unless_given(
    sandbox: Sandbox, jail: Jail, listener: tuple[int, list[bytes]]
) -> None:
    port, seen = listener
    send = (
        f"{sys.executable} -c \"import socket; s = socket.create_connection(('127.0.0.1', {port}),"
        " timeout=3); s.sendall(b'hello')\" && echo connected"
    )
    out = confined(sandbox, jail, send)
    assert "connected" not in out and seen == []
    from dataclasses import replace

    out = confined(sandbox, replace(jail, network=True), send + "; sleep 0.2")
    assert "connected" in out


@pytest.mark.parametrize("sandbox", MECHANISMS)
def test_the_command_is_not_root_in_power(sandbox: Sandbox, jail: Jail) -> None:
    out = confined(sandbox, jail, "grep CapEff /proc/self/status; mknod dev b 8 0 || echo no-dev")
    assert "CapEff:\t0000000000000000" in out
    assert "no-dev" in out


def test_required_refuses_where_no_mechanism_works(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MECHANISMS_VARIABLE, "none")
    _probe.cache_clear()
    with pytest.raises(UserError, match="confinement: required"):
        choose(Confinement.REQUIRED)
    best = choose(Confinement.BEST_EFFORT)
    assert not best.confined and "best-effort" in best.describe()
    assert "off" in choose(Confinement.OFF).describe()


def test_an_unknown_mechanism_name_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MECHANISMS_VARIABLE, "docker")
    with pytest.raises(UserError, match="unknown mechanism docker"):
        probe()


def _processes_named(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_the_launcher_refuses_rather_than_run_unconfined(tmp_path: Path) -> None:
    from gitops_agent.sandbox import _enter

    # An option it does not know: the command must not run without what was asked for.
    result = subprocess.run(
        [sys.executable, "-I", "-S", _enter.__file__, "--jail", "x", "--", "/bin/echo", "ran"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 125 and "ran" not in result.stdout


@pytest.mark.parametrize("sandbox", MECHANISMS)
def test_the_number_of_processes_is_limited(sandbox: Sandbox, jail: Jail) -> None:
    from dataclasses import replace

    limited = replace(jail, max_processes=20)
    fork = (
        "import os, time\n"
        "n = 0\n"
        "for _ in range(60):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        break\n"
        "    if pid == 0:\n"
        "        time.sleep(3)\n"
        "        os._exit(0)\n"
        "    n += 1\n"
        "print('forked', n)\n"
    )
    script = Path(jail.workdir) / "fork.py"
    script.write_text(fork)
    out = confined(sandbox, limited, f"{sys.executable} fork.py")
    forked = int(out.split("forked")[1].split()[0])
    assert forked < 20, out


@pytest.mark.parametrize("sandbox", MECHANISMS)
def test_memory_is_limited(sandbox: Sandbox, jail: Jail) -> None:
    from dataclasses import replace

    limited = replace(jail, memory_bytes=256 << 20)
    out = confined(
        sandbox,
        limited,
        f"{sys.executable} -c \"b = bytearray(1 << 30); print('allocated')\" || echo refused",
    )
    assert "allocated" not in out and "refused" in out


@pytest.mark.parametrize("sandbox", MECHANISMS)
def test_credential_stores_in_the_home_directory_are_unreadable(
    sandbox: Sandbox, jail: Jail, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "person"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY\n")
    (home / ".netrc").write_text("machine github.com password hunter2\n")
    (home / "notes.txt").write_text("readable\n")
    monkeypatch.setenv("HOME", str(home))
    out = confined(
        sandbox,
        jail,
        f"cat {home}/.ssh/id_ed25519 {home}/.netrc {home}/notes.txt; ls {home}; true",
    )
    assert "PRIVATE KEY" not in out and "hunter2" not in out
    assert "readable" in out


@pytest.mark.skipif(not FOUND.overlay, reason="needs bubblewrap with overlay support")
def test_an_overlay_jail_leaves_its_workdir_as_it_was(jail: Jail) -> None:
    from dataclasses import replace

    sandbox = Sandbox(Confinement.REQUIRED, FOUND.bwrap, FOUND.landlock_abi, overlay=True)
    assert sandbox.leaves_no_trace
    (jail.workdir / "kept.txt").write_text("kept\n")
    out = confined(
        sandbox,
        replace(jail, overlay=True),
        "echo changed > kept.txt; echo new > new.txt; cat kept.txt new.txt",
    )
    assert out == "changed\nnew\n"
    assert (jail.workdir / "kept.txt").read_text() == "kept\n"
    assert not (jail.workdir / "new.txt").exists()


@pytest.mark.parametrize("overlay", [False, True], ids=["bind", "overlay"])
@pytest.mark.parametrize("layout", ["plain", "linked worktree", "workspace inside .git"])
@pytest.mark.parametrize("sandbox", MECHANISMS)
def test_a_gate_sees_its_tree_at_the_repository_path_and_nothing_of_the_users(
    sandbox: Sandbox, layout: str, overlay: bool, tmp_path: Path
) -> None:
    if overlay:
        if sandbox.bwrap is None or not FOUND.overlay:
            pytest.skip("needs bubblewrap with overlay support")
        sandbox = Sandbox(sandbox.setting, sandbox.bwrap, sandbox.landlock_abi, overlay=True)
    main = make_repo(tmp_path / "main", {"f.txt": "committed\n"})
    git(main, "config", "gitops.marker", "USER-GIT-CONFIG")
    root = main
    if layout == "linked worktree":
        root = tmp_path / "linked"
        git(main, "worktree", "add", "-q", str(root), "-b", "linked")
    work = main / ".git" / "work" if layout == "workspace inside .git" else tmp_path / "work"
    for tree in {main, root}:
        (tree / "f.txt").write_text("user's own copy\n")
    repo = Repo.open(root)
    workspace = Workspace(repo, work / "gate")
    workspace.reset(repo.resolve_commit("HEAD"))
    gate = (
        f"pwd; cat {root}/f.txt {main}/f.txt {main}/.git/config f.txt; "
        "git log --format=%s -1; echo written > f.txt && cat f.txt"
    )

    def run(user: UserRepository | None) -> tuple[str, str]:
        workspace.reset(repo.resolve_commit("HEAD"))
        runner = Runner(sandbox, (), (), None, None, user)
        result = runner.run_gate(gate, workspace.path, work / "scratch", timeout=30)
        assert result.exit_code == 0, result.output
        return result.output.split("\n", 1)[0], result.output

    # What the gates did before: an editable install or an absolute path into the user's
    # tree found the user's copy, not the tree being judged.
    _, unhidden = run(None)
    assert "user's own copy" in unhidden

    cwd, out = run(UserRepository.find(root))
    assert "user's own copy" not in out and "USER-GIT-CONFIG" not in out
    assert "committed\n" in out and "initial\n" in out  # its tree, and git reads its objects
    assert "written\n" in out
    if sandbox.bwrap is not None:
        assert cwd == str(root)  # shown at the repository's path, which is its tree
        # Its f.txt, by name and at the repository's path (the main tree's path too when that
        # is the repository; beside a linked worktree, the main tree is an empty directory).
        assert out.count("committed\n") == (3 if root == main else 2)
    else:
        # Landlock alone cannot show it elsewhere: it stays in its workspace, and reading the
        # user's copy is refused.
        assert cwd == str(workspace.path)
        assert "Permission denied" in out
    for tree in {main, root}:
        assert (tree / "f.txt").read_text() == "user's own copy\n"
    assert "USER-GIT-CONFIG" in (main / ".git" / "config").read_text()
