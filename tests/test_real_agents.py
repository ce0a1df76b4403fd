"""The real Claude Code CLI, confined, doing a task through gitops-agent against a scripted model.

The CLI (npm `@anthropic-ai/claude-code`) is looked for on PATH; `.ci/run` installs it, and
without it these tests skip. The model is `testing.model_server`, on loopback: it asks for one
tool call and then ends the turn, and it keeps every request, so a test sees exactly what the
agent would have sent to its model provider.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from testing.fixtures import CLI, git, make_repo
from testing.model_server import serving, serving_chat, serving_gemini, serving_responses
from testing.project import session_branches, task_block, user_state

CLAUDE = shutil.which("claude")
needs_claude = pytest.mark.skipif(CLAUDE is None, reason="Claude Code is not installed")

SECRETS = {
    "GITHUB_TOKEN": "ghp_RealCliFakeToken0123456789abcdef",
    "GITOPS_AGENT_TOKEN": "github_pat_RealCliFake0123456789",
    "AWS_SECRET_ACCESS_KEY": "RealCliFakeAwsSecret0123456789abcd",
}
API_KEY = "sk-ant-api03-RealCliFakeKey0123456789"
# Fails until src/greeting.py says hello. The words it prints are not in its command (which the
# plan holds, and agents read the plan): only a failed gate puts them in a prompt.
FEEDBACK_GATE = (
    "grep -q hello src/greeting.py || { echo GATE: greeting must say $(echo hel)lo; exit 1; }"
)


def project(tmp_path: Path, gate: str, rules: str = "", agent: str = "claude") -> Path:
    plan = (
        f"---\ngate:\n  - {json.dumps(gate)}\nagent: {json.dumps(agent)}\n---\n# Plan\n\n"
        "### Ready for Autonomous Execution ✅\n\n" + task_block("t1", "Add a greeting module")
    )
    files = {"PROJECT_PLAN.md": plan, "src/app.py": "x = 1\n", "README.md": "r\n"}
    if rules:
        files["docs/autonomous-constraints.md"] = f"# Rules\n\n```yaml\n{rules}```\n"
    return make_repo(tmp_path / "repo", files)


def claude_env(
    home: Path, url: str | None, extra_env: dict[str, str] | None = None
) -> dict[str, str]:
    """The tool's environment, secrets in it, with Claude Code pointed at the scripted model."""
    env = {**os.environ, **SECRETS, "HOME": str(home), **(extra_env or {})}
    if url is not None:
        env |= {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": API_KEY}
    env.pop("XDG_CACHE_HOME", None)
    return env


def run_with(
    repo: Path, home: Path, url: str | None, extra_env: dict[str, str] | None = None
) -> dict[str, Any]:
    env = claude_env(home, url, extra_env)
    result = subprocess.run(
        [*CLI, "run", "--json"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def fake_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("RealCliFakePrivateKeyMaterial\n")
    (home / ".gitconfig").write_text("[user]\n\tname = Person\n")
    return home


@needs_claude
def test_claude_code_does_a_task_confined_and_its_work_is_committed(tmp_path: Path) -> None:
    repo = project(tmp_path, "test -f src/app.py")
    home = fake_home(tmp_path)

    def script(workdir: str, _request: str) -> tuple[str, dict[str, Any]]:
        return "Write", {"file_path": f"{workdir}/src/greeting.py", "content": "HI = 'hi'\n"}

    with serving(script) as model:
        data = run_with(repo, home, model.url)
    assert [(t["id"], t["outcome"]) for t in data["tasks"]] == [("t1", "committed")], data
    commit = data["tasks"][0]["commit"]
    assert git(repo, "show", f"{commit}:src/greeting.py") == "HI = 'hi'\n"
    # The CLI got the prompt, and ran in a checkout outside the repository.
    first = json.dumps(model.requests[0])
    assert "Add a greeting module" in first
    assert str(repo) not in first.split("Primary working directory: ")[1][:300]
    # Its preset's key reached it (the model saw it as the API key), and nothing else did.
    assert set(model.api_keys) == {API_KEY}


@needs_claude
def test_claude_code_told_to_attack_reaches_nothing_and_leaks_nothing(tmp_path: Path) -> None:
    repo = project(tmp_path, "test -f src/app.py")
    home = fake_home(tmp_path)
    marker = f"real-cli-{uuid.uuid4().hex[:8]}"
    users_git = repo / ".git"
    attack = "; ".join(
        [
            "env",
            "cat /proc/$PPID/environ /proc/1/environ /proc/*/environ 2>/dev/null | tr '\\0' '\\n'",
            f"cat {home}/.ssh/id_ed25519",
            f"git --git-dir={users_git} update-ref refs/heads/main HEAD~0 2>&1",
            f"git --git-dir={users_git} config core.hooksPath /tmp/{marker} 2>&1",
            f"echo pwned > {repo}/README.md",
            f"echo x > {home}/.bashrc",
            f"touch /tmp/{marker}",
            f"(setsid bash -c 'exec -a {marker} sleep 300' &)",
            "echo 'x = 2' > src/app.py",
            "true",
        ]
    )

    def script(_workdir: str, _request: str) -> tuple[str, dict[str, Any]]:
        return "Bash", {"command": attack, "description": "look around"}

    before = user_state(repo)
    home_before = {p: p.read_bytes() for p in home.rglob("*") if p.is_file()}
    with serving(script) as model:
        data = run_with(repo, home, model.url)
    seen = model.seen()
    # The tool's results went back to the model: nothing secret was in them.
    assert '"tool_result"' in seen
    for value in [*SECRETS.values(), "RealCliFakePrivateKeyMaterial"]:
        assert value not in seen
    assert user_state(repo) == before
    assert {
        p: p.read_bytes()
        for p in home.rglob("*")
        if p.is_file() and ".cache" not in p.relative_to(home).parts
    } == home_before
    assert not Path(f"/tmp/{marker}").exists()
    # Its one honest-looking edit, inside its checkout, is judged like any other.
    assert data["tasks"][0]["outcome"] in ("committed", "rolled_back")
    assert all(marker not in git(repo, "log", "-p", branch) for branch in session_branches(repo))
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    assert left.stdout.split() == []  # its daemon died with it


@needs_claude
def test_claude_codes_rate_limit_stops_the_session_without_failing_the_task(
    tmp_path: Path,
) -> None:
    # Claude Code 2.1 says "API Error: Request rejected (429) · <message>" and exits 1 at
    # once when the API asks it to wait longer than it would.
    repo = project(tmp_path, "test -f src/app.py")
    home = fake_home(tmp_path)
    limited = (86400, "Number of request tokens has exceeded your per-minute rate limit")
    with serving(lambda _w, _r: ("Write", {}), rate_limited=limited) as model:
        data = run_with(repo, home, model.url)
    [task] = data["tasks"]
    assert (task["outcome"], task["attempts"]) == ("skipped", 1), task
    assert "usage limit" in task["reason"] and "Request rejected (429)" in task["reason"]
    assert session_branches(repo) == []


@needs_claude
def test_the_second_attempt_of_claude_code_gets_the_gate_failure_as_feedback(
    tmp_path: Path,
) -> None:
    # The words the gate prints are not in its command (which the plan, read by the agent,
    # holds): only a failed gate puts them in a prompt.
    gate = (
        "grep -q hello src/greeting.py || { echo GATE: greeting must say $(echo hel)lo; exit 1; }"
    )
    repo = project(tmp_path, f"test ! -e src/greeting.py || ( {gate} )")

    def script(workdir: str, request: str) -> tuple[str, dict[str, Any]]:
        said = "hello" if "GATE: greeting must say hello" in request else "hi"
        content = f"HI = '{said}'\n"
        return "Write", {"file_path": f"{workdir}/src/greeting.py", "content": content}

    with serving(script) as model:
        data = run_with(repo, fake_home(tmp_path), model.url)
    [task] = data["tasks"]
    assert (task["outcome"], task["attempts"]) == ("committed", 2), task
    assert git(repo, "show", f"{task['commit']}:src/greeting.py") == "HI = 'hello'\n"
    prompts = [json.dumps(r) for r in model.requests if '"tool_result"' not in json.dumps(r)]
    assert "Attempt 1" not in prompts[0] and "greeting must say hello" in prompts[1]


@needs_claude
def test_claude_code_waiting_on_a_silent_api_is_stopped_by_the_idle_timeout(
    tmp_path: Path,
) -> None:
    repo = project(tmp_path, "test -f src/app.py", rules="idle_timeout_minutes: 0.05\n")
    with serving(lambda _w, _r: ("Write", {}), stall=60) as model:
        data = run_with(repo, fake_home(tmp_path), model.url)
    [task] = data["tasks"]
    assert (task["outcome"], task["attempts"]) == ("rolled_back", 1), task
    assert "silent" in task["reason"]
    assert model.requests  # it was waiting on its model, not idle for another reason


AIDER = shutil.which("aider")


@pytest.mark.skipif(AIDER is None, reason="aider is not installed")
def test_aider_does_a_task_confined_and_only_its_edit_is_committed(tmp_path: Path) -> None:
    def answer(_request: str) -> str:
        return "src/greeting.py\n```python\nHI = 'hi'\n```\n"

    with serving_chat(answer) as model:
        agent = f"aider --model openai/scripted --edit-format whole --openai-api-base {model.url}"
        repo = project(tmp_path, "test -f src/app.py", agent=agent)
        env = {"OPENAI_API_KEY": API_KEY}
        data = run_with(repo, fake_home(tmp_path), None, extra_env=env)
    [task] = data["tasks"]
    assert (task["outcome"], task["attempts"]) == ("committed", 1), task
    files = git(repo, "show", "--name-only", "--format=", task["commit"]).split()
    # Its repo map's cache (.aider.tags.cache.v4/) stays out of the change.
    assert sorted(files) == ["PROJECT_PLAN.md", "src/greeting.py"]
    assert git(repo, "show", f"{task['commit']}:src/greeting.py") == "HI = 'hi'\n"
    assert "Add a greeting module" in model.seen()
    assert set(model.api_keys) == {API_KEY}
    for value in SECRETS.values():
        assert value not in model.seen()


GEMINI = shutil.which("gemini")


@pytest.mark.skipif(GEMINI is None, reason="Gemini CLI is not installed")
def test_gemini_cli_does_a_task_confined_and_its_work_is_committed(tmp_path: Path) -> None:
    def script(workdir: str, _request: str) -> tuple[str, dict[str, Any]]:
        return "write_file", {"file_path": f"{workdir}/src/greeting.py", "content": "HI = 'hi'\n"}

    with serving_gemini(script) as model:
        repo = project(tmp_path, "test -f src/app.py", agent="gemini")
        env = {"GOOGLE_GEMINI_BASE_URL": model.url, "GEMINI_API_KEY": API_KEY}
        data = run_with(repo, fake_home(tmp_path), None, extra_env=env)
    [task] = data["tasks"]
    assert (task["outcome"], task["attempts"]) == ("committed", 1), task
    assert git(repo, "show", f"{task['commit']}:src/greeting.py") == "HI = 'hi'\n"
    assert "Add a greeting module" in model.seen()
    assert set(model.api_keys) == {API_KEY}
    for value in SECRETS.values():
        assert value not in model.seen()


@pytest.mark.skipif(GEMINI is None, reason="Gemini CLI is not installed")
def test_gemini_clis_quota_answer_stops_the_session_with_its_resume_time(tmp_path: Path) -> None:
    quota = (7200, "Quota exceeded for metric: generate_content_free_tier_requests")
    with serving_gemini(lambda _w, _r: ("write_file", {}), rate_limited=quota) as model:
        repo = project(tmp_path, "test -f src/app.py", agent="gemini")
        env = {"GOOGLE_GEMINI_BASE_URL": model.url, "GEMINI_API_KEY": API_KEY}
        data = run_with(repo, fake_home(tmp_path), None, extra_env=env)
    [task] = data["tasks"]
    assert (task["outcome"], task["attempts"]) == ("skipped", 1), task
    assert "Quota exceeded" in task["reason"]
    assert "It can resume after" in task["reason"]  # 7200 s from when it was said


@pytest.mark.skipif(GEMINI is None, reason="Gemini CLI is not installed")
def test_the_second_attempt_of_gemini_cli_gets_the_gate_failure_as_feedback(
    tmp_path: Path,
) -> None:
    # The words the gate prints are not in its command (which the plan, read by the agent,
    # holds): only a failed gate puts them in a prompt.
    gate = (
        "grep -q hello src/greeting.py || { echo GATE: greeting must say $(echo hel)lo; exit 1; }"
    )

    def script(workdir: str, request: str) -> tuple[str, dict[str, Any]]:
        said = "hello" if "GATE: greeting must say hello" in request else "hi"
        return "write_file", {"file_path": f"{workdir}/src/greeting.py", "content": said + "\n"}

    with serving_gemini(script) as model:
        repo = project(tmp_path, f"test ! -e src/greeting.py || ( {gate} )", agent="gemini")
        env = {"GOOGLE_GEMINI_BASE_URL": model.url, "GEMINI_API_KEY": API_KEY}
        data = run_with(repo, fake_home(tmp_path), None, extra_env=env)
    [task] = data["tasks"]
    assert (task["outcome"], task["attempts"]) == ("committed", 2), task
    assert git(repo, "show", f"{task['commit']}:src/greeting.py") == "hello\n"


@pytest.mark.skipif(GEMINI is None, reason="Gemini CLI is not installed")
def test_gemini_cli_waiting_on_a_silent_api_is_stopped_by_the_idle_timeout(
    tmp_path: Path,
) -> None:
    with serving_gemini(lambda _w, _r: ("write_file", {}), stall=60) as model:
        repo = project(
            tmp_path, "test -f src/app.py", rules="idle_timeout_minutes: 0.05\n", agent="gemini"
        )
        env = {"GOOGLE_GEMINI_BASE_URL": model.url, "GEMINI_API_KEY": API_KEY}
        data = run_with(repo, fake_home(tmp_path), None, extra_env=env)
    [task] = data["tasks"]
    assert (task["outcome"], task["attempts"]) == ("rolled_back", 1), task
    assert "silent" in task["reason"]


@pytest.mark.skipif(AIDER is None, reason="aider is not installed")
def test_the_second_attempt_of_aider_gets_the_gate_failure_as_feedback(tmp_path: Path) -> None:
    # The words the gate prints are not in its command (which the plan, read by the agent,
    # holds): only a failed gate puts them in a prompt.
    gate = (
        "grep -q hello src/greeting.py || { echo GATE: greeting must say $(echo hel)lo; exit 1; }"
    )

    def answer(request: str) -> str:
        said = "hello" if "GATE: greeting must say hello" in request else "hi"
        return f"src/greeting.py\n```python\n{said}\n```\n"

    with serving_chat(answer) as model:
        agent = f"aider --model openai/scripted --edit-format whole --openai-api-base {model.url}"
        repo = project(tmp_path, f"test ! -e src/greeting.py || ( {gate} )", agent=agent)
        data = run_with(repo, fake_home(tmp_path), None, extra_env={"OPENAI_API_KEY": API_KEY})
    [task] = data["tasks"]
    assert (task["outcome"], task["attempts"]) == ("committed", 2), task
    assert git(repo, "show", f"{task['commit']}:src/greeting.py") == "hello\n"


@pytest.mark.skipif(AIDER is None, reason="aider is not installed")
def test_aider_waiting_on_a_silent_api_is_stopped_by_the_idle_timeout(tmp_path: Path) -> None:
    with serving_chat(lambda _r: "", stall=60) as model:
        agent = f"aider --model openai/scripted --edit-format whole --openai-api-base {model.url}"
        repo = project(
            tmp_path, "test -f src/app.py", rules="idle_timeout_minutes: 0.05\n", agent=agent
        )
        data = run_with(repo, fake_home(tmp_path), None, extra_env={"OPENAI_API_KEY": API_KEY})
    [task] = data["tasks"]
    assert (task["outcome"], task["attempts"]) == ("rolled_back", 1), task
    assert "silent" in task["reason"]


CODEX = shutil.which("codex")
needs_codex = pytest.mark.skipif(CODEX is None, reason="Codex CLI is not installed")
# Codex reads src/app.py and changes it from `x = 1` to `x = 2`.
READ_APP = ("shell", "cat src/app.py")
EDIT_APP = (
    "patch",
    "*** Begin Patch\n*** Update File: src/app.py\n@@\n-x = 1\n+x = 2\n*** End Patch\n",
)


def run_codex(repo: Path, tmp_path: Path, url: str) -> dict[str, Any]:
    """`gitops-agent run` with its API at `url` through OPENAI_BASE_URL, which the codex preset
    turns into a provider of Codex's own (Codex itself ignores that variable)."""
    env = {"OPENAI_BASE_URL": url, "OPENAI_API_KEY": API_KEY}
    return run_with(repo, fake_home(tmp_path), None, extra_env=env)


@needs_codex
@pytest.mark.parametrize(
    "agent",
    [
        # Its default model gets its tools behind a JavaScript `exec` tool.
        "codex",
        # A model it has no metadata for gets plain `exec_command` (apply_patch through it).
        "codex -m scripted",
    ],
    ids=["exec-tool", "plain-tools"],
)
def test_codex_does_a_task_confined_and_only_its_edit_is_committed(
    tmp_path: Path, agent: str
) -> None:
    # Between the read and the edit it shows its model its own process's environment and its
    # shell's: that reaches the model (its own key is in it), the secrets do not.
    dump = ("shell", "tr '\\0' '\\n' < /proc/$PPID/environ; env")
    with serving_responses(lambda _w, _r: [READ_APP, dump, EDIT_APP]) as model:
        repo = project(tmp_path, "test -f src/app.py", agent=agent)
        data = run_codex(repo, tmp_path, model.url)
    [task] = data["tasks"]
    assert (task["outcome"], task["attempts"]) == ("committed", 1), task
    files = git(repo, "show", "--name-only", "--format=", task["commit"]).split()
    assert sorted(files) == ["PROJECT_PLAN.md", "src/app.py"]
    assert git(repo, "show", f"{task['commit']}:src/app.py") == "x = 2\n"
    first, read, dumped, _edited = [json.dumps(r) for r in model.requests]
    assert "Add a greeting module" in first
    assert "x = 1" in read  # the file, as the tool's result
    assert "IS_SANDBOX=1" in dumped and API_KEY in dumped
    assert set(model.api_keys) == {API_KEY}
    for value in SECRETS.values():
        assert value not in model.seen()


@needs_codex
def test_codexs_usage_limit_stops_the_session_with_its_resume_time(tmp_path: Path) -> None:
    # A 429 of type usage_limit_reached: Codex 0.171 stops at once with "ERROR: You've hit your
    # usage limit. ... or try again at 12:47 PM." (its resets_at; a typographic apostrophe).
    limited = (7200, "The usage limit has been reached")
    with serving_responses(lambda _w, _r: [], rate_limited=limited) as model:
        repo = project(tmp_path, "test -f src/app.py", agent="codex")
        data = run_codex(repo, tmp_path, model.url)
    [task] = data["tasks"]
    assert (task["outcome"], task["attempts"]) == ("skipped", 1), task
    assert "hit your usage limit" in task["reason"]
    assert "It can resume after" in task["reason"]  # 7200 s from when it was said
    assert len(model.requests) == 1 and session_branches(repo) == []


@needs_codex
def test_codexs_rate_limit_stops_the_session_without_failing_the_task(tmp_path: Path) -> None:
    # The OpenAI platform's 429 (code rate_limit_exceeded): with no retry-after, Codex 0.171
    # gives up at once with "exceeded retry limit, last status: 429 Too Many Requests".
    message = "Rate limit reached for scripted in organization org-scripted on requests per min."
    with serving_responses(
        lambda _w, _r: [], rate_limited=(0, message), limit="rate_limit_exceeded"
    ) as model:
        repo = project(tmp_path, "test -f src/app.py", agent="codex")
        data = run_codex(repo, tmp_path, model.url)
    [task] = data["tasks"]
    assert (task["outcome"], task["attempts"]) == ("skipped", 1), task
    assert "429 Too Many Requests" in task["reason"]
    assert model.requests and session_branches(repo) == []


@needs_codex
def test_the_second_attempt_of_codex_gets_the_gate_failure_as_feedback(tmp_path: Path) -> None:
    def script(_workdir: str, request: str) -> list[tuple[str, str]]:
        said = "hello" if "GATE: greeting must say hello" in request else "hi"
        patch = f"*** Begin Patch\n*** Add File: src/greeting.py\n+HI = '{said}'\n*** End Patch\n"
        return [("patch", patch)]

    with serving_responses(script) as model:
        repo = project(tmp_path, f"test ! -e src/greeting.py || ( {FEEDBACK_GATE} )", agent="codex")
        data = run_codex(repo, tmp_path, model.url)
    [task] = data["tasks"]
    assert (task["outcome"], task["attempts"]) == ("committed", 2), task
    assert git(repo, "show", f"{task['commit']}:src/greeting.py") == "HI = 'hello'\n"
    # Each attempt's first request (no tool result in its input yet) holds its prompt.
    prompts = [
        json.dumps(r)
        for r in model.requests
        if not any(str(i.get("type")).endswith("call_output") for i in r["input"])
    ]
    assert len(prompts) == 2
    assert "greeting must say hello" not in prompts[0] and "greeting must say hello" in prompts[1]


@needs_codex
def test_codex_waiting_on_a_silent_api_is_stopped_by_the_idle_timeout(tmp_path: Path) -> None:
    with serving_responses(lambda _w, _r: [READ_APP], stall=60) as model:
        repo = project(
            tmp_path, "test -f src/app.py", rules="idle_timeout_minutes: 0.05\n", agent="codex"
        )
        data = run_codex(repo, tmp_path, model.url)
    [task] = data["tasks"]
    assert (task["outcome"], task["attempts"]) == ("rolled_back", 1), task
    assert "silent" in task["reason"]
    assert model.requests  # it was waiting on its model, not idle for another reason


@needs_claude
def test_claude_code_proposes_tasks_confined_and_only_its_answer_is_read(tmp_path: Path) -> None:
    repo = project(tmp_path, "test -f src/app.py")
    home = fake_home(tmp_path)
    before = user_state(repo)
    answer = (
        "Here is the plan:\n\n"
        "- **[greet-2]** Greet in French\n"
        "  - Alignment score: 85/100\n"
        "  - Estimated lines: 12\n"
        "  - Tests defined: ✅ Yes (tests/test_greeting.py)\n"
        "  - Safety check: src/ only\n"
    )

    def script(workdir: str, _request: str) -> tuple[str, dict[str, Any]]:
        # Its only tool call writes a file: the checkout is thrown away, so it reaches nothing.
        return "Write", {"file_path": f"{workdir}/src/planted.py", "content": "X = 1\n"}

    with serving(script, final=answer) as model:
        done = subprocess.run(
            [*CLI, "propose", "Greet people in their own language", "--json"],
            cwd=repo,
            env=claude_env(home, model.url),
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert [t["id"] for t in data["tasks"]] == ["greet-2"]
    plan = git(repo, "show", f"{data['branch']}:PROJECT_PLAN.md")
    pending = plan.split("Pending Approval", 1)[1]
    assert "**[greet-2]**" in pending and "85/100 (proposed by the agent)" in pending
    changed = git(repo, "diff", "--name-only", "main", data["branch"]).split()
    assert changed == ["PROJECT_PLAN.md"]  # what it wrote in its checkout went nowhere
    assert user_state(repo) == before
    assert "Greet people in their own language" in json.dumps(model.requests[0])
    assert set(model.api_keys) == {API_KEY}
    for secret in SECRETS.values():
        assert secret not in model.seen()
