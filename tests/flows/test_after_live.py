"""After 100 %: the first night under a fault and after a kill, and a closing that meets trouble, on the real sandbox.
The whole story, Live to first night, runs the Prefect way in tests/deployments."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from golive import layout
from golive.evidence import EvidenceLedger
from tests.flows.helpers import EvidenceWatcher, flow_settings

pytestmark = pytest.mark.sandbox


def _remote_tag(repo: str, tag: str) -> str:
    """The annotated tag's message as the bare remote holds it ('' when absent)."""
    origin = subprocess.run(["git", "-C", repo, "remote", "get-url", "origin"], capture_output=True, text=True).stdout.strip()
    shown = subprocess.run(["git", "-C", origin, "tag", "-l", "--format=%(objecttype) %(contents:subject)", tag],
                           capture_output=True, text=True)
    return shown.stdout.strip()


def _with_github(settings: dict, github, monkeypatch) -> dict:
    monkeypatch.setenv("GITHUB_TOKEN", github.token)
    return {**settings, "github": {"repository": github.repository, "api_url": github.url, "max_wait_seconds": 10}}


def _hours(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob(layout.FIRST_NIGHT_HOURS))]


def test_a_fault_during_the_first_night_burns_the_budget_and_rolls_back(sandbox, canary_weight, signing_key, tmp_path):
    from flows.first_night import first_night

    canary_weight(100)
    settings = flow_settings(sandbox, signing_key, tmp_path, [100])
    folder = tmp_path / "v1.4.0"
    hour_one = lambda f: (f / layout.first_night_hour(1)).exists()  # noqa: E731
    with EvidenceWatcher(folder, hour_one, lambda: sandbox.set_faults("canary", {"error_rate": 0.5})):
        state = first_night("1.4.0", settings=settings, hours=4, hour_seconds=6, return_state=True)

    assert state.name == "RolledBack"
    last = _hours(folder)[-1]
    assert last["hour"] >= 2 and last["status"] == "rollback" and last["triggers"] == ["error-budget-burn"]
    assert last["burn"]["1"] >= 14.4 and last["burn"]["0.0833333"] >= 14.4
    (rollback_file,) = folder.glob(layout.ROLLBACKS)
    assert "error-budget-burn" in rollback_file.read_text()
    assert sandbox.weight() == 0


def test_a_killed_first_night_resumes_at_the_next_hour_without_duplicates(sandbox, signing_key, tmp_path):
    from prefect.settings import PREFECT_API_URL

    config = tmp_path / "golive.yaml"
    config.write_text(yaml.safe_dump(flow_settings(sandbox, signing_key, tmp_path, [100])))
    command = [sys.executable, "-m", "golive", "first-night", "--release", "1.4.0", "--config", str(config),
               "--hours", "5", "--hour-seconds", "4"]
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}  # the test run's Prefect server
    folder = tmp_path / "v1.4.0"
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (folder / layout.first_night_hour(3)).exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (folder / layout.first_night_hour(3)).exists()
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    recorded = {p.name: p.read_bytes() for p in folder.glob(layout.FIRST_NIGHT_HOURS)}
    assert sorted(recorded)[:3] == [layout.first_night_hour(h) for h in (1, 2, 3)]

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    hours = _hours(folder)
    assert [h["hour"] for h in hours] == [1, 2, 3, 4, 5]
    assert all((folder / name).read_bytes() == data for name, data in recorded.items())  # not recomputed
    plan = json.loads((folder / layout.FIRST_NIGHT_PLAN).read_text())
    assert [h["due"] for h in hours] == [plan["started_at"] + 4 * h for h in range(1, 6)]


def test_closing_waits_out_a_rate_limit_names_a_failed_pr_and_never_moves_a_tag(
        sandbox, signing_key, github, monkeypatch, tmp_path, capsys):
    from flows.closing import closing
    from cli.main import main
    from golive.settings import load_settings

    settings = _with_github(flow_settings(sandbox, signing_key, tmp_path, [100]), github, monkeypatch)
    config = tmp_path / "golive.yaml"
    config.write_text(yaml.safe_dump(settings))
    assert main(["close", "--release", "1.4.0", "--config", str(config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert '"tag": "v1.4.0"' in out and '"pull_requests": [\n    1,\n    2,\n    6\n  ]' in out
    assert _remote_tag(settings["git"]["repo"], "v1.4.0") == ""
    assert [c[0] for c in github.calls] == ["GET"]

    github.rate_limit_next, github.refuse = 1, {2}
    cfg = load_settings(settings)
    state = closing(cfg, return_state=True)
    assert state.name == "ClosedPartially"
    assert state.message == "freeze lift: PR #2: HTTP 403 Resource not accessible by integration"
    lifted = EvidenceLedger(cfg.evidence_dir).read_json(layout.freeze_lift())
    assert lifted["done"] == [1, 6] and lifted["failed"] == {"2": "HTTP 403 Resource not accessible by integration"}
    assert lifted["waited_seconds"] >= 1
    assert _remote_tag(settings["git"]["repo"], "v1.4.0").startswith("tag Canary successful")

    again = closing(cfg, return_state=True)
    assert again.name == "ClosedPartially" and "tag v1.4.0 already exists" in again.message
