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
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gitops_agent.console import err, show_run
from gitops_agent.error_handler import EXIT_INTERNAL, error_handler
from gitops_agent.notify import notify
from gitops_agent.policy.masking import (
    FRAGMENT,
    MASK,
    MIN_LENGTH,
    Masker,
    is_secret_name,
    masker,
    public_prefix,
    secret_values,
)
from gitops_agent.results import Outcome, TaskResult
from testing.fixtures import git
from testing.inbox import Inbox
from testing.project import make_project, run, task_block
from testing.sessions import make_session

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
        "MY_SERVICE_TOKEN",
        "PGPASSWORD",
        "NGROK_AUTHTOKEN",
        "MINIO_SECRETKEY",
        "AOC_SESSION",
        "github_token",
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
        "GIT_AUTHOR_NAME",
        "SSH_ASKPASS",
        "XDG_SESSION_DESKTOP",
        "DESKTOP_SESSION",
        "DBUS_SESSION_BUS_ADDRESS",
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


def test_the_value_of_a_secret_looking_name_is_masked_anywhere_in_text() -> None:
    value = _key("", 32)
    mask = Masker.from_environ({"MY_SERVICE_TOKEN": value, "PATH": "/usr/bin"}).mask
    for text in (
        f"{value}",
        f"token={value}&page=2",
        f"https://user:{value}@example.com/x",
        f"prefix{value}suffix",
        json.dumps({"headers": {"Authorization": f"Bearer {value}"}}),
        f"twice: {value} {value}",
    ):
        masked = mask(text)
        assert value not in masked and MASK in masked, text
    assert mask("/usr/bin/python") == "/usr/bin/python"


def test_a_short_value_is_not_masked_everywhere() -> None:
    mask = Masker.from_environ({"TOKEN": "abc", "API_KEY": "x" * (MIN_LENGTH - 1)}).mask
    text = "abc is the start of the alphabet; xxxxx marks the spot"
    assert mask(text) == text


# -- keys cut short or wrapped ---------------------------------------------------------------

_RNG = random.Random(20261123)


def _key(prefix: str, length: int) -> str:
    """A fake key, assembled here so that this file holds none another scanner would flag."""
    return prefix + "".join(_RNG.choices(string.ascii_letters + string.digits + "_-", k=length))


ANTHROPIC_KEY = _key("sk-ant-" + "api03-", 93) + "AA"


def _pieces_shown(text: str, key: str) -> list[str]:
    """Every run of FRAGMENT characters of the key's secret part that `text` shows."""
    start = len(public_prefix(key))
    runs = (key[i : i + FRAGMENT] for i in range(start, len(key) - FRAGMENT + 1))
    return [run for run in runs if run in text]


def _saferepr(key: str) -> str:
    """How pytest shows a long string in an assertion: its middle replaced with `...`."""
    return f"assert '{key[:30]}...{key[-30:]}' == ''"


PRINTED = {
    "whole": lambda key: f"E  AssertionError: {key!r} != 'x'",
    "cut after its prefix": lambda key: f"message: {key[:40]}",
    "cut before its end": lambda key: f"...{key[25:]}",
    "middle elided": _saferepr,
    "wrapped": lambda key: "E   " + "\n    ".join(textwrap.wrap(key, 30)),
    "folded": lambda key: "\n".join(key[i : i + 40] for i in range(0, len(key), 40)),
    "folded with CRLF": lambda key: key[:50] + "\r\n" + key[50:],
    "wrapped in JSON": lambda key: json.dumps({"out": key[:45] + "\n  " + key[45:]}),
    "in JSON, cut": lambda key: json.dumps({"out": key[:70]}),
}


@pytest.mark.parametrize("how", sorted(PRINTED))
def test_a_key_of_the_environment_cut_short_or_wrapped_shows_no_piece_of_itself(how: str) -> None:
    printed = PRINTED[how](ANTHROPIC_KEY)
    masked = Masker.from_environ({"ANTHROPIC_API_KEY": ANTHROPIC_KEY}).mask(printed)
    assert _pieces_shown(masked, ANTHROPIC_KEY) == [], masked
    assert masked.count("\n") == printed.count("\n")  # each line's piece masked, lines kept


def test_a_key_of_the_environment_is_masked_by_pieces_whatever_its_shape() -> None:
    key = _key("", 40)  # an AWS secret access key has no prefix to know it by
    mask = Masker.from_environ({"AWS_SECRET_ACCESS_KEY": key}).mask
    assert mask(f"{key[:13]}\n  {key[13:]}") == f"{MASK}\n  {MASK}"
    assert mask(f"tail: {key[-FRAGMENT:]}") == f"tail: {MASK}"
    assert mask(f"short: {key[: FRAGMENT - 1]}") == f"short: {key[: FRAGMENT - 1]}"


def test_a_key_prefix_alone_is_not_masked() -> None:
    mask = Masker.from_environ({"ANTHROPIC_API_KEY": ANTHROPIC_KEY}).mask
    text = "Anthropic keys start with sk-ant-api03- and are 108 characters long."
    assert mask(text) == text
    # Fewer than FRAGMENT characters of the key itself: too little to be worth hiding.
    shown = ANTHROPIC_KEY[: len("sk-ant-api03-") + FRAGMENT - 1]
    assert mask(f"cut: {shown}") == f"cut: {shown}"


def test_a_password_or_url_is_masked_whole_but_not_by_pieces() -> None:
    """Their pieces are ordinary words and host names."""
    mask = Masker.from_environ(
        {
            "DB_PASSWORD": "mypassword1234567",
            "DATABASE_URL": "postgres://app:s3cr3t-passw0rd@localhost:5432/appdb",
        }
    ).mask
    assert mask("login with mypassword1234567") == "login with ***"
    text = "the password for postgres://app at localhost:5432/appdb"
    assert mask(text) == text


@pytest.mark.parametrize("how", ["whole", "cut after its prefix", "in JSON, cut"])
def test_a_shaped_key_not_in_the_environment_is_masked_from_its_prefix_on(how: str) -> None:
    printed = PRINTED[how](ANTHROPIC_KEY)
    masked = Masker().mask(printed)
    assert _pieces_shown(masked, ANTHROPIC_KEY) == [] and MASK in masked, masked


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


def test_a_notification_is_masked_before_it_leaves(secret: str, inbox: Inbox) -> None:
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
    assert r"Use the key \*\*\* in bad" in written["pr body"]  # masked, then escaped
    report = cli("report", cwd=repo, env=env)
    assert report.returncode == 0 and SECRET not in report.stdout + report.stderr
    assert run(cli, repo, env=env)  # a second run, reading the records back, still works


def test_a_failing_test_that_prints_the_key_leaves_no_piece_of_it(
    tmp_path: Path, cli: Callable[..., object]
) -> None:
    """The gate is given the key (`gate_env:`); its test prints it whole, wrapped and cut short,
    then fails on an assertion pytest shortens. No piece of the key reaches the tool's output,
    its memory log and records, the attempts it keeps, `show` or `report`."""
    test_file = textwrap.dedent(
        """
        import os, pathlib, textwrap

        KEY = os.environ["ANTHROPIC_API_KEY"]

        def test_the_key():
            if pathlib.Path("src/bad.py").exists():
                print("whole:", KEY)
                print("wrapped:", "\\n    ".join(textwrap.wrap(KEY, 40)))
                print("cut:", KEY[:60])
                assert "p" * 200 + KEY == ""
        """
    )
    tasks = task_block("bad", "Break it", "echo 1 > src/bad.py") + task_block(
        "good", "Add a module", "echo 'v = 1' > src/good.py"
    )
    repo = make_project(
        tmp_path,
        tasks,
        gate=f"{sys.executable} -m pytest -q -p no:cacheprovider tests",
        rules="gate_env: [ANTHROPIC_API_KEY]\n",
        extra_files={"tests/test_key.py": test_file},
    )
    env = {"ANTHROPIC_API_KEY": ANTHROPIC_KEY}

    result = cli("run", "--json", cwd=repo, env=env)

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [(t["id"], t["outcome"]) for t in data["tasks"]] == [
        ("bad", "rolled_back"),
        ("good", "committed"),
    ]
    shown = cli("show", f"{data['session']}/bad", cwd=repo, env=env)
    report = cli("report", cwd=repo, env=env)
    assert shown.returncode == 0 and report.returncode == 0, shown.stderr + report.stderr
    written = {
        "stdout": result.stdout,
        "stderr": result.stderr,
        "history": git(repo, "log", "--all", "-p", "--format=%H%n%B", "--not", "main"),
        "pr body": Path(data["pr_body"]).read_text(encoding="utf-8"),
        "show": shown.stdout + shown.stderr,
        "report": report.stdout + report.stderr,
    }
    for path in git(repo, "ls-tree", "-r", "--name-only", "autonomous/memory").split():
        written[path] = git(repo, "show", f"autonomous/memory:{path}")
    for name, text in written.items():
        assert _pieces_shown(text, ANTHROPIC_KEY) == [], f"a piece of the key is in the {name}"
    day = next(name for name in written if name.startswith("memory/"))
    assert "wrapped: ***\n    ***\n" in written[day] and "cut: ***" in written[day]
