"""One writer, on the real sandbox: a go-live process frozen mid-stage (SIGSTOP, as a VM pause or
a stop-the-world GC looks from outside) and rolled back while frozen never moves the weight
again when it wakes; it ends Superseded, and its folder verifies with records that agree. A late
rollback meant for an old run leaves a newer go-live alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from cli.main import main
from golive import layout
from golive.fencing import FenceHolder
from golive.signing import load_public_key
from golive.stage import SHADOW_STAGE
from golive.verify import verify_folder
from tasks.sandbox_router import SandboxRouter
from tests.flows.helpers import flow_settings

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]


class WeightWatch:
    """The highest weight the router served while it ran (read every 50 ms from nginx's workers)."""

    def __init__(self, sandbox):
        self.sandbox, self.highest, self._stop = sandbox, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.highest = max(self.highest, self.sandbox.weight())
            time.sleep(0.05)

    def __enter__(self) -> WeightWatch:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(5)


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(0.2)


def test_a_go_live_frozen_at_5_and_rolled_back_wakes_superseded_and_moves_nothing(
        sandbox, canary_weight, signing_key, tmp_path):
    settings = flow_settings(sandbox, signing_key, tmp_path / "evidence", [5, 25, 100], interval=2.0,
                             policy={"dwell_seconds": 60, "final_dwell_seconds": 60})
    settings.pop("release")
    config = tmp_path / "golive.yaml"
    config.write_text(yaml.safe_dump(settings))
    folder = tmp_path / "evidence" / "v1.4.0"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")  # the go-live's own temporary Prefect server
    go_live = subprocess.Popen([sys.executable, "-m", "cli.main", "go-live", "--release", "1.4.0", "--config",
                                str(config)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        _wait_for(lambda: (folder / layout.weight_set(5)).exists() or go_live.poll() is not None, 240,
                  "the go-live at 5 %")
        assert sandbox.weight() == 5, "".join(go_live.communicate(timeout=30))[-3000:]
        os.kill(go_live.pid, signal.SIGSTOP)
        assert main(["rollback", "--release", "1.4.0", "--reason", "the go-live froze at 5 %", "--stage", "5",
                     "--config", str(config)]) == 0
        assert sandbox.weight() == 0
        with WeightWatch(sandbox) as watch:
            os.kill(go_live.pid, signal.SIGCONT)
            output, logs = go_live.communicate(timeout=180)
        assert watch.highest == 0, "the woken go-live moved the weight"
    finally:
        if go_live.poll() is None:
            os.kill(go_live.pid, signal.SIGCONT)
            go_live.kill()
            go_live.wait()

    assert go_live.returncode == 1, (output + logs)[-3000:]
    ending = [line for line in output.splitlines() if line.startswith(("Live:", "Superseded:", "RolledBack:"))]
    assert ending and ending[-1].startswith("Superseded: fenced off at 5%: generation"), output[-3000:]
    stage = json.loads((folder / layout.stage_record(5)).read_text())
    assert stage["outcome"] == "superseded" and "rollback v1.4.0 (golive rollback" in stage["superseded_by"]
    assert not (folder / layout.stage_record(25)).exists() and not (folder / layout.git_tag()).exists()
    rows = json.loads((folder / layout.WAR_ROOM_JSON).read_text())
    assert [r["Decision"] for r in rows][-2:] == ["Rollback", "Superseded"]
    assert "rollback=1 (superseded at 5%)" in (folder / layout.RELEASE_ONELINER).read_text()
    criteria = json.loads((folder / layout.SUCCESS_CRITERIA).read_text())
    assert criteria["no_rollback"]["ok"] is False
    report = verify_folder(folder, load_public_key(Path(signing_key["public_key_path"]).read_bytes()))
    assert report.problems == []


def test_a_late_rollback_for_an_old_run_leaves_a_newer_go_live_alone(sandbox, canary_weight, signing_key, tmp_path):
    from flows.rollback import rollback
    from golive.settings import load_settings

    settings = load_settings(flow_settings(sandbox, signing_key, tmp_path, [5, 100]))
    router = SandboxRouter(sandbox.control_url)
    newer = router.take_generation(FenceHolder(kind="go-live", name="go-live v1.4.0", run="the-newer-run"))
    router.set_weight(5, newer.generation)

    report = rollback(reason="go-live run 'old' ended Crashed", release="1.4.0", settings=settings,
                      triggered_by="crashed", triggers=["crashed"], crashed_run="prefect.flow-run.the-old-run")

    assert report.outcome == "LeftAlone" and "a newer go-live holds the traffic target" in report.left_alone
    assert sandbox.weight() == 5 and router.read().fence.generation == newer.generation
    folder = tmp_path / "v1.4.0"
    assert list(folder.glob(layout.ROLLBACKS)) == []  # not a rollback of the release: nothing to contradict
    (late,) = folder.glob("late_rollback_*.txt")
    assert "outcome:        LeftAlone (a newer go-live holds the traffic target" in late.read_text()


def test_golive_rollback_still_rolls_back_when_the_prefect_server_does_not_answer(sandbox, canary_weight,
                                                                                  signing_key, tmp_path):
    import socket

    canary_weight(25)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens there once closed
    config = tmp_path / "golive.yaml"
    config.write_text(yaml.safe_dump({**sandbox.golive_settings(), "process": {
        "evidence_root": str(tmp_path / "evidence"), "signing": signing_key}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_API_URL=f"http://127.0.0.1:{port}/api")
    done = subprocess.run([sys.executable, "-m", "cli.main", "rollback", "--release", "1.4.0", "--reason", "server down",
                           "--config", str(config)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert sandbox.weight() == 0
    assert "the flow could not start" in done.stdout + done.stderr
    (record,) = (tmp_path / "evidence" / "v1.4.0").glob(layout.ROLLBACKS)
    assert "outcome:        RolledBack" in record.read_text()
    assert verify_folder(record.parent, load_public_key(Path(signing_key["public_key_path"]).read_bytes())).ok


def test_golive_rollback_with_no_server_configured_moves_the_traffic_without_a_prefect_run(
        sandbox, canary_weight, signing_key, tmp_path):
    """Prefect would start a temporary server for the rollback's run first, and stop it with the
    command: the traffic does not wait for it."""
    canary_weight(25)
    config = tmp_path / "golive.yaml"
    config.write_text(yaml.safe_dump({**sandbox.golive_settings(), "process": {
        "evidence_root": str(tmp_path / "evidence"), "signing": signing_key}}))
    done = subprocess.run([sys.executable, "-m", "cli.main", "rollback", "--release", "1.4.0", "--reason", "by hand",
                           "--config", str(config)], cwd=ROOT, env=_serverless_env(tmp_path), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert sandbox.weight() == 0
    assert "the flow could not start" not in done.stdout + done.stderr  # not the fallback of a failed run
    (record,) = (tmp_path / "evidence" / "v1.4.0").glob(layout.ROLLBACKS)
    text = record.read_text()
    assert "outcome:        RolledBack" in text
    fence = next(line for line in text.splitlines() if line.startswith("fence:"))
    assert "golive rollback" in fence and "flow run" not in fence, fence
    assert verify_folder(record.parent, load_public_key(Path(signing_key["public_key_path"]).read_bytes())).ok


def _serverless_env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PYTHONPATH=str(ROOT))
    return env


def _harness_env(tmp_path: Path) -> dict:
    from prefect.settings import get_current_settings

    return {**_serverless_env(tmp_path), "PREFECT_API_URL": str(get_current_settings().api.url)}


def test_ctrl_c_in_golive_demo_rolls_back_first_and_records_it(tmp_path):
    folder = tmp_path / "evidence" / "v1.4.0"
    demo = subprocess.Popen([sys.executable, "-m", "cli.main", "demo", "--evidence-root", str(tmp_path / "evidence"),
                             "--stage-seconds", "30", "--interval", "5"], cwd=tmp_path, env=_serverless_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        # The demo's first stage is the shadow stage: the canary answers users' copies from then on.
        _wait_for(lambda: (folder / layout.weight_set(SHADOW_STAGE)).exists() or demo.poll() is not None, 300,
                  "the demo's shadow stage")
        os.killpg(demo.pid, signal.SIGINT)  # as a terminal sends it: to the demo and its temporary Prefect server
        try:
            output, _ = demo.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            pytest.fail("the demo did not end within 120 s of Ctrl-C:\n" + demo.communicate()[0][-4000:])
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    assert demo.returncode == 130, output[-3000:]
    assert "interrupted: rolling back first" in output
    assert "Traceback" not in output, output[-3000:]  # the Prefect server the rollback needs outlived the Ctrl-C
    (record,) = folder.glob(layout.ROLLBACKS)
    text = record.read_text()
    assert "outcome:        RolledBack" in text and "triggers:       cancelled" in text
    assert "reason:         interrupted (Ctrl-C)" in text
    assert (folder / layout.stage_record(SHADOW_STAGE)).exists(), output[-4000:]
    stage = json.loads((folder / layout.stage_record(SHADOW_STAGE)).read_text())  # it saw the fence and stopped
    assert stage["outcome"] == "superseded"
    public = load_public_key((tmp_path / ".golive" / "keys" / "signing_key.pub.pem").read_bytes())
    assert verify_folder(folder, public).problems == []


def test_a_go_live_killed_with_sigkill_leaves_locks_the_next_run_takes_over_and_records(
        sandbox, canary_weight, signing_key, tmp_path):
    settings = flow_settings(sandbox, signing_key, tmp_path / "evidence", [100], interval=2.0)
    settings.pop("release")
    config = tmp_path / "golive.yaml"
    config.write_text(yaml.safe_dump(settings))
    folder = tmp_path / "evidence" / "v1.4.0"
    command = [sys.executable, "-m", "cli.main", "go-live", "--release", "1.4.0", "--config", str(config)]
    env = _harness_env(tmp_path)  # the locks live on the server both runs use, as on a shared one
    first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        # Its locks are taken before its flight check writes anything.
        _wait_for(lambda: any(folder.glob("preflight_*.json")) or first.poll() is not None, 240, "the flight check")
        os.kill(first.pid, signal.SIGKILL)  # the process alone, as the kernel's OOM killer would
        first.wait()
        second = subprocess.run([*command, "--recover"], cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert second.returncode == 0, (second.stdout + second.stderr)[-3000:]
    run = json.loads((folder / layout.GO_LIVE_RUN).read_text())
    assert sorted(t["lock"] for t in run["lock_takeovers"]) == ["go-live-release-1-4-0",
                                                                "go-live-target-" + _target_key(sandbox)]
    assert all(t["why"] == f"its process {first.pid} on {os.uname().nodename} is gone" for t in run["lock_takeovers"])
    assert sandbox.weight() == 100


def _target_key(sandbox) -> str:
    from tasks.prefect_api import lock_name

    return lock_name("target", f"sandbox {sandbox.control_url}").removeprefix("go-live-target-")
