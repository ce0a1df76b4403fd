"""Post-flight rules on hand-built change records: each rule refuses what it must and only that."""

from __future__ import annotations

import pytest

from gitops_agent.change import SYMLINK_MODE, Change, FileChange, FileStatus
from gitops_agent.constraints import Constraints
from gitops_agent.errors import ConstraintsError
from gitops_agent.policy import Violation
from gitops_agent.policy.inspect import inspect_change
from gitops_agent.policy.secrets import find_secrets

# AWS's documented example key: shaped like a real one, valid nowhere.
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
REGULAR = 0o100644


def changed(
    path: str,
    lines: tuple[str, ...] = ("x = 1",),
    *,
    status: FileStatus = FileStatus.MODIFIED,
    old_path: str | None = None,
    deleted: int = 0,
    is_binary: bool = False,
    size: int | None = None,
    target: str | None = None,
) -> FileChange:
    gone = status is FileStatus.DELETED
    return FileChange(
        path=path,
        status=status,
        old_path=old_path,
        added=0 if gone or is_binary else len(lines),
        deleted=deleted,
        added_lines=() if gone or is_binary else lines,
        is_binary=is_binary,
        mode=0 if gone else SYMLINK_MODE if target is not None else REGULAR,
        size=0 if gone else size if size is not None else sum(len(x) + 1 for x in lines),
        symlink_target=target,
    )


def judge(
    *files: FileChange,
    estimated_lines: int | None = 30,
    constraints: Constraints | None = None,
    protected_paths: tuple[str, ...] = (),
    repo_files: frozenset[str] | None = None,
) -> list[Violation]:
    return inspect_change(
        Change(base="0" * 40, tree="1" * 40, files=files),
        constraints or Constraints(),
        estimated_lines=estimated_lines,
        protected_paths=protected_paths,
        repo_files=repo_files,
    )


def rules(violations: list[Violation]) -> list[tuple[str, str | None]]:
    return [(v.rule, v.path) for v in violations]


def test_clean_change_in_src_and_tests_gives_no_violation() -> None:
    assert (
        judge(
            changed("src/app.py", ("def greet(name: str) -> str:", "    return f'hi {name}'")),
            changed("tests/test_app.py", ("def test_greet() -> None:",), status=FileStatus.ADDED),
        )
        == []
    )


# outside-approved-dirs


def test_file_outside_approved_dirs_is_refused() -> None:
    [violation] = judge(changed("scripts/deploy.py"))
    assert violation.rule == "outside-approved-dirs"
    assert violation.path == "scripts/deploy.py"
    assert "scripts/deploy.py" in violation.message and "src/" in violation.message


def test_lookalike_of_approved_dir_is_outside_it() -> None:
    assert rules(judge(changed("srcx/a.py"), changed("src.py"))) == [
        ("outside-approved-dirs", "src.py"),
        ("outside-approved-dirs", "srcx/a.py"),
    ]


def test_rename_needs_both_ends_approved() -> None:
    into = changed("src/tool.py", status=FileStatus.RENAMED, old_path="scripts/tool.py")
    assert rules(judge(into)) == [("outside-approved-dirs", "scripts/tool.py")]
    within = changed("src/new.py", status=FileStatus.RENAMED, old_path="tests/old.py")
    assert judge(within) == []


def test_approved_dirs_come_from_the_constraints() -> None:
    only_lib = Constraints(approved_dirs=("lib/",))
    assert judge(changed("lib/a.py"), constraints=only_lib) == []
    assert rules(judge(changed("src/a.py"), constraints=only_lib)) == [
        ("outside-approved-dirs", "src/a.py")
    ]


# protected-file


def test_env_file_anywhere_is_protected_but_lookalikes_are_not() -> None:
    anywhere = Constraints(approved_dirs=(".",))
    assert rules(judge(changed("src/.env"), changed(".env.local"), constraints=anywhere)) == [
        ("protected-file", ".env.local"),
        ("protected-file", "src/.env"),
    ]
    lookalikes = (changed("src/env.py"), changed("docs/.env-notes.md"), changed("src/dotenv.py"))
    assert judge(*lookalikes, constraints=anywhere) == []


def test_workflow_change_is_refused_naming_the_pattern() -> None:
    violations = judge(changed(".github/workflows/ci.yml", ("on: push",)))
    protected = [v for v in violations if v.rule == "protected-file"]
    assert len(protected) == 1
    assert ".github/workflows/ci.yml" in protected[0].message
    assert ".github/**" in protected[0].message


def test_renaming_a_protected_file_away_is_refused() -> None:
    moved = changed("src/settings.env", status=FileStatus.RENAMED, old_path="src/.env")
    assert rules(judge(moved)) == [("protected-file", "src/.env")]


def test_deleting_a_protected_file_is_refused_even_when_deletes_are_allowed() -> None:
    gone = changed("src/Dockerfile", status=FileStatus.DELETED, deleted=5)
    violations = judge(gone, constraints=Constraints(allow_delete=True))
    assert rules(violations) == [("protected-file", "src/Dockerfile")]


# Every default manifest and lock-file name, nested as a monorepo (or Django) keeps it.
NESTED_MANIFESTS = (
    "services/api/requirements.txt",
    "services/api/requirements-dev.txt",
    "tests/requirements/py3.txt",
    "services/api/requirements/base.in",
    "services/api/constraints.txt",
    "libs/core/pyproject.toml",
    "libs/core/setup.py",
    "libs/core/setup.cfg",
    "libs/core/Pipfile",
    "libs/core/Pipfile.lock",
    "libs/core/poetry.lock",
    "libs/core/uv.lock",
    "packages/web/package.json",
    "packages/web/package-lock.json",
    "packages/web/yarn.lock",
    "packages/web/pnpm-lock.yaml",
    "crates/parser/Cargo.toml",
    "crates/parser/Cargo.lock",
    "services/api/go.mod",
    "services/api/go.sum",
    "apps/shop/Gemfile",
    "apps/shop/Gemfile.lock",
    "apps/site/composer.json",
    "apps/site/composer.lock",
    "services/billing/pom.xml",
    "services/billing/build.gradle",
    "services/billing/build.gradle.kts",
)


@pytest.mark.parametrize("path", NESTED_MANIFESTS)
def test_default_constraints_refuse_a_manifest_or_lock_file_at_any_depth(path: str) -> None:
    # Every directory approved: the refusal can only come from the default protected patterns.
    anywhere = Constraints(approved_dirs=(".",))
    assert rules(judge(changed(path, ("x",)), constraints=anywhere)) == [("protected-file", path)]


def test_only_ci_and_gate_directories_are_anchored_at_the_root_by_default() -> None:
    # A pattern with an inner "/" matches only from the root: a nested manifest would slip by.
    anchored = [p for p in Constraints().protected if "/" in p.rstrip("/")]
    assert anchored == [".github/**", ".circleci/**", ".ai-validation/**"]


def test_exact_protected_paths_from_the_caller_are_protected() -> None:
    plan = changed("docs/PROJECT_PLAN.md", ("- [x] done",))
    assert rules(judge(plan, protected_paths=("./docs/PROJECT_PLAN.md",))) == [
        ("protected-file", "docs/PROJECT_PLAN.md")
    ]
    assert judge(plan, protected_paths=("PROJECT_PLAN.md",)) == []


def test_malformed_protected_pattern_is_a_constraints_error() -> None:
    bad = Constraints(protected=("/",), path="CONSTRAINTS.md", sources={"protected": 7})
    with pytest.raises(ConstraintsError) as raised:
        judge(changed("src/a.py"), constraints=bad)
    assert str(raised.value).startswith("CONSTRAINTS.md:7: ")


# deleted-file


def test_deletion_is_refused_unless_allowed() -> None:
    gone = changed("src/old.py", status=FileStatus.DELETED, deleted=3)
    [violation] = judge(gone)
    assert (violation.rule, violation.path) == ("deleted-file", "src/old.py")
    assert "allow_delete" in violation.message
    assert judge(gone, constraints=Constraints(allow_delete=True)) == []


def test_rename_is_not_a_deletion() -> None:
    moved = changed("src/new.py", status=FileStatus.RENAMED, old_path="src/old.py")
    assert judge(moved) == []


# forbidden-content


def test_drop_table_in_added_line_is_refused_once_per_file_with_a_count() -> None:
    lines = ("def migrate(db):", "    db.run('drop table users')", "    db.run('DROP  TABLE x')")
    [violation] = judge(changed("src/migrate.py", lines))
    assert (violation.rule, violation.path) == ("forbidden-content", "src/migrate.py")
    assert "2 added lines" in violation.message
    assert "DROP TABLE" in violation.message
    assert "drop table users" in violation.message  # the first offending line, quoted


def test_forbidden_word_inside_another_word_is_fine() -> None:
    assert judge(changed("src/a.py", ("backdrop table_name = 1", "undelete_from = 2"))) == []


def test_long_offending_line_is_quoted_shortened() -> None:
    line = "x = '" + "a" * 200 + " DELETE FROM users " + "b" * 200 + "'"
    [violation] = judge(changed("src/a.py", (line,)))
    assert "DELETE FROM users" in violation.message
    assert len(violation.message) < 250


def test_control_characters_in_quoted_lines_are_escaped() -> None:
    [violation] = judge(changed("src/a.py", ("\x1b[2J DROP TABLE t",)))
    assert "\x1b" not in violation.message
    assert "\\x1b" in violation.message


def test_custom_forbidden_pattern_is_shown_as_a_regex() -> None:
    custom = Constraints(forbidden_content=(r"eval\(",))
    [violation] = judge(changed("src/a.py", ("y = eval(x)",)), constraints=custom)
    assert "/eval\\(/" in violation.message


# line-budget


def test_change_over_budget_is_refused_naming_total_budget_and_biggest_files() -> None:
    big = changed("src/big.py", tuple(f"x{i} = {i}" for i in range(50)))
    small = changed("src/small.py", ("a = 1",) * 5)
    violations = judge(big, small, estimated_lines=20)  # budget ceil(20 * 2.0) = 40
    assert rules(violations) == [("line-budget", None)]
    message = violations[0].message
    assert "55" in message and "40" in message and "src/big.py (50)" in message


def test_change_within_budget_passes_and_fractions_round_up() -> None:
    three = changed("src/a.py", ("a", "b", "c"))
    assert judge(three, estimated_lines=1, constraints=Constraints(line_budget_factor=2.5)) == []


def test_without_an_estimate_the_budget_is_the_maximum_estimate() -> None:
    lines = tuple(f"x{i} = {i}" for i in range(61))
    assert rules(judge(changed("src/a.py", lines), estimated_lines=None)) == [("line-budget", None)]
    assert judge(changed("src/a.py", lines[:60]), estimated_lines=None) == []


# symlink-outside


def test_symlink_to_etc_passwd_is_refused() -> None:
    [violation] = judge(changed("src/passwd", ("/etc/passwd",), target="/etc/passwd"))
    assert (violation.rule, violation.path) == ("symlink-outside", "src/passwd")
    assert "/etc/passwd" in violation.message


def test_symlink_climbing_out_of_the_repository_is_refused() -> None:
    link = changed("src/up", target="../../outside")
    assert rules(judge(link)) == [("symlink-outside", "src/up")]


@pytest.mark.parametrize("target", ["../.git/config", "../.git", "../.GIT/hooks/pre-commit"])
def test_symlink_into_git_is_refused(target: str) -> None:
    assert rules(judge(changed("src/hooks", target=target))) == [("symlink-outside", "src/hooks")]


def test_symlink_inside_the_repository_is_fine() -> None:
    assert judge(changed("src/readme", target="../docs/./README.md")) == []
    assert judge(changed("src/pkg/sibling", target="../other/x.py")) == []


def test_symlink_through_another_link_is_refused_since_dotdot_would_follow_it() -> None:
    # src/here points at src itself, so here/here/../../.. climbs out although it reads as ".".
    loop = changed("src/here", target=".")
    sneaky = changed("src/out", target="here/here/../../..")
    assert rules(judge(loop, sneaky)) == [("symlink-outside", "src/out")]


def test_symlink_through_an_existing_file_of_the_tree_is_refused() -> None:
    link = changed("src/out", target="../docs/link/../../x")
    assert judge(link) == []  # looks inside when nothing is known about docs/link
    assert rules(judge(link, repo_files=frozenset({"docs/link"}))) == [
        ("symlink-outside", "src/out")
    ]


# binary-file


def test_binary_file_is_refused_unless_allowed() -> None:
    image = changed("docs/logo.png", status=FileStatus.ADDED, is_binary=True, size=2048)
    assert rules(judge(image)) == [("binary-file", "docs/logo.png")]
    assert judge(image, constraints=Constraints(allow_binary=True)) == []


def test_deleted_binary_is_not_a_binary_violation() -> None:
    gone = changed("docs/logo.png", status=FileStatus.DELETED, is_binary=True)
    assert rules(judge(gone, constraints=Constraints(allow_delete=True))) == []


# oversized-file


def test_file_over_the_size_limit_is_refused() -> None:
    huge = changed("src/data.py", ("x = 1",), size=1_000_001)
    [violation] = judge(huge)
    assert (violation.rule, violation.path) == ("oversized-file", "src/data.py")
    assert "1,000,001" in violation.message and "1,000,000" in violation.message
    assert judge(changed("src/data.py", ("x = 1",), size=1_000_000)) == []


# secret


def test_aws_key_in_added_line_is_refused_without_echoing_it() -> None:
    [violation] = judge(changed("src/config.py", (f'AWS_ACCESS_KEY_ID = "{AWS_KEY}"',)))
    assert (violation.rule, violation.path) == ("secret", "src/config.py")
    assert "AWS Access Key" in violation.message
    assert AWS_KEY not in violation.message


def test_secret_on_a_forbidden_line_is_not_quoted_back() -> None:
    line = f"DELETE FROM keys WHERE id = '{AWS_KEY}'"
    violations = judge(changed("src/purge.py", (line,)))
    assert sorted(v.rule for v in violations) == ["forbidden-content", "secret"]
    assert all(AWS_KEY not in v.message for v in violations)


def test_allowlist_pragma_does_not_let_a_secret_through() -> None:
    line = f'KEY = "{AWS_KEY}"  # pragma: allowlist secret'
    assert rules(judge(changed("src/k.py", (line,)))) == [("secret", "src/k.py")]


def test_secret_scan_can_be_turned_off() -> None:
    line = f'KEY = "{AWS_KEY}"'
    assert judge(changed("src/k.py", (line,)), constraints=Constraints(scan_secrets=False)) == []


def test_ordinary_code_is_not_taken_for_secrets() -> None:
    code = (
        "import hashlib",
        "DIGEST = hashlib.sha256(b'abc').hexdigest()",
        "password = os.environ['DB_PASSWORD']",
        "token = request.headers['Authorization']",
        "user_id = '3f2c9a7e-0d4b-4c1e-9a8f-2b6d5e7c1a90'",
        "DNS = '8.8.8.8'",
        "ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'",
    )
    assert find_secrets("src/app.py", code) == []


def test_secret_hits_give_the_line_index_and_kind() -> None:
    lines = ("x = 1", f'key = "{AWS_KEY}"', "y = 2")
    hits = find_secrets("src/app.py", lines)
    assert [(h.line, h.kind) for h in hits] == [(1, "AWS Access Key")]


# ordering


def test_violations_are_sorted_by_path_then_rule() -> None:
    violations = judge(
        changed("z/a.py"),
        changed(".env", status=FileStatus.DELETED),
        changed("src/big.bin", status=FileStatus.ADDED, is_binary=True, size=2_000_000),
        estimated_lines=0,
    )
    keys = [(v.path or "", v.rule) for v in violations]
    assert keys == sorted(keys)
    assert keys[0] == ("", "line-budget")
    assert [k for k in keys if k[0] == ".env"] == [
        (".env", "deleted-file"),
        (".env", "outside-approved-dirs"),
        (".env", "protected-file"),
    ]


# symlink-to-protected


@pytest.mark.parametrize(
    ("link", "target"),
    [
        ("src/plan.md", "../PROJECT_PLAN.md"),
        ("src/ci", "../.github/workflows"),
        ("docs/env", "../src/.env"),
        ("src/deps.txt", "../requirements.txt"),
    ],
)
def test_symlink_to_a_protected_path_is_refused(link: str, target: str) -> None:
    violations = judge(changed(link, target=target), protected_paths=("PROJECT_PLAN.md",))
    assert rules(violations) == [("symlink-to-protected", link)]
    assert target in violations[0].message


def test_an_approved_file_may_change_outside_the_approved_directories() -> None:
    allowed = Constraints(approved_files=("README.md", "CHANGELOG.md"))
    assert judge(changed("README.md"), constraints=allowed) == []
    other = judge(changed("NOTES.md", status=FileStatus.ADDED), constraints=allowed)
    assert rules(other) == [("outside-approved-dirs", "NOTES.md")]
    assert rules(judge(changed("README.md"))) == [("outside-approved-dirs", "README.md")]
