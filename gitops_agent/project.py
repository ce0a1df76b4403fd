"""Finding and loading a project: its repository root, plan and constraints."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from gitops_agent.constraints import (
    DEFAULT_PATH,
    DEFAULTS,
    Constraints,
    load_constraints,
    parse_constraints,
    unread_notes,
)
from gitops_agent.errors import UserError
from gitops_agent.files import decode, read_text
from gitops_agent.git import Repo, find_repo_root
from gitops_agent.plan import PLAN_SETTINGS, Plan, parse_plan

PLAN_FILE = "PROJECT_PLAN.md"


@dataclass(frozen=True, slots=True)
class Project:
    root: Path
    plan_path: Path
    plan: Plan
    constraints: Constraints
    notes: tuple[str, ...]  # things a person should know about how it was loaded

    @property
    def protected_paths(self) -> tuple[str, ...]:
        """The plan and the constraints document, as paths inside the repository."""
        paths = [self.plan.path]
        if self.constraints.path is not None:
            paths.append(self.constraints.path)
        return tuple(p for p in paths if not p.startswith(("/", "..")))


def find_root(repo: Path | None) -> Path:
    """The project's root: `repo` itself where it holds a plan (a project inside a larger
    repository, like the bundled example), else the repository it (or the current directory)
    is in; a directory in no repository is taken as it is (commands that need git say so)."""
    if repo is not None and not repo.is_dir():
        raise UserError("no such directory (given as --repo)", str(repo))
    start = repo.resolve() if repo is not None else Path.cwd()
    if repo is not None and (start / PLAN_FILE).is_file():
        return start
    return find_repo_root(start) or start


def display_path(path: Path, root: Path) -> str:
    """`path` relative to the repository root when it is inside it (POSIX), else as absolute."""
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


def load_project(
    repo: Path | None = None, plan: Path | None = None, constraints: Path | None = None
) -> Project:
    """Parse the plan and the constraints; any problem is a UserError with `path:line:`."""
    root = find_root(repo)
    plan_path = plan if plan is not None else root / PLAN_FILE
    plan_shown = display_path(plan_path, root)
    if not plan_path.exists():
        hint = "; create one with `gitops-agent init`" if plan is None else ""
        raise UserError(f"no plan found{hint}", plan_shown)
    parsed = parse_plan(read_text(plan_path, plan_shown), plan_shown)
    notes: list[str] = []
    if constraints is not None:
        loaded = load_constraints(root, os.path.relpath(constraints, root), explicit=True)
    elif parsed.settings.constraints is not None:
        loaded = load_constraints(root, parsed.settings.constraints, explicit=True)
    else:
        loaded = load_constraints(root, None, explicit=False)
        if loaded.path is None:
            notes.append(f"No {DEFAULT_PATH}: the default rules apply.")
    notes += unread_notes(loaded)
    return Project(root, plan_path, parsed, loaded, tuple(notes))


def load_project_at(
    repo: Repo, commit: str, branch: str, plan: Path | None, constraints: Path | None
) -> Project:
    """The plan and constraints as committed at `commit` (what a run obeys; git is the database)."""
    root = repo.root
    plan_path = plan if plan is not None else root / PLAN_FILE
    plan_rel = _inside(plan_path, root, "--plan")
    data = repo.read_blob(commit, plan_rel)
    if data is None:
        if plan_path.exists():
            hint = f"; commit it: `git add {plan_rel} && git commit -m 'Add the plan'`"
        else:
            hint = "; create one with `gitops-agent init`, then commit it"
        raise UserError(
            f"no plan committed on {branch} (run reads the plan from the base branch){hint}",
            plan_rel,
            fix=f"commit {plan_rel} on {branch}",
        )
    parsed = parse_plan(decode(data, plan_rel), plan_rel)
    notes: list[str] = []
    if plan_path.exists() and plan_path.read_bytes() != data:
        notes.append(f"{plan_rel} has changes that are not committed; this run uses {branch}'s.")
    if constraints is not None:
        rules_rel: str | None = _inside(constraints, root, "--constraints")
    else:
        rules_rel = parsed.settings.constraints
    explicit = rules_rel is not None
    rules_rel = rules_rel or DEFAULT_PATH
    rules = repo.read_blob(commit, rules_rel)
    if rules is None:
        if explicit:
            raise UserError(f"not committed on {branch}", rules_rel)
        notes.append(f"No {DEFAULT_PATH} on {branch}: the default rules apply.")
        loaded = DEFAULTS
    else:
        loaded = parse_constraints(decode(rules, rules_rel), rules_rel)
        notes += unread_notes(loaded)
    return Project(root, plan_path, parsed, loaded, tuple(notes))


def _inside(path: Path, root: Path, option: str) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise UserError(f"must be inside the repository {root} ({option})", str(path)) from None


@dataclass(frozen=True, slots=True)
class Base:
    """The branch a run starts from, and the plan and constraints committed on it."""

    repo: Repo
    branch: str
    commit: str
    project: Project


def load_base(
    repo_dir: Path | None, plan: Path | None = None, constraints: Path | None = None
) -> Base:
    """The base as `run` picks it: the plan's `base:` setting, else the branch HEAD names."""
    return base_of(Repo.open(find_root(repo_dir)), plan, constraints)


def base_of(repo: Repo, plan: Path | None = None, constraints: Path | None = None) -> Base:
    branch = repo.head_branch()
    head = repo.head_commit()
    if head is None:
        raise UserError(
            "the repository has no commit yet: commit the plan first "
            "(`git add PROJECT_PLAN.md && git commit -m 'Add the plan'`)",
            str(repo.root),
            fix="commit the plan (and the constraints), then run doctor again",
        )
    if branch is None:  # detached: the plan there may name the base
        project = load_project_at(repo, head, "HEAD", plan, constraints)
        wanted = project.plan.settings.base
        if wanted is None:
            raise UserError(
                "HEAD is detached and the plan there names no base: check out the base branch, "
                "or set `base:` in the plan's front matter",
                str(repo.root),
                fix="`git switch main` (your base branch), or set `base:` in the plan",
            )
        branch, tip = "HEAD", head
    else:
        tip = head
        project = load_project_at(repo, tip, branch, plan, constraints)
    wanted = project.plan.settings.base
    if wanted is not None and wanted != branch:
        # The plan names another base: that branch's plan and rules are the ones obeyed.
        wanted_tip = repo.branch_tip(wanted)
        if wanted_tip is None:
            line = project.plan.settings.line_of("base")
            raise UserError(
                f"the plan names base `{wanted}`, which is not a branch here",
                project.plan.path,
                line,
            )
        branch, tip = wanted, wanted_tip
        project = load_project_at(repo, tip, branch, plan, constraints)
    return Base(repo, branch, tip, project)


def effective_settings(project: Project) -> list[tuple[str, str, str]]:
    """(name, value, source) of every plan setting and constraint: `path:line`, or "default"."""
    rows: list[tuple[str, str, str]] = []
    settings = project.plan.settings
    for name in PLAN_SETTINGS:
        line = settings.line_of(name)
        value = getattr(settings, name)
        if isinstance(value, tuple):
            value = ", ".join(getattr(v, "run", str(v)) for v in value)
        elif value is not None and hasattr(value, "spec"):
            value = value.spec
        where = f"{project.plan.path}:{line}" if line is not None else "default"
        rows.append((name, "(none)" if value is None else str(value), where))
    rules = project.constraints
    for field in dataclasses.fields(rules):
        if field.name in ("path", "prose", "sources", "unread"):
            continue
        value = getattr(rules, field.name)
        if isinstance(value, tuple):
            listed = [str(v) for v in value]
            value = ", ".join(listed[:6]) + (
                f" (and {len(listed) - 6} more)" if len(listed) > 6 else ""
            )
        line = rules.sources.get(field.name)
        where = f"{rules.path}:{line}" if rules.path and line is not None else "default"
        rows.append((field.name, str(value) if value != "" else "(none)", where))
    return rows
