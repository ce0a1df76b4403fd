"""Gitignore globs and approved directories: the path rules every changed file goes through."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gitops_agent.constraints import DEFAULT_PROTECTED
from gitops_agent.policy.paths import in_dir, matches, pattern_error

# Path components without glob syntax, "/" or the special names "." and "..".
NAME = st.text(
    alphabet=st.characters(exclude_characters="/*?[\\", exclude_categories=["Cs"]),
    min_size=1,
    max_size=8,
).filter(lambda s: s not in (".", ".."))
PATH = st.lists(NAME, min_size=1, max_size=5).map("/".join)
# Names gitignore reads literally: not a comment or a negation, no trailing space (dropped).
LITERAL = NAME.filter(lambda s: s[0] not in "#!" and s == s.rstrip())
LITERAL_PATH = st.lists(LITERAL, min_size=1, max_size=5).map("/".join)


@pytest.mark.parametrize("path", [".env", "config/.env", "a/b/c/.env"])
def test_env_name_matches_at_any_depth(path: str) -> None:
    assert matches(".env", path)


@pytest.mark.parametrize("path", [".envrc", "src/env.py", "docs/.env-notes.md", "x.env"])
def test_env_name_does_not_match_lookalikes(path: str) -> None:
    assert not matches(".env", path)


def test_env_dot_star_matches_variants_but_not_envrc() -> None:
    assert matches(".env.*", ".env.local")
    assert matches(".env.*", "app/.env.production")
    assert not matches(".env.*", ".envrc")
    assert not matches(".env.*", "docs/.env-notes.md")


def test_pattern_with_slash_is_anchored_at_the_root() -> None:
    assert matches(".github/workflows/**", ".github/workflows/ci.yml")
    assert matches(".github/workflows/**", ".github/workflows/sub/deep.yml")
    assert not matches(".github/workflows/**", "vendor/.github/workflows/ci.yml")
    assert not matches(".github/workflows/**", ".github/dependabot.yml")
    assert matches("/Makefile", "Makefile")
    assert not matches("/Makefile", "src/Makefile")


def test_star_stays_within_one_component_and_double_star_crosses() -> None:
    assert matches("src/*.py", "src/a.py")
    assert not matches("src/*.py", "src/pkg/a.py")
    assert matches("src/**/*.py", "src/a.py")
    assert matches("src/**/*.py", "src/pkg/deep/a.py")
    assert matches("requirements*.txt", "requirements-dev.txt")
    assert not matches("requirements*.txt", "requirements/dev.txt")


def test_question_mark_is_one_character_but_never_a_slash() -> None:
    assert matches("a?c", "abc")
    assert not matches("a?c", "ac")
    assert not matches("a/?c", "a//c")
    assert not matches("x?y", "x/y")


def test_leading_double_star_matches_at_any_depth() -> None:
    assert matches("**/secrets/*", "secrets/key.pem")
    assert matches("**/secrets/*", "app/config/secrets/key.pem")
    assert not matches("**/secrets/*", "app/secrets.py")


def test_trailing_slash_means_a_directory_and_everything_under_it() -> None:
    assert matches("src/", "src/a.py")
    assert matches("src/", "src/x/y.py")
    assert matches("build/", "pkg/build/out.o")  # no other "/": a directory name at any depth
    assert not matches("src/", "src")  # a file named src is not the directory
    assert not matches("src/", "src.py")
    assert matches("src/**/", "src/pkg/a.py")  # a directory below src, as in git
    assert not matches("src/**/", "src/a.py")


def test_a_matched_directory_takes_its_contents_along_as_in_gitignore() -> None:
    assert matches(".env", "config/.env/production")
    assert matches("docs/api", "docs/api/index.md")
    assert not matches("docs/api", "docs/api.md")


def test_brackets_are_character_classes_that_never_match_a_slash() -> None:
    assert matches("file[0-9].txt", "file7.txt")
    assert not matches("file[0-9].txt", "fileX.txt")
    assert matches("file[!0-9].txt", "fileX.txt")
    assert not matches("a[!x]b", "a/b")  # pathspec alone would match: "[^x]" takes "/"
    assert not matches("a[+-0]b", "a/b")  # a range around "/" does not take it either
    assert matches("a[+-0]b", "a.b")
    assert matches(r"a\[b", "a[b")


def test_backslash_escapes_glob_characters() -> None:
    assert matches(r"what\?.md", "what?.md")
    assert not matches(r"what\?.md", "whatX.md")


def test_every_default_protected_pattern_compiles() -> None:
    assert [p for p in DEFAULT_PROTECTED if pattern_error(p) is not None] == []


def test_empty_pattern_is_reported_not_matched() -> None:
    assert pattern_error("/") is not None
    with pytest.raises(ValueError, match="empty pattern"):
        matches("", "a")


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("", "empty pattern"),
        ("/", "empty pattern"),
        ("//", "empty pattern"),
        ("   ", "empty pattern"),
        ("a//b", "empty path component"),
        ("#notes.md", "comment"),
        ("!src/keep.py", "negation"),
        ("src/**.py", "whole component"),  # git: "src/*.py", not the recursive glob it looks like
        ("a**b", "whole component"),
        ("***/x", "whole component"),  # git reads it as "**/x", pathspec as "*/x"
        ("a[b", "unclosed '['"),  # git drops it; a literal one is written a\\[b
        ("a[/]b", "unclosed '['"),  # "/" ends the component first; git matches nothing
        ("file[[:digit:]].txt", "character class names"),
        ("a\\", "malformed pattern"),  # a trailing backslash escapes nothing
    ],
)
def test_patterns_gitignore_would_not_read_as_one_match_are_refused(
    pattern: str, reason: str
) -> None:
    error = pattern_error(pattern)
    assert error is not None and reason in error
    with pytest.raises(ValueError):
        matches(pattern, "a")


def test_escaped_comment_and_negation_characters_are_literal() -> None:
    assert matches(r"\#notes.md", "docs/#notes.md")
    assert matches(r"\!keep", "!keep")
    assert not matches(r"\!keep", "keep")


def test_trailing_spaces_are_dropped_as_gitignore_does() -> None:
    assert matches("secrets.txt  ", "secrets.txt")
    assert matches(r"a\ ", "a ")  # an escaped space stays
    assert not matches(r"a\ ", "a")


@given(name=LITERAL, path=PATH)
def test_a_plain_name_matches_exactly_the_paths_with_that_component(name: str, path: str) -> None:
    assert matches(name, path) == (name in path.split("/"))


@given(anchored=LITERAL_PATH, path=PATH)
def test_a_plain_anchored_path_matches_itself_and_its_contents(anchored: str, path: str) -> None:
    pattern = "dir/" + anchored
    candidate = "dir/" + path
    expected = candidate == pattern or candidate.startswith(pattern + "/")
    assert matches(pattern, candidate) == expected


@given(directory=LITERAL, stem=NAME, sub=NAME)
def test_star_never_crosses_a_slash(directory: str, stem: str, sub: str) -> None:
    assert matches(f"{directory}/*.q", f"{directory}/{stem}.q")
    # Deeper only through a directory that itself matches, as gitignore does.
    assert matches(f"{directory}/*.q", f"{directory}/{sub}/{stem}.q") == sub.endswith(".q")


# Pattern components built from glob pieces, and paths over the names they can match.
GLOB_COMPONENT = st.one_of(
    st.just("**"),
    st.lists(
        st.sampled_from(["a", "b", ".", "*", "?", "[ab]", "[!a]", "[a-c]", "[+-0]", "\\*"]),
        min_size=1,
        max_size=3,
    ).map("".join),
)
GLOB = st.builds(
    lambda lead, parts, trail: lead + "/".join(parts) + trail,
    st.sampled_from(["", "/"]),
    st.lists(GLOB_COMPONENT, min_size=1, max_size=3),
    st.sampled_from(["", "/"]),
)
GIT_PATHS = st.lists(
    st.lists(
        st.sampled_from(["a", "b", "c", "ab", "ba", "bb", ".a", "a.b", "*", "+", "0"]),
        min_size=1,
        max_size=4,
    ).map("/".join),
    min_size=1,
    max_size=20,
    unique=True,
)


@pytest.fixture(scope="module")
def ignore_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("ignore")
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=_GIT_ENV, timeout=30)
    return repo


# No user or system configuration: a global excludes file would answer for us.
_GIT_ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git_ignores(repo: Path, pattern: str, paths: list[str]) -> set[str]:
    """The paths real git would ignore with `pattern` as the only line of a .gitignore."""
    (repo / ".gitignore").write_text(pattern + "\n")
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin", "-z"],
        cwd=repo,
        env=_GIT_ENV,
        input="".join(p + "\0" for p in paths),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode in (0, 1), done.stderr  # 1: none ignored
    return set(done.stdout.split("\0")) - {""}


@settings(deadline=None, max_examples=150)
@given(pattern=GLOB, paths=GIT_PATHS)
def test_a_usable_pattern_matches_what_git_check_ignore_ignores(
    ignore_repo: Path, pattern: str, paths: list[str]
) -> None:
    assume(pattern_error(pattern) is None)
    assert {p for p in paths if matches(pattern, p)} == git_ignores(ignore_repo, pattern, paths)


def test_every_default_protected_pattern_matches_what_git_ignores(ignore_repo: Path) -> None:
    paths = [
        ".github/workflows/ci.yml",
        "vendor/.github/x.yml",
        "Makefile",
        "src/Makefile",
        "a/requirements/dev.in",
        "requirements-dev.txt",
        "app/.env.local",
        "config/.env/production",
        ".envrc",
        "docs/.env-notes.md",
        "docker-compose.prod.yml",
        "src/main.py",
    ]
    for pattern in DEFAULT_PROTECTED:
        expected = git_ignores(ignore_repo, pattern, paths)
        assert {p for p in paths if matches(pattern, p)} == expected, pattern


def test_approved_dir_approves_what_is_under_it_only() -> None:
    assert in_dir("src/a.py", ["src/"])
    assert in_dir("src/x/y.py", ["src"])
    assert not in_dir("src.py", ["src/"])
    assert not in_dir("srcx/a.py", ["src/"])
    assert not in_dir("src", ["src/"])
    assert in_dir("tests/t.py", ["src/", "tests/"])


def test_approved_dir_refuses_paths_that_climb_out_or_are_absolute() -> None:
    assert not in_dir("src/../setup.py", ["src/"])
    assert not in_dir("/src/a.py", ["src/"])


def test_empty_approved_dir_approves_nothing_but_dot_approves_everything() -> None:
    assert not in_dir("a.py", [""])
    assert not in_dir("a.py", [])
    assert in_dir("a.py", ["."])
    assert in_dir("deep/a.py", ["./"])


@given(directory=PATH, rest=PATH)
def test_everything_under_an_approved_dir_is_approved(directory: str, rest: str) -> None:
    assert in_dir(f"{directory}/{rest}", [directory + "/"])
    assert not in_dir(directory, [directory + "/"])
    assert not in_dir(f"{directory}x/{rest}", [directory + "/"])


def test_a_newline_in_a_name_neither_hides_a_path_nor_makes_one_match() -> None:
    # A directory named "x\ny" holds a protected file all the same (the regex's "." and "$"
    # must not stop at the newline), and "0\n" is not the name "0".
    assert matches(".env", "x\ny/.env")
    assert matches("0", "\n/0")
    assert matches(".github/**", ".github/\n/ci.yml")
    assert not matches("0", "0\n")
    assert not matches("secret.txt", "secret.txt\n")
