"""Alerts that act at once: seconds from a fault on the canary to weight 0, with the runbook's
one-minute judging interval, without and with golive's Alertmanager webhook.

    .venv/bin/python benchmarks/alert_rollback.py [--runs 1] [--interval 60] [--write-readme]

Each run is a real go-live of 1.4.0 on a sandbox of its own (stages 25 → 100 %, judged every
`--interval` seconds). golive's critical alert for API latency is loaded into the sandbox's
Prometheus (10-second window, firing after 2 s), and the judge is told to look away from latency
(threshold 5 s), so only the alert can stop the canary: the fault (600 ms of added latency) is
switched on 5 s into stage 25, after the stage's first look.

- **today**: the stage reads the critical alerts at its next look, up to one interval later.
- **webhook**: the sandbox's Alertmanager is pointed at `golive alert-webhook` (its config
  rewritten with a `webhook_configs` receiver and reloaded: the sandbox's own notifies no one),
  which rolls the go-live back by its generation as soon as Alertmanager notifies.

The seconds are from the fault switched on to weight 0 read at the router (polled every 0.2 s);
the rollback records are counted, to show the stage did not roll back a second time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from readme_section import write_section  # noqa: E402

FAULT_AFTER_STAGE_START = 5.0


TOKEN = "benchmark-webhook-token"


def _webhook_config(url: str, token_file: Path) -> str:
    return ("route:\n  receiver: golive\n  group_by: [alertname, service, track]\n"
            "  group_wait: 1s\n  group_interval: 5s\n  repeat_interval: 1m\n"
            f"receivers:\n  - name: golive\n    webhook_configs:\n      - url: {url}\n        send_resolved: false\n"
            f"        http_config:\n          authorization:\n            credentials_file: {token_file}\n")


def one_run(mode: str, interval: float, work: Path) -> dict:
    from cli.alert_webhook import AlertReceiver
    from flows.go_live import go_live
    from golive import layout
    from golive.rules import build_rules, options_for, render_rules
    from golive.settings import load_settings, merge_settings
    from golive.signals import readiness_queries
    from golive.signing import generate_key
    from sandbox.control import Sandbox
    from sandbox.release_repo import create_release_repo
    from tasks.router import read_weight

    sandbox = Sandbox.up(work / "sandbox", free_ports=True, owner_pid=os.getpid(), seed=7, rate=50, probe_rate=5,
                         timeout=60, ready_queries=readiness_queries())
    receiver = None
    try:
        key, public = generate_key(work / "keys")
        repo = create_release_repo(work / "source", "1.4.0", "1.3.2")
        settings = merge_settings(sandbox.golive_settings(), {
            "release": "1.4.0",
            "policy": {"stages": [25, 100], "interval_seconds": interval, "dwell_seconds": 6 * interval,
                       "final_dwell_seconds": 6 * interval, "hold_seconds": 6 * interval,
                       "signals": {"api_p95_ms": {"threshold": 5000}}},
            "process": {"evidence_root": str(work / "evidence"), "blast_radius_seconds": 5,
                        "signing": {"key_path": str(key), "public_key_path": str(public)},
                        "git": {"repo": str(repo), "remote": "origin"}},
        })
        cfg = load_settings(settings)
        # The alert keeps the catalogue's latency threshold (200 ms, far over at 400 ms): only the judge looks away.
        shipped = load_settings({**sandbox.golive_settings(), "release": "1.4.0"})
        latency = tuple(s for s in shipped.policy.catalogue() if s.name == "api_p95_ms")
        rules = work / "golive-rules.yml"
        rules.write_text(render_rules(build_rules(latency, options_for(shipped, window_seconds=10,
                                                                       alert_for_seconds=2, burn_windows=()))))
        sandbox.load_rules(rules)
        if mode == "webhook":
            receiver = AlertReceiver(settings, token=TOKEN).start()
            token_file = work / "webhook-token"
            token_file.write_text(TOKEN)
            config = _webhook_config(receiver.url, token_file)
            (sandbox.workdir / "alertmanager" / "alertmanager.yml").write_text(config)
            httpx.post(f"{sandbox.alertmanager_url}/-/reload", timeout=10).raise_for_status()

        folder = Path(cfg.evidence_dir)
        marks: dict[str, float] = {}

        def fault_then_watch() -> None:
            while not (folder / layout.weight_set(25)).exists():
                time.sleep(0.1)
            time.sleep(FAULT_AFTER_STAGE_START)
            sandbox.set_faults("canary", {"latency_ms": 600})
            marks["fault"] = time.time()
            while read_weight.fn(cfg.target.router).in_force != 0:
                time.sleep(0.2)
            marks["zero"] = time.time()

        watcher = threading.Thread(target=fault_then_watch, daemon=True)
        watcher.start()
        state = go_live("1.4.0", settings=settings, return_state=True)
        watcher.join(timeout=30)
        seconds = marks["zero"] - marks["fault"] if {"fault", "zero"} <= set(marks) else None
        return {"mode": mode, "ending": state.name, "seconds": seconds,
                "rollbacks": len(list(folder.glob(layout.ROLLBACKS))),
                "webhook": receiver.outcomes if receiver else None}
    finally:
        if receiver:
            receiver.stop()
        sandbox.down()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1, help="runs of each mode")
    parser.add_argument("--interval", type=float, default=60.0, help="the stage's judging interval, seconds")
    parser.add_argument("--modes", default="today,webhook")
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    from cli.prefect_env import configure_prefect, use_a_server_of_its_own

    home = Path(tempfile.mkdtemp(prefix="golive-bench-prefect-"))
    configure_prefect(home)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    use_a_server_of_its_own()
    results = []
    try:
        for mode in args.modes.split(","):
            for i in range(args.runs):
                work = Path(tempfile.mkdtemp(prefix=f"golive-bench-alert-{mode}-"))
                try:
                    result = one_run(mode, args.interval, work)
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                results.append(result)
                shown = "–" if result["seconds"] is None else f"{result['seconds']:.1f} s"
                print(f"{mode} run {i + 1}: fault → weight 0 in {shown}; go-live ended {result['ending']}; "
                      f"{result['rollbacks']} rollback record(s); webhook: {result['webhook']}", flush=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    lines = [f"judging interval {args.interval:g} s; {args.runs} run(s) per mode", "",
             "| mode | fault → weight 0 (median) | max | go-live ended | rollback records per run |",
             "|---|---:|---:|---|---:|"]
    for mode in args.modes.split(","):
        mine = [r for r in results if r["mode"] == mode]
        seconds = [r["seconds"] for r in mine if r["seconds"] is not None]
        median = f"{statistics.median(seconds):.1f} s" if seconds else "–"
        most = f"{max(seconds):.1f} s" if seconds else "–"
        endings = ", ".join(sorted({r["ending"] for r in mine}))
        lines.append(f"| {mode} | {median} | {most} | {endings} | {max(r['rollbacks'] for r in mine)} |")
    print("\n".join(lines))
    if args.write_readme:
        write_section("alert-rollback", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
