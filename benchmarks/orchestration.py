"""Time to rollback and orchestration overhead, on the real sandbox.

    python benchmarks/orchestration.py [--rollbacks 3] [--write]

- **fault → weight 0**: a canary fault (400 ms of latency) is switched on when stage 25 % begins;
  the seconds from switching it on to the router serving weight 0, and from the end of the
  interval that breached to weight 0 (the rollback record's own figure).
- **zero-dwell go-live**: five stages of one 2-second interval each (the judge's minimums set to
  one interval; two seconds is the shortest window that still verifies the traffic split), so that the wall time is almost all orchestration: Prefect flow and task runs,
  Prometheus queries, router reloads, evidence. Its flight check (with a one-second blast-radius
  drill and the SBOM) is timed on its own too, from its record.

Every go-live gets a release repository and the signing key of the benchmark's own.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cli.prefect_env import configure_prefect  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from readme_section import write_section  # noqa: E402

from golive import layout  # noqa: E402


def _go_live(settings: dict, work: Path):
    from flows.go_live import go_live
    from sandbox.release_repo import create_release_repo

    repo = create_release_repo(work / "source", "1.4.0", "1.3.2")  # a Live go-live tags it
    settings = {**settings, "git": {"repo": str(repo)}, "signing": {"key_path": str(work.parent / "key.pem")},
                "blast_radius_seconds": 1}
    return go_live(settings["release"], settings=settings, return_state=True)


def time_to_rollback(sandbox, evidence_root: Path) -> tuple[float, float]:
    from cli.demo import demo_settings

    settings = {**demo_settings("1.4.0", sandbox.golive_settings(), 15, 5, str(evidence_root)), "stages": [25, 100]}
    folder = evidence_root / "v1.4.0"
    injected: dict[str, float] = {}

    def inject() -> None:
        while not (folder / layout.weight_set(25)).exists():
            time.sleep(0.05)
        sandbox.set_faults("canary", {"latency_ms": 400})
        injected["at"] = time.time()

    thread = threading.Thread(target=inject, daemon=True)
    thread.start()
    try:
        state = _go_live(settings, evidence_root)
    finally:
        thread.join(timeout=30)
        sandbox.clear_faults("canary")
    assert state.name == "RolledBack", state
    text = next(folder.glob(layout.ROLLBACKS)).read_text()
    from_breach = float(re.search(r"to weight 0: ([\d.]+)", text).group(1))
    record = json.loads((folder / layout.stage_record(25)).read_text())
    weight_zero_at = record["decisions"][-1]["at"] + from_breach
    return weight_zero_at - injected["at"], from_breach


def zero_dwell_wall_time(sandbox, evidence_root: Path) -> tuple[float, float]:
    settings = {
        "release": "1.4.0", **sandbox.golive_settings(), "evidence_root": str(evidence_root),
        "dwell_seconds": 2, "final_dwell_seconds": 2, "interval_seconds": 2, "hold_seconds": 2,
        "hold_budget_seconds": 6, "judge": {"min_seconds": 0, "min_intervals": 1, "min_requests": 1,
                                             "min_keyed_requests": 1, "relative_tolerance": 10},
    }
    started = time.perf_counter()
    state = _go_live(settings, evidence_root)
    assert (evidence_root / "v1.4.0" / layout.stage_record(100)).exists(), state  # all five stages ran
    flight_check = json.loads((evidence_root / "v1.4.0" / layout.FLIGHT_CHECK).read_text())["elapsed_seconds"]
    return time.perf_counter() - started, flight_check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollbacks", type=int, default=3)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="golive-bench-"))
    configure_prefect(work / "prefect")
    from flows.canary_stage import SCRAPE_SETTLE_SECONDS
    from sandbox.control import Sandbox

    from golive.signals import readiness_queries
    from golive.signing import generate_key

    generate_key(work, "key")
    sandbox = Sandbox.up(work / "sandbox", free_ports=True, probe_rate=5, owner_pid=os.getpid(),
                         ready_queries=readiness_queries())
    try:
        zero_dwell_wall_time(sandbox, work / "warmup")  # Prefect's temporary server starts here, untimed
        walls = []
        for i in range(3):
            sandbox.set_weight(0)
            walls.append(zero_dwell_wall_time(sandbox, work / f"zero{i}"))
        rollbacks = []
        for i in range(args.rollbacks):
            sandbox.set_weight(0)
            rollbacks.append(time_to_rollback(sandbox, work / f"rollback{i}"))
    finally:
        sandbox.down()
    injected = [r[0] for r in rollbacks]
    breach = [r[1] for r in rollbacks]
    rows = [
        "| measure | median | max | runs |",
        "|---|---|---|---|",
        f"| fault switched on → weight 0 (s) | {statistics.median(injected):.1f} | {max(injected):.1f} | {len(injected)} |",
        f"| end of the breaching interval → weight 0 (s) | {statistics.median(breach):.1f} | {max(breach):.1f} | {len(breach)} |",
        f"| zero-dwell five-stage go-live, wall time (s) | {statistics.median(w for w, _ in walls):.1f} | "
        f"{max(w for w, _ in walls):.1f} | {len(walls)} |",
        f"| … of which the flight check, 1-s drill and SBOM included (s) | {statistics.median(f for _, f in walls):.1f} | "
        f"{max(f for _, f in walls):.1f} | {len(walls)} |",
        f"| … of which waiting for the five 2-s intervals and Prometheus' scrape (s) | "
        f"{5 * (2 + SCRAPE_SETTLE_SECONDS):.1f} | – | – |",
    ]
    table = "\n".join(rows)
    print(table)
    if args.write:
        write_section("orchestration", table)


if __name__ == "__main__":
    main()
