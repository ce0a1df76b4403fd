"""Secrets of the tool's environment show as `***` in everything it writes.

Unit tests of `policy.masking` on realistic environments, then each output channel for real:
stderr through rich, the crash log, a notification delivered over HTTP, and one whole `run`
through the installed console script whose branches, memory log, PR body and output are
searched for the secret.
"""

from __future__ import annotations

import json
import random
import string
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_notify import Inbox, inbox  # noqa: F401  (the fixture)

from conftest import git
from gitops_agent.console import err, show_run
from gitops_agent.error_handler import EXIT_INTERNAL, error_handler
from gitops_agent.notify import notify
from gitops_agent.policy.masking import (
    MASK,
    MIN_LENGTH,
    Masker,
    is_secret_name,
    masker,
    secret_values,
)
from gitops_agent.results import Outcome, TaskResult
from test_memory import make_session
from test_run import make_project, run, task_block

SECRET = "sk-ant-test-0123456789"

# What a CI runner's environment looks like, give or take.
RUNNER_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/home/runner",
    "GITHUB_TOKEN": "ghs_16C7e42F292c6912E7710c838347Ae178B4a",
    "ANTHROPIC_API_KEY": SECRET,
    "GITOPS_AGENT_TOKEN": "gat_0123456789abcdef",
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "NPM_AUTH": "npm_abcdefghijklmnop",
    "GH_PAT": "github_pat_11AAAAAAA0123456789",
    "db_password": "correct horse battery staple",
    "SMTP_PASS": "hunter",  # 6 characters: just long enough
    "SHORT_TOKEN": "abc12",  # too short to mask without garbling text
    "FEATURE_AUTH": "true",
    "CI_AUTH": "disabled",
    "KEYBOARD_LAYOUT": "dvorak-programmer",
    "TOKENIZERS_PARALLELISM": "false-positive-check",
    "SSH_AUTH_SOCK": "/tmp/ssh-XXXXabcd/agent.1234",
    "PASSWORD_STORE_DIR": "/home/runner/.password-store",
    "GITOPS_AGENT_NOTIFY": "json://hooks.example/abc123, tgram://bottoken/chatid",
    "DEPLOY_PRIVATE_KEY": (
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
        "AAAAMwAAAAtzc2gtZWQyNTUxOQAAACDx\n"
        "-----END OPENSSH PRIVATE KEY-----\n"
    ),
}


@pytest.mark.parametrize(
    "name",
    [
        "GITHUB_TOKEN",
        "ANTHROPIC_API_KEY",
        "GITOPS_AGENT_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "NPM_AUTH",
        "GH_PAT",
        "db_password",
        "SMTP_PASS",
        "DOCKER_PASSWD",
        "GOOGLE_CREDENTIALS",
        "SESSION_COOKIE",
        "DEPLOY_PRIVATE_KEY",
        "SLACK_WEBHOOK",
        "GITOPS_AGENT_NOTIFY",
        "DATABASE_URL",
    ],
)
def test_secret_looking_names_are_secret(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "PATH",
        "HOME",
        "KEYBOARD_LAYOUT",
        "TOKENIZERS_PARALLELISM",
        "PASSAGE_COUNT",
        "GIT_ASKPASS",
        "SSH_AUTH_SOCK",
        "PASSWORD_STORE_DIR",
        "SSL_KEY_FILE",
        "PWD",
        "GITOPS_AGENT_TASK_ID",
    ],
)
def test_ordinary_names_are_not(name: str) -> None:
    assert not is_secret_name(name)


def test_the_values_of_a_runners_environment_to_mask() -> None:
    values = secret_values(RUNNER_ENV)

    for name in ("GITHUB_TOKEN", "ANTHROPIC_API_KEY", "AWS_SECRET_ACCESS_KEY", "db_password"):
        assert RUNNER_ENV[name] in values
    assert "hunter" in values
    for name in ("SHORT_TOKEN", "FEATURE_AUTH", "CI_AUTH", "KEYBOARD_LAYOUT", "SSH_AUTH_SOCK"):
        assert RUNNER_ENV[name] not in values, name
    assert "/home/runner" not in values and "dvorak-programmer" not in values
    # Each line of a key, and each URL of the notification list, may be quoted alone.
    assert "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ" in values
    assert "json://hooks.example/abc123" in values and "tgram://bottoken/chatid" in values
    assert all(len(v) >= MIN_LENGTH for v in values)
    assert [len(v) for v in values] == sorted((len(v) for v in values), reverse=True)


def test_a_value_that_contains_another_is_masked_whole() -> None:
    masker = Masker.from_values(["abcdef", "xxabcdefyy"])
    assert masker.mask("1 xxabcdefyy 2 abcdef 3") == "1 *** 2 *** 3"


def test_the_mask_finds_a_secret_escaped_for_json_or_html() -> None:
    odd = 'pa"ss\\w<o>rd&é'
    masker = Masker.from_environ({"APP_PASSWORD": odd})
    for text in (
        json.dumps({"v": odd}),
        json.dumps({"v": odd}, ensure_ascii=False),
        "<p>pa&#34;ss\\w&lt;o&gt;rd&amp;é</p>",
    ):
        masked = masker.mask(text)
        assert "ss\\" not in masked.replace("\\\\", "") and MASK in masked, masked
    assert json.loads(masker.mask(json.dumps({"v": f"x {odd} y"}))) == {"v": "x *** y"}


def test_masking_a_megabyte_with_twenty_secrets_takes_milliseconds() -> None:
    rng = random.Random(7)
    values = ["".join(rng.choices(string.ascii_letters, k=rng.randint(8, 40))) for _ in range(20)]
    text = "".join(rng.choices(string.ascii_letters + " \n", k=1_000_000))
    text = text[:400_000] + values[3] + text[400_000:] + values[19]
    masker = Masker.from_values(values)

    started = time.perf_counter()
    masked = masker.mask(text)
    elapsed = time.perf_counter() - started

    print(f"\nmasked 1 MB with {len(masker.forms)} forms in {elapsed * 1000:.1f} ms")
    assert masked.count(MASK) >= 2 and values[3] not in masked
    assert elapsed < 0.5  # a few ms; the bound only catches a pathological regression


def test_the_process_masker_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    assert masker().mask(f"key {SECRET}") == "key ***"
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    assert masker().mask(f"key {SECRET}") == f"key {SECRET}"


# -- the output channels ---------------------------------------------------------------------


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    return SECRET


def test_messages_on_stderr_are_masked_and_quoted_text_is_not_markup(
    secret: str, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = f"gate printed {secret} [link=http://evil/]click[/link] \x1b]0;title\x07"
    task = TaskResult("t1", "Title", Outcome.ROLLED_BACK, hostile, attempts=1)
    err.print(f"plain {secret}")
    show_run(make_session("s-1", datetime(2026, 11, 23, 2, tzinfo=UTC), (task,), stopped=hostile))

    printed = capsys.readouterr().err
    assert secret not in printed and "plain ***" in printed
    assert "[link=http://evil/]click[/link]" in " ".join(printed.split())
    assert "\x1b]0;" not in printed and "\\x1b]0;title\\x07" in printed


def test_the_crash_log_and_the_message_are_masked(
    secret: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["gitops-agent", "run", "--agent-command", f"x {secret}"])

    with pytest.raises(SystemExit) as exited, error_handler():
        raise RuntimeError(f"could not use {secret}")

    assert exited.value.code == EXIT_INTERNAL
    log = (tmp_path / "gitops-agent" / "crash.log").read_text(encoding="utf-8")
    assert secret not in log and "could not use ***" in log and "--agent-command x ***" in log
    message = capsys.readouterr().err
    assert secret not in message and "could not use ***" in message


def test_a_notification_is_masked_before_it_leaves(secret: str, inbox: Inbox) -> None:  # noqa: F811
    problems = notify([f"json://127.0.0.1:{inbox.port}/n"], f"about {secret}", f"saw {secret}")

    assert problems == []
    payload = inbox.received[0][1]
    assert payload["title"] == "about ***" and payload["message"] == "saw ***"


def test_a_run_writes_the_secret_of_its_environment_nowhere(
    tmp_path: Path, cli: Callable[..., object]
) -> None:
    """The secret reaches the tool two ways: the plan (a task title a person wrote) and the gate's
    output at run time (the gate builds it, so it is in no file). Neither may reach anything the
    tool writes: its commits and refs, the memory log and records, the PR body, stdout, stderr."""
    gate = (
        "if test -f src/bad.py; then printf 'leaked: sk-ant-%s-%s\\n' test 0123456789; exit 1; fi"
    )
    tasks = task_block("bad", f"Use the key {SECRET} in bad", "echo 1 > src/bad.py") + task_block(
        "good", "Add a module", "echo 'v = 1' > src/good.py"
    )
    repo = make_project(tmp_path, tasks, gate=gate)
    env = {"ANTHROPIC_API_KEY": SECRET}

    result = cli("run", "--json", cwd=repo, env=env)

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [(t["id"], t["outcome"]) for t in data["tasks"]] == [
        ("bad", "rolled_back"),
        ("good", "committed"),
    ]
    assert SECRET in git(repo, "show", "main:PROJECT_PLAN.md")  # the person's own commit
    written = {
        "stdout": result.stdout,
        "stderr": result.stderr,
        # every commit the run made, on any ref, with its message and its diff
        "history": git(repo, "log", "--all", "-p", "--format=%H%n%B", "--not", "main"),
        "pr body": Path(data["pr_body"]).read_text(encoding="utf-8"),
    }
    for path in git(repo, "ls-tree", "-r", "--name-only", "autonomous/memory").split():
        written[path] = git(repo, "show", f"autonomous/memory:{path}")
    for name, text in written.items():
        assert SECRET not in text, f"the secret is in the {name}"
    day = next(name for name in written if name.startswith("memory/"))
    assert "leaked: ***" in written[day]  # the gate's output, masked
    assert "Use the key *** in bad" in written["pr body"]
    report = cli("report", cwd=repo, env=env)
    assert report.returncode == 0 and SECRET not in report.stdout + report.stderr
    assert run(cli, repo, env=env)  # a second run, reading the records back, still works
