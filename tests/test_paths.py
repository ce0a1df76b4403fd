"""Gitignore-like globs and approved directories: the path rules every changed file goes through."""

from __future__ import annotations

import pytest
from hypothesis import given
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


def test_a_matched_directory_takes_its_contents_along_as_in_gitignore() -> None:
    assert matches(".env", "config/.env/production")
    assert matches("docs/api", "docs/api/index.md")
    assert not matches("docs/api", "docs/api.md")


def test_brackets_are_character_classes_that_never_match_a_slash() -> None:
    assert matches("file[0-9].txt", "file7.txt")
    assert not matches("file[0-9].txt", "fileX.txt")
    assert matches("file[!0-9].txt", "fileX.txt")
    assert not matches("a[/]b", "a/b")
    assert matches("a[b", "a[b")  # unclosed: literal


def test_backslash_escapes_glob_characters() -> None:
    assert matches(r"what\?.md", "what?.md")
    assert not matches(r"what\?.md", "whatX.md")


def test_every_default_protected_pattern_compiles() -> None:
    assert [p for p in DEFAULT_PROTECTED if pattern_error(p) is not None] == []


def test_empty_pattern_is_reported_not_matched() -> None:
    assert pattern_error("/") is not None
    with pytest.raises(ValueError, match="empty pattern"):
        matches("", "a")


@given(name=NAME, path=PATH)
def test_a_plain_name_matches_exactly_the_paths_with_that_component(name: str, path: str) -> None:
    assert matches(name, path) == (name in path.split("/"))


@given(anchored=PATH, path=PATH)
def test_a_plain_anchored_path_matches_itself_and_its_contents(anchored: str, path: str) -> None:
    pattern = "dir/" + anchored
    candidate = "dir/" + path
    expected = candidate == pattern or candidate.startswith(pattern + "/")
    assert matches(pattern, candidate) == expected


@given(directory=NAME, stem=NAME, sub=NAME)
def test_star_never_crosses_a_slash(directory: str, stem: str, sub: str) -> None:
    assert matches(f"{directory}/*.q", f"{directory}/{stem}.q")
    # Deeper only through a directory that itself matches, as gitignore does.
    assert matches(f"{directory}/*.q", f"{directory}/{sub}/{stem}.q") == sub.endswith(".q")


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
