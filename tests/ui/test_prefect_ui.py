"""The Prefect UI, seen: after a go-live on a real local Prefect server, a real browser (Debian's
chromium, driven by Playwright) finds the run `go-live v1.4.0` in state Live and its war-room
table artifact. A small server of its own: the deployment tests' stack lives inside one test."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sandbox.processes import die_with_parent, free_ports
from tests.flows.helpers import flow_settings

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no browser: Debian's chromium is not installed "
                                                            f"({CHROMIUM}); scripts/setup.sh installs it as root"),
]


def _wait_healthy(url: str, server: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert server.poll() is None, log.read_text()[-2000:]
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return
        assert time.monotonic() < deadline, f"the Prefect server did not answer within {timeout:g} s"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    """`prefect server start` on a free loopback port, with a Prefect home of its own: its URL,
    the environment that points at it, and a wait for its health (it starts while the sandbox does)."""
    home = tmp_path_factory.mktemp("prefect-ui")
    url = f"http://127.0.0.1:{free_ports(1)[0]}"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": f"{url}/api",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_API_URL": f"{url}/api"}
    with open(home / "server.log", "ab") as log:
        server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                   "--port", url.rsplit(":", 1)[1]], env=env, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent)
    try:
        yield url, env, lambda: _wait_healthy(url, server, home / "server.log")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


GO_LIVE = """
import json, sys
from flows.go_live import go_live
settings = json.load(open(sys.argv[1]))
state = go_live(settings["release"], settings=settings, return_state=True)
print(json.dumps({"type": state.type.value, "name": state.name}))
"""


@pytest.fixture(scope="module")
def went_live(prefect_server, sandbox, signing_key, tmp_path_factory) -> dict:
    """A go-live of the demo at 100 % on the sandbox, run in a process of its own against the server."""
    _url, env, healthy = prefect_server
    healthy()
    folder = tmp_path_factory.mktemp("ui-go-live")
    settings = flow_settings(sandbox, signing_key, folder / "evidence", [100])
    (folder / "settings.json").write_text(json.dumps(settings))
    done = subprocess.run([sys.executable, "-c", GO_LIVE, str(folder / "settings.json")], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    sandbox.set_weight(0)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def page():
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


def test_the_ui_shows_the_go_live_live_with_its_war_room(prefect_server, went_live, page, tmp_path):
    url, _env, _healthy = prefect_server
    assert went_live == {"type": "COMPLETED", "name": "Live"}

    page.goto(f"{url}/runs", wait_until="networkidle")
    run = page.get_by_text("go-live v1.4.0", exact=True).first
    run.wait_for(timeout=60_000)
    run.click()
    page.wait_for_url("**/runs/flow-run/**", timeout=30_000)
    page.get_by_text("Live", exact=True).first.wait_for(timeout=30_000)  # the state badge

    page.get_by_text("Artifacts", exact=True).first.click()  # the run's tab
    artifact = page.get_by_text("war-room-v1-4-0", exact=True).first
    artifact.wait_for(timeout=30_000)
    page.screenshot(path=str(tmp_path / "flow_run_artifacts.png"))
    artifact.click()
    page.get_by_text("Decision", exact=True).first.wait_for(timeout=30_000)  # the table's own column
    assert page.get_by_text("Proceed", exact=True).count() >= 1
    assert page.get_by_text("go-live v1.4.0", exact=True).count() >= 1  # the run it belongs to
