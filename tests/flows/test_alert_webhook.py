"""Alerts act at once: a real Alertmanager (Debian's prometheus-alertmanager) with golive's webhook
as its receiver; a critical alert on the canary rolls the go-live holding the sandbox's router
back to weight 0, fenced, and a second alert rolls back nothing more (how fast: benchmarks/alert_rollback.py)."""

from __future__ import annotations

import shutil
import subprocess
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from golive.fencing import FenceHolder
from golive.settings import load_settings
from sandbox.processes import free_ports
from tests.flows.helpers import flow_settings

ALERTMANAGER = shutil.which("prometheus-alertmanager")
needs_alertmanager = pytest.mark.skipif(ALERTMANAGER is None, reason="prometheus-alertmanager not installed")


@contextmanager
def alertmanager_sending_to(webhook_url: str, token: str, folder: Path):
    """A real Alertmanager on a free loopback port whose one receiver is golive's webhook, sending
    the shared bearer token from a file (http_config.authorization.credentials_file)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "webhook.token").write_text(token + "\n")
    (folder / "alertmanager.yml").write_text(
        "route:\n  receiver: golive\n  group_by: [alertname, service, track]\n"
        "  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1m\n"
        f"receivers:\n  - name: golive\n    webhook_configs:\n      - url: {webhook_url}\n"
        "        send_resolved: false\n"
        f"        http_config:\n          authorization:\n            credentials_file: {folder / 'webhook.token'}\n")
    port = free_ports(1)[0]
    process = subprocess.Popen(
        [ALERTMANAGER, f"--config.file={folder / 'alertmanager.yml'}", f"--storage.path={folder / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, "Alertmanager did not start"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _fire(alertmanager_url: str, signal: str) -> float:
    """Post a firing critical alert to Alertmanager's API v2, as Prometheus does; when it was posted."""
    now = datetime.now(timezone.utc)
    alert = {"labels": {"alertname": "GoLiveSignalFarOverThreshold", "severity": "critical", "service": "spark",
                        "signal": signal, "track": "canary"},
             "annotations": {"summary": f"spark canary: {signal} 2x over its rule"},
             "startsAt": now.isoformat().replace("+00:00", "Z")}
    response = httpx.post(f"{alertmanager_url}/api/v2/alerts", json=[alert], timeout=5)
    assert response.status_code == 200, response.text
    return now.timestamp()


@needs_alertmanager
def test_a_critical_alert_rolls_the_canary_back_once(sandbox, canary_weight, signing_key, tmp_path):
    from cli.alert_webhook import AlertReceiver
    from tasks.router import read_weight, set_weight, take_generation

    settings = flow_settings(sandbox, signing_key, tmp_path / "evidence", [5, 100])
    cfg = load_settings(settings)
    router = cfg.target.router
    # A go-live of 1.4.0 holds the target at 5 %, as flows/go_live.py takes it.
    fence = take_generation.fn(router, FenceHolder(kind="go-live", name="go-live v1.4.0", run="a-go-live-run"))
    set_weight.fn(router, 5, fence.generation)
    receiver = AlertReceiver(settings, token="a-shared-token").start()
    try:
        with alertmanager_sending_to(receiver.url, "a-shared-token", tmp_path / "alertmanager") as alertmanager:
            _fire(alertmanager, "api_p95_ms")
            # The rollback's outcome, not one read of 0: while nginx reloads, a new worker may answer 0
            # and an old one, still accepting, 5; the rollback returns once 0 is in force everywhere.
            deadline = time.monotonic() + 30
            while not receiver.outcomes and time.monotonic() < deadline:
                time.sleep(0.1)
            assert receiver.outcomes, "no rollback within 30 s of the alert"
            assert read_weight.fn(router).in_force == 0
            first = receiver.outcomes[0]
            assert (first["action"], first["release"], first["generation"], first["outcome"]) == (
                "rollback", "1.4.0", fence.generation, "RolledBack")
            now = read_weight.fn(router).fence
            assert now.generation == fence.generation + 1 and now.holder.kind == "rollback"

            # Another critical alert (and Alertmanager's repeats): a rollback holds the target, so
            # nothing more is rolled back; the stage's next look finds the newer generation too.
            _fire(alertmanager, "http_5xx_pct")
            while len(receiver.outcomes) < 2 and time.monotonic() < deadline + 15:
                time.sleep(0.1)
            assert receiver.outcomes[1]["action"] == "none"
            assert receiver.outcomes[1]["why"].startswith("no go-live holds the target (generation")
    finally:
        receiver.stop()
    rollbacks = sorted((tmp_path / "evidence" / "v1.4.0").glob("rollback_*.txt"))
    assert len(rollbacks) == 1
    assert "critical-alert from Alertmanager: GoLiveSignalFarOverThreshold (api_p95_ms, canary)" in \
        rollbacks[0].read_text()
    assert "stage:          5%" in rollbacks[0].read_text()
