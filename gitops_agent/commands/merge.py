"""`gitops-agent merge`: the auto-approved results in quarantine, re-tested and, when they
stayed green to its end, merged into the base.

On GitHub (the remote is there, or GITHUB_REPOSITORY says so) it merges each result's pull
request through the API, never touching the local base. Without GitHub it moves the local base
itself, as `git merge` would: a fast-forward where it can, else a merge commit (`merge_method:
squash` makes one commit). Every merge gets a checkpoint tag; every state change is one event on
the memory branch and one notification.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from gitops_agent import __version__, quarantine
from gitops_agent.checkpoints import tag_merges
from gitops_agent.clock import iso, now
from gitops_agent.errors import RefMovedError
from gitops_agent.events import Event, EventKind
from gitops_agent.gate import resolve_gate
from gitops_agent.git.base import CheckoutInTheWay, advance_base
from gitops_agent.git.merge import commit_merge
from gitops_agent.git.merge import merge as merge_commits
from gitops_agent.git.remote import DEFAULT_REMOTE, fetch_refs, push_checkpoints, remote_url
from gitops_agent.github import GitHub, GitHubError, repository_from_url
from gitops_agent.memory import load_events, publish_memory, record_event
from gitops_agent.notify import notify, notify_urls
from gitops_agent.plan import MergeMethod
from gitops_agent.project import Base, load_base
from gitops_agent.proposals import catch_up
from gitops_agent.quarantine import Candidate, Retest, State
from gitops_agent.session.places import work_dir

FAILED_LABEL = "gitops-agent: re-test failed"


@dataclass(frozen=True, slots=True)
class Step:
    """What `merge` did with one candidate."""

    branch: str
    tasks: tuple[str, ...]
    state: str  # quarantined | waiting | merged | cancelled | held
    said: str  # one sentence for people
    ends: str | None = None  # ISO time the quarantine ends
    commit: str | None = None  # the base's new commit, when merged
    checkpoint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "branch": self.branch,
            "tasks": list(self.tasks),
            "state": self.state,
            "reason": self.said,
            "quarantine_ends": self.ends,
            "commit": self.commit,
            "checkpoint": self.checkpoint,
        }


@dataclass
class MergeRun:
    base: str
    github: str | None  # owner/name when results are merged through GitHub
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        if not self.steps:
            return ["No auto-approved result awaits the base.", *self.notes]
        shown = [f"{s.branch} ({', '.join(s.tasks)}): {s.state}: {s.said}" for s in self.steps]
        return [*shown, *self.notes]

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "github": self.github,
            "results": [s.to_json() for s in self.steps],
        }


def merge_results(
    repo_dir: Path | None,
    *,
    plan: Path | None = None,
    constraints: Path | None = None,
    push: bool = False,
    remote: str = DEFAULT_REMOTE,
) -> MergeRun:
    """Re-test each auto-approved result, and merge those whose quarantine ended green."""
    base = load_base(repo_dir, plan, constraints)
    repo = base.repo
    repository = repository_from_url(remote_url(repo, remote)) or os.environ.get(
        "GITHUB_REPOSITORY"
    )
    github = GitHub.from_env(repository) if repository else None
    base_commit = base.commit
    notes = catch_up(base, push=True)  # the remote's results and memory: what it has seen
    if remote_url(repo, remote) is not None and github is not None:
        # The results go into the remote's base: judge them on it.
        theirs = f"refs/remotes/{remote}/{base.branch}"
        fetch_refs(repo, remote, [f"+refs/heads/{base.branch}:{theirs}"])
        base_commit = repo.resolve_commit(theirs)
    run = MergeRun(base.branch, github.repository if github else None, notes=notes)
    _Merger(base, base_commit, github, run, remote).go()
    if push and remote_url(repo, remote) is not None:
        publish_memory(repo, remote, timezone=base.project.plan.settings.timezone)
        push_checkpoints(repo, remote)
    return run


@dataclass
class _Merger:
    base: Base
    base_commit: str
    github: GitHub | None
    run: MergeRun
    remote: str

    def go(self) -> None:
        repo = self.base.repo
        events = load_events(repo)
        for candidate in quarantine.candidates(repo, self.base_commit, self.remote):
            state = quarantine.state_of(events, candidate.branch, candidate.tip)
            if state.merged is not None or state.cancelled is not None:
                continue  # told once already; a person has it now
            self.run.steps.append(self._one(candidate, state))

    # -- one result --------------------------------------------------------------------------

    def _one(self, candidate: Candidate, state: State) -> Step:
        settings = self.base.project.plan.settings
        rules = self.base.project.constraints
        moment = now()
        plan = self.base.project.plan
        why_not = quarantine.forbidden(self.base.repo, candidate, self.base_commit, plan, rules)
        if why_not is not None:
            return self._cancel(candidate, why_not, moment)
        if state.started is None:
            state = quarantine.State(started=moment)
            self.run.notes += quarantine.begin(
                self.base.repo,
                self.base.project.plan.settings,
                candidate.branch,
                candidate.tip,
                candidate.tasks,
                moment,
            )
        ends = state.ends(settings.quarantine_hours)
        assert ends is not None
        last = state.last_retest
        if quarantine.retest_due(state, self.base_commit, moment):
            checked = self._retest(candidate, moment, ends)
        else:
            assert last is not None
            checked = Retest(bool(last.data.get("passed")), last.title)
        if not checked.passed:
            return self._cancel(candidate, f"the re-test failed: {checked.why}", moment)
        if moment < ends:
            left = _hours(ends - moment)
            return Step(
                candidate.branch,
                candidate.tasks,
                "waiting",
                f"green; {left} of quarantine left (until {iso(ends)})",
                ends=iso(ends),
            )
        return self._merge(candidate, moment, ends)

    def _retest(self, candidate: Candidate, moment: datetime, ends: datetime) -> Retest:
        repo = self.base.repo
        gate = resolve_gate(repo, self.base_commit, self.base.project.plan.settings)
        place = work_dir(repo, repo.tree_bytes(candidate.tip)) / f"retest-{candidate.tip[:12]}"
        checked = quarantine.retest(
            repo, candidate, self.base_commit, gate, self.base.project.constraints, place
        )
        left = max(ends - moment, timedelta(0))
        verdict = "passed" if checked.passed else "failed"
        self._record(
            EventKind.RETESTED,
            moment,
            f"Re-test of {candidate.branch} {verdict}",
            candidate,
            lines=[checked.why, f"Quarantine left: {_hours(left)} (until {iso(ends)})"],
            passed=checked.passed,
            base_commit=self.base_commit,
            hours_left=round(left.total_seconds() / 3600, 2),
        )
        return checked

    def _cancel(self, candidate: Candidate, why: str, moment: datetime) -> Step:
        """The tool will not merge it: said once (event, label, notification), then a
        person's to decide."""
        number = self._pull_number(candidate.branch)
        if self.github is not None and number is not None:
            try:
                self.github.add_labels(number, [FAILED_LABEL])
                self.github.comment(number, f"gitops-agent will not merge this: {why}.")
            except GitHubError as err:
                self.run.notes.append(
                    f"{candidate.branch}: the pull request was not labelled ({err})."
                )
        self._record(
            EventKind.CANCELLED,
            moment,
            f"Auto-merge of {candidate.branch} cancelled",
            candidate,
            lines=[why[:1].upper() + why[1:] + ".", "A person decides now."],
            reason=why,
        )
        self._notify(
            f"❌ gitops-agent: not merging {', '.join(candidate.tasks)}",
            f"{candidate.branch}: {why}. A person decides now.",
        )
        return Step(candidate.branch, candidate.tasks, "cancelled", why)

    def _merge(self, candidate: Candidate, moment: datetime, ends: datetime) -> Step:
        settings = self.base.project.plan.settings
        title = f"Merge {candidate.branch} ({', '.join(candidate.tasks)})"
        try:
            if self.github is not None:
                new = self._merge_on_github(candidate, title)
            else:
                new = self._merge_here(candidate, title, settings.merge_method)
        except CheckoutInTheWay as err:
            return Step(candidate.branch, candidate.tasks, "held", err.message, ends=iso(ends))
        except (RefMovedError, GitHubError) as err:
            return Step(
                candidate.branch,
                candidate.tasks,
                "held",
                f"not merged this time ({err}); the next merge tries again",
                ends=iso(ends),
            )
        tags = self._checkpoints(moment)
        checkpoint = tags[-1] if tags else None
        self._record(
            EventKind.MERGED,
            moment,
            f"Merged {candidate.branch} into {self.base.branch}",
            candidate,
            lines=[
                f"Quarantine of {settings.quarantine_hours:g} h ended green.",
                *([f"Checkpoint: {checkpoint}"] if checkpoint else []),
            ],
            commit=new,
            checkpoint=checkpoint,
            base=self.base.branch,
        )
        self._notify(
            f"✅ gitops-agent merged {', '.join(candidate.tasks)} into {self.base.branch}",
            f"{candidate.branch} stayed green through its quarantine and is merged "
            f"({new[:12]}{', ' + checkpoint if checkpoint else ''}).",
        )
        self.base_commit = new
        return Step(
            candidate.branch,
            candidate.tasks,
            "merged",
            f"stayed green through its quarantine; merged into {self.base.branch}",
            ends=iso(ends),
            commit=new,
            checkpoint=checkpoint,
        )

    def _merge_here(self, candidate: Candidate, title: str, method: MergeMethod) -> str:
        repo = self.base.repo
        trailers = {"Gitops-Agent-Version": __version__}
        if repo.is_merged(self.base_commit, candidate.tip):
            new = candidate.tip  # a fast-forward, whatever the method: history stays linear
        else:
            done = merge_commits(repo, self.base_commit, candidate.tip)
            if done.tree is None:
                raise RefMovedError(f"it conflicts with {self.base.branch} now")
            if method is MergeMethod.MERGE:
                parents = [self.base_commit, candidate.tip]
                new = commit_merge(repo, done.tree, parents, title, trailers)
            else:  # squash, and rebase (one commit of the task: the same tree on the base)
                carried = {"Task-Id": ", ".join(candidate.tasks), **trailers}
                new = commit_merge(repo, done.tree, [self.base_commit], title, carried)
        advance_base(repo, self.base.branch, new, expected=self.base_commit)
        return new

    def _merge_on_github(self, candidate: Candidate, title: str) -> str:
        assert self.github is not None
        number = self._pull_number(candidate.branch)
        if number is None:
            raise GitHubError(f"{candidate.branch} has no open pull request", 0)
        method = self.base.project.plan.settings.merge_method.value
        merged = self.github.merge_pull(number, sha=candidate.tip, method=method, title=title)
        theirs = f"refs/remotes/{self.remote}/{self.base.branch}"
        fetch_refs(self.base.repo, self.remote, [f"+refs/heads/{self.base.branch}:{theirs}"])
        return merged or self.base.repo.resolve_commit(theirs)

    def _checkpoints(self, moment: datetime) -> list[str]:
        tz = self.base.project.plan.settings.timezone
        branch = self.base.branch
        if self.github is not None:
            branch = f"{self.remote}/{branch}"
        made = tag_merges(self.base.repo, branch, timezone=tz, merged_at=moment)
        return [str(e.data.get("checkpoint")) for e in made if e.data.get("checkpoint")]

    # -- telling people ----------------------------------------------------------------------

    def _pull_number(self, branch: str) -> int | None:
        if self.github is None:
            return None
        try:
            found = self.github.pulls_for(branch, state="open")
        except GitHubError as err:
            self.run.notes.append(f"{branch}: its pull request could not be read ({err}).")
            return None
        return found[0].number if found else None

    def _record(
        self,
        kind: EventKind,
        moment: datetime,
        title: str,
        candidate: Candidate,
        *,
        lines: list[str],
        commit: str | None = None,
        **data: Any,
    ) -> None:
        event = Event.create(
            kind,
            moment,
            title,
            branch=candidate.branch,
            commit=commit or candidate.tip,
            tasks=candidate.tasks,
            lines=lines,
            data={"tip": candidate.tip, **data},
        )
        record_event(self.base.repo, event, timezone=self.base.project.plan.settings.timezone)

    def _notify(self, title: str, body: str) -> None:
        urls = notify_urls(self.base.project.plan.settings.notify)
        self.run.notes += notify(urls, title, body)


def _hours(delta: timedelta) -> str:
    hours = max(delta.total_seconds(), 0) / 3600
    return f"{hours:.1f} h" if hours < 10 else f"{hours:.0f} h"
