"""The freeze label through GitHub's REST API, against a local server with GitHub's shapes."""

from __future__ import annotations

import logging

import pytest

from golive.settings import GitHubSettings
from tasks.github import GitHub, GitHubError, relabel_pull_requests
from tests.fakes.github_api import Item


@pytest.fixture
def settings(github, monkeypatch) -> GitHubSettings:
    monkeypatch.setenv("GITHUB_TOKEN", github.token)
    return GitHubSettings(repository=github.repository, api_url=github.url, max_wait_seconds=10)


def _labelled(github) -> list[int]:
    return sorted(n for n, i in github.items.items() if "hold-for-canary" in i.labels)


def test_lifting_the_freeze_touches_exactly_the_labelled_open_pull_requests(github, settings):
    report = relabel_pull_requests(settings, "remove")
    assert report.pull_requests == [1, 2, 6] and report.done == [1, 2, 6] and not report.partial
    assert _labelled(github) == [4, 5]  # an issue and a closed pull request keep their label
    assert github.items[2].labels == {"backend"}


def test_pages_are_followed(github, settings):
    github.items.update({n: Item(n, {"hold-for-canary"}) for n in range(100, 230)})
    assert len(GitHub(settings, github.token).open_pull_requests("hold-for-canary")) == 133
    assert [c for c in github.calls if c[1].endswith("/issues")] == [("GET", "/repos/spark/trading/issues")] * 2


@pytest.mark.parametrize("style", ["429", "403"])
def test_a_rate_limit_is_waited_out(github, settings, style):
    github.rate_limit_next, github.rate_limit_style = 2, style
    report = relabel_pull_requests(settings, "remove")
    assert report.done == [1, 2, 6] and report.waited_seconds >= 1


def test_a_rate_limit_longer_than_allowed_is_an_error(github, settings):
    github.rate_limit_next = 5
    with pytest.raises(GitHubError, match="rate limited"):
        relabel_pull_requests(settings.model_copy(update={"max_wait_seconds": 1.5}), "remove")


def test_a_pull_request_that_cannot_be_updated_is_named_and_the_rest_are_done(github, settings):
    github.refuse = {2}
    report = relabel_pull_requests(settings, "remove")
    assert report.done == [1, 6] and report.partial
    assert report.failed == {2: "HTTP 403 Resource not accessible by integration"}


def test_a_dry_run_lists_and_changes_nothing(github, settings):
    report = relabel_pull_requests(settings, "remove", dry_run=True)
    assert report.pull_requests == [1, 2, 6] and report.done == []
    assert _labelled(github) == [1, 2, 4, 5, 6]
    assert all(method == "GET" for method, _ in github.calls)


def test_a_freeze_labels_every_open_pull_request(github, settings):
    report = relabel_pull_requests(settings, "add")
    assert report.done == [1, 2, 3, 6]
    assert _labelled(github) == [1, 2, 3, 4, 5, 6]


def test_the_token_is_sent_but_never_shown(github, settings, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_wrong_token")
    with pytest.raises(GitHubError) as failure:
        relabel_pull_requests(settings, "remove")
    assert "401" in str(failure.value)
    assert "ghp_" not in str(failure.value) and "ghp_" not in caplog.text


def test_the_token_never_follows_a_next_link_to_another_host(github, settings):
    github.items.update({n: Item(n, {"hold-for-canary"}) for n in range(100, 230)})
    github.next_origin = "http://127.0.0.2:9"  # nothing listens there: a request would fail differently
    with pytest.raises(GitHubError, match=r"^GET: http://127\.0\.0\.2:9 is not the API's host \(process\.github\.api_url\); "
                                          r"the token is not sent there$"):
        GitHub(settings, github.token).open_pull_requests("hold-for-canary")
    assert len([c for c in github.calls if c[1].endswith("/issues")]) == 1


def test_an_html_error_page_is_one_line_and_the_rest_are_still_done(github, settings, monkeypatch):
    import tasks.github

    monkeypatch.setattr(tasks.github, "time", _NoSleep())
    github.broken = {2}
    report = relabel_pull_requests(settings, "remove")
    assert report.done == [1, 6] and report.failed == {2: "HTTP 502 (text/html body)"}


def test_an_unexpected_failure_names_the_pull_requests_already_changed(github, settings, monkeypatch):
    def explode(self, number, label):
        if number == 6:
            raise KeyError("labels")
        return original(self, number, label)

    original = GitHub.remove_label
    monkeypatch.setattr(GitHub, "remove_label", explode)
    with pytest.raises(GitHubError, match=r"^#6: KeyError; changed before it: #1, #2$") as exc:
        relabel_pull_requests(settings, "remove")
    assert exc.value.report.done == [1, 2] and _labelled(github) == [4, 5, 6]


class _NoSleep:
    """`time` for the client under test: server-error back-offs pass at once."""

    def sleep(self, seconds: float) -> None:
        pass

    def time(self) -> float:
        import time

        return time.time()


def test_deeply_nested_json_from_github_is_a_one_line_error(github, settings):
    deep = b"[" * 100_000 + b"]" * 100_000
    github.hostile[("GET", "/repos/spark/trading/issues")] = (200, deep, {"content-type": "application/json"})
    with pytest.raises(GitHubError, match="^GET /repos/spark/trading/issues: HTTP 200 but not a JSON list$"):
        GitHub(settings, github.token).open_pull_requests("hold-for-canary")
    github.hostile[("GET", "/repos/spark/trading/issues")] = (403, deep, {"content-type": "application/json"})
    with pytest.raises(GitHubError, match=r"^GET /repos/spark/trading/issues: HTTP 403 \(application/json body\)$"):
        GitHub(settings, github.token).open_pull_requests("hold-for-canary")


def test_a_retry_after_that_is_no_number_is_waited_as_none_named(github, settings, monkeypatch):
    import tasks.github as module
    slept = []
    monkeypatch.setattr(module.time, "sleep", slept.append)
    github.hostile[("GET", "/repos/spark/trading/pulls")] = (429, b"{}", {"retry-after": "soon"})
    GitHub(settings.model_copy(update={"max_wait_seconds": 100}), github.token).open_pull_requests()
    assert slept == [60.0]


def test_a_runs_calls_to_one_api_with_one_token_share_a_client_closed_when_the_run_ends(github, settings):
    from tasks.http_client import clients_for_this_run

    with clients_for_this_run():
        first, second = GitHub(settings, github.token), GitHub(settings, github.token)
        other_token = GitHub(settings, "another-token")
        assert first.client is second.client and other_token.client is not first.client
        assert first.open_pull_requests("hold-for-canary") == [1, 2, 6]
    assert first.client.is_closed and other_token.client.is_closed
