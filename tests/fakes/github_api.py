"""A local stand-in for GitHub's REST API (no real GitHub can be reached here).

It follows GitHub's documented request and response shapes for what golive calls: issues listed
with `state`/`labels`/`per_page`/`page` and a `Link` header, pull requests listed, labels added
and removed; `Authorization: Bearer` required; rate limits as 429 + `Retry-After` or 403 +
`x-ratelimit-remaining: 0` + `x-ratelimit-reset`. Knobs let a test make it rate-limit, refuse
one pull request, or answer a request once with any bytes and headers (`hostile`). Releases and
their assets are tests/fakes/github_releases.py's.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from sandbox.processes import free_ports
from tests.fakes.github_releases import FakeReleases


@dataclass
class Item:
    number: int
    labels: set[str]
    is_pull_request: bool = True
    state: str = "open"


TOKEN = "ghp_test_token_never_logged"
BAD_GATEWAY = "<html><head><title>502 Bad Gateway</title></head>\n<body><h1>502 Bad Gateway</h1></body></html>\n"


@dataclass
class FakeGitHub(FakeReleases):
    token: str = TOKEN
    repository: str = "spark/trading"
    items: dict[int, Item] = field(default_factory=dict)
    rate_limit_next: int = 0  # this many requests answer 429 + Retry-After
    rate_limit_style: str = "429"  # or "403": x-ratelimit-remaining 0 and a reset time
    refuse: set[int] = field(default_factory=set)  # label changes on these answer 403
    broken: set[int] = field(default_factory=set)  # label changes on these answer a proxy's 502 HTML page
    next_origin: str | None = None  # pages link their next page to this origin instead of the API's
    calls: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""
    # A hostile or broken answer: (method, path prefix) → (status, body, headers), served once.
    hostile: dict[tuple[str, str], tuple[int, bytes, dict]] = field(default_factory=dict)

    def _label(self, name: str) -> dict:
        return {"name": name, "url": f"{self.url}/repos/{self.repository}/labels/{quote(name)}"}

    def _issue(self, item: Item) -> dict:
        data = {"number": item.number, "state": item.state, "title": f"change {item.number}",
                "labels": [self._label(n) for n in sorted(item.labels)]}
        if item.is_pull_request:
            data["pull_request"] = {"url": f"{self.url}/repos/{self.repository}/pulls/{item.number}"}
        return data

    def _page(self, request: Request, items: list[Item]) -> JSONResponse:
        per_page = int(request.query_params.get("per_page", 30))
        page = int(request.query_params.get("page", 1))
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page: page * per_page]
        links = []
        params = {k: v for k, v in request.query_params.items() if k != "page"}
        base = f"{self.next_origin or self.url}{request.url.path}?" + "&".join(f"{k}={quote(v)}" for k, v in params.items())
        if page < last:
            links.append(f'<{base}&page={page + 1}>; rel="next"')
        links.append(f'<{base}&page={last}>; rel="last"')
        return JSONResponse([self._issue(i) for i in chunk], headers={"link": ", ".join(links)})

    async def issues(self, request: Request) -> JSONResponse:
        state = request.query_params.get("state", "open")
        wanted = set(filter(None, request.query_params.get("labels", "").split(",")))
        found = [i for _, i in sorted(self.items.items()) if i.state == state and wanted <= i.labels]
        return self._page(request, found)

    async def pulls(self, request: Request) -> JSONResponse:
        state = request.query_params.get("state", "open")
        return self._page(request, [i for _, i in sorted(self.items.items()) if i.is_pull_request and i.state == state])

    async def add_labels(self, request: Request) -> Response:
        item = self.items[int(request.path_params["number"])]
        if item.number in self.broken:
            return HTMLResponse(BAD_GATEWAY, status_code=502)
        if item.number in self.refuse:
            return JSONResponse({"message": "Resource not accessible by integration"}, status_code=403)
        item.labels |= set((await request.json())["labels"])
        return JSONResponse([self._label(n) for n in sorted(item.labels)])

    async def remove_label(self, request: Request) -> Response:
        item = self.items[int(request.path_params["number"])]
        if item.number in self.broken:
            return HTMLResponse(BAD_GATEWAY, status_code=502)
        name = unquote(request.path_params["name"])
        if item.number in self.refuse:
            return JSONResponse({"message": "Resource not accessible by integration"}, status_code=403)
        if name not in item.labels:
            return JSONResponse({"message": "Label does not exist"}, status_code=404)
        item.labels.discard(name)
        return JSONResponse([self._label(n) for n in sorted(item.labels)])

    async def gate(self, request: Request, call_next):
        self.calls.append((request.method, request.url.path))
        if request.url.path.startswith("/downloads/"):  # storage: no token wanted there
            return await call_next(request)
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return JSONResponse({"message": "Requires authentication"}, status_code=401)
        for (method, prefix), (status, body, headers) in list(self.hostile.items()):
            if request.method == method and request.url.path.startswith(prefix):
                del self.hostile[(method, prefix)]
                return Response(body, status_code=status, headers=headers)
        if self.rate_limit_next > 0:
            self.rate_limit_next -= 1
            if self.rate_limit_style == "403":
                return JSONResponse({"message": "API rate limit exceeded"}, status_code=403, headers={
                    "x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + 1)})
            return JSONResponse({"message": "API rate limit exceeded"}, status_code=429, headers={"retry-after": "1"})
        return await call_next(request)

    def app(self) -> Starlette:
        prefix = "/repos/{owner}/{repo}"
        return Starlette(routes=[
            Route(f"{prefix}/issues", self.issues),
            Route(f"{prefix}/pulls", self.pulls),
            Route(f"{prefix}/issues/{{number:int}}/labels", self.add_labels, methods=["POST"]),
            Route(f"{prefix}/issues/{{number:int}}/labels/{{name}}", self.remove_label, methods=["DELETE"]),
            *self.release_routes(prefix),
        ], middleware=[Middleware(BaseHTTPMiddleware, dispatch=self.gate)])


def serve(fake: FakeGitHub) -> tuple[uvicorn.Server, threading.Thread]:
    (port,) = free_ports(1)
    fake.url = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(uvicorn.Config(fake.app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return server, thread
