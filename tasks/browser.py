"""The shadow stage's browser check: a real headless Chromium loading each track's pages.

A mirror shows what a service answers, not what a browser does with it: a page's Content
Security Policy is enforced, and its violations reported, by the browser that renders the page.
In the shadow stage no user's browser renders the canary's pages, so golive brings one: Debian's
`chromium`, headless, driven over its DevTools protocol (one browser, one tab, one page load after
another, the tracks taking turns at the same pace). Every request the browser makes, the page's
own, its favicon and the reports it posts, names the check in its User-Agent
(`golive-browser-check`), so that the services count them apart from users' (`Signal.in_browser`
reads only those) and no traffic split counts them.

The browser is this process's child, killed by the kernel when the thread that started it ends
(`tasks.profiler.ends_with_this_thread`): a go-live killed mid-stage leaves no browser loading
pages. A browser that cannot start is one line in the stage's evidence, and the stage goes on
without it: the signals only a browser shows are then left to users' browsers at the first stages.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from itertools import cycle

import httpx
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel
from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from tasks.profiler import ends_with_this_thread

__all__ = ["BROWSER_USER_AGENT", "BrowserCheck", "BrowserCheckReport", "start_browser_check", "stop_browser_check"]

# On every request the browser makes (a page's extra headers are not: a favicon, a late report).
BROWSER_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome golive-browser-check"
# How long Chromium may take to listen for its DevTools client before the stage goes on without it.
START_SECONDS = 20.0
# One page load's limit: a page that takes longer counts as failed, and the next is loaded.
PAGE_SECONDS = 10.0
STOP_SECONDS = 5.0
_FLAGS = ("--headless=new", "--disable-gpu", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
          "--disable-background-networking", "--disable-component-update", "--disable-sync", "--mute-audio",
          "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", f"--user-agent={BROWSER_USER_AGENT}")

# The running checks of this process, by the browser's pid: a task's result is plain data.
_RUNNING: dict[int, _Loader] = {}
_LOCK = threading.Lock()


class BrowserCheck(BaseModel):
    """A browser check started (or why none was)."""

    browser_pid: int | None = None
    browser: str | None = None  # its product and version, as it names itself
    pages: dict[str, list[str]] = {}  # track -> the URLs it loads there
    per_minute: float = 0.0
    started_at: float = 0.0
    problem: str | None = None  # one line: why there is no check


class BrowserCheckReport(BaseModel):
    """What the browser check did: the page loads per track, those that failed, and the first failure."""

    browser: str | None = None
    pages: dict[str, list[str]] = {}
    per_minute: float = 0.0
    seconds: float = 0.0
    loaded: dict[str, int] = {}
    failed: dict[str, int] = {}
    first_failure: str | None = None
    problem: str | None = None


class _Loader(threading.Thread):
    """Loads the pages in turn, track after track, `per_minute` loads a minute on each track."""

    def __init__(self, process: subprocess.Popen, profile_dir: str, tab: ClientConnection,
                 pages: dict[str, list[str]], per_minute: float):
        super().__init__(name="golive browser check", daemon=True)
        self.process, self.profile_dir, self.tab = process, profile_dir, tab
        self.pages, self.per_minute = pages, per_minute
        self.loaded = dict.fromkeys(pages, 0)
        self.failed = dict.fromkeys(pages, 0)
        self.first_failure: str | None = None
        self.stopping = threading.Event()
        self._calls = 0

    def run(self) -> None:
        turns = cycle([(track, url) for same_page in zip(*self.pages.values())  # each page on each track in turn
                       for track, url in zip(self.pages, same_page)])
        pause = 60.0 / (self.per_minute * len(self.pages))
        next_at = time.monotonic()
        while not self.stopping.wait(max(0.0, next_at - time.monotonic())):
            next_at = max(next_at + pause, time.monotonic())  # late loads are not made up in a burst
            track, url = next(turns)
            try:
                failure = self._load(url)
            except (WebSocketException, OSError, TimeoutError, ValueError) as exc:
                failure = f"the browser stopped answering: {exc}"
                self.stopping.set()
            if failure is None:
                self.loaded[track] += 1
            else:
                self.failed[track] += 1
                self.first_failure = self.first_failure or f"{track} {url}: {failure}"

    def _call(self, method: str, **params) -> dict:
        """Send one DevTools command and read until its answer (events in between are passed over)."""
        self._calls += 1
        ask = self._calls
        self.tab.send(json.dumps({"id": ask, "method": method, "params": params}))
        deadline = time.monotonic() + PAGE_SECONDS
        while True:
            message = json.loads(self.tab.recv(timeout=max(0.01, deadline - time.monotonic())))
            if message.get("id") == ask:
                if "error" in message:
                    raise ValueError(f"{method}: {message['error'].get('message')}")
                return message.get("result", {})

    def _load(self, url: str) -> str | None:
        """Load one page to its load event; why it failed, or None."""
        answer = self._call("Page.navigate", url=url)
        if answer.get("errorText"):
            return answer["errorText"]
        deadline = time.monotonic() + PAGE_SECONDS
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return f"no load event within {PAGE_SECONDS:g} s"
            message = json.loads(self.tab.recv(timeout=left))
            if message.get("method") == "Page.loadEventFired":
                return None

    def prepare(self) -> None:
        self._call("Page.enable")

    def close(self) -> None:
        self.stopping.set()
        self.join(timeout=PAGE_SECONDS + STOP_SECONDS)
        try:
            self.tab.close()
        except (WebSocketException, OSError):
            pass
        _end(self.process, self.profile_dir)


def _end(process: subprocess.Popen, profile_dir: str) -> None:
    """End the browser and every process it started (its process group: renderers, the network
    service still write into the profile after the browser itself exits), then remove the profile."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not _group_alive(process):
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        deadline = time.monotonic() + STOP_SECONDS
        while _group_alive(process) and time.monotonic() < deadline:
            time.sleep(0.05)
    shutil.rmtree(profile_dir, ignore_errors=True)


def _group_alive(process: subprocess.Popen) -> bool:
    process.poll()  # reaps the browser itself once it exits
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True


def _devtools_address(process: subprocess.Popen, profile_dir: str) -> str | None:
    """The browser's DevTools address: the port (and path) it writes into its profile when it
    listens (None: it exited, or had not within START_SECONDS)."""
    written = os.path.join(profile_dir, "DevToolsActivePort")
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        try:
            port, path = open(written).read().split("\n")[:2]
            return f"127.0.0.1:{int(port)}{path}"
        except (OSError, ValueError):
            time.sleep(0.05)
    return None


@task(name="start the browser check", cache_policy=NO_CACHE)
def start_browser_check(urls: dict[str, str], paths: tuple[str, ...], per_minute: float,
                        chromium: str = "chromium") -> BrowserCheck:
    """Start a headless Chromium loading `paths` of each track's URL in turn, `per_minute` page
    loads a minute on each track, until `stop_browser_check`.

    Args:
        urls: track -> the track's own URL (`target.stable_url`, `target.canary_url`): the pages
            are loaded there directly, not through the router.
        paths: the pages (`target.browser_pages`).
        per_minute: page loads a minute on each track.
        chromium: the browser's executable, on the PATH or a path.

    Returns:
        The check, or why it did not start (`problem`, one line)."""
    pages = {track: [f"{url.rstrip('/')}{path}" for path in paths] for track, url in urls.items()}
    started = BrowserCheck(pages=pages, per_minute=per_minute, started_at=time.time())
    executable = shutil.which(chromium)
    if executable is None:
        started.problem = f"no browser: {chromium} is not installed (Debian: apt install chromium)"
        return started
    profile_dir = tempfile.mkdtemp(prefix="golive-browser-")
    flags = [*_FLAGS, f"--user-data-dir={profile_dir}", *(["--no-sandbox"] if os.geteuid() == 0 else [])]
    try:
        process = subprocess.Popen([executable, *flags, "about:blank"], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   process_group=0,  # its own group, so that it is ended whole
                                   preexec_fn=ends_with_this_thread if sys.platform == "linux" else None)
    except OSError as exc:
        shutil.rmtree(profile_dir, ignore_errors=True)
        started.problem = f"no browser: {chromium} could not be started: {exc.strerror or exc}"
        return started
    try:
        address = _devtools_address(process, profile_dir)
        if address is None:
            raise OSError(f"{chromium} did not open its DevTools port within {START_SECONDS:g} s")
        base = "http://" + address.split("/")[0]
        with httpx.Client(timeout=5) as client:
            started.browser = client.get(f"{base}/json/version").json().get("Browser")
            tab_url = next(t["webSocketDebuggerUrl"] for t in client.get(f"{base}/json/list").json()
                           if t.get("type") == "page")
        loader = _Loader(process, profile_dir, connect(tab_url, max_size=None, open_timeout=5), pages, per_minute)
        loader.prepare()
    except (OSError, httpx.HTTPError, WebSocketException, StopIteration, ValueError, KeyError) as exc:
        _end(process, profile_dir)
        started.problem = f"no browser: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        return started
    loader.start()
    started.browser_pid = process.pid
    with _LOCK:
        _RUNNING[process.pid] = loader
    return started


@task(name="stop the browser check", cache_policy=NO_CACHE)
def stop_browser_check(check: BrowserCheck) -> BrowserCheckReport:
    """Stop the browser and say what it loaded."""
    report = BrowserCheckReport(**check.model_dump(include=set(BrowserCheckReport.model_fields)))
    with _LOCK:
        loader = _RUNNING.pop(check.browser_pid, None) if check.browser_pid is not None else None
    if loader is None:
        report.problem = report.problem or "the browser check of this stage is not running in this process"
        return report
    loader.close()
    report.seconds = round(time.time() - check.started_at, 3)
    report.loaded, report.failed, report.first_failure = dict(loader.loaded), dict(loader.failed), loader.first_failure
    return report
