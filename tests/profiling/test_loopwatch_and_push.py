"""The loop-lag and GC probes any asyncio service imports; the push to Pyroscope's ingest API; the
profiler's one line when py-spy may not attach."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from prometheus_client import CollectorRegistry

from golive.profiles import parse_speedscope
from loopwatch import GCPauses, LoopLagProbe, instrument
from tasks.http_client import clients_for_this_run
from tasks.profiler import _refusal, py_spy_executable, start_profiling
from tasks.pyroscope import PyroscopeError, push_profile


def test_loop_lag_is_the_sleep_overshoot_of_a_blocked_loop():
    lags: list[float] = []

    async def main():
        probe = asyncio.create_task(LoopLagProbe(lags.append, interval=0.01).run())
        await asyncio.sleep(0.05)
        time.sleep(0.2)  # a synchronous call holds the loop
        await asyncio.sleep(0.05)
        probe.cancel()

    asyncio.run(main())
    assert max(lags) >= 0.15 and min(lags) >= 0


def test_gc_pauses_are_observed_by_generation():
    seen: list[tuple[int, float]] = []
    probe = GCPauses(lambda generation, seconds: seen.append((generation, seconds)))
    probe.install()
    try:
        gc.collect(2)
        gc.collect(0)
    finally:
        probe.remove()
    assert probe not in gc.callbacks
    assert [g for g, _ in seen[-2:]] == [2, 0] and all(s >= 0 for _, s in seen)


def test_instrument_exports_both_histograms_with_the_generation_label():
    registry = CollectorRegistry()
    _lag, pauses = instrument(registry, prefix="svc_", labels={"track": "canary"})
    pauses.install()
    try:
        gc.collect(2)
    finally:
        pauses.remove()
    assert registry.get_sample_value("svc_gc_pause_seconds_count", {"track": "canary", "generation": "2"}) >= 1
    assert registry.get_sample_value("svc_event_loop_lag_seconds_count", {"track": "canary"}) == 0


class _IngestReceiver(BaseHTTPRequestHandler):
    """Answers as Pyroscope's documented `POST /ingest` does: `name`, `from` and `until` required
    (400 without), the body the profile in `format` (folded by default); 200 and nothing else."""

    received: list[tuple[dict, bytes]] = []

    def do_POST(self):  # noqa: N802
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        ok = parts.path == "/ingest" and all(k in query for k in ("name", "from", "until"))
        if ok:
            self.received.append(({**query, "Authorization": self.headers.get("Authorization")}, body))
        self.send_response(200 if ok else 400)
        self.end_headers()

    def log_message(self, *_args):
        pass


@pytest.fixture
def pyroscope():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _IngestReceiver)
    _IngestReceiver.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _IngestReceiver.received
    finally:
        server.shutdown()
        server.server_close()


def test_each_track_is_pushed_tagged_as_folded_stacks(pyroscope):
    url, received = pyroscope
    document = {"shared": {"frames": [{"name": "main", "file": "app.py"}, {"name": "burn", "file": "app.py"}]},
                "profiles": [{"samples": [[0, 1], [0, 1], [0]]}]}
    with clients_for_this_run():
        for track, version in (("stable", "1.3.2"), ("canary", "1.4.0")):
            push_profile.fn(url, "golive", parse_speedscope(document, track, 2, 20),
                            {"service": "spark", "track": track, "version": version, "stage": "5"}, 1000.0, 1002.5, 20)
    assert [q["name"] for q, _ in received] == ["golive.cpu{service=spark,stage=5,track=stable,version=1.3.2}",
                                                "golive.cpu{service=spark,stage=5,track=canary,version=1.4.0}"]
    query, body = received[1]
    assert (query["from"], query["until"], query["format"], query["sampleRate"], query["spyName"]) == \
        ("1000", "1002", "folded", "20", "pyspy")
    assert body.decode().splitlines() == ["main (app.py) 1", "main (app.py);burn (app.py) 2"]


def test_a_refused_push_is_one_line_naming_the_server(pyroscope):
    url, _ = pyroscope
    document = {"shared": {"frames": [{"name": "main"}]}, "profiles": [{"samples": [[0]]}]}
    with clients_for_this_run(), pytest.raises(PyroscopeError, match=r"refused the profile .*HTTP 400"):
        push_profile.fn(url + "/wrong", "golive", parse_speedscope(document, "canary", 1, 1), {}, 1.0, 2.0, 1)


def test_pyroscopes_credentials_come_from_a_secret_block_and_never_into_an_error(pyroscope, monkeypatch):
    from tasks import secret_blocks

    url, received = pyroscope
    secrets = {"pyro-token": "s3cret-t0ken", "pyro-login": {"username": "u", "password": "s3cret-pw"}, "empty": ""}
    monkeypatch.setattr(secret_blocks, "read_secret", secrets.__getitem__)
    profile = parse_speedscope({"shared": {"frames": [{"name": "main"}]}, "profiles": [{"samples": [[0]]}]},
                               "canary", 1, 1)
    with clients_for_this_run():
        push_profile.fn(url, "golive", profile, {}, 1.0, 2.0, 1, auth_secret_block="pyro-token")
        push_profile.fn(url, "golive", profile, {}, 1.0, 2.0, 1, auth_secret_block="pyro-login")
        with pytest.raises(PyroscopeError) as refused:
            push_profile.fn(f"{url}/wrong", "golive", profile, {}, 1.0, 2.0, 1, auth_secret_block="pyro-token")
        with pytest.raises(PyroscopeError) as unusable:
            push_profile.fn(url, "golive", profile, {}, 1.0, 2.0, 1, auth_secret_block="empty")
        with pytest.raises(PyroscopeError) as unanswered:
            push_profile.fn("http://127.0.0.1:1/?tenant=a", "golive", profile, {}, 1.0, 2.0, 1, 2.0, "pyro-login")
    assert [q["Authorization"] for q, _ in received] == ["Bearer s3cret-t0ken", "Basic dTpzM2NyZXQtcHc="]
    assert "token" not in received[0][0]
    assert str(refused.value).startswith(f"Pyroscope at {url}/wrong refused the profile golive.cpu{{}}: HTTP 400")
    assert str(unusable.value).startswith("process.profiling.pyroscope_auth_secret_block 'empty': expected a bearer")
    assert str(unanswered.value).startswith("Pyroscope at http://127.0.0.1:1/ did not answer: ")
    assert "s3cret" not in str(refused.value) + str(unusable.value) + str(unanswered.value)


def test_a_secret_in_a_service_urls_query_is_refused_in_one_line_without_the_url():
    from golive.settings import SettingsError, load_settings

    for url in ("https://pyroscope.example/?token=s3cret", "https://p.example/?api_key=s3cret",
                "https://p.example/?sig=s3cret&tenant=a", "https://p.example/?X-Amz-Signature=s3cret",
                "https://p.example/?subscription-key=s3cret", "https://p.example/#token=s3cret",
                "https://p.example/ingest;token=s3cret"):
        with pytest.raises(SettingsError) as refused:
            load_settings({"release": "1.4.0", "process": {"profiling": {"pyroscope_url": url}}})
        assert "process.profiling.pyroscope_url" in str(refused.value) and "query" in str(refused.value)
        assert "s3cret" not in str(refused.value) and "\n" not in str(refused.value)
    tenant = load_settings({"release": "1.4.0",
                            "process": {"profiling": {"pyroscope_url": "https://p.example/?tenant=team-a"}}})
    assert tenant.process.profiling.pyroscope_url == "https://p.example/?tenant=team-a"


def test_ptrace_refused_is_said_in_one_line():
    line = _refusal("Error: Permission denied (os error 13)\n\nStack backtrace:\n  0: anyhow", 4242)
    assert line.startswith("ptrace refused: py-spy may not attach to pid 4242") and "\n" not in line


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to drop to another user")
def test_a_real_refusal_ends_the_sampling_with_that_line(tmp_path):
    # py-spy run as nobody against this user's process: the kernel refuses ptrace for real.
    folder = Path(tempfile.mkdtemp(prefix="golive-test-py-spy-"))
    target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        folder.chmod(0o755)
        binary = folder / "py-spy"
        shutil.copy(py_spy_executable(), binary)
        wrapper = folder / "py-spy-as-nobody"
        wrapper.write_text(f"#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups {binary} \"$@\"\n")
        wrapper.chmod(0o755)
        time.sleep(0.3)
        sampling = start_profiling.fn("canary", "http://127.0.0.1:1", target.pid, 20, str(wrapper))
        assert sampling.problem.startswith(f"canary: ptrace refused: py-spy may not attach to pid {target.pid}")
        assert sampling.profiler_pid is None and sampling.scratch is None and "\n" not in sampling.problem
    finally:
        target.kill()
        target.wait()
        shutil.rmtree(folder, ignore_errors=True)


def test_no_process_to_profile_is_a_problem_not_an_error():
    sampling = start_profiling.fn("canary", "http://example.com:8080", None, 20)
    assert sampling.problem.startswith("canary: no process to profile: example.com is not this machine")
