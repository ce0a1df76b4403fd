from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gitops_agent import agents
from gitops_agent.agents import (
    PRESETS,
    AgentResult,
    AgentSpec,
    detect_rate_limit,
    parse_resume_at,
    resolve_agent,
)
from gitops_agent.errors import UserError
from gitops_agent.runner import Runner
from gitops_agent.sandbox import Confinement, choose

# The stand-ins' switches reach them the way any variable reaches an agent: named for it.
RUNNER = Runner(
    sandbox=choose(Confinement.REQUIRED),
    agent_env=("STAND_IN_RATE_LIMIT", "STAND_IN_FAIL", "SOMETHING_ELSE"),
    gate_env=(),
    memory_bytes=None,
    max_processes=None,
)


def ended_well(result: AgentResult) -> bool:
    """The agent exited 0 by itself: no timeout, no silence, no usage limit."""
    return (
        result.exit_code == 0
        and not (result.timed_out or result.idle)
        and result.rate_limit is None
    )


def run_agent(agent: AgentSpec, prompt: str, workdir: Path, **options: object) -> AgentResult:
    """The agent, confined as a session runs it, with a private scratch beside `workdir`."""
    scratch = workdir.parent / f"{workdir.name}-scratch"
    return agents.run_agent(
        agent,
        prompt,
        workdir,
        runner=RUNNER,
        scratch=scratch,
        **options,  # type: ignore[arg-type]
    )


def run_shell(command: str, workdir: Path, **options: object) -> AgentResult:
    scratch = workdir.parent / f"{workdir.name}-scratch"
    return agents.run_shell(
        command,
        workdir,
        runner=RUNNER,
        scratch=scratch,
        **options,  # type: ignore[arg-type]
    )


STAND_INS = Path(__file__).parent / "stand_ins"
PROMPT = "Add a greeting to README.md\n\nDetails on the second line.\n"


@pytest.fixture(autouse=True)
def stand_ins_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stand-in CLIs come first on PATH, and no stand-in switch leaks in from outside."""
    monkeypatch.setenv("PATH", f"{STAND_INS}{os.pathsep}{os.environ.get('PATH', os.defpath)}")
    for name in ("STAND_IN_RATE_LIMIT", "STAND_IN_FAIL"):
        monkeypatch.delenv(name, raising=False)


def _said(output: str, key: str) -> str:
    found = re.search(rf"^stand-in \w+: {key}=(.*)$", output, re.MULTILINE)
    assert found, output
    return found[1]


@pytest.mark.parametrize("preset", ["claude", "codex", "aider", "gemini"])
def test_each_preset_runs_its_cli_which_edits_the_checkout(preset: str, repo: Path) -> None:
    result = run_agent(
        resolve_agent(preset), PROMPT, repo, task_id="T-1", timeout=20, idle_timeout=10
    )
    assert ended_well(result), result.output
    assert result.agent == preset
    assert (repo / "agent_was_here.txt").read_text() == "Add a greeting to README.md\nmodel=-\n"
    assert _said(result.output, "task") == "T-1"
    # Each CLI read the prompt where it reads it (stdin, or aider's message file)...
    assert _said(result.output, "prompt_first_line") == "Add a greeting to README.md"
    # ...and the prompt file was there for every one of them.
    assert _said(result.output, "prompt_file_first_line") == "Add a greeting to README.md"


def test_the_prompt_file_is_outside_the_checkout_and_gone_before_the_next_command(
    repo: Path,
) -> None:
    result = run_agent(
        resolve_agent("claude"), PROMPT, repo, task_id="T-9", timeout=20, idle_timeout=None
    )
    prompt_file = Path(_said(result.output, "prompt_file"))
    assert prompt_file.is_absolute()
    assert not prompt_file.resolve().is_relative_to(repo.resolve())
    run_shell("true", repo, task_id="T-10", timeout=20, idle_timeout=None)
    assert not prompt_file.exists()


def test_aider_history_files_stay_out_of_the_checkout(repo: Path) -> None:
    result = run_agent(
        resolve_agent("aider"), PROMPT, repo, task_id="T-1", timeout=20, idle_timeout=None
    )
    assert ended_well(result), result.output
    assert not list(repo.glob(".aider*"))


def test_gemini_is_told_to_trust_the_checkout(repo: Path) -> None:
    result = run_agent(
        resolve_agent("gemini"), PROMPT, repo, task_id="T-1", timeout=20, idle_timeout=None
    )
    assert _said(result.output, "trust") == "true"


def test_extra_arguments_after_a_preset_word_are_appended(repo: Path) -> None:
    agent = resolve_agent("claude --model 'opus 4'")
    assert agent.name == "claude"
    assert agent.command == PRESETS["claude"].command + " --model 'opus 4'"
    result = run_agent(agent, PROMPT, repo, task_id="T-1", timeout=20, idle_timeout=None)
    assert ended_well(result), result.output
    assert (repo / "agent_was_here.txt").read_text().endswith("model=opus 4\n")


def test_claude_code_is_another_name_for_claude() -> None:
    assert resolve_agent("claude-code") == PRESETS["claude"]


def test_the_stand_ins_reject_what_the_real_clis_would(repo: Path) -> None:
    """So a preset with a wrong or missing flag fails these tests instead of a night's work."""
    unknown_flag = run_agent(
        resolve_agent("codex --full-automatic"),
        PROMPT,
        repo,
        task_id="T",
        timeout=20,
        idle_timeout=None,
    )
    assert unknown_flag.exit_code == 2
    assert "unrecognized arguments: --full-automatic" in unknown_flag.output
    missing_flag = AgentSpec("claude", "claude -p --output-format text", ())
    result = run_agent(missing_flag, PROMPT, repo, task_id="T", timeout=20, idle_timeout=None)
    assert result.exit_code == 3 and not (repo / "agent_was_here.txt").exists()


def test_a_raw_command_gets_the_prompt_on_stdin_and_in_a_file_and_the_task_id(repo: Path) -> None:
    agent = resolve_agent(
        'cat > from_stdin.txt; cp "$GITOPS_AGENT_PROMPT_FILE" from_file.txt;'
        ' printf %s "$GITOPS_AGENT_TASK_ID" > task.txt'
    )
    assert agent.name == "command"
    result = run_agent(agent, PROMPT, repo, task_id="T-42", timeout=20, idle_timeout=None)
    assert ended_well(result) and result.agent == "command"
    assert (repo / "from_stdin.txt").read_text() == PROMPT
    assert (repo / "from_file.txt").read_text() == PROMPT
    assert (repo / "task.txt").read_text() == "T-42"


def test_a_command_that_does_not_start_with_a_preset_word_is_run_as_written() -> None:
    raw = resolve_agent("x")
    assert resolve_agent("  my-agent --fast  ") == AgentSpec(
        "command", "my-agent --fast", raw.rate_limit_patterns, env=raw.env
    )
    # A raw command may wrap any CLI: it is given every preset's API variables.
    assert {"ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY"} <= set(raw.env)
    assert resolve_agent("command claude -p").name == "command"


@pytest.mark.parametrize("spec", ["", "   \n"])
def test_an_empty_agent_is_a_user_error(spec: str) -> None:
    with pytest.raises(UserError, match="empty"):
        resolve_agent(spec)


def test_an_agent_that_outlives_its_timeout_is_not_ok(repo: Path) -> None:
    result = run_agent(
        resolve_agent("sleep 30"), PROMPT, repo, task_id="T", timeout=1, idle_timeout=None
    )
    assert result.timed_out and result.exit_code is None and not ended_well(result)
    assert result.rate_limit is None


def _close_to(when: datetime | None, expected: datetime) -> bool:
    return when is not None and abs(when - expected) < timedelta(seconds=30)


@pytest.mark.parametrize(
    ("preset", "says", "resumes"),
    [
        ("claude", "Claude AI usage limit reached|1735689600", datetime(2025, 1, 1, tzinfo=UTC)),
        ("codex", "You've hit your usage limit", timedelta(days=2, hours=17, minutes=14)),
        ("gemini", "You have exhausted your capacity", timedelta(hours=1, minutes=49, seconds=8)),
        ("aider", "The API provider has rate limited you", None),
    ],
)
def test_a_rate_limit_is_recognised_with_its_resume_time(
    preset: str,
    says: str,
    resumes: datetime | timedelta | None,
    repo: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STAND_IN_RATE_LIMIT", "1")
    started = datetime.now(UTC)
    result = run_agent(
        resolve_agent(preset), PROMPT, repo, task_id="T-1", timeout=20, idle_timeout=None
    )
    assert not ended_well(result)
    assert result.rate_limit is not None, result.output
    assert says in result.rate_limit.message
    if isinstance(resumes, timedelta):
        assert _close_to(result.rate_limit.resume_at, started + resumes)
    else:
        assert result.rate_limit.resume_at == resumes
    assert not (repo / "agent_was_here.txt").exists()


def test_aider_exits_0_after_giving_up_on_a_limit_and_is_still_recognised(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAND_IN_RATE_LIMIT", "1")
    result = run_agent(
        resolve_agent("aider"), PROMPT, repo, task_id="T", timeout=20, idle_timeout=None
    )
    assert result.exit_code == 0
    assert result.rate_limit is not None and not ended_well(result)


def test_aider_that_retried_past_a_limit_and_finished_is_ok(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAND_IN_RATE_LIMIT", "once")
    result = run_agent(
        resolve_agent("aider"), PROMPT, repo, task_id="T", timeout=20, idle_timeout=None
    )
    assert "rate limited you" in result.output
    assert ended_well(result) and result.rate_limit is None
    assert (repo / "agent_was_here.txt").exists()


@pytest.mark.parametrize("preset", ["claude", "codex", "aider", "gemini"])
def test_a_plain_failure_is_not_mistaken_for_a_rate_limit(
    preset: str, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAND_IN_FAIL", "1")
    result = run_agent(
        resolve_agent(preset), PROMPT, repo, task_id="T", timeout=20, idle_timeout=None
    )
    assert result.exit_code == 1
    assert result.rate_limit is None
    assert not ended_well(result)


def test_a_raw_command_is_checked_against_every_cli_message(repo: Path) -> None:
    agent = resolve_agent("echo 'working'; echo 'Error: 429 Too Many Requests' >&2; exit 1")
    result = run_agent(agent, PROMPT, repo, task_id="T", timeout=20, idle_timeout=None)
    assert result.rate_limit is not None
    assert result.rate_limit.message == "Error: 429 Too Many Requests"


def test_a_limit_message_from_an_agent_that_exited_0_is_ignored(repo: Path) -> None:
    agent = resolve_agent("echo 'I added handling for: usage limit reached'")
    result = run_agent(agent, PROMPT, repo, task_id="T", timeout=20, idle_timeout=None)
    assert ended_well(result) and result.rate_limit is None


def test_run_shell_runs_a_codemod_with_stdin_closed(repo: Path) -> None:
    (repo / "a.txt").write_text("foo\n")
    result = run_shell(
        'sed -i s/foo/bar/ a.txt && test -z "$(cat)" && echo "$GITOPS_AGENT_TASK_ID"',
        repo,
        task_id="T-7",
        timeout=10,
        idle_timeout=5,
    )
    assert ended_well(result) and result.agent == "shell"
    assert result.output == "T-7\n"
    assert (repo / "a.txt").read_text() == "bar\n"


def test_run_shell_does_not_look_for_rate_limits(repo: Path) -> None:
    result = run_shell(
        "echo 'usage limit reached'; exit 1", repo, task_id="T", timeout=10, idle_timeout=None
    )
    assert result.exit_code == 1 and result.rate_limit is None and not ended_well(result)


# Parsing what the CLIs say, at a fixed moment: Tuesday 10 March 2026, 14:00 in Paris (13:00 UTC).
NOW = datetime(2026, 3, 10, 14, 0, tzinfo=ZoneInfo("Europe/Paris"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Claude AI usage limit reached|1735689600", datetime(2025, 1, 1, tzinfo=UTC)),
        ("Claude AI usage limit reached|1735689600000", datetime(2025, 1, 1, tzinfo=UTC)),
        (
            "Claude usage limit reached. Your limit will reset at 5pm (Europe/Warsaw).",
            datetime(2026, 3, 10, 16, 0, tzinfo=UTC),
        ),
        ("5-hour limit reached ∙ resets 1am", datetime(2026, 3, 11, 0, 0, tzinfo=UTC)),
        ("You've hit your usage limit · resets 3pm", datetime(2026, 3, 10, 14, 0, tzinfo=UTC)),
        ("Session limit reached ∙ resets 11am", datetime(2026, 3, 11, 10, 0, tzinfo=UTC)),
        ("Weekly limit reached ∙ resets Oct 9, 10am", datetime(2026, 10, 9, 8, 0, tzinfo=UTC)),
        (
            "■ You've hit your usage limit. Upgrade to Pro (https://openai.com/chatgpt/pricing) or"
            " try again in 2 days 17 hours 14 minutes.",
            datetime(2026, 3, 13, 6, 14, tzinfo=UTC),
        ),
        (
            "You've hit your usage limit. Visit https://chatgpt.com/codex/settings/usage to"
            " purchase more credits or try again at 3:28 PM.",
            datetime(2026, 3, 10, 14, 28, tzinfo=UTC),
        ),
        (
            "You've hit your usage limit. Upgrade to Plus to continue using Codex, or try again at"
            " Jul 5th, 2026 8:19 PM.",
            datetime(2026, 7, 5, 18, 19, tzinfo=UTC),
        ),
        (
            "TerminalQuotaError: You have exhausted your capacity on this model. Your quota will"
            " reset after 1h49m8s.",
            datetime(2026, 3, 10, 14, 49, 8, tzinfo=UTC),
        ),
        ("try again in 2h 30m", datetime(2026, 3, 10, 15, 30, tzinfo=UTC)),
        ("retry after 60 seconds", datetime(2026, 3, 10, 13, 1, tzinfo=UTC)),
        ("Retry-After: 120", datetime(2026, 3, 10, 13, 2, tzinfo=UTC)),
        ('"retryDelay": "34s"', datetime(2026, 3, 10, 13, 0, 34, tzinfo=UTC)),
        (
            '"quotaResetTimeStamp": "2026-03-10T19:14:08Z"',
            datetime(2026, 3, 10, 19, 14, 8, tzinfo=UTC),
        ),
        ("resets at 15:00 UTC", datetime(2026, 3, 10, 15, 0, tzinfo=UTC)),
        ("Try again later or check your quotas.", None),
        ("API Error: 429 rate_limit_error", None),
    ],
)
def test_parse_resume_at(text: str, expected: datetime | None) -> None:
    assert parse_resume_at(text, NOW) == expected


def test_detect_rate_limit_takes_the_last_message_and_a_time_on_the_next_line() -> None:
    output = (
        "working...\n"
        "\x1b[31mERROR: stream error: rate limit reached for requests\x1b[0m\n"
        "■ You've hit your usage limit. To get more access now, send a request to your admin\n"
        "or try again at 3:28 PM.\n"
    )
    limit = detect_rate_limit(output, PRESETS["codex"].rate_limit_patterns, now=NOW)
    assert limit is not None
    assert limit.message.startswith("■ You've hit your usage limit")
    assert limit.resume_at == datetime(2026, 3, 10, 14, 28, tzinfo=UTC)


def test_detect_rate_limit_finds_nothing_in_an_ordinary_failure() -> None:
    output = "FAILED tests/test_rate_limiter.py::test_limit - assert 429 == 200\nError: exit 1\n"
    for preset in PRESETS.values():
        assert detect_rate_limit(output, preset.rate_limit_patterns, now=NOW) is None


def test_the_hosts_tokens_are_not_passed_to_an_agent(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_secret")
    monkeypatch.setenv("GH_TOKEN", "ghs_secret")
    monkeypatch.setenv("SOMETHING_ELSE", "kept")  # named in agent_env
    monkeypatch.setenv("NOT_NAMED", "dropped")
    command = (
        'echo "${GITHUB_TOKEN:-none} ${GH_TOKEN:-none} $SOMETHING_ELSE ${NOT_NAMED:-none}"'
        " > seen.txt"
    )
    work = tmp_path / "work"
    work.mkdir()
    run_shell(command, work, task_id="t", timeout=10, idle_timeout=None)
    assert (work / "seen.txt").read_text() == "none none kept none\n"


def test_a_named_token_of_the_repository_host_is_still_withheld(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_secret")
    runner = Runner(RUNNER.sandbox, ("GITHUB_TOKEN",), (), None, None)
    work = tmp_path / "work"
    work.mkdir()
    agents.run_shell(
        'echo "${GITHUB_TOKEN:-none}" > seen.txt',
        work,
        runner=runner,
        scratch=tmp_path / "scratch",
        task_id="t",
        timeout=10,
        idle_timeout=None,
    )
    assert (work / "seen.txt").read_text() == "none\n"


def test_claude_codes_newer_429_wording_is_a_rate_limit() -> None:
    output = (
        "API Error: Request rejected (429) · Number of request tokens has exceeded your "
        "per-minute rate limit\n"
    )
    found = detect_rate_limit(output, PRESETS["claude"].rate_limit_patterns, now=NOW)
    assert found is not None and found.message.startswith("API Error: Request rejected (429)")
    ordinary = "API Error: Request rejected (400) · invalid request\n"
    assert detect_rate_limit(ordinary, PRESETS["claude"].rate_limit_patterns, now=NOW) is None


def test_real_aider_output_after_giving_up_on_a_429_is_a_usage_limit_with_its_resume_time() -> None:
    # The end of what aider 0.86.2 printed, after about 80 s of retries against a 429 whose
    # message said "Please try again in 2h.", before it exited 0.
    output = (
        "litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached for\n"
        "requests. Please try again in 2h.\n"
        "The API provider has rate limited you. Try again later or check your quotas.\n"
        "Retrying in 32.0 seconds...\n"
        "litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached for\n"
        "requests. Please try again in 2h.\n"
        "The API provider has rate limited you. Try again later or check your quotas.\n"
        "\n\nWarning: Input is not a terminal (fd=0).\n"
    )
    aider = PRESETS["aider"]
    found = detect_rate_limit(
        output,
        aider.rate_limit_patterns,
        now=NOW,
        exited_zero=True,
        retry_patterns=aider.retry_patterns,
    )
    assert found is not None and found.resume_at == NOW + timedelta(hours=2)
