from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from gitops_agent.errors import UserError
from gitops_agent.sandbox.process import KILL_GRACE, run_command, tree_signature


def _alive(pid: int) -> bool:
    """Running, not a zombie (where PID 1 does not reap orphans, zombies stay)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return False
    except OSError:  # no procfs: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat[stat.rfind(b")") + 2 :].split()[0] not in (b"Z", b"X")


def _live_members(pgid: int) -> list[int]:
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            members.append(int(name))
    return members


def _pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()]


def test_exit_code_and_combined_output(tmp_path: Path) -> None:
    result = run_command("echo out; echo err >&2; exit 3", tmp_path, timeout=10)
    assert result.exit_code == 3
    assert result.output == "out\nerr\n"
    assert not result.timed_out and not result.idle


def test_timeout_kills_a_group_that_ignores_sigterm_with_its_grandchildren(tmp_path: Path) -> None:
    command = """
        trap '' TERM
        (trap '' TERM; sleep 1000) &
        echo $! > pids
        bash -c 'trap "" TERM; sleep 1000' &
        echo $! >> pids
        echo $$ >> pids
        wait
    """
    started = time.monotonic()
    result = run_command(command, tmp_path, timeout=1)
    assert result.timed_out and not result.idle
    assert result.exit_code is None
    assert 1 + KILL_GRACE <= time.monotonic() - started < 1 + KILL_GRACE + 2
    pids = _pids(tmp_path / "pids")
    assert len(pids) == 3
    assert not [pid for pid in pids if _alive(pid)]
    assert _live_members(pids[-1]) == []  # the main bash is the group leader


def test_a_leftover_background_child_is_killed_after_the_main_process_exits(
    tmp_path: Path,
) -> None:
    result = run_command("sleep 1000 & echo $! > pid; echo done", tmp_path, timeout=10)
    assert result.exit_code == 0
    assert result.output == "done\n"
    assert result.duration < 2
    assert not _alive(_pids(tmp_path / "pid")[0])


@pytest.mark.skipif(shutil.which("setsid") is None, reason="needs util-linux setsid")
def test_a_daemon_that_left_the_process_group_is_killed_too(tmp_path: Path) -> None:
    result = run_command("setsid sleep 1000 & echo $! > pid; sleep 0.2", tmp_path, timeout=10)
    assert result.exit_code == 0
    assert not _alive(_pids(tmp_path / "pid")[0])


@pytest.mark.skipif(shutil.which("setsid") is None, reason="needs util-linux setsid")
def test_a_double_forked_daemon_with_a_clean_environment_is_killed_too(tmp_path: Path) -> None:
    # setsid + env -i + a double fork: it leaves the group, carries nothing of ours, and its
    # parent is gone; as a child subreaper we adopt it, so it is still found.
    command = "(setsid env -i bash -c 'echo $$ > pid; exec sleep 1000' &) ; sleep 0.3"
    result = run_command(command, tmp_path, timeout=10)
    assert result.exit_code == 0
    assert not _alive(_pids(tmp_path / "pid")[0])


def test_idle_timeout_ends_a_silent_process(tmp_path: Path) -> None:
    result = run_command("sleep 5", tmp_path, timeout=10, idle_timeout=1)
    assert result.idle and not result.timed_out
    assert result.exit_code is None
    assert result.duration < 2.5


def test_a_chatty_process_of_the_same_length_survives_the_idle_timeout(tmp_path: Path) -> None:
    command = "for i in $(seq 10); do echo tick $i; sleep 0.25; done"
    result = run_command(command, tmp_path, timeout=10, idle_timeout=1)
    assert result.exit_code == 0
    assert not result.idle
    assert result.output.count("tick") == 10


def test_file_changes_under_watch_dir_count_as_activity_but_not_inside_git(
    tmp_path: Path,
) -> None:
    (tmp_path / ".git").mkdir()
    touch_files = "for i in $(seq 10); do echo $i > file$i; sleep 0.25; done"
    working = run_command(touch_files, tmp_path, timeout=10, idle_timeout=1, watch_dir=tmp_path)
    assert working.exit_code == 0 and not working.idle

    touch_git = "for i in $(seq 10); do echo $i > .git/file$i; sleep 0.25; done"
    silent = run_command(touch_git, tmp_path, timeout=10, idle_timeout=1, watch_dir=tmp_path)
    assert silent.idle


def test_stdin_is_closed_after_the_prompt(tmp_path: Path) -> None:
    result = run_command("cat; echo '<eof>'", tmp_path, stdin_text="the prompt\n", timeout=5)
    assert result.exit_code == 0
    assert result.output == "the prompt\n<eof>\n"


def test_empty_stdin_is_closed_at_once(tmp_path: Path) -> None:
    result = run_command("cat; echo '<eof>'", tmp_path, timeout=5)
    assert result.output == "<eof>\n"


def test_a_child_that_never_reads_a_big_prompt_does_not_block_us(tmp_path: Path) -> None:
    prompt = "x" * 2_000_000  # far more than a pipe holds
    result = run_command("exec 0<&-; echo ignored", tmp_path, stdin_text=prompt, timeout=5)
    assert result.exit_code == 0 and result.output == "ignored\n"
    result = run_command("echo ignored", tmp_path, stdin_text=prompt, timeout=5)
    assert result.exit_code == 0 and result.output == "ignored\n"


def test_huge_output_does_not_deadlock_and_is_cut_to_the_tail(tmp_path: Path) -> None:
    command = "head -c 20000000 /dev/zero | tr '\\0' a; echo; echo 'THE END'"
    result = run_command(command, tmp_path, timeout=20, max_output=1000)
    assert result.exit_code == 0
    total = 20_000_000 + len("\n") + len("THE END\n")
    assert result.output.startswith(f"[... {total - 1000} bytes cut ...]\n")
    assert result.output.endswith("a\nTHE END\n")
    assert len(result.output.split("\n", 1)[1]) == 1000


def test_on_output_gets_every_chunk_decoded_as_it_arrives(tmp_path: Path) -> None:
    chunks: list[str] = []
    command = "for i in $(seq 3000); do printf 'héllo wörld ✓ '; done; echo"
    result = run_command(command, tmp_path, timeout=10, on_output=chunks.append)
    assert "".join(chunks) == result.output
    assert result.output == "héllo wörld ✓ " * 3000 + "\n"


def test_an_exception_from_on_output_still_kills_the_group(tmp_path: Path) -> None:
    def explode(_: str) -> None:
        raise RuntimeError("display broke")

    with pytest.raises(RuntimeError, match="display broke"):
        run_command(
            "sleep 1000 & echo $! > pid; echo hi; sleep 1000",
            tmp_path,
            timeout=10,
            on_output=explode,
        )
    assert not _alive(_pids(tmp_path / "pid")[0])


def test_death_by_a_signal_we_did_not_send_is_128_plus_the_signal(tmp_path: Path) -> None:
    result = run_command("kill -9 $$", tmp_path, timeout=5)
    assert result.exit_code == 137
    assert not result.timed_out


def test_missing_working_directory_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        run_command("true", tmp_path / "nowhere", timeout=5)


def test_missing_bash_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="bash"):
        run_command("true", tmp_path, env={"PATH": str(tmp_path / "empty")}, timeout=5)


def test_tree_signature_sees_edits_additions_and_removals_but_not_git(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("a = 1\n")
    before = tree_signature(tmp_path)
    (tmp_path / ".git" / "index").write_text("changed")
    assert tree_signature(tmp_path) == before
    (tmp_path / "src" / "a.py").write_text("a = 22\n")
    edited = tree_signature(tmp_path)
    assert edited != before
    (tmp_path / "src" / "a.py").unlink()
    assert tree_signature(tmp_path) != edited
