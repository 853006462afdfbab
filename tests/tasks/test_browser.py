"""The browser check's own behaviour with Debian's Chromium against two small page servers of the
test's: the tracks take turns, every request the browser makes names the check, nothing of it outlives
the check (nor the thread that started it), and a browser that cannot start is one line."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tasks.browser import BROWSER_USER_AGENT, BrowserCheck, start_browser_check, stop_browser_check

needs_chromium = pytest.mark.skipif(not any(os.access(Path(d) / "chromium", os.X_OK)
                                            for d in os.environ.get("PATH", "").split(os.pathsep)),
                                    reason="Debian's chromium is not installed")
PAGE = (b"<!doctype html><html><head><script>window.inline = 1</script></head><body>page</body></html>")
POLICY = "default-src 'self'; script-src 'self'; report-uri /csp-report"


class _Pages(BaseHTTPRequestHandler):
    """A page whose inline script breaks its own policy, and the policy's report endpoint."""

    seen: list[tuple[int, str, str | None]]

    def log_message(self, *_args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.seen.append((self.server.server_address[1], self.path, self.headers.get("User-Agent")))
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Security-Policy", POLICY)
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.seen.append((self.server.server_address[1], "report", self.headers.get("User-Agent")))
        self.send_response(204)
        self.end_headers()


@pytest.fixture
def tracks() -> Iterator[tuple[dict[str, str], list]]:
    seen: list = []
    handler = type("Pages", (_Pages,), {"seen": seen})
    servers = {track: ThreadingHTTPServer(("127.0.0.1", 0), handler) for track in ("stable", "canary")}
    for server in servers.values():
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield {track: f"http://127.0.0.1:{s.server_address[1]}" for track, s in servers.items()}, seen
    finally:
        for server in servers.values():
            server.shutdown()
            server.server_close()


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@needs_chromium
def test_the_tracks_take_turns_every_request_is_marked_and_nothing_is_left(tracks):
    urls, seen = tracks
    check = start_browser_check.fn(urls, ("/app",), 240.0)
    try:
        assert check.problem is None and check.browser.startswith(("Chrome/", "HeadlessChrome/")), check
        command = Path("/proc", str(check.browser_pid), "cmdline").read_bytes()
        profile = Path(command.split(b"--user-data-dir=")[1].split(b"\0")[0].decode())
        assert profile.is_dir()
        time.sleep(4)
    finally:
        report = stop_browser_check.fn(check)

    assert report.failed == {"stable": 0, "canary": 0} and report.first_failure is None
    assert min(report.loaded.values()) >= 5 and abs(report.loaded["stable"] - report.loaded["canary"]) <= 1
    assert report.seconds >= 4 and report.per_minute == 240.0
    ports = {int(url.rsplit(":", 1)[1]): track for track, url in urls.items()}
    pages = Counter(ports[port] for port, path, _ in seen if path == "/app")
    assert pages == Counter(report.loaded)
    assert {agent for _, _, agent in seen} == {BROWSER_USER_AGENT}  # pages, the favicon, the reports: all named
    assert {ports[port] for port, path, _ in seen if path == "report"} == {"stable", "canary"}
    assert not _alive(check.browser_pid)
    assert not profile.exists()


@needs_chromium
def test_the_browser_ends_with_the_thread_that_started_it(tracks):
    urls, _ = tracks
    started: list[BrowserCheck] = []
    starter = threading.Thread(target=lambda: started.append(start_browser_check.fn(urls, ("/app",), 60.0)))
    starter.start()
    starter.join()
    (check,) = started
    assert check.problem is None, check.problem
    try:
        deadline = time.monotonic() + 10
        while _alive(check.browser_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(check.browser_pid), "the browser outlived the thread that started it"
    finally:
        stop_browser_check.fn(check)


def test_a_browser_that_cannot_start_is_one_line_and_nothing_runs(tracks):
    urls, _ = tracks
    check = start_browser_check.fn(urls, ("/app",), 12.0, chromium="no-such-browser")
    assert check.problem == "no browser: no-such-browser is not installed (Debian: apt install chromium)"
    assert check.browser_pid is None
    report = stop_browser_check.fn(check)
    assert report.problem == check.problem and report.loaded == {}
