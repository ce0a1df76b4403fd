"""The GitHub client against replayed API exchanges: a local server checks every request."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator

import pytest

from gitops_agent.errors import UserError
from gitops_agent.github import MAX_PAGES, PAGE_SIZE, GitHub, GitHubError
from testing import github_api
from testing.github_api import REPOSITORY_ID, FakeGitHub, raw_api
from testing.replay import EXCHANGES, TOKEN, Replay, done, serve

REPOSITORY = "octo-org/widgets"
BRANCH = "autonomous/20261123-020000-ab12"
BODY = "## Autonomous session\n\nRecorded body.\n"


def client(replay: Replay) -> GitHub:
    return GitHub.from_env(
        env={
            "GITHUB_REPOSITORY": REPOSITORY,
            "GITHUB_API_URL": replay.url,
            "GITHUB_TOKEN": TOKEN,
        }
    )


def test_a_new_session_branch_gets_a_new_labelled_pull_request() -> None:
    with serve("open_pull") as replay:
        github = client(replay)
        published = github.open_or_update_pull(BRANCH, "main", "gitops-agent: 1 task (t1)", BODY)
        labels = github.add_labels(published.pull.number, ["gitops-agent"])
        done(replay)
    assert published.created
    assert published.pull.number == 7
    assert published.pull.url == "https://github.com/octo-org/widgets/pull/7"
    assert (published.pull.head, published.pull.base, published.pull.state) == (
        BRANCH,
        "main",
        "open",
    )
    assert labels == ["gitops-agent"]


def test_an_open_pull_request_for_the_branch_is_updated_not_duplicated() -> None:
    with serve("update_pull") as replay:
        github = client(replay)
        published = github.open_or_update_pull(BRANCH, "main", "gitops-agent: 1 task (t1)", BODY)
        github.add_labels(published.pull.number, ["gitops-agent"])
        done(replay)
    assert not published.created
    assert published.pull.number == 7
    assert published.pull.title == "gitops-agent: 1 task (t1)"


def test_a_pull_request_closed_without_merging_is_found_with_its_task_ids() -> None:
    with serve("closed_pulls") as replay:
        github = client(replay)
        closed = github.pulls_for("autonomous/20261120-020000-cd34", state="closed")
        assert [(p.number, p.merged) for p in closed] == [(5, False), (3, True)]
        assert github.pull_task_ids(5) == ["t1", "t2"]
        done(replay)


def test_actions_not_allowed_to_create_pull_requests_says_where_to_allow_it() -> None:
    with serve("actions_not_permitted") as replay:
        with pytest.raises(GitHubError) as raised:
            client(replay).open_or_update_pull(BRANCH, "main", "gitops-agent: 1 task (t1)", BODY)
        done(replay)
    assert raised.value.status == 403
    assert "Allow GitHub Actions to create and approve pull requests" in str(raised.value)
    assert TOKEN not in str(raised.value)


def test_no_token_is_a_user_error_and_the_token_never_shows_in_repr() -> None:
    github = GitHub(REPOSITORY, None, "http://127.0.0.1:9")
    with pytest.raises(Exception, match="no GitHub token"):
        github.pulls_for(BRANCH)
    assert TOKEN not in repr(GitHub(REPOSITORY, TOKEN))


def test_an_unreachable_api_is_a_clear_error() -> None:
    github = GitHub(REPOSITORY, TOKEN, "http://127.0.0.1:9")
    with pytest.raises(GitHubError, match="cannot reach"):
        github.pulls_for(BRANCH)


# -- answers that are not GitHub's JSON ----------------------------------------------------------

BAD_GATEWAY = (EXCHANGES / "bad_gateway.html").read_bytes()
HTML = {"Content-Type": "text/html"}
LIST = f"GET /repos/{REPOSITORY}/pulls"
OPEN = f"POST /repos/{REPOSITORY}/pulls"
LABEL = f"POST /repos/{REPOSITORY}/issues/7/labels"


def list_pulls(github: GitHub) -> object:
    return github.pulls_for(BRANCH)


def open_pull(github: GitHub) -> object:
    return github.open_or_update_pull(BRANCH, "main", "title", BODY)


def add_label(github: GitHub) -> object:
    return github.add_labels(7, ["gitops-agent"])


@pytest.mark.parametrize(
    ("call", "status", "headers", "body", "said"),
    [
        # A proxy (or a captive portal) answers in HTML with 200.
        (list_pulls, 200, HTML, BAD_GATEWAY, [LIST, "200", "not JSON", "'502 Bad Gateway'"]),
        # JSON cut off, though the body is complete as HTTP goes.
        (open_pull, 201, {}, b'{"number": 7, "html_url": "https://gi', [OPEN, "201", "not JSON"]),
        (add_label, 200, {}, b"", [LABEL, "200", "an empty body"]),
        (list_pulls, 200, {}, b"\x80\x81\xfe garbage", [LIST, "200", "not JSON"]),
        # The connection closes before the Content-Length it announced.
        (list_pulls, 200, {"Content-Length": "5000"}, b'[{"number": 1,', [LIST, "broke off"]),
        # Refusals whose body is not GitHub's JSON: the status and a hint, never a crash.
        (list_pulls, 502, HTML, BAD_GATEWAY, [LIST, "502", "try again later"]),
        (open_pull, 502, {}, b"", [OPEN, "502", "try again later"]),
        (list_pulls, 500, {}, b"[]", [LIST, "500"]),
        (open_pull, 422, {}, b'{"message": "Validation Failed", "errors": ["no"]}', [OPEN, "no"]),
    ],
)
def test_an_answer_that_is_not_githubs_json_is_a_github_error_naming_the_request(
    call: Callable[[GitHub], object],
    status: int,
    headers: dict[str, str],
    body: bytes,
    said: list[str],
) -> None:
    with raw_api(status, headers, body) as server:
        github = GitHub(REPOSITORY, TOKEN, server.url)
        with pytest.raises(GitHubError) as raised:
            call(github)
    assert len(server.requests) == 1
    assert isinstance(raised.value, UserError)  # shown as a message, exit 2: not a crash
    for words in said:
        assert words in str(raised.value)
    assert TOKEN not in str(raised.value)


def test_a_pull_request_without_its_fields_is_a_github_error() -> None:
    with raw_api(201, {}, b'{"number": 7}') as server, pytest.raises(GitHubError, match="cannot"):
        open_pull(GitHub(REPOSITORY, TOKEN, server.url))


# -- long listings -------------------------------------------------------------------------------


@contextlib.contextmanager
def fake_with_closed(count: int, **kinds: int) -> Iterator[tuple[FakeGitHub, GitHub]]:
    fake = FakeGitHub()
    fake.add_closed(count, **kinds)
    with github_api.serve(fake):
        yield fake, GitHub(fake.repository, github_api.TOKEN, fake.url)


def test_2500_closed_pull_requests_are_all_listed_by_following_the_link_headers() -> None:
    with fake_with_closed(2500, merged=10, forks=7) as (fake, github):
        rejected = [pull.number for pull in github.rejected_pulls()]
    wanted = [n for n in range(2500, 0, -1) if n % 10 and n % 7]  # newest first
    assert rejected == wanted
    assert rejected[-1] == 1  # the oldest is there: nothing was cut off at 1,000
    assert len(fake.requests) == 25
    # Past the first page, the URL GitHub gave is followed as it is.
    assert all(f"/repositories/{REPOSITORY_ID}/pulls?" in t for _, t in fake.requests[1:])
    assert fake.requests[-1][1].endswith("page=25")


def test_a_caller_that_stops_early_asks_for_no_more_pages() -> None:
    with fake_with_closed(2500) as (fake, github):
        first = list(itertools.islice(github.rejected_pulls(), 5))
        assert [pull.number for pull in first] == [2500, 2499, 2498, 2497, 2496]
        assert len(fake.requests) == 1
        list(itertools.islice(github.rejected_pulls(), PAGE_SIZE + 1))
        assert len(fake.requests) == 1 + 2


def test_a_listing_longer_than_max_pages_is_an_error_that_names_the_bound() -> None:
    with fake_with_closed(MAX_PAGES * PAGE_SIZE + 1) as (fake, github):
        with pytest.raises(GitHubError, match="MAX_PAGES") as raised:
            list(github.rejected_pulls())
        assert len(fake.requests) == MAX_PAGES
    assert f"more than {MAX_PAGES} pages" in str(raised.value)


def test_a_listing_of_exactly_max_pages_is_whole() -> None:
    with fake_with_closed(MAX_PAGES * PAGE_SIZE) as (fake, github):
        assert len(list(github.rejected_pulls())) == MAX_PAGES * PAGE_SIZE
        assert len(fake.requests) == MAX_PAGES


def test_a_next_page_on_another_host_is_not_asked_for_with_the_token() -> None:
    fake = FakeGitHub(next_base="http://127.0.0.1:9")
    fake.add_closed(150)
    with github_api.serve(fake):
        github = GitHub(fake.repository, github_api.TOKEN, fake.url)
        with pytest.raises(GitHubError, match="outside"):
            list(github.rejected_pulls())
    assert len(fake.requests) == 1
