"""After 100 %: the first night under a fault, after a kill and without data; a closing that meets
trouble, refuses a release that is not Live and finishes a failed push; a flight check that meets a
running go-live. On the real sandbox; the whole story, Live to first night, runs the Prefect way
in tests/deployments."""

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
from golive.models import StageResult
from golive.settings import SECTIONS, merge_settings
from golive.signals import SIGNAL_NAMES
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
    return merge_settings(settings, {"process": {
        "github": {"repository": github.repository, "api_url": github.url, "max_wait_seconds": 10}}})


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
    command = [sys.executable, "-m", "cli", "first-night", "--release", "1.4.0", "--config", str(config),
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


def _saved_blocks(settings: dict, name: str) -> dict[str, str]:
    """`settings` as the four blocks, saved under `name`: what a deployment's run is given."""
    from blocks import blocks_from_settings
    from golive.settings import load_settings

    for block in blocks_from_settings(load_settings(settings, release="1.4.0")).values():
        block.save(name, overwrite=True)
    return {role: name for role in SECTIONS}


def _run_scheduled(flow_run_id: str, wait_until_due: bool = True):
    """Run a scheduled run of `first-night-hour` here, as a worker would: its final state."""
    from prefect import get_client
    from prefect.flow_engine import run_flow

    from flows.first_night import first_night_hour

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
    if wait_until_due:
        time.sleep(max(0.0, run.state.state_details.scheduled_time.timestamp() - time.time()))
    return run_flow(first_night_hour, flow_run=run, parameters=run.parameters, return_type="state")


def test_the_first_night_on_a_server_is_a_short_run_per_hour_each_hour_measured_once_a_late_one_by_its_due_time(
        sandbox, canary_weight, signing_key, tmp_path):
    from prefect import get_client

    from flows.first_night import first_night_hour
    from golive.first_night import SETTLE_SECONDS
    from tasks.prefect_api import FIRST_NIGHT_HOUR_DEPLOYMENT, schedule_first_night

    canary_weight(100)
    hour_seconds = 3
    settings = flow_settings(sandbox, signing_key, tmp_path, [100],
                             process={"first_night": {"hours": 3, "hour_seconds": hour_seconds}})
    blocks = _saved_blocks(settings, "first-night-hours")
    assert schedule_first_night.fn("1.4.0", blocks)["scheduled"] is False  # no deployment: said, not raised
    first_night_hour.to_deployment(name="default").apply()

    started = time.time()
    night = schedule_first_night.fn("1.4.0", blocks, started_at=started)
    assert (night["deployment"], night["hours"], night["hour_seconds"]) == (FIRST_NIGHT_HOUR_DEPLOYMENT, 3, 3)
    with get_client(sync_client=True) as client:
        runs = [client.read_flow_run(r["flow_run_id"]) for r in night["runs"]]
    assert [r.state.type.value for r in runs] == ["SCHEDULED"] * 3
    assert [r.state.state_details.scheduled_time.timestamp() for r in runs] == pytest.approx(
        [started + hour_seconds * h + SETTLE_SECONDS for h in (1, 2, 3)], abs=1e-3)
    assert [r.parameters["hour"] for r in runs] == [1, 2, 3] and night["flow_run_id"] == str(runs[-1].id)

    # The worker was down for hour 1: hour 2 runs on time, hour 1 after it, over its own windows.
    folder = tmp_path / "v1.4.0"
    two = _run_scheduled(night["runs"][1]["flow_run_id"])
    assert two.name == "Measured" and two.message.startswith("hour 2/3: ")
    one = _run_scheduled(night["runs"][0]["flow_run_id"])
    assert one.name == "Measured" and [h["hour"] for h in _hours(folder)] == [1, 2]
    recorded = (folder / layout.first_night_hour(1)).read_bytes()
    # Hour 1 run again (a duplicate, a retry): it finds its file and measures nothing.
    with get_client(sync_client=True) as client:
        duplicate = client.create_flow_run_from_deployment(runs[0].deployment_id, parameters=runs[0].parameters)
    assert _run_scheduled(str(duplicate.id), wait_until_due=False).name == "Recorded"
    assert (folder / layout.first_night_hour(1)).read_bytes() == recorded

    three = _run_scheduled(night["runs"][2]["flow_run_id"])  # the last hour ends the night
    assert (three.type.value, three.name) == ("COMPLETED", "Held") and three.message.startswith("v1.4.0 held 3 hours")
    hours = _hours(folder)
    assert [h["hour"] for h in hours] == [1, 2, 3]
    assert [h["due"] for h in hours] == [started + hour_seconds * h for h in (1, 2, 3)]  # hour 1 by its due time
    assert hours[0]["counts"]["1"][1] > 0  # its hour had traffic to count
    report = (folder / layout.first_night_report("1.4.0")).read_text()
    assert f"| 1 | {hours[0]['measured_at_utc']} |" in report and "### Root cause" in report
    assert (folder / layout.first_night_plot("1.4.0")).read_bytes().startswith(b"\x89PNG")
    assert [link["flow"] for link in EvidenceLedger(folder).chain()] == ["first-night"]


def _remote_tag_commit(repo: str, tag: str = "v1.4.0") -> str:
    """The commit the bare remote's tag points at ('' when absent)."""
    origin = subprocess.run(["git", "-C", repo, "remote", "get-url", "origin"], capture_output=True, text=True).stdout.strip()
    return subprocess.run(["git", "-C", origin, "rev-parse", "-q", "--verify", f"refs/tags/{tag}^{{commit}}"],
                          capture_output=True, text=True).stdout.strip()


def _ended(settings: dict, signing_key: dict, outcome: str = "proceed") -> Path:
    """The evidence a go-live of stage 100 leaves when it ends (`proceed`: Live), sealed with the run's key."""
    from golive.closing import success_criteria
    from golive.signing import SigningKey

    decision = {"decision": outcome, "signals": {
        name: {"canary": 1.0, "baseline": 1.0, "verdict": "breach" if outcome == "rollback" and name == "api_p95_ms"
               else "pass"} for name in SIGNAL_NAMES}}
    ended = time.time()
    stage = StageResult(stage=100, outcome=outcome, weight_verified=True, share_ok=True,
                        triggers=["breach:api_p95_ms"] if outcome == "rollback" else [], decisions=[decision],
                        started_at=ended - 900, ended_at=ended).model_dump()
    folder = Path(settings["process"]["evidence_root"]) / f"v{settings['release']}"
    ledger = EvidenceLedger(folder)
    ledger.write_json(layout.stage_record(100), stage)
    ledger.write_json(layout.SUCCESS_CRITERIA, success_criteria(
        [100], [stage], {"ok": True, "files": 60, "minimum_files": 50, "missing": []}))
    ledger.seal("go-live", SigningKey.from_file(signing_key["key_path"]))
    return folder


def _reject_next_push(repo: str) -> None:
    """The bare remote turns away the next push, once (a flaky remote)."""
    origin = Path(subprocess.run(["git", "-C", repo, "remote", "get-url", "origin"], capture_output=True,
                                 text=True).stdout.strip())
    (origin / "reject-once").touch()
    hook = origin / "hooks" / "pre-receive"
    hook.write_text('#!/bin/sh\nif [ -e reject-once ]; then rm reject-once; echo "remote busy" >&2; exit 1; fi\n')
    hook.chmod(0o755)


def test_closing_waits_out_a_rate_limit_names_a_failed_pr_and_finishes_a_failed_push_on_rerun(
        sandbox, signing_key, github, monkeypatch, tmp_path, capsys):
    from flows.closing import closing
    from cli.main import main
    from golive.settings import load_settings

    settings = _with_github(flow_settings(sandbox, signing_key, tmp_path, [100]), github, monkeypatch)
    config = tmp_path / "golive.yaml"
    config.write_text(yaml.safe_dump(settings))
    _ended(settings, signing_key)
    assert main(["close", "--release", "1.4.0", "--config", str(config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert '"tag": "v1.4.0"' in out and '"done": "would tag and push"' in out
    assert '"pull_requests": [\n    1,\n    2,\n    6\n  ]' in out
    assert _remote_tag(settings["process"]["git"]["repo"], "v1.4.0") == ""
    assert [c[0] for c in github.calls] == ["GET"]

    github.rate_limit_next, github.refuse = 1, {2}
    _reject_next_push(settings["process"]["git"]["repo"])
    cfg = load_settings(settings)
    state = closing(cfg, return_state=True)  # after the dry run's unsealed files: still Live
    assert state.name == "ClosedPartially"
    assert "tag: git push origin" in state.message and "remote busy" in state.message
    assert state.message.endswith("freeze lift: PR #2: HTTP 403 Resource not accessible by integration")
    lifted = EvidenceLedger(cfg.evidence_dir).read_json(layout.freeze_lift())
    assert lifted["done"] == [1, 6] and lifted["failed"] == {"2": "HTTP 403 Resource not accessible by integration"}
    assert lifted["waited_seconds"] >= 1
    assert _remote_tag(settings["process"]["git"]["repo"], "v1.4.0") == ""  # tagged here, the push refused

    head = subprocess.run(["git", "-C", settings["process"]["git"]["repo"], "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    again = closing(cfg, return_state=True)
    assert again.name == "ClosedPartially" and "tag" not in again.message  # only PR #2 still refuses
    assert EvidenceLedger(cfg.evidence_dir).read_json(layout.git_tag())["done"] == "pushed the existing tag"
    assert _remote_tag(settings["process"]["git"]["repo"], "v1.4.0").startswith("tag Canary successful")
    notes = (tmp_path / "v1.4.0" / layout.release_notes("1.4.0")).read_text()
    assert "## Deployment Summary" in notes and "v1.4.0 canary: 100% in " in notes and "ws_stale_p95=" in notes
    assert _remote_tag_commit(settings["process"]["git"]["repo"]) == head
    third = closing(cfg, return_state=True)
    assert EvidenceLedger(cfg.evidence_dir).read_json(layout.git_tag())["done"] == "already pushed"
    assert third.name == "ClosedPartially"


def test_close_refuses_a_rolled_back_release_and_changes_nothing(
        sandbox, signing_key, github, monkeypatch, tmp_path, capsys):
    from cli.main import main

    settings = _with_github(flow_settings(sandbox, signing_key, tmp_path, [100]), github, monkeypatch)
    config = tmp_path / "golive.yaml"
    config.write_text(yaml.safe_dump(settings))
    folder = _ended(settings, signing_key, outcome="rollback")
    before = sorted(p.name for p in folder.iterdir())

    assert main(["close", "--release", "1.4.0", "--config", str(config)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out == ["Refused: v1.4.0 is not Live: rolled back at 100% (breach:api_p95_ms)"]
    assert _remote_tag(settings["process"]["git"]["repo"], "v1.4.0") == ""
    assert subprocess.run(["git", "-C", settings["process"]["git"]["repo"], "rev-parse", "-q", "--verify", "refs/tags/v1.4.0"],
                          capture_output=True).returncode != 0  # nothing tagged, here or there
    assert github.calls == []  # no pull request touched, not even read
    assert sorted(p.name for p in folder.iterdir()) == before


def test_close_refuses_a_release_without_evidence_and_one_whose_evidence_was_altered(
        sandbox, signing_key, tmp_path):
    from flows.closing import closing
    from golive.settings import load_settings

    settings = flow_settings(sandbox, signing_key, tmp_path, [100])
    cfg = load_settings(settings)
    state = closing(cfg, return_state=True)
    assert (state.type.value, state.name) == ("FAILED", "Refused")
    assert state.message == "v1.4.0 is not Live: no stage records: the go-live never moved traffic"

    folder = _ended(settings, signing_key)
    record = json.loads((folder / layout.stage_record(100)).read_text())
    (folder / layout.stage_record(100)).write_text(json.dumps({**record, "note": "edited after the seal"}))
    state = closing(cfg, return_state=True)
    assert state.name == "Refused"
    assert state.message.startswith("v1.4.0 is not Live: its evidence does not verify: stage_100.json: changed")
    assert _remote_tag(settings["process"]["git"]["repo"], "v1.4.0") == ""


def test_a_genuine_go_live_is_closed_right_after_its_seal(sandbox, canary_weight, signing_key, tmp_path):
    from flows.go_live import go_live

    settings = flow_settings(sandbox, signing_key, tmp_path, [100])
    state = go_live("1.4.0", settings=settings, return_state=True)
    assert state.name == "Live", state.message
    assert "closing partial" not in state.message
    closed = EvidenceLedger(tmp_path / "v1.4.0").read_json(layout.closing())
    assert closed["problems"] == [] and closed["tag"]["done"] == "tagged and pushed"
    assert _remote_tag(settings["process"]["git"]["repo"], "v1.4.0").startswith("tag Canary successful")


def test_a_first_night_without_data_is_nodata_never_green_and_ends_held(sandbox, signing_key, tmp_path):
    from flows.first_night import first_night

    # A track no series has: Prometheus answers every query with an empty vector.
    settings = flow_settings(sandbox, signing_key, tmp_path, [100], process={"first_night": {"track": "ghost"}})
    state = first_night("1.4.0", settings=settings, hours=3, hour_seconds=4, return_state=True)

    assert (state.type.value, state.name) == ("FAILED", "Held")
    assert state.message == "3 hours without data: the first night cannot vouch for v1.4.0"
    folder = tmp_path / "v1.4.0"
    hours = _hours(folder)
    assert [h["status"] for h in hours] == ["nodata"] * 3
    assert all(h["burn"]["1"] is None and h["counts"]["1"] is None and h["budget_remaining"] is None for h in hours)
    assert "war_room" not in hours[0]
    assert hours[1]["war_room"].startswith("2 hours without data (hours 1–2): the first night cannot vouch for v1.4.0")
    assert hours[2]["war_room"].startswith("3 hours without data (hours 1–3)")
    report = (folder / layout.first_night_report("1.4.0")).read_text()
    assert "## War room" in report and f"| 2 | {hours[1]['war_room']} |" in report
    assert "green" not in report.split("## War room")[0].split("|---|---|")[-1]  # no hour row says green


def test_flight_check_waits_for_no_one_while_a_go_live_holds_the_target(sandbox, signing_key, tmp_path, capsys):
    from cli.main import main
    from golive.settings import load_settings
    from tasks.prefect_api import go_live_lock

    settings = flow_settings(sandbox, signing_key, tmp_path, [100])
    config = tmp_path / "golive.yaml"
    config.write_text(yaml.safe_dump(settings))
    cfg = load_settings(settings)
    folder = tmp_path / "v1.4.0"
    EvidenceLedger(folder).write_json(layout.stage_record(1), {"stage": 1})  # the running go-live's evidence
    with go_live_lock(cfg.target.router.target, "1.4.0"):
        assert main(["flight-check", "--release", "1.4.0", "--config", str(config)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith(f"NO-GO: v1.4.0: the traffic target {cfg.target.router.target} is already "
                                               f"being moved by")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("v1.4.0")) == ["v1.4.0"]  # not set aside
    assert sorted(p.name for p in folder.iterdir()) == [layout.stage_record(1)]  # nothing written

