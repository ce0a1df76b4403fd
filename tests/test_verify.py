"""`verify`, the trust boundary of the workflow: an honest artifact comes in, a forged one does not.

Every case starts from the same scene (`testing.artifacts`): a bare origin with main and a memory
branch, a real session (`run --json`, then `bundle`) in the agent job's clone, and the
publisher's fresh clone. Each forgery is made with the git CLI, as an agent that took over its
job could; `verify` must refuse it with exit status 2, say what is wrong, and take nothing in.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import pytest

from gitops_agent import __version__
from gitops_agent.plan import set_status
from gitops_agent.policy.provenance import name_problem, session_start, trailer_problems
from gitops_agent.session import new_session_id
from testing.artifacts import (
    PLAN,
    TOOL,
    ClosedPull,
    Scene,
    blob,
    build_scene,
    commit,
    copy_scene,
    edit_tree,
    fake_github,
    git,
    git_bytes,
    handmade_bundle,
    message,
    raw_commit,
    raw_tree,
    tool,
    tree_entries,
)

MEMORY = "autonomous/memory"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    return build_scene(tmp_path_factory.mktemp("verify") / "scene")


@pytest.fixture
def scene(template: Scene, tmp_path: Path) -> Scene:
    return copy_scene(template, tmp_path / "scene")


# -- forging ------------------------------------------------------------------------------------


class Forged(NamedTuple):
    artifacts: list[Path]
    said: str  # what verify's message must hold
    pulls: list[ClosedPull] | None = None  # what GitHub answers; None: no GitHub at all


def fresh_branch() -> str:
    return f"autonomous/{new_session_id(datetime.now(UTC))}"


def trailers(task: str, session: str, **more: str) -> list[tuple[str, str]]:
    found = [("Task-Id", task), ("Agent", "shell"), ("Session", session)]
    return [*found, ("Gitops-Agent-Version", __version__), *more.items()]


def task_commit(
    s: Scene,
    parent: str,
    task: str,
    files: dict[str, bytes | tuple[str, str] | None],
    *,
    branch: str,
    done: bool = True,
    lines: list[tuple[str, str]] | None = None,
    **how: object,
) -> str:
    """A commit laid out as `run` makes one (unless told otherwise) on top of `parent`."""
    edits = dict(files)
    if done:
        edits[PLAN] = set_status(s.show(parent), task, "DONE").encode()
    tree = edit_tree(s.job, git(s.job, "rev-parse", f"{parent}^{{tree}}"), edits)
    session = branch.removeprefix("autonomous/")
    text = message(f"Do {task}", lines if lines is not None else trailers(task, session))
    return commit(s.job, tree, [parent], text, **how)  # type: ignore[arg-type]


def main(s: Scene) -> str:
    return s.tip(s.job, "main")


def out(s: Scene, name: str = "forged") -> Path:
    return s.job.parent / name


def one_task(s: Scene, files: dict[str, bytes | tuple[str, str] | None], **how: object) -> Path:
    """An artifact whose branch holds one t1 commit with `files` (and t1's status edit)."""
    branch = fresh_branch()
    tip = task_commit(s, main(s), "t1", files, branch=branch, **how)
    return s.pack(out(s), {branch: tip})


def with_tree(
    s: Scene, src_entries: list[tuple[str, bytes, str]], *, by_hand: bool = False
) -> Path:
    """An artifact whose t1 commit's `src/` tree holds exactly `src_entries`, written raw (and
    bundled by hand, for trees `git bundle create` would not pack)."""
    branch = fresh_branch()
    base_tree = git(s.job, "rev-parse", "main^{tree}")
    plan = set_status(s.show("main"), "t1", "DONE").encode()
    top = edit_tree(s.job, base_tree, {PLAN: plan})
    entries = [e for e in tree_entries(s.job, top) if e[1] != b"src"]
    src = raw_tree(s.job, src_entries)
    entries.append(("40000", b"src", src))
    entries.sort(key=lambda e: e[1] + (b"/" if e[0] == "40000" else b""))
    tree = raw_tree(s.job, entries)
    text = message("Do t1", trailers("t1", branch.removeprefix("autonomous/")))
    tip = commit(s.job, tree, [main(s)], text)
    if not by_hand:
        return s.pack(out(s), {branch: tip})
    objects = [tip, tree, src, blob(s.job, plan), *(oid for _, _, oid in src_entries)]
    return handmade_bundle(s.job, out(s), branch, tip, objects, main(s))


def src_entries(s: Scene) -> list[tuple[str, bytes, str]]:
    return tree_entries(s.job, git(s.job, "rev-parse", "main:src"))


A_PY = b"A = 1\n"


# -- the cases ------------------------------------------------------------------------------------


def forged_author(s: Scene) -> Forged:
    return Forged(
        [one_task(s, {"src/a.py": A_PY}, author=("Mallory", "m@evil.example"))],
        'its author is "Mallory <m@evil.example>"',
    )


def forged_committer(s: Scene) -> Forged:
    artifact = one_task(s, {"src/a.py": A_PY}, committer=("Mallory", "m@evil.example"))
    return Forged([artifact], 'its committer is "Mallory')


def dated_2099(s: Scene) -> Forged:
    return Forged(
        [one_task(s, {"src/a.py": A_PY}, date="2099-01-01T00:00:00Z")],
        "2099-01-01 00:00 UTC is in the future",
    )


def dated_1970(s: Scene) -> Forged:
    return Forged(
        [one_task(s, {"src/a.py": A_PY}, date="1970-01-02T00:00:00Z")],
        "1970-01-02 00:00 UTC is long before",
    )


def two_task_ids(s: Scene) -> Forged:
    branch = fresh_branch()
    lines = [("Task-Id", "t2"), *trailers("t1", branch.removeprefix("autonomous/"))]
    tip = task_commit(s, main(s), "t1", {"src/a.py": A_PY}, branch=branch, lines=lines)
    return Forged([s.pack(out(s), {branch: tip})], "carries 2 `Task-Id` lines")


def only_sets_done(s: Scene) -> Forged:
    branch = fresh_branch()
    tip = task_commit(s, main(s), "t1", {}, branch=branch)
    return Forged([s.pack(out(s), {branch: tip})], "only sets task `t1`'s status to DONE")


def nothing_to_do_that_does_something(s: Scene) -> Forged:
    branch = fresh_branch()
    lines = trailers("t1", branch.removeprefix("autonomous/"), **{"Nothing-To-Do": "yes"})
    tip = task_commit(s, main(s), "t1", {"src/a.py": A_PY}, branch=branch, lines=lines)
    return Forged([s.pack(out(s), {branch: tip})], "a `Nothing-To-Do` commit that changes files")


def never_sets_done(s: Scene) -> Forged:
    branch = fresh_branch()
    tip = task_commit(s, main(s), "t1", {"src/a.py": A_PY}, branch=branch, done=False)
    return Forged([s.pack(out(s), {branch: tip})], "never sets task `t1`'s status to DONE")


def status_commit(s: Scene) -> tuple[Path, str]:
    """An artifact whose branch holds only `Task-Status: t2 NEEDS_HUMAN`, made as `run` makes it."""
    branch = fresh_branch()
    session = branch.removeprefix("autonomous/")
    plan = set_status(s.show("main"), "t2", "NEEDS_HUMAN").encode()
    tree = edit_tree(s.job, git(s.job, "rev-parse", "main^{tree}"), {PLAN: plan})
    lines = [("Task-Status", "t2 NEEDS_HUMAN"), ("Session", session)]
    text = message("Mark t2 as needing a person", [*lines, ("Gitops-Agent-Version", __version__)])
    return s.pack(out(s), {branch: commit(s.job, tree, [main(s)], text)}), branch


def needs_human_without_github(s: Scene) -> Forged:
    artifact, _ = status_commit(s)
    return Forged([artifact], "sets task `t2` to NEEDS_HUMAN, which cannot be confirmed")


def needs_human_that_github_denies(s: Scene) -> Forged:
    artifact, _ = status_commit(s)
    # GitHub knows a closed pull request of t2, but it was merged, and one of t1's, unmerged.
    pulls = [
        ClosedPull(3, "autonomous/x", ("t2",), merged=True),
        ClosedPull(4, "autonomous/y", ("t1",)),
    ]
    return Forged([artifact], "but no pull request of it was closed without merging", pulls)


def too_many_tasks(s: Scene) -> Forged:
    branch = fresh_branch()
    tip = main(s)
    for task in ("t1", "t2", "t3"):
        tip = task_commit(s, tip, task, {f"src/{task}.py": b"X = 1\n"}, branch=branch)
    return Forged([s.pack(out(s), {branch: tip})], "more task commits than the session limit of 2")


def one_line_of_900_kb(s: Scene) -> Forged:
    return Forged(
        [one_task(s, {"src/a.py": b"x" * 900_000 + b"\n"})],
        "an added line is 900,000 characters long",
    )


def over_max_file_bytes(s: Scene) -> Forged:
    text = b"".join(b"X%d = %d\n" % (n, n) for n in range(700))[:4500]
    return Forged([one_task(s, {"src/a.py": text})], "over the limit of 4,000 bytes")


def weakens_a_test(s: Scene) -> Forged:
    weaker = b"from app import hello\n\n\ndef test_hello():\n    assert True\n"
    artifact = one_task(s, {"tests/test_app.py": weaker})
    return Forged([artifact], "tests/test_app.py: modified, but it is an existing test")


def docs_codeowners(s: Scene) -> Forged:
    artifact = one_task(s, {"docs/CODEOWNERS": b"* @mallory\n"})
    return Forged([artifact], "docs/CODEOWNERS: added, but it is a CODEOWNERS file")


def bidi_in_a_line(s: Scene) -> Forged:
    line = 'access = "user\u202e \u2066# admin\u2069 \u2066"\n'.encode()
    return Forged(
        [one_task(s, {"src/a.py": line})], "hold bidirectional controls (U+202E, U+2066, U+2069)"
    )


def bidi_in_a_path(s: Scene) -> Forged:
    name = "evil\u202eyp.py".encode()
    entries = sorted([*src_entries(s), ("100644", name, blob(s.job, A_PY))], key=lambda e: e[1])
    return Forged([with_tree(s, entries)], "a name holding a bidirectional control (U+202E)")


def symlink_to_workflows(s: Scene) -> Forged:
    link = ("120000", blob(s.job, b"../.github/workflows"))
    return Forged([one_task(s, {"src/ci": link})], 'src/ci: symlink to "../.github/workflows"')


def symlink_to_the_plan(s: Scene) -> Forged:
    link = ("120000", blob(s.job, b"../PROJECT_PLAN.md"))
    return Forged(
        [one_task(s, {"src/plan.md": link})], 'src/plan.md: symlink to "../PROJECT_PLAN.md"'
    )


def gitlink_without_gitmodules(s: Scene) -> Forged:
    gitlink = ("160000", main(s))
    return Forged(
        [one_task(s, {"src/vendored": gitlink})],
        "src/vendored: a submodule (gitlink, mode 160000), and no .gitmodules declares it",
    )


def dot_git_inside(s: Scene) -> Forged:
    config = raw_tree(s.job, [("100644", b"config", blob(s.job, b"[core]\n\thooksPath = x\n"))])
    entries = [("40000", b".git", config), *src_entries(s)]
    return Forged([with_tree(s, entries)], "src/.git: named like git's own directory")


def dot_git_in_capitals(s: Scene) -> Forged:
    config = raw_tree(s.job, [("100644", b"config", blob(s.job, b"[core]\n"))])
    entries = [("40000", b".GIT", config), *src_entries(s)]
    return Forged([with_tree(s, entries)], "src/.GIT: named like git's own directory")


def duplicate_entries(s: Scene) -> Forged:
    entries = [*src_entries(s), ("100644", b"app.py", blob(s.job, b"import os\n"))]
    return Forged([with_tree(s, entries)], "src/app.py: 2 entries with this name in one tree")


def slash_in_a_name(s: Scene) -> Forged:
    entries = [("100644", b"../../x", blob(s.job, A_PY)), *src_entries(s)]
    return Forged([with_tree(s, entries)], "a name holding '/' or NUL")


def dot_dot_name(s: Scene) -> Forged:
    entries = [("100644", b"..", blob(s.job, A_PY)), *src_entries(s)]
    return Forged([with_tree(s, entries)], "named '..'")


def empty_name(s: Scene) -> Forged:
    # git itself refuses the tree (its fetch walks every tree it brings): the bundle is refused.
    entries = [("100644", b"", blob(s.job, A_PY)), *src_entries(s)]
    return Forged([with_tree(s, entries, by_hand=True)], "the bundle's objects were refused")


def nul_in_a_name(s: Scene) -> Forged:
    entries = [("100644", b"a\0b.py", blob(s.job, A_PY)), *src_entries(s)]
    return Forged([with_tree(s, entries, by_hand=True)], "the bundle's objects were refused")


def gitmodules_in_capitals(s: Scene) -> Forged:
    entries = [("100644", b".GITMODULES", blob(s.job, b'[submodule "x"]\n')), *src_entries(s)]
    return Forged([with_tree(s, entries)], "src/.GITMODULES: named like .gitmodules")


def signed_header(s: Scene) -> Forged:
    branch = fresh_branch()
    honest = task_commit(s, main(s), "t1", {"src/a.py": A_PY}, branch=branch)
    text = git(s.job, "cat-file", "commit", honest).encode()
    head, _, body = text.partition(b"\n\n")
    forged = raw_commit(s.job, head + b"\nencoding ISO-8859-1\n\n" + body + b"\n")
    return Forged([s.pack(out(s), {branch: forged})], "its headers are not the tool's")


def a_trailer_the_tool_never_writes(s: Scene) -> Forged:
    branch = fresh_branch()
    lines = trailers("t1", branch.removeprefix("autonomous/"), **{"Approved-By": "@security-team"})
    tip = task_commit(s, main(s), "t1", {"src/a.py": A_PY}, branch=branch, lines=lines)
    return Forged([s.pack(out(s), {branch: tip})], "carries a `Approved-By` trailer")


def a_tag_and_no_branch(s: Scene) -> Forged:
    tip = s.tip(s.job, s.branch)
    git(s.job, "tag", "v9", tip)
    artifact = out(s)
    artifact.mkdir()
    git(
        s.job,
        "bundle",
        "create",
        "-q",
        str(artifact / "result.bundle"),
        "refs/tags/v9",
        "--not",
        "--remotes",
    )
    (artifact / "result.json").write_text('{"branch": null}', encoding="utf-8")
    return Forged([artifact], "carries refs/tags/v9: not a branch the tool makes")


def branch_named_main(s: Scene) -> Forged:
    tip = task_commit(s, main(s), "t1", {"src/a.py": A_PY}, branch="autonomous/main")
    artifact = s.pack(out(s), {"autonomous/main": tip})
    return Forged([artifact], "carries refs/heads/autonomous/main: not a branch the tool makes")


def same_task_on_two_branches(s: Scene) -> Forged:
    other = fresh_branch()
    tip = task_commit(s, main(s), "t1", {"src/a.py": b"A = 2\n"}, branch=other)
    second = s.pack(out(s), {other: tip}, memory=None)
    return Forged([s.artifact, second], "task `t1` has another commit on " + s.branch)


def same_task_as_one_awaiting_review(s: Scene) -> Forged:
    git(s.job, "push", "-q", "origin", s.branch)
    git(s.publisher, "fetch", "-q", "origin")
    other = fresh_branch()
    tip = task_commit(s, main(s), "t1", {"src/a.py": b"A = 2\n"}, branch=other)
    artifact = s.pack(out(s), {other: tip}, memory=None)
    return Forged([artifact], f"task `t1` already awaits review on origin/{s.branch}")


def adds_to_a_branch_awaiting_review(s: Scene) -> Forged:
    # Pushed after the publisher's checkout: verify asks origin itself.
    git(s.job, "push", "-q", "origin", s.branch)
    tip = task_commit(s, s.tip(s.job, s.branch), "t3", {"src/c.py": b"C = 3\n"}, branch=s.branch)
    artifact = s.pack(out(s), {s.branch: tip}, memory=None)
    return Forged([artifact], f"{s.branch} is on origin already")


def result_json_hides_the_branch(s: Scene) -> Forged:
    artifact = s.pack(out(s), {s.branch: s.tip(s.job, s.branch)}, result={"branch": None})
    return Forged([artifact], f"says `branch: null`, but the bundle carries {s.branch}")


def result_json_claims_other_tasks(s: Scene) -> Forged:
    tip = s.tip(s.job, s.branch)
    said = {**s.result, "tasks": [t for t in s.result["tasks"] if t["id"] != "t2"]}
    artifact = s.pack(out(s), {s.branch: tip}, result=said)
    return Forged([artifact], "result.json says the committed tasks are t1")


def memory_commit(s: Scene, tree: str, parents: list[str]) -> str:
    lines = [("Session", new_session_id(datetime.now(UTC))), ("Gitops-Agent-Version", __version__)]
    return commit(s.job, tree, parents, message("Session record", lines))


def memory_rewritten(s: Scene) -> Forged:
    origin_tip = s.tip(s.job, "refs/remotes/origin/autonomous/memory")
    day = next(
        p
        for p in git(s.job, "ls-tree", "-r", "--name-only", origin_tip).split()
        if p.startswith("memory/")
    )
    old = git(s.job, "show", f"{origin_tip}:{day}").encode()
    tree = edit_tree(s.job, f"{origin_tip}^{{tree}}", {day: old.replace(b"t9", b"t0")})
    parents = git(s.job, "log", "-1", "--format=%P", origin_tip).split()
    forged = memory_commit(s, git(s.job, "rev-parse", tree), parents)
    artifact = s.pack(out(s), {s.branch: s.tip(s.job, s.branch)}, memory=forged)
    return Forged([artifact], "autonomous/memory does not continue origin/autonomous/memory")


def memory_emptied(s: Scene) -> Forged:
    empty = raw_tree(s.job, [])
    forged = memory_commit(s, empty, [s.tip(s.job, MEMORY)])
    artifact = s.pack(out(s), {s.branch: s.tip(s.job, s.branch)}, memory=forged)
    return Forged([artifact], "removes state/sessions.tsv, which the memory recorded")


def memory_orphaned(s: Scene) -> Forged:
    forged = memory_commit(s, git(s.job, "rev-parse", f"{MEMORY}^{{tree}}"), [])
    artifact = s.pack(out(s), {s.branch: s.tip(s.job, s.branch)}, memory=forged)
    return Forged([artifact], "a root commit; it does not build on the history here")


def memory_edited_in_place(s: Scene) -> Forged:
    tip = s.tip(s.job, MEMORY)
    index = git(s.job, "show", f"{tip}:state/sessions.tsv").encode()
    tree = edit_tree(s.job, f"{tip}^{{tree}}", {"state/sessions.tsv": b"#" + index})
    forged = memory_commit(s, tree, [tip])
    artifact = s.pack(out(s), {s.branch: s.tip(s.job, s.branch)}, memory=forged)
    return Forged([artifact], "rewrites state/sessions.tsv, which may only be appended to")


def memory_writes_another_sessions_record(s: Scene) -> Forged:
    tip = s.tip(s.job, MEMORY)
    record = git_bytes(s.job, "show", f"{tip}:state/sessions/{s.session}.json")
    other = f"state/sessions/{new_session_id(datetime.now(UTC))}.json"
    tree = edit_tree(s.job, f"{tip}^{{tree}}", {other: record})
    forged = memory_commit(s, tree, [tip])
    artifact = s.pack(out(s), {s.branch: s.tip(s.job, s.branch)}, memory=forged)
    return Forged([artifact], f"writes another session's record: {other}")


CASES: dict[str, Callable[[Scene], Forged]] = {
    case.__name__: case
    for case in (
        forged_author,
        forged_committer,
        dated_2099,
        dated_1970,
        two_task_ids,
        only_sets_done,
        nothing_to_do_that_does_something,
        never_sets_done,
        needs_human_without_github,
        needs_human_that_github_denies,
        too_many_tasks,
        one_line_of_900_kb,
        over_max_file_bytes,
        weakens_a_test,
        docs_codeowners,
        bidi_in_a_line,
        bidi_in_a_path,
        symlink_to_workflows,
        symlink_to_the_plan,
        gitlink_without_gitmodules,
        dot_git_inside,
        dot_git_in_capitals,
        duplicate_entries,
        slash_in_a_name,
        dot_dot_name,
        empty_name,
        nul_in_a_name,
        gitmodules_in_capitals,
        signed_header,
        a_trailer_the_tool_never_writes,
        a_tag_and_no_branch,
        branch_named_main,
        same_task_on_two_branches,
        same_task_as_one_awaiting_review,
        adds_to_a_branch_awaiting_review,
        result_json_hides_the_branch,
        result_json_claims_other_tasks,
        memory_rewritten,
        memory_emptied,
        memory_orphaned,
        memory_edited_in_place,
        memory_writes_another_sessions_record,
    )
}


# -- the tests ----------------------------------------------------------------------------------


def test_an_honest_artifact_is_taken_in(scene: Scene) -> None:
    # What the forgeries imitate: every commit of a session, by the tool's own identity.
    made_by = git(scene.job, "log", "--format=%an <%ae>|%cn <%ce>", f"main..{scene.branch}")
    assert set(made_by.splitlines()) == {"{0} <{1}>|{0} <{1}>".format(*TOOL)}
    origin_before = scene.refs(scene.origin)
    verified = scene.verify(scene.artifact)
    assert verified.returncode == 0, verified.stderr
    assert scene.tip(scene.publisher, scene.branch) == scene.tip(scene.job, scene.branch)
    assert scene.tip(scene.publisher, MEMORY) == scene.tip(scene.job, MEMORY)
    assert scene.refs(scene.origin) == origin_before


@pytest.mark.parametrize("case", list(CASES))
def test_a_forged_artifact_is_refused_and_nothing_is_taken_in(scene: Scene, case: str) -> None:
    forged = CASES[case](scene)
    origin_before = scene.refs(scene.origin)
    publisher_before = scene.refs(scene.publisher)
    if forged.pulls is not None:
        with fake_github(forged.pulls) as github:
            refused = scene.verify(*forged.artifacts, env=github)
    else:
        refused = scene.verify(*forged.artifacts)
    assert refused.returncode == 2, refused.stderr
    said = " ".join(refused.stderr.split())
    assert " ".join(forged.said.split()) in said, refused.stderr
    assert "Nothing was taken in." in said
    assert "Traceback" not in refused.stderr
    assert scene.refs(scene.origin) == origin_before
    after = scene.refs(scene.publisher)
    taken = {
        ref: tip
        for ref, tip in after.items()
        if publisher_before.get(ref) != tip and not ref.startswith("refs/remotes/")
    }
    # The one ref verify may make before it judges: the memory branch the publisher's clone
    # lacks, set to origin's own.
    assert taken in ({}, {f"refs/heads/{MEMORY}": scene.tip(scene.origin, MEMORY)}), taken


def run_elsewhere(scene: Scene, where: Path, *args: str) -> Path:
    """Another runner: a fresh clone of origin, `run --json` with `args`, then `bundle`."""
    git(where.parent, "clone", "-q", str(scene.origin), str(where))
    ran = tool("run", "--json", *args, cwd=where)
    assert ran.returncode == 0, ran.stderr
    (where / "run.json").write_text(ran.stdout, encoding="utf-8")
    artifact = where.parent / f"{where.name}-artifact"
    packed = tool("bundle", "run.json", "--out", str(artifact), cwd=where)
    assert packed.returncode == 0, packed.stderr
    return artifact


def test_the_tools_own_nothing_to_do_commit_is_taken_in(scene: Scene, tmp_path: Path) -> None:
    artifact = run_elsewhere(scene, tmp_path / "other", "--task", "t4")
    branch = git(
        tmp_path / "other", "branch", "--list", "autonomous/2*", "--format=%(refname:short)"
    )
    trailers = git(tmp_path / "other", "log", "-1", "--format=%(trailers:only)", branch)
    assert "Nothing-To-Do: yes" in trailers
    verified = scene.verify(artifact)
    assert verified.returncode == 0, verified.stderr
    assert scene.tip(scene.publisher, branch) == scene.tip(tmp_path / "other", branch)


def test_a_status_commit_github_confirms_is_taken_in(scene: Scene) -> None:
    artifact, branch = status_commit(scene)
    with fake_github([ClosedPull(12, "autonomous/20261101-020000-abcd", ("t1", "t2"))]) as env:
        verified = scene.verify(artifact, env=env)
    assert verified.returncode == 0, verified.stderr
    assert scene.tip(scene.publisher, branch) == scene.tip(scene.job, branch)


def test_two_runners_memories_are_joined_by_appending(scene: Scene, tmp_path: Path) -> None:
    # A second runner, from its own fresh clone, ran t3 while the first ran t1 and t2.
    second = tmp_path / "second"
    verified = scene.verify(scene.artifact, run_elsewhere(scene, second, "--task", "t3"))
    assert verified.returncode == 0, verified.stderr
    joined = scene.tip(scene.publisher, MEMORY)
    origin = scene.tip(scene.origin, MEMORY)
    for runner in (scene.job, second):
        theirs = scene.tip(runner, MEMORY)
        assert git(scene.publisher, "merge-base", "--is-ancestor", theirs, joined) == ""
        for path in git(runner, "ls-tree", "-r", "--name-only", theirs).split():
            before = show(scene.origin, origin, path)
            added = show(runner, theirs, path).removeprefix(before)
            assert added in show(scene.publisher, joined, path), path
    # The first runner's files are kept as they are; the second's additions come after.
    for path in git(scene.job, "ls-tree", "-r", "--name-only", MEMORY).split():
        first = show(scene.job, MEMORY, path)
        assert show(scene.publisher, joined, path).startswith(first), path


def show(repo: Path, rev: str, path: str) -> str:
    """A file at a commit; "" when it is not there."""
    listed = git(repo, "ls-tree", "--name-only", rev, "--", path)
    return git_bytes(repo, "show", f"{rev}:{path}").decode() if listed else ""


def test_a_session_id_tells_when_its_session_started() -> None:
    now = datetime(2026, 11, 30, 2, 0, 7, tzinfo=UTC)
    assert session_start(new_session_id(now)) == int(now.timestamp())
    assert session_start("main") is None
    assert session_start("20261399-020000-abcd") is None


REFUSED_NAMES = [".git", ".GIT", ".Git.", ".git ", "git~1", ".g\u200cit", ".GITMODULES"]
REFUSED_NAMES += ["gitmod~1", "", "..", "a/b", "x\x1by", "a\u202eb", "a\u2066b"]


@pytest.mark.parametrize("name", REFUSED_NAMES)
def test_a_name_a_checkout_must_not_meet_is_refused(name: str) -> None:
    assert name_problem(name.encode())


@pytest.mark.parametrize("name", ["app.py", ".github", ".gitignore", "git", "café.py", ".gitx"])
def test_an_ordinary_name_passes(name: str) -> None:
    assert name_problem(name.encode()) == ""


def test_trailers_the_tool_writes_once_are_counted_in_any_case_anywhere() -> None:
    text = message("Do t1", [("Task-Id", "t1"), ("task-id", "t2")])
    assert trailer_problems(text, ["Task-Id"], ["Task-Id"]) == [
        "carries 2 `Task-Id` lines; the tool writes one"
    ]
    body = "Task-Id: t2\n\nmore words"
    text = message("Do t1", [("Task-Id", "t1")], body=body)
    assert trailer_problems(text, ["Task-Id"], ["Task-Id"]) == [
        "carries 2 `Task-Id` lines; the tool writes one"
    ]
    assert trailer_problems(message("Do", [("Session", "s")]), ["Session"], ["Task-Id"]) == [
        "carries no `Task-Id` trailer"
    ]
