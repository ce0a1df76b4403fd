"""`gitops-agent propose`: a real stand-in agent answers an intent with tasks; they land under
Pending Approval on a branch of their own, marked as proposed, or the answer is refused whole.
Also `proposals.add_to_plan`, the write-back both `propose` and `scan` share."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitops_agent.commands.propose import propose
from gitops_agent.errors import PlanError, UserError
from gitops_agent.plan import Queue, TaskStatus, parse_plan
from gitops_agent.project import load_base
from gitops_agent.proposals import NewTask, Proposer, add_to_plan, pr_body
from testing.fixtures import git, make_repo
from testing.project import agent_script, session_branches, show, user_state

TEMPLATE_PLAN = Path(__file__).resolve().parent.parent / "templates" / "PROJECT_PLAN.md"
INTENT = "Add type hints to src/"

TASKS = """\
Here are the tasks I propose.

- **[hints-1]** Add type hints to src/app.py
  - Alignment score: 9/10
  - Estimated lines: 10-20
  - Tests defined: ✅ Yes (tests/test_app.py)
  - Safety check: ✅ Annotations only
  - Status: READY

- **[hints-2]** Check the hints with mypy
  - Alignment score: 85/100
  - Estimated lines: 5
  - Tests defined: ⏳ No
"""


def project(tmp_path: Path, plan: str | None = None, rules: str = "") -> Path:
    files = {
        "PROJECT_PLAN.md": plan if plan is not None else TEMPLATE_PLAN.read_text("utf-8"),
        "src/app.py": "def hello():\n    return 'hello'\n",
    }
    if rules:
        files["docs/autonomous-constraints.md"] = "# Rules\n\n```yaml\n" + rules + "```\n"
    return make_repo(tmp_path / "repo", files)


def stand_in(tmp_path: Path, output: str, *, status: int = 0) -> str:
    """An agent that checks it got the prompt (stdin and GITOPS_AGENT_PROMPT_FILE), tries to
    change its checkout, prints `output` and exits with `status`."""
    body = f"""\
        prompt=$(cat)
        case "$prompt" in *"{INTENT}"*"# The format"*) ;; *) echo "no intent" >&2; exit 3;; esac
        grep -q "{INTENT}" "$GITOPS_AGENT_PROMPT_FILE" || {{ echo "no prompt file" >&2; exit 3; }}
        echo "the agent was here" > PROJECT_PLAN.md
        cat <<'TASKS'
        """
    script = textwrap.dedent(body) + output + f"TASKS\nexit {status}\n"
    return agent_script(tmp_path, script)


def nothing_written(repo: Path, before: dict[str, object]) -> None:
    assert session_branches(repo) == []
    assert "autonomous/memory" not in git(repo, "branch", "--list", "autonomous/memory")
    assert user_state(repo) == before


# -- the command -----------------------------------------------------------------------------


def test_propose_adds_the_agents_tasks_under_pending_approval_marked_as_proposed(
    tmp_path: Path, cli
) -> None:
    repo = project(tmp_path)
    before = user_state(repo)
    main = git(repo, "rev-parse", "main").strip()
    agent = stand_in(tmp_path, TASKS)
    result = cli("propose", INTENT, "--agent-command", agent, "--json", cwd=repo)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [(t["id"], t["alignment"], t["estimated_lines"]) for t in data["tasks"]] == [
        ("hints-1", 90, 20),
        ("hints-2", 85, 5),
    ]
    branch = data["branch"]
    assert branch.startswith("autonomous/propose-") and data["pull_request"] is None
    assert "proposed 2 tasks under Pending Approval" in result.stderr
    # The user's checkout and base branch are untouched; the plan alone changed on the branch.
    assert user_state(repo) == before
    assert git(repo, "rev-parse", "main").strip() == main
    assert git(repo, "diff", "--name-only", main, branch).split() == ["PROJECT_PLAN.md"]
    assert git(repo, "rev-parse", f"{branch}~1").strip() == main
    message = git(repo, "log", "-1", "--format=%B", branch)
    assert "Proposed-By: propose" in message and "Gitops-Agent-Version:" in message
    text = show(repo, branch, "PROJECT_PLAN.md")
    assert "the agent was here" not in text
    plan = parse_plan(text, "PROJECT_PLAN.md")
    for task_id in ("hints-1", "hints-2"):
        task = plan.task(task_id)
        assert task is not None and task.queue is Queue.PENDING
        assert task.status is TaskStatus.PENDING
        assert task.detail("proposed") is not None
        assert task.detail("proposed").value == INTENT  # type: ignore[union-attr]
    first = plan.task("hints-1")
    assert first is not None and (first.alignment, first.estimated_lines) == (90, 20)
    assert "  - Alignment score: 90/100 (proposed by the agent)\n" in text
    assert "  - Estimated lines: 20 (proposed by the agent)\n" in text
    assert "  - Safety check: ✅ Annotations only\n" in text
    assert "Status: READY" not in text.split("[hints-1]")[1]
    # Inserted after the last Pending task, before the next heading; the rest as it was.
    original = TEMPLATE_PLAN.read_text("utf-8")
    pending, rest = original.split("### Not Ready ❌")
    assert text.startswith(pending.rstrip("\n") + "\n\n- **[hints-1]**")
    assert text.endswith("\n\n### Not Ready ❌" + rest)
    assert [t.id for t in plan.tasks] == ["example-1", "hints-1", "hints-2", "example-2"]
    events = git(repo, "ls-tree", "-r", "--name-only", "autonomous/memory", "state/events")
    assert len(events.split()) == 1 and "-proposed-" in events


def test_malformed_output_is_refused_with_its_line_and_nothing_is_written(
    tmp_path: Path, cli
) -> None:
    repo = project(tmp_path)
    before = user_state(repo)
    agent = stand_in(tmp_path, TASKS.replace("  - Alignment score: 85/100\n", ""))
    result = cli("propose", INTENT, "--agent-command", agent, "--json", cwd=repo)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "agent output:10: task `hints-2` has no `Alignment score:`" in result.stderr
    assert "Traceback" not in result.stderr
    nothing_written(repo, before)


REFUSALS = {
    "no task": ("I could not think of anything.\n", "the agent proposed no task"),
    "no estimate": (
        TASKS.replace("  - Estimated lines: 5\n", ""),
        "agent output:10: task `hints-2` has no `Estimated lines:`",
    ),
    "duplicate id": (
        TASKS.replace("[hints-2]", "[hints-1]"),
        "agent output:10: the agent's output was refused: duplicate task ID `hints-1`",
    ),
    "id in the plan": (
        TASKS.replace("[hints-2]", "[example-1]"),
        "agent output:10: task `example-1` is already in the plan (PROJECT_PLAN.md:41)",
    ),
    "unreadable score": (
        TASKS.replace("85/100", "high"),
        "agent output:11: the agent's output was refused: `Alignment score` must be a number",
    ),
    "a Run line": (
        TASKS + "  - Run: rm -rf /\n",
        "agent output:14: task `hints-2` sets `Run:`, which a proposed task may not",
    ),
    "its own approval": (
        TASKS + "  - Approval: auto\n",
        "agent output:14: task `hints-2` sets `Approval:`",
    ),
    "a detail outside a task": (
        "  - Alignment score: 90\n" + TASKS,
        "agent output:1: the agent's output was refused: detail line `Alignment score:` is "
        "outside a task",
    ),
}


@pytest.mark.parametrize("case", REFUSALS, ids=list(REFUSALS))
def test_an_answer_that_is_not_well_formed_is_refused_whole(tmp_path: Path, case: str) -> None:
    output, reason = REFUSALS[case]
    repo = project(tmp_path)
    before = user_state(repo)
    with pytest.raises(UserError) as refused:
        propose(repo, INTENT, None, agent_command=stand_in(tmp_path, output))
    assert reason in str(refused.value)
    nothing_written(repo, before)


def test_an_agent_that_fails_or_runs_too_long_is_refused(tmp_path: Path) -> None:
    repo = project(tmp_path, rules="task_timeout_minutes: 0.01\n")
    before = user_state(repo)
    with pytest.raises(UserError) as failed:
        propose(repo, INTENT, None, agent_command=stand_in(tmp_path, TASKS, status=1))
    assert "the agent exited with status 1; nothing was proposed" in str(failed.value)
    assert "[hints-2]" in str(failed.value)  # the end of its output, for the person
    slow = agent_script(tmp_path, "cat >/dev/null\nsleep 30\n")
    with pytest.raises(UserError) as stopped:
        propose(repo, INTENT, None, agent_command=slow)
    assert "ran past its timeout (0.01 minutes" in str(stopped.value)
    nothing_written(repo, before)


def test_a_fenced_answer_is_read_and_its_markdown_cannot_form_anything(tmp_path: Path) -> None:
    repo = project(tmp_path)
    output = (
        "```markdown\n"
        "- **[odd]** Fix <!-- the rest --> for @octocat, see [this](http://example.com)\n"
        "  - Alignment score: 80\n"
        "  - Estimated lines: 3\n"
        "  - Notes: *emphasis* and `code`\n"
        "```\n"
    )
    done = propose(repo, INTENT, None, agent_command=stand_in(tmp_path, output))
    text = show(repo, done.proposal.branch, "PROJECT_PLAN.md")
    assert (
        "- **[odd]** Fix \\<!-- the rest --> for `@octocat`, see \\[this\\](http://example.com)\n"
        in text
    )
    assert "  - Notes: \\*emphasis\\* and `code`\n" in text
    plan = parse_plan(text, "PROJECT_PLAN.md")
    assert [t.id for t in plan.tasks] == ["example-1", "odd", "example-2"]
    assert done.to_json()["tasks"] == [
        {"id": "odd", "title": done.tasks[0].title, "alignment": 80, "estimated_lines": 3}
    ]


def test_the_intent_comes_from_an_argument_or_a_file_and_an_agent_must_be_named(
    tmp_path: Path,
) -> None:
    repo = project(tmp_path)
    before = user_state(repo)
    with pytest.raises(UserError, match="the intent is empty"):
        propose(repo, "  ", None, agent_command="true")
    intent_file = tmp_path / "intent.md"
    intent_file.write_text(INTENT + "\n\nIn every module.\n")
    with pytest.raises(UserError, match="not both"):
        propose(repo, INTENT, intent_file, agent_command="true")
    with pytest.raises(UserError, match="no agent to ask: give --agent-command"):
        propose(repo, None, intent_file)
    nothing_written(repo, before)
    done = propose(repo, None, intent_file, agent_command=stand_in(tmp_path, TASKS))
    assert done.tasks[0].details[-1] == ("Proposed", INTENT + " In every module.")


# -- the shared write-back ---------------------------------------------------------------------


def new(task_id: str, title: str = "A task", **details: str) -> NewTask:
    return NewTask(task_id, title, (*details.items(), ("Status", "PENDING")))


def test_a_plan_without_a_pending_heading_gets_one_at_the_end() -> None:
    plan = "# Plan\n\n### Ready for Autonomous Execution\n\n- **[a]** A\n  - Status: READY"
    text = add_to_plan(plan, "PROJECT_PLAN.md", [new("b")])
    assert text == plan + "\n\n## Pending Approval\n\n- **[b]** A task\n  - Status: PENDING\n"


def test_tasks_go_before_the_next_heading_and_keep_the_plans_line_endings() -> None:
    plan = "# Plan\r\n### Pending Approval\r\n- **[a]** A\r\n### Not Ready\r\n"
    text = add_to_plan(plan, "PROJECT_PLAN.md", [new("b"), new("c")])
    assert text == (
        "# Plan\r\n### Pending Approval\r\n- **[a]** A\r\n\r\n"
        "- **[b]** A task\r\n  - Status: PENDING\r\n\r\n"
        "- **[c]** A task\r\n  - Status: PENDING\r\n\r\n"
        "### Not Ready\r\n"
    )


def test_an_id_the_plan_has_or_a_plan_that_would_swallow_the_tasks_is_refused() -> None:
    plan = "# Plan\n\n## Pending Approval\n\n- **[a]** A\n"
    with pytest.raises(PlanError, match="task `a` is already in the plan") as clash:
        add_to_plan(plan, "PROJECT_PLAN.md", [new("a")])
    assert clash.value.line == 5
    unclosed = "# Plan\n\n```\nnotes that never end\n"
    with pytest.raises(PlanError, match="would not land under Pending Approval"):
        add_to_plan(unclosed, "PROJECT_PLAN.md", [new("b")])


_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40).filter(lambda s: s.strip())


@settings(max_examples=40, deadline=None)
@given(titles=st.lists(_TEXT, min_size=1, max_size=3), note=_TEXT)
def test_any_text_lands_as_pending_tasks_and_the_plan_keeps_the_rest(
    titles: list[str], note: str
) -> None:
    original = TEMPLATE_PLAN.read_text("utf-8")
    tasks = [new(f"t{n}", title, Notes=note) for n, title in enumerate(titles)]
    text = add_to_plan(original, "PROJECT_PLAN.md", tasks)
    before = parse_plan(original, "PROJECT_PLAN.md")
    after = parse_plan(text, "PROJECT_PLAN.md")
    kept = [t for t in after.tasks if not t.id.startswith("t")]
    assert [(t.id, t.title, t.queue, [(d.key, d.value) for d in t.details]) for t in kept] == [
        (t.id, t.title, t.queue, [(d.key, d.value) for d in t.details]) for t in before.tasks
    ]
    added = [t for t in after.tasks if t.id.startswith("t")]
    assert [t.id for t in added] == [t.id for t in tasks]
    assert all(t.queue is Queue.PENDING and t.status is TaskStatus.PENDING for t in added)
    assert all(t.detail("notes") is not None for t in added)


def test_the_pull_request_says_where_the_tasks_came_from_escaped(tmp_path: Path) -> None:
    base = load_base(project(tmp_path))
    body = pr_body(
        base,
        [new("x", "Use <b>bold</b> [here](http://x)", Notes="@octocat")],
        by=Proposer.PROPOSE,
        context={"intent": "Make it <fast>", "agent": "command"},
    )
    assert "> Make it \\<fast>\n" in body
    assert "- **x** Use \\<b>bold\\</b> \\[here\\](http://x)\n" in body
    assert "  - Notes: `@octocat`\n" in body
    assert "under **Pending Approval**" in body and "set its `Status:` to `READY`" in body
