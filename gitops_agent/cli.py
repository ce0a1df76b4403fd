"""The command line: parse options, call one function of the core, print the result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Protocol

import typer

from gitops_agent import __version__
from gitops_agent.error_handler import catch_signals, error_handler
from gitops_agent.results import BRANCH_PREFIX, FAIL_ON_STATUS, FailOn

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Click's own help: typer's rich help shows every flag as taking a value (`--json <bool>`).
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Run coding agents on your repository from a markdown plan, safely.",
)

RepoOption = Annotated[
    Path | None,
    typer.Option("--repo", help="The repository (default: the one the current directory is in)."),
]
PlanOption = Annotated[
    Path | None, typer.Option("--plan", help="The plan file (default: PROJECT_PLAN.md).")
]
ConstraintsOption = Annotated[
    Path | None,
    typer.Option(
        "--constraints", help="The constraints document (default: docs/autonomous-constraints.md)."
    ),
]
AgentOption = Annotated[
    str | None,
    typer.Option(
        "--agent-command",
        help="Agent preset (claude, codex, aider, gemini) or a command run with bash -c.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def _print_json(data: Any, **dumps: Any) -> None:
    """Print `--json` output with the environment's secrets masked (`***` is valid in a string)."""
    from gitops_agent.policy.masking import mask

    print(mask(json.dumps(data, **dumps)))


def _version(value: bool) -> None:
    if value:
        print(f"gitops-agent {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Say more: every line an agent or command prints, as it prints it; check "
            "also lists every setting in effect.",
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            help="Print nothing for people but errors (progress, tables and notes go); "
            "--json output and exit statuses are unchanged.",
        ),
    ] = False,
) -> None:
    """Run coding agents on your repository from a markdown plan, safely."""
    if verbose:
        from gitops_agent import console

        console.VERBOSE = True
    if quiet:
        from gitops_agent.console import err

        err.quiet = True  # errors are printed by the error handler, not through this console


@app.command()
def check(
    repo: RepoOption = None,
    plan: PlanOption = None,
    constraints: ConstraintsOption = None,
    agent_command: AgentOption = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Also show every setting in effect and where it came from."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Validate the plan and constraints, and explain task by task what would run and why."""
    from gitops_agent.commands.check import check as run_check
    from gitops_agent.commands.check import to_json
    from gitops_agent.project import load_project

    project = load_project(repo, plan, constraints)
    verdicts = run_check(project, agent_command)
    if as_json:
        _print_json(to_json(verdicts), ensure_ascii=False)
    else:
        from gitops_agent.commands.check import awaiting_review
        from gitops_agent.console import show_check

        show_check(project, verdicts, awaiting_review(project))
        from gitops_agent import console

        if verbose or console.VERBOSE:
            console.show_settings(project)


@app.command()
def init(
    repo: RepoOption = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    github: Annotated[
        bool,
        typer.Option("--github", help="Write .github/workflows/gitops-agent.yml instead."),
    ] = False,
    matrix: Annotated[
        bool, typer.Option("--matrix", help="With --github: one runner per task by default.")
    ] = False,
) -> None:
    """Write a starter PROJECT_PLAN.md and docs/autonomous-constraints.md."""
    from gitops_agent.commands.init import init as run_init
    from gitops_agent.console import err
    from gitops_agent.project import find_root

    root = find_root(repo)
    if github:
        from gitops_agent.commands.github_init import init_github

        for line in init_github(root, force=force, mode="matrix" if matrix else "session"):
            err.print(line, markup=False, soft_wrap=True)  # a diff's `[...]` is not markup
        return
    written = run_init(root, force=force)
    for path in written:
        err.print(f"wrote {path}", markup=False, soft_wrap=True)
    names = " ".join(str(p) for p in written)
    err.print(
        "Next: edit the plan, run `gitops-agent check`, then commit both files (a run reads "
        f"them as committed on the base branch): `git add {names} && git commit -m 'Add the "
        "plan'`",
        markup=False,
        soft_wrap=True,
    )


@app.command()
def run(
    repo: RepoOption = None,
    plan: PlanOption = None,
    constraints: ConstraintsOption = None,
    task: Annotated[
        list[str] | None,
        typer.Option("--task", metavar="ID", help="Run only this task (repeat for more)."),
    ] = None,
    agent_command: AgentOption = None,
    push: Annotated[
        bool,
        typer.Option(
            "--push",
            help="Push the session and memory branches to origin and open or update the "
            "session's pull request (on GitHub).",
        ),
    ] = False,
    check_claims: Annotated[
        bool,
        typer.Option(
            "--check-claims",
            help="Skip the tasks another run has claimed on origin, and claim none (for a job "
            "that cannot push; --push claims).",
        ),
    ] = False,
    fail_on: Annotated[
        FailOn | None,
        typer.Option(
            "--fail-on",
            help="Exit with status 3 when a task was rolled back, blocked, or either (any).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run the eligible tasks as one session on a new autonomous/<session> branch."""
    from gitops_agent.commands.run import run as run_it
    from gitops_agent.console import ConsoleListener, err, show_run
    from gitops_agent.session import RunOptions

    options = RunOptions(repo, plan, constraints, tuple(task or ()), agent_command)
    result, data, said = run_it(options, ConsoleListener(), push=push, check_claims=check_claims)
    show_run(result)
    for line in said:
        err.print(line)
    if as_json:
        _print_json(data, ensure_ascii=False)
    if fail_on is not None and fail_on.failed([task.outcome for task in result.tasks]):
        err.print(f"--fail-on {fail_on.value}: exit status {FAIL_ON_STATUS}")
        raise typer.Exit(FAIL_ON_STATUS)


@app.command()
def report(
    repo: RepoOption = None,
    plan: PlanOption = None,
    constraints: ConstraintsOption = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Report sessions since a date (2026-11-20), a time, or an age (3d, 12h); "
            "default: the last 24 h, at least the last session.",
        ),
    ] = None,
    sessions: Annotated[
        int,
        typer.Option("--sessions", min=1, help="How many sessions the success rate covers."),
    ] = 7,
    agent_command: AgentOption = None,
    as_json: JsonOption = False,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Write the report as a page to this file instead of markdown."),
    ] = None,
) -> None:
    """The morning brief: what the last sessions did, what needs you, what runs next."""
    from gitops_agent.commands.report import report as build_report
    from gitops_agent.commands.report import write_page
    from gitops_agent.console import err
    from gitops_agent.report import to_html, to_markdown

    brief = build_report(
        repo,
        plan=plan,
        constraints=constraints,
        since=since,
        sessions=sessions,
        agent_command=agent_command,
    )
    if html is not None:
        write_page(html, to_html(brief))
        err.print(f"wrote {html}", soft_wrap=True, markup=False)
    if as_json:
        _print_json(brief.to_json(), ensure_ascii=False)
    elif html is None:  # the page is what was asked for
        print(to_markdown(brief), end="")


@app.command("show")
def show_attempt(
    attempt: Annotated[
        str,
        typer.Argument(
            help="<session>/<task> (every attempt of the task) or <session>/<task>/<n>."
        ),
    ],
    repo: RepoOption = None,
) -> None:
    """Print a kept attempt: why it ended so, the gate's result, the agent's output, its diff."""
    from gitops_agent.commands.show import show

    print(show(repo, attempt), end="")


@app.command()
def status(
    repo: RepoOption = None,
    plan: PlanOption = None,
    constraints: ConstraintsOption = None,
    as_json: JsonOption = False,
) -> None:
    """What runs now, what ran last, which branches await review, what is queued."""
    from gitops_agent.commands.status import show
    from gitops_agent.commands.status import status as read_status
    from gitops_agent.console import err

    result = read_status(repo, plan=plan, constraints=constraints)
    if as_json:
        _print_json(result.to_json(), ensure_ascii=False)
    else:
        show(result, err)


@app.command()
def demo(
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            "--repo",
            help="Where to make the demo project (default: a temporary directory).",
        ),
    ] = None,
) -> None:
    """Run a real session on a copy of the bundled demo project, offline, and show the result."""
    from gitops_agent.commands.demo import make_demo_repository
    from gitops_agent.commands.report import report as build_report
    from gitops_agent.console import ConsoleListener, err, show_run
    from gitops_agent.report import to_markdown
    from gitops_agent.session import RunOptions, run_session

    root = make_demo_repository(directory)
    err.print(f"Demo project: {root} (a fresh git repository)", soft_wrap=True)
    result = run_session(RunOptions(repo=root), ConsoleListener())
    show_run(result)
    print(to_markdown(build_report(root)), end="")
    err.print(
        f"The morning report is above. Look around: cd {root} && git log --oneline --all\n"
        "This copy is in a temporary directory; `gitops-agent demo --dir DIR` makes it under "
        "a directory of yours instead.",
        soft_wrap=True,
        markup=False,
    )


@app.command("plan")
def plan_tasks(
    repo: RepoOption = None,
    plan: PlanOption = None,
    constraints: ConstraintsOption = None,
    agent_command: AgentOption = None,
    as_matrix: Annotated[
        bool,
        typer.Option("--matrix", help='Print {"include": [{"task": ID}, ...]} as JSON.'),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """The tasks the next run would take, in plan order (one per line, or as a matrix)."""
    from gitops_agent.commands.matrix import matrix
    from gitops_agent.project import load_base

    base = load_base(repo, plan, constraints)
    found = matrix(base, agent_command)
    if as_matrix:
        _print_json(found, ensure_ascii=False, separators=(",", ":"))
    elif as_json:
        titles = {task.id: task.title for task in base.project.plan.tasks}
        tasks = [{"id": e["task"], "title": titles[e["task"]]} for e in found["include"]]
        _print_json({"base": base.branch, "tasks": tasks}, ensure_ascii=False)
    else:
        for entry in found["include"]:
            print(entry["task"])


@app.command()
def integrate(
    branches: Annotated[
        list[str] | None,
        typer.Argument(help="Task branches (default: every unmerged autonomous/ branch here)."),
    ] = None,
    repo: RepoOption = None,
    plan: PlanOption = None,
    constraints: ConstraintsOption = None,
    prefix: Annotated[
        str, typer.Option("--prefix", help="Without BRANCHES: take our branches under this.")
    ] = BRANCH_PREFIX,
    integration_id: Annotated[
        str | None,
        typer.Option("--id", help="Name it autonomous/integration-ID (default: date and time)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Merge task branches in memory onto one integration branch, in plan order, and gate it."""
    from gitops_agent.commands.integrate import integrate as run_integrate
    from gitops_agent.console import err

    result = run_integrate(
        repo,
        branches or [],
        prefix=prefix,
        integration_id=integration_id,
        plan=plan,
        constraints=constraints,
    )
    for merged in result.merged:
        err.print(f"merged {merged.branch} ({', '.join(merged.tasks)})")
    for out in result.left_out:
        files = f": {', '.join(out.files)}" if out.files else ""
        err.print(f"[yellow]left out {out.candidate.branch}: {out.reason}{files}[/yellow]")
    err.print(f"gate: {result.gate}")
    err.print(f"branch: {result.branch or 'none (nothing merged)'}")
    for gone in result.removed:
        err.print(f"removed {gone}: merged, or every task of it is on the new branch")
    if as_json:
        _print_json(result.to_json(), ensure_ascii=False)


@app.command("bundle")
def bundle_result(
    result: Annotated[
        Path, typer.Argument(help="The JSON `run --json` or `integrate --json` printed.")
    ],
    out: Annotated[Path, typer.Option("--out", help="The artifact directory to write.")],
    repo: RepoOption = None,
) -> None:
    """Pack a result for another job: a git bundle of its branches, its JSON, its PR text."""
    from gitops_agent.commands.bundle import pack
    from gitops_agent.console import err

    packed = pack(repo, result, out)
    if packed.crashed:
        err.print(
            f"no result in {result} (did the run crash?): packing the memory branch alone",
            markup=False,
        )
    carried = ", ".join(packed.branches) or "no branch with new commits"
    err.print(f"wrote {', '.join(packed.files)} to {packed.directory} ({carried})")


@app.command()
def verify(
    artifacts: Annotated[
        list[Path], typer.Argument(help="Artifact directories (from `bundle`) or .bundle files.")
    ],
    repo: RepoOption = None,
    plan: PlanOption = None,
    constraints: ConstraintsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check results from an untrusted job against the base's rules; take in those that pass."""
    from gitops_agent.commands.verify import verify as run_verify
    from gitops_agent.console import err

    done = run_verify(repo, artifacts, plan=plan, constraints=constraints)
    for verified in done:
        if not verified.taken:
            err.print(f"{verified.artifact}: no branch to take in")
        for taken in verified.taken:
            err.print(f"{verified.artifact}: {taken.branch} {taken.how} ({taken.tip[:12]})")
    if as_json:
        data = {
            "artifacts": [
                {
                    "artifact": v.artifact,
                    "branches": [{"branch": t.branch, "tip": t.tip, "how": t.how} for t in v.taken],
                }
                for v in done
            ]
        }
        _print_json(data, ensure_ascii=False)


@app.command()
def publish(
    artifact: Annotated[
        Path | None, typer.Argument(help="An artifact directory that `verify` took in.")
    ] = None,
    repo: RepoOption = None,
    plan: PlanOption = None,
    constraints: ConstraintsOption = None,
    branch: Annotated[
        str | None, typer.Option("--branch", help="The branch to push and open a PR for.")
    ] = None,
    body_file: Annotated[
        Path | None, typer.Option("--body-file", help="The PR description (markdown).")
    ] = None,
    remote: Annotated[str, typer.Option("--remote", help="Remote name, URL or path.")] = "origin",
    repository: Annotated[
        str | None,
        typer.Option("--repository", help="owner/name on GitHub (default: from the remote)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Push the result's branch and autonomous/memory, and open or update its pull request."""
    from gitops_agent.commands.publish import publish as run_publish
    from gitops_agent.console import err

    done = run_publish(
        repo,
        artifact,
        branch=branch,
        body_file=body_file,
        remote=remote,
        repository=repository,
        plan=plan,
        constraints=constraints,
    )
    err.print(f"pushed {', '.join(done.pushed) or 'nothing'}")
    if done.pull is not None:
        err.print(f"{'opened' if done.created else 'updated'} {done.pull.url}")
    for other in done.others:
        err.print(f"opened or updated {other.url} (a task's own branch)")
    for repaired in done.repaired:
        err.print(f"opened the missing pull request {repaired.url}")
    for note in done.notes:
        err.print(note)
    if as_json:
        pull = None
        if done.pull is not None:
            pull = {"number": done.pull.number, "url": done.pull.url, "created": done.created}
        repaired_urls = [repaired.url for repaired in done.repaired]
        others = [other.url for other in done.others]
        _print_json(
            {
                "pushed": list(done.pushed),
                "pull_request": pull,
                "pull_requests": others,
                "repaired": repaired_urls,
            }
        )


@app.command()
def doctor(
    repo: RepoOption = None,
    plan: PlanOption = None,
    constraints: ConstraintsOption = None,
    agent_command: AgentOption = None,
    skip_gate: Annotated[
        bool, typer.Option("--skip-gate", help="Do not run the gate on the base branch.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Check what the first scheduled run needs, and say what to fix (exit 2 if it cannot run)."""
    from gitops_agent.commands.doctor import Status
    from gitops_agent.commands.doctor import doctor as run_doctor
    from gitops_agent.console import err, shown

    checks = run_doctor(
        repo,
        plan=plan,
        constraints=constraints,
        agent_command=agent_command,
        run_the_gate=not skip_gate,
    )
    colors = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "red"}
    for check in checks:
        color = colors[check.status]
        said = f"{check.name}: {check.message}"
        err.print(f"[{color}]{check.status.value:>4}[/{color}] {shown(said)}")
        if check.fix:
            err.print(f"      fix: {shown(check.fix)}")
    if as_json:
        _print_json({"checks": [c.to_json() for c in checks]}, ensure_ascii=False)
    failed = sum(c.status is Status.FAIL for c in checks)
    if failed:
        raise typer.Exit(2)


class _Said(Protocol):
    """What merge, rollback, propose and scan return: lines for people, and their JSON."""

    def lines(self) -> list[str]: ...

    def to_json(self) -> dict[str, Any]: ...


def _say(result: _Said, as_json: bool) -> None:
    from gitops_agent.console import err

    for line in result.lines():
        err.print(line, markup=False, soft_wrap=True)
    if as_json:
        _print_json(result.to_json(), ensure_ascii=False)


PushOption = Annotated[
    bool,
    typer.Option(
        "--push",
        help="Push the branch (and autonomous/memory) to origin and open its pull request "
        "(on GitHub); without it the branch stays here.",
    ),
]


@app.command()
def merge(
    repo: RepoOption = None,
    plan: PlanOption = None,
    constraints: ConstraintsOption = None,
    push: PushOption = False,
    as_json: JsonOption = False,
) -> None:
    """Re-test every auto-approved result in quarantine; merge those that stayed green."""
    from gitops_agent.commands.merge import merge_results as run_merge

    result = run_merge(repo, plan=plan, constraints=constraints, push=push)
    _say(result, as_json)


@app.command()
def timeline(
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """Checkpoints, merges and rollbacks of the base, oldest first."""
    from gitops_agent.commands.timeline import show_timeline
    from gitops_agent.commands.timeline import timeline as read_timeline

    found = read_timeline(repo)
    if as_json:
        _print_json(found.to_json(), ensure_ascii=False)
    else:
        show_timeline(found)


@app.command()
def rollback(
    target: Annotated[
        str,
        typer.Argument(help="A checkpoint (checkpoint/2026-11-30-1), a session id, or a task id."),
    ],
    repo: RepoOption = None,
    plan: PlanOption = None,
    constraints: ConstraintsOption = None,
    push: PushOption = False,
    as_json: JsonOption = False,
) -> None:
    """Revert a checkpoint's, a session's or a task's work on a new rollback branch."""
    from gitops_agent.commands.rollback import rollback as run_rollback

    result = run_rollback(repo, target, plan=plan, constraints=constraints, push=push)
    _say(result, as_json)


@app.command()
def propose(
    intent: Annotated[str | None, typer.Argument(help="What you want done, in your words.")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="Read the intent from this file.")
    ] = None,
    repo: RepoOption = None,
    plan: PlanOption = None,
    constraints: ConstraintsOption = None,
    agent_command: AgentOption = None,
    push: PushOption = False,
    as_json: JsonOption = False,
) -> None:
    """Ask the agent for tasks that carry out an intent; add them under Pending Approval."""
    from gitops_agent.commands.propose import propose as run_propose

    result = run_propose(
        repo,
        intent,
        file,
        plan=plan,
        constraints=constraints,
        agent_command=agent_command,
        push=push,
    )
    _say(result, as_json)


@app.command()
def scan(
    repo: RepoOption = None,
    plan: PlanOption = None,
    constraints: ConstraintsOption = None,
    push: PushOption = False,
    as_json: JsonOption = False,
) -> None:
    """Run the plan's `scan:` commands on the base; propose each new finding as a Pending task."""
    from gitops_agent.commands.scan import scan as run_scan

    result = run_scan(repo, plan=plan, constraints=constraints, push=push)
    _say(result, as_json)


def main() -> None:
    catch_signals()
    with error_handler():
        app()
