"""The README's picture of the dashboard: its panels drawn from a real go-live on the sandbox.

    python benchmarks/dashboard_picture.py [--out deploy/grafana/golive-spark-panels.png]

One sandbox (its own folder, free loopback ports, stopped at the end whatever happens) with
golive's recording rules loaded, and a temporary Prefect server. A go-live of the demo release
runs shadow → 1 % → 25 % → 100 % (30-s stages judged every 5 s); when 25 % begins the canary
gets 300 ms of added latency, and the go-live rolls back by itself. Then the dashboard of the sandbox's
settings is drawn from its Prometheus with the dashboard's own queries over the go-live's
minutes (`golive dashboard --png`): the shadow row shows what the shadow stage pushed while the
mirror was on, the signals the 1 % and 25 % stages and the rollback.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STAGE_SECONDS, INTERVAL = 30.0, 5.0
FAULT = {"latency_ms": "300"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "deploy" / "grafana" / "golive-spark-panels.png")
    args = parser.parse_args()

    from cli.prefect_env import configure_prefect, use_a_server_of_its_own

    scratch = Path(tempfile.mkdtemp(prefix="golive-dashboard-picture-"))
    # Registered before the temporary Prefect server starts, so removed after it stops.
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    configure_prefect(scratch / "prefect")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    use_a_server_of_its_own()

    from cli.demo import demo_settings
    from cli.observability_commands import render_png
    from golive import layout
    from golive.dashboard import dashboard_for
    from golive.rules import build_rules, options_for, render_rules
    from golive.settings import load_settings, merge_settings
    from golive.signals import readiness_queries
    from golive.signing import generate_key
    from sandbox.control import Sandbox
    from sandbox.release_repo import create_release_repo

    sandbox = Sandbox.up(scratch / "sandbox", release="1.4.0", probe_rate=5, free_ports=True, owner_pid=os.getpid(),
                         ready_queries=readiness_queries())
    try:
        evidence_root = scratch / "evidence"
        repo = create_release_repo(scratch / "source", "1.4.0", "1.3.2")
        private_path, public_path = generate_key(scratch / "keys")
        settings = merge_settings(demo_settings("1.4.0", sandbox.golive_settings(), STAGE_SECONDS, INTERVAL,
                                                str(evidence_root)),
                                  {"policy": {"stages": [1, 25, 100]},
                                   "process": {"signing": {"key_path": str(private_path),
                                                           "public_key_path": str(public_path)},
                                               "git": {"repo": str(repo), "remote": "origin"}}})
        cfg = load_settings(settings)
        rules = scratch / "rules.yml"
        rules.write_text(render_rules(build_rules(cfg.policy.catalogue(), options_for(cfg))))
        sandbox.load_rules(rules)

        folder = evidence_root / "v1.4.0"
        started = time.time()
        fault_on = threading.Event()

        def fault_at_25() -> None:
            while not fault_on.is_set():
                if (folder / layout.weight_set(25)).exists():
                    sandbox.set_faults("canary", FAULT)
                    print("25 % began: the canary has 300 ms of added latency")
                    return
                time.sleep(0.2)

        watcher = threading.Thread(target=fault_at_25, daemon=True)
        watcher.start()
        from flows.go_live import go_live

        state = go_live("1.4.0", settings=settings, return_state=True)
        fault_on.set()
        print(f"go-live: {state.name}: {state.message}")
        time.sleep(2 * INTERVAL)  # the rollback's last samples scraped and recorded
        minutes = (time.time() - started) / 60 + 0.5
        render_png(dashboard_for(cfg).build(), sandbox.prometheus_url, args.out, cfg.target.service, minutes=minutes)
        print(f"the panels over the last {minutes:.1f} minutes: {args.out}")
        return 0 if state.name == "RolledBack" else 1
    finally:
        sandbox.down()


if __name__ == "__main__":
    sys.exit(main())
