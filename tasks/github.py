"""GitHub's REST API with httpx: the freeze label on open pull requests.

Documented shapes only: `GET /repos/{owner}/{repo}/issues?state=open&labels=L` (pull requests
are the issues with a `pull_request` key; pages follow the `Link: <…>; rel="next"` header),
`GET /repos/{owner}/{repo}/pulls?state=open`, `POST …/issues/{n}/labels {"labels": [L]}`,
`DELETE …/issues/{n}/labels/{L}`. Rate limits are 429, or 403 with `x-ratelimit-remaining: 0`;
either carries `Retry-After` (seconds) or `x-ratelimit-reset` (epoch seconds), and is waited out
up to a limit. The token only ever goes into the Authorization header, and only to the API's
own origin: a `next` link to any other host is refused, never followed.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from urllib.parse import quote, urlsplit

import httpx
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, Field

from golive.settings import GitHubSettings
from golive.validation import escape_line
from tasks.http_client import run_client

API_VERSION = "2022-11-28"
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


class GitHubError(RuntimeError):
    """GitHub refused; the message names the request, never the token."""

    report = None  # the LabelReport so far, when the error stopped a relabelling part way


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def _message(response: httpx.Response) -> str:
    """GitHub's one-line reason for a refusal; an HTML or empty body (a proxy's 502) as its type."""
    try:
        message = response.json().get("message", "")
        message = message if isinstance(message, str) else ""
    except (ValueError, AttributeError, RecursionError):
        kind = escape_line(response.headers.get("content-type", "no content type").split(";")[0])[:80]
        message = f"({kind} body)"
    return " ".join(f"HTTP {response.status_code} {escape_line(message)[:300]}".split())


class LabelReport(BaseModel):
    action: str  # "remove" (the freeze lifted) or "add" (a freeze)
    label: str
    dry_run: bool = False
    pull_requests: list[int] = Field(default_factory=list)
    done: list[int] = Field(default_factory=list)
    failed: dict[int, str] = Field(default_factory=dict)
    waited_seconds: float = 0.0

    @property
    def partial(self) -> bool:
        return bool(self.failed)


def _token(settings: GitHubSettings) -> str | None:
    if settings.credentials_block:
        from prefect_github import GitHubCredentials

        token = GitHubCredentials.load(settings.credentials_block).token
        return token.get_secret_value() if token else None
    return os.environ.get(settings.token_env) or None


class GitHub:
    def __init__(self, settings: GitHubSettings, token: str | None):
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION,
                   "User-Agent": "golive"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.settings = settings
        self.repo_path = f"/repos/{settings.repository}"
        # One client per API and token for the run (closed when the run's clients are), not one a call.
        base_url = settings.api_url.rstrip("/")
        key = ("github", base_url, hashlib.sha256((token or "").encode()).hexdigest())
        self.client = run_client(key, lambda: httpx.Client(base_url=base_url, headers=headers, timeout=20))
        self.origin = _origin(settings.api_url)
        self.waited = 0.0

    def _retry_after(self, response: httpx.Response) -> float | None:
        """Seconds to wait when the response is a rate limit, None when it is not one."""
        limited = response.status_code == 429 or (
            response.status_code == 403 and (response.headers.get("x-ratelimit-remaining") == "0"
                                             or "retry-after" in response.headers))
        if not limited:
            return None
        try:
            if "retry-after" in response.headers:
                return max(0.0, float(response.headers["retry-after"]))
            if "x-ratelimit-reset" in response.headers:
                return max(0.0, float(response.headers["x-ratelimit-reset"]) - time.time())
        except ValueError:
            pass  # a time that is no number: as if none were named
        return 60.0  # GitHub's advice for a secondary limit that names no time

    def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        if "://" in url and _origin(url) != self.origin:
            scheme, host, port = _origin(url)
            raise GitHubError(f"{method}: {scheme}://{host}{f':{port}' if port else ''} is not the API's host "
                              f"(process.github.api_url); the token is not sent there")
        server_errors = 0
        while True:
            try:
                response = self.client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                raise GitHubError(f"{method} {url}: {type(exc).__name__}") from None
            wait = self._retry_after(response)
            if wait is not None:
                if self.waited + wait > self.settings.max_wait_seconds:
                    raise GitHubError(f"{method} {url}: rate limited for {wait:.0f} s more than "
                                      f"process.github.max_wait_seconds allows")
                time.sleep(wait)
                self.waited += wait
                continue
            if response.status_code >= 500 and server_errors < 2:
                server_errors += 1
                time.sleep(0.5 * 2 ** server_errors)
                continue
            return response

    def _pages(self, url: str, params: dict) -> list[dict]:
        items: list[dict] = []
        next_url: str | None = url
        while next_url:
            response = self.request("GET", next_url, params=params if next_url == url else None)
            if response.status_code != 200:
                raise GitHubError(f"GET {urlsplit(next_url).path}: {_message(response)}")
            try:
                page = response.json()
            except (ValueError, RecursionError):
                page = None
            if not isinstance(page, list):
                raise GitHubError(f"GET {urlsplit(next_url).path}: HTTP 200 but not a JSON list")
            items += page
            found = _NEXT.search(response.headers.get("link", ""))
            next_url = found.group(1) if found else None
        return items

    def open_pull_requests(self, label: str | None = None) -> list[int]:
        """Open pull requests (with `label`, when given), by number."""
        if label is None:
            return sorted(pr["number"] for pr in self._pages(f"{self.repo_path}/pulls", {"state": "open", "per_page": 100}))
        issues = self._pages(f"{self.repo_path}/issues", {"state": "open", "labels": label, "per_page": 100})
        return sorted(i["number"] for i in issues if "pull_request" in i)

    def remove_label(self, number: int, label: str) -> None:
        response = self.request("DELETE", f"{self.repo_path}/issues/{number}/labels/{quote(label, safe='')}")
        if response.status_code not in (200, 404):  # 404: the label is already gone
            raise GitHubError(_message(response))

    def add_label(self, number: int, label: str) -> None:
        response = self.request("POST", f"{self.repo_path}/issues/{number}/labels", json={"labels": [label]})
        if response.status_code != 200:
            raise GitHubError(_message(response))


def relabel_pull_requests(settings: GitHubSettings, action: str, dry_run: bool = False) -> LabelReport:
    """Remove ("remove") the freeze label from the open pull requests carrying it, or add it
    ("add") to every open pull request; failures are collected per pull request, not raised.
    Anything else that stops the loop is raised as a GitHubError naming the pull requests already
    changed, with the partial report as its `report`."""
    github = GitHub(settings, _token(settings))
    label = settings.freeze_label
    report = LabelReport(action=action, label=label, dry_run=dry_run)
    report.pull_requests = github.open_pull_requests(label if action == "remove" else None)
    change = github.remove_label if action == "remove" else github.add_label
    for number in report.pull_requests:
        if dry_run:
            continue
        try:
            change(number, label)
            report.done.append(number)
        except GitHubError as exc:
            report.failed[number] = str(exc)
        except Exception as exc:  # the loop stops here: say what was already changed
            report.waited_seconds = round(github.waited, 1)
            done = ", ".join(f"#{n}" for n in report.done) or "none"
            error = GitHubError(f"#{number}: {type(exc).__name__}; changed before it: {done}")
            error.report = report
            raise error from None
    report.waited_seconds = round(github.waited, 1)
    return report


@task(name="lift the freeze label", cache_policy=NO_CACHE)
def lift_freeze(settings: GitHubSettings, dry_run: bool = False) -> LabelReport:
    """Remove the freeze label from every open pull request carrying it."""
    report = relabel_pull_requests(settings, "remove", dry_run)
    if report.failed:
        get_run_logger().warning("freeze lift partial: %s", ", ".join(f"#{n} ({why})" for n, why in report.failed.items()))
    return report


@task(name="freeze pull requests", cache_policy=NO_CACHE)
def apply_freeze(settings: GitHubSettings) -> LabelReport:
    """Label every open pull request with the freeze label (the error budget is nearly spent)."""
    return relabel_pull_requests(settings, "add")


@task(name="label pull requests for the error budget", cache_policy=NO_CACHE)
def relabel_for_budget(settings: GitHubSettings, label: str, action: str) -> LabelReport:
    """Add the error budget's freeze label to every open pull request, or take it off again.

    Args:
        settings: the repository and its token's source.
        label: the budget's freeze label (`process.budget.freeze_label`), not the go-live's own.
        action: "add" (the budget froze) or "remove" (the freeze lifted).

    Returns:
        The pull requests changed, and those that failed with why.
    """
    if action not in ("add", "remove"):
        raise ValueError(f"action: expected add or remove, got {action!r}")
    report = relabel_pull_requests(settings.model_copy(update={"freeze_label": label}), action)
    if report.failed:
        get_run_logger().warning("error budget label %s partial: %s", action,
                                 ", ".join(f"#{n} ({why})" for n, why in report.failed.items()))
    return report
