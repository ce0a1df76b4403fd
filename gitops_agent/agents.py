"""The coding agents a task can be given to: ready-made presets for four CLIs, or any command.

Every agent is a command line run with `bash -c` in the task's own checkout, with the prompt on
stdin and in the file named by GITOPS_AGENT_PROMPT_FILE. An agent that stops because of a usage or
rate limit is told apart from one that failed the task, so a session can wait instead of giving up.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gitops_agent.errors import UserError
from gitops_agent.runner import Runner
from gitops_agent.sandbox import ProcessResult

TASK_ID_VARIABLE = "GITOPS_AGENT_TASK_ID"
PROMPT_FILE_VARIABLE = "GITOPS_AGENT_PROMPT_FILE"


SHELL = "shell"  # who did a `Run:` task's work: its `Agent:` trailer and the session's agent


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The agent said it hit a usage or rate limit, and when it may go on (if it said)."""

    message: str  # the line of the agent's output that says so
    resume_at: datetime | None  # timezone-aware UTC


@dataclass(frozen=True, slots=True)
class AgentResult:
    """How one agent (or `Run:` command) run ended, as the session judges it."""

    agent: str  # preset name, "command" or SHELL
    exit_code: int | None  # None when we killed it
    output: str
    timed_out: bool
    idle: bool
    duration: float
    rate_limit: RateLimit | None  # stopped by a usage or rate limit: not the task's failure


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """What to run (given to `bash -c` as is) and how to recognise its limit messages."""

    name: str  # "claude", "codex", "aider", "gemini", or "command" for a raw command
    command: str
    rate_limit_patterns: tuple[str, ...]  # case-insensitive regexes over output lines
    # Lines in which the agent says it will retry by itself. When given, a limit message with no
    # such line after it means the agent gave up, even if it exited 0 (aider does exactly that).
    retry_patterns: tuple[str, ...] = ()
    # Variables of the tool's environment the agent is given: how it reaches its model's API.
    env: tuple[str, ...] = ()
    # What the CLI leaves in its checkout that is never part of a change (gitignore patterns).
    leaves: tuple[str, ...] = ()
    # Files the CLI needs in its (private, empty) HOME: (path under HOME, content).
    home_files: tuple[tuple[str, str], ...] = ()
    # The CLI's version this preset was proven with, end to end (tests/test_real_agents.py);
    # None where only a stand-in has been run.
    proven_version: str | None = None
    # How to bound the agent's turns (`max_agent_turns`): an option of its command line, or a
    # key (dotted) of the JSON settings file among `home_files`; None where the CLI has neither.
    turns_option: str | None = None
    turns_setting: tuple[str, str] | None = None  # (home file, dotted key)

    def with_turns(self, turns: int) -> AgentSpec:
        """This agent, bounded to `turns` model turns where its CLI can be (0: unbounded)."""
        if turns <= 0:
            return self
        if self.turns_option is not None:
            return replace(self, command=f"{self.command} {self.turns_option} {turns}")
        if self.turns_setting is not None:
            name, key = self.turns_setting
            files = dict(self.home_files)
            settings = json.loads(files.get(name, "{}"))
            *parents, last = key.split(".")
            place = settings
            for part in parents:
                place = place.setdefault(part, {})
            place[last] = turns
            files[name] = json.dumps(settings) + "\n"
            return replace(self, home_files=tuple(files.items()))
        return self


# Said, in one wording or another, by every API behind these CLIs.
_COMMON_LIMITS = (
    r"\brate[ _-]?limit(?:ed|_error| exceeded| reached)\b",
    r"\b429 too many requests\b",
    r"exceeded your current quota|insufficient_quota",
)
# Claude Code: "Claude AI usage limit reached|1735689600" (print mode), "Claude usage limit
# reached. Your limit will reset at 5pm (Europe/Warsaw).", "5-hour limit reached ∙ resets 1am",
# "You've hit your usage limit · resets 3pm", "API Error: 429 {...rate_limit_error...}",
# "API Error: 529 {...overloaded_error...}" (anthropics/claude-code issues 2087, 6119, 11429);
# since 2.1: "API Error: Request rejected (429) · <the API's message>" (seen with 2.1.332).
_CLAUDE_LIMITS = (
    r"usage limit reached",
    r"\blimit reached\b.*\bresets?\b",
    r"you(?:'|\u2019)?ve hit your (?:usage )?limit",
    r"overloaded_error|api error:?\s*(?:429|529)\b",
    r"api error:?\s*request rejected\s*\((?:429|529)\)",
)
# Codex CLI: "■ You've hit your usage limit. Upgrade to Pro (...) or try again in 2 days 17 hours
# 14 minutes." / "... or try again at 3:28 PM." (openai/codex issues 3124, 3899, 26668); backend
# error type "usage_limit_reached"; "exceeded retry limit, last status: 429 Too Many Requests".
_CODEX_LIMITS = (
    r"you(?:'|\u2019)?ve hit your usage limit",
    r"usage_limit_reached",
    r"rate limit reached for",
)
# Gemini CLI: "TerminalQuotaError: You have exhausted your capacity on this model. Your quota will
# reset after 1h49m8s.", API errors with "code": 429 and "status": "RESOURCE_EXHAUSTED"
# (google-gemini/gemini-cli issues 1088, 1848; packages/core/src/utils/googleQuotaErrors.ts).
_GEMINI_LIMITS = (
    r"resource_exhausted|ratelimitexceeded",
    r"exhausted your (?:capacity|daily quota)|quota will reset",
    r"quota exceeded|usage limit reached",
    r"(?:status|code)\W{0,3}429\b",
)
# aider: litellm's "litellm.RateLimitError: ..." then aider's own "The API provider has rate
# limited you. Try again later or check your quotas." (aider/exceptions.py), and on each retry
# "Retrying in 0.5 seconds..." (aider/coders/base_coder.py). After about a minute of retries it
# gives up and, with --message-file, still exits 0 (aider/main.py), hence retry_patterns.
_AIDER_LIMITS = (
    r"has rate limited you|ratelimiterror",
    r"servers are down or overloaded|overloaded_error",
)
_AIDER_RETRY = (r"^retrying in [\d.]+ seconds",)

_CLAUDE_ENV = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_MODEL",
    "ANTHROPIC_SMALL_FAST_MODEL",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
)
_CODEX_ENV = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "CODEX_API_KEY",
)
_GEMINI_ENV = (
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_GEMINI_BASE_URL",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_GENAI_USE_VERTEXAI",
)
# aider reaches every provider through litellm, and reads its own AIDER_* settings.
_AIDER_ENV = (*_CLAUDE_ENV, *_CODEX_ENV, *_GEMINI_ENV, "OPENROUTER_API_KEY", "DEEPSEEK_API_KEY")

_GEMINI_SETTINGS = '{"security": {"auth": {"selectedType": "gemini-api-key"}}}\n'

PRESETS: dict[str, AgentSpec] = {
    # Claude Code print mode: `-p` reads the prompt from stdin, works, prints and exits
    # (docs.anthropic.com/en/docs/claude-code/cli-reference). `--permission-mode acceptEdits`
    # would approve file edits only: every shell command (tests, builds) would be refused in print
    # mode, so the agent could not check its own work. We choose `--dangerously-skip-permissions`
    # because the agent runs confined in a throw-away checkout and nothing it does is kept unless
    # it passes every rule and the gate. As root, Claude Code accepts this flag only in a sandbox:
    # a confined run tells it so (IS_SANDBOX=1, see runner.py); an unconfined one does not.
    "claude": AgentSpec(
        name="claude",
        command="claude -p --output-format text --dangerously-skip-permissions",
        turns_option="--max-turns",
        rate_limit_patterns=_CLAUDE_LIMITS + _COMMON_LIMITS,
        env=_CLAUDE_ENV,
        proven_version="2.1.332",
    ),
    # Codex CLI: `codex exec` is the non-interactive mode, `-` reads the prompt from stdin, and
    # exec never asks for approval. `--sandbox workspace-write` lets it edit the checkout; it is
    # what `--full-auto` stood for, and newer releases warn that `--full-auto` is deprecated in
    # favour of it (codex-rs/exec/src/cli.rs). `--skip-git-repo-check` because the checkout is
    # ours, whatever kind of git directory it has; `--color never` keeps escapes out of the log.
    # Three things seen with Codex CLI 0.171.0 shape the rest:
    # - Confined by us, its own sandbox cannot start: every command failed with "bwrap: setting
    #   up uid map: Permission denied" (no capabilities and Landlock refuse the user namespace
    #   it needs), every patch with "Failed to write file", and its Landlock-only mode refuses
    #   ("filesystem-restricted execution requires bubblewrap"). So where it runs confined
    #   (IS_SANDBOX=1, see runner.py) it is told so with the flag made for that, "intended
    #   solely for running in environments that are externally sandboxed"; our sandbox then
    #   confines it instead. Unconfined, its own `workspace-write` sandbox applies.
    # - In an empty HOME, its built-in OpenAI provider takes its key from CODEX_API_KEY (or a
    #   login in ~/.codex, which a private HOME lacks), never from OPENAI_API_KEY: requests went
    #   out with no Authorization header at all. So CODEX_API_KEY defaults to OPENAI_API_KEY.
    # - It ignores OPENAI_BASE_URL, and `-c openai_base_url=...` first tries a WebSocket there
    #   (seven attempts, about 6 s, before it falls back to HTTP). A provider of its own has no
    #   WebSocket and reads its key from env_key, so when OPENAI_BASE_URL is set the preset
    #   defines one ("gateway") on that URL, speaking the Responses API (`<url>/responses`).
    "codex": AgentSpec(
        name="codex",
        command=(
            'CODEX_API_KEY="${CODEX_API_KEY:-$OPENAI_API_KEY}"'
            " codex exec --sandbox workspace-write --skip-git-repo-check --color never"
            " ${IS_SANDBOX:+--dangerously-bypass-approvals-and-sandbox}"
            " ${OPENAI_BASE_URL:+-c model_provider=gateway"
            ' -c "model_providers.gateway={name=\\"gateway\\", base_url=\\"$OPENAI_BASE_URL\\",'
            ' wire_api=\\"responses\\", env_key=\\"OPENAI_API_KEY\\"}"} -'
        ),
        rate_limit_patterns=_CODEX_LIMITS + _COMMON_LIMITS,
        env=_CODEX_ENV,
        proven_version="0.171.0",
    ),
    # aider does not read the prompt from stdin: `--message-file` runs one message and exits
    # (aider.chat/docs/scripting.html, aider/args.py). `--yes-always` answers its questions;
    # `--no-auto-commits --no-dirty-commits` because we commit ourselves; `--no-gitignore` so it
    # does not add `.aider*` to .gitignore; `--no-analytics` since `--yes-always` would otherwise
    # answer yes to the analytics opt-in; `--no-check-update --no-show-release-notes
    # --no-detect-urls` keep it from going online for anything but the task; `--no-stream
    # --no-pretty` give a plain log. Its history files go next to the prompt file, outside the
    # checkout. It still writes `.aider.tags.cache.v*/` (its repo map's cache, a binary
    # database) into the checkout root: seen with aider 0.86.2, which made every task break
    # the rules until that was left out of the change (`leaves`).
    "aider": AgentSpec(
        name="aider",
        command=(
            "aider --yes-always --no-auto-commits --no-dirty-commits --no-gitignore"
            " --no-analytics --no-check-update --no-show-release-notes --no-detect-urls"
            " --no-stream --no-pretty"
            ' --input-history-file "${GITOPS_AGENT_PROMPT_FILE%/*}/aider.input.history"'
            ' --chat-history-file "${GITOPS_AGENT_PROMPT_FILE%/*}/aider.chat.history.md"'
            ' --message-file "$GITOPS_AGENT_PROMPT_FILE"'
        ),
        rate_limit_patterns=_AIDER_LIMITS + _COMMON_LIMITS,
        retry_patterns=_AIDER_RETRY,
        env=_AIDER_ENV,
        leaves=(".aider*",),
        proven_version="0.86.2",
    ),
    # Gemini CLI: with stdin not a terminal it runs headless and takes stdin as the prompt
    # (packages/cli/src/gemini.tsx; geminicli.com/docs/cli/headless). `--yolo` approves every
    # tool call; newer releases also accept `--approval-mode=yolo` but refuse both together, so
    # extra args must not add it. With folder trust enabled, an untrusted folder silently drops
    # back to asking (packages/cli/src/config/config.ts); GEMINI_CLI_TRUST_WORKSPACE=true trusts
    # our checkout for this run only (packages/core/src/utils/trust.ts; ignored by older releases).
    # In an empty HOME, Gemini CLI 0.61 refuses to start ("Invalid auth method selected.") even
    # with GEMINI_API_KEY set: its settings must select API-key authentication.
    "gemini": AgentSpec(
        name="gemini",
        command="GEMINI_CLI_TRUST_WORKSPACE=true gemini --yolo",
        rate_limit_patterns=_GEMINI_LIMITS + _COMMON_LIMITS,
        env=_GEMINI_ENV,
        home_files=(
            (
                ".gemini/settings.json",
                '{"security": {"auth": {"selectedType": "gemini-api-key"}}}\n',
            ),
        ),
        turns_setting=(".gemini/settings.json", "model.maxSessionTurns"),
        proven_version="0.61.0",
    ),
}
_ALIASES = {"claude-code": "claude"}
# A raw command may wrap any of the CLIs, so it is checked against every known message.
_ALL_LIMITS = tuple(dict.fromkeys(p for spec in PRESETS.values() for p in spec.rate_limit_patterns))
_ALL_ENV = tuple(dict.fromkeys(v for spec in PRESETS.values() for v in spec.env))


def resolve_agent(spec: str) -> AgentSpec:
    """A preset word, optionally followed by extra arguments, or else a raw command line.

    `claude --model opus` is the claude preset with ` --model opus` appended exactly as written
    (quotes, `$VARS` and any pipe are bash's to read, as in a raw command). Anything whose first
    word is not a preset is a raw command, run as written; to run a CLI entirely your own way,
    start with `command`, e.g. `command claude -p --model opus`.
    """
    text = spec.strip()
    if not text:
        raise UserError("the agent command is empty: give a preset (claude, codex, aider, gemini)")
    first = text.split(maxsplit=1)[0]
    rest = text[len(first) :]
    preset = PRESETS.get(_ALIASES.get(first, first))
    if preset is None:
        return AgentSpec(
            name="command", command=text, rate_limit_patterns=_ALL_LIMITS, env=_ALL_ENV
        )
    return replace(preset, command=preset.command + rest)


def run_agent(
    agent: AgentSpec,
    prompt: str,
    workdir: Path,
    *,
    runner: Runner,
    scratch: Path,
    task_id: str,
    timeout: float,
    idle_timeout: float | None,
    on_output: Callable[[str], None] | None = None,
) -> AgentResult:
    """Run the agent, confined, in `workdir` with the prompt on stdin and in a file beside it.

    The prompt file lives in the agent's private `scratch` directory, emptied before the next
    command, so the agent's change never contains it. Limit messages are looked for when the
    agent did not exit 0.
    """
    prompt_file = scratch / "prompt.md"
    result = runner.run_agent(
        agent.command,
        workdir,
        scratch,
        preset_env=agent.env,
        extra_env={TASK_ID_VARIABLE: task_id, PROMPT_FILE_VARIABLE: str(prompt_file)},
        network=True,
        files={prompt_file.name: prompt.encode("utf-8")},
        home_files=dict(agent.home_files),
        stdin_text=prompt,
        timeout=timeout,
        idle_timeout=idle_timeout,
        on_output=on_output,
    )
    limit = detect_rate_limit(
        result.output,
        agent.rate_limit_patterns,
        now=datetime.now().astimezone(),
        exited_zero=result.exit_code == 0,
        retry_patterns=agent.retry_patterns,
    )
    return _agent_result(agent.name, result, limit)


def run_shell(
    command: str,
    workdir: Path,
    *,
    runner: Runner,
    scratch: Path,
    task_id: str,
    timeout: float,
    idle_timeout: float | None,
    on_output: Callable[[str], None] | None = None,
) -> AgentResult:
    """Run a plan task's `Run:` command (a codemod), confined and offline, stdin empty."""
    result = runner.run_agent(
        command,
        workdir,
        scratch,
        preset_env=(),
        extra_env={TASK_ID_VARIABLE: task_id},
        network=False,
        timeout=timeout,
        idle_timeout=idle_timeout,
        on_output=on_output,
    )
    return _agent_result(SHELL, result, None)


def _agent_result(name: str, result: ProcessResult, limit: RateLimit | None) -> AgentResult:
    return AgentResult(
        agent=name,
        exit_code=result.exit_code,
        output=result.output,
        timed_out=result.timed_out,
        idle=result.idle,
        duration=result.duration,
        rate_limit=limit,
    )


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def detect_rate_limit(
    output: str,
    patterns: Sequence[str],
    *,
    now: datetime,
    exited_zero: bool = False,
    retry_patterns: Sequence[str] = (),
) -> RateLimit | None:
    """The last output line matching `patterns`, with the resume time it (or the next line) states.

    A limit the agent then retried past (a `retry_patterns` line follows it) is not what stopped
    it. After exit 0 only agents known to exit 0 when they give up (with retry patterns) count.
    """
    if not patterns or (exited_zero and not retry_patterns):
        return None
    limit_re = re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
    lines = [_ANSI.sub("", line) for line in output.splitlines()]
    hits = [i for i, line in enumerate(lines) if limit_re.search(line)]
    if not hits:
        return None
    if retry_patterns:
        retry_re = re.compile("|".join(f"(?:{p})" for p in retry_patterns), re.IGNORECASE)
        if any(retry_re.search(line.strip()) for line in lines[hits[-1] + 1 :]):
            return None
    # The message is the last one that says when to resume, else simply the last one (a CLI
    # may end with a bare "status: 429" after the sentence that says it all).
    resume_at, said = None, hits[-1]
    for i in reversed(hits):
        resume_at = parse_resume_at(" ".join(lines[i : i + 2]), now)
        if resume_at is not None:
            said = i
            break
    message = lines[said].strip()
    return RateLimit(message=message[:500], resume_at=resume_at)


_EPOCH = re.compile(r"(?:\||resets?_at\W{0,3})\s*(\d{10}|\d{13})\b", re.IGNORECASE)
_ISO = re.compile(
    r"(?:reset|retry|try again|available|resume)\D{0,40}?"
    r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2}))",
    re.IGNORECASE,
)
_UNIT = r"(?:ms|milliseconds?|d|days?|h|hrs?|hours?|m|mins?|minutes?|s|secs?|seconds?)(?![a-z])"
_DURATION = re.compile(
    r"(?:retrydelay|try again|retry|resets?|available again)\W{0,3}(?:in|after)?\W{0,3}"
    rf"((?:\d+(?:\.\d+)?\s*{_UNIT}[\s,]*(?:and\s+)?)+|\d+(?:\.\d+)?(?![\d:.]|\s*[a-z]))",
    re.IGNORECASE,
)
_PART = re.compile(rf"(\d+(?:\.\d+)?)\s*({_UNIT})", re.IGNORECASE)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_CLOCK = re.compile(
    r"(?:resets?|try again|available)\s+(?:at\s+|on\s+)?"
    r"(?:(?P<mon>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(?P<day>\d{1,2})"
    r"(?:st|nd|rd|th)?,?\s*(?:(?P<year>\d{4}),?\s*)?(?:at\s+)?)?"
    r"(?P<hour>\d{1,2})(?::(?P<min>\d{2}))?\s*(?P<ampm>[ap]\.?m\.?)?(?![\w:])"
    r"(?:\s*\(?(?P<tz>utc|gmt|[a-z]+/[a-z_]+(?:[+-]\d{1,2})?(?:/[a-z_]+)?)\)?)?",
    re.IGNORECASE,
)


def parse_resume_at(text: str, now: datetime) -> datetime | None:
    """When a limit message says the agent may go on, in UTC; None when it does not say.

    Understands an epoch after `|` (Claude Code), ISO timestamps, durations ("try again in 2h 30m",
    "retry after 60 seconds", "reset after 1h49m8s") and clock times ("resets 3pm",
    "try again at Aug 8th, 2026 12:30 PM", "reset at 5pm (Europe/Warsaw)"). `now` must be aware;
    clock times without a zone are in its zone (pass local time).
    """
    if m := _EPOCH.search(text):
        value = int(m.group(1))
        return datetime.fromtimestamp(value / 1000 if value > 10**11 else value, UTC)
    if m := _ISO.search(text):
        try:
            return datetime.fromisoformat(m.group(1)).astimezone(UTC)
        except ValueError:
            pass  # not a real date after all; try the other forms
    if m := _DURATION.search(text):
        return (now + timedelta(seconds=_seconds(m.group(1)))).astimezone(UTC)
    if m := _CLOCK.search(text):
        return _clock_time(m, now)
    return None


def _seconds(duration: str) -> float:
    parts = _PART.findall(duration)
    if not parts:
        return float(duration)  # a bare number, as in "Retry-After: 60", is seconds
    total = 0.0
    for number, unit in parts:
        unit = unit.lower()
        if unit == "ms" or unit.startswith("milli"):
            total += float(number) / 1000
        else:
            total += float(number) * {"d": 86400, "h": 3600, "m": 60, "s": 1}[unit[0]]
    return total


def _clock_time(m: re.Match[str], now: datetime) -> datetime | None:
    hour, minute, ampm = int(m["hour"]), int(m["min"] or 0), (m["ampm"] or "").lower()
    if not ampm and m["min"] is None:
        return None  # a bare number is no time of day
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm.startswith("p") else 0)
    if hour > 23 or minute > 59:
        return None
    zone = _zone(m["tz"], now.tzinfo)
    local_now = now.astimezone(zone)
    try:
        if m["mon"]:
            year = int(m["year"]) if m["year"] else local_now.year
            month = _MONTHS.index(m["mon"].lower()[:3]) + 1
            when = datetime(year, month, int(m["day"]), hour, minute, tzinfo=zone)
            if not m["year"] and when < local_now - timedelta(days=1):
                when = when.replace(year=year + 1)
        else:
            when = local_now.replace(hour=hour, minute=minute, second=0, microsecond=0)
            if when <= local_now:
                when += timedelta(days=1)
    except ValueError:  # Feb 30th and the like
        return None
    return when.astimezone(UTC)


def _zone(name: str | None, default: tzinfo | None) -> tzinfo | None:
    if not name:
        return default
    if name.upper() in ("UTC", "GMT"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return default


_VERSION = re.compile(r"\b(\d+\.\d+\.\d+)\b")


def installed_version(executable: str, env: Mapping[str, str]) -> str | None:
    """What `<executable> --version` says its version is; None when it does not say."""
    try:
        result = subprocess.run(
            [executable, "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            env=dict(env),
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = _VERSION.search(result.stdout + result.stderr)
    return found[1] if found else None


def require_installed(agent: AgentSpec, path: str | None, line: int | None) -> None:
    """A preset whose CLI is not installed would fail every task: say so before running any."""
    if agent.name == "command":
        return
    words = [w for w in shlex.split(agent.command) if "=" not in w]
    if words and shutil.which(words[0]) is None:
        raise UserError(
            f"the agent preset `{agent.name}` needs `{words[0]}` on PATH, and it is not there",
            path,
            line,
        )
