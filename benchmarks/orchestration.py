"""Time to rollback and orchestration overhead, on the real sandbox.

    python benchmarks/orchestration.py [--rollbacks 3] [--write]

- **fault → weight 0**: a canary fault (400 ms of latency) is switched on when stage 25 % begins;
  the seconds from switching it on to the router serving weight 0, and from the end of the
  interval that breached to weight 0 (the rollback record's own figure).
- **zero-dwell go-live**: five stages of one 2-second interval each (the judge's minimums set to
  one interval; two seconds is the shortest window that still verifies the traffic split), so that the wall time is almost all orchestration: Prefect flow and task runs,
  Prometheus queries, router reloads, evidence. Its flight check (with a one-second blast-radius
  drill and the SBOM) is timed on its own too, from its record.

- **process killed / cancel / machine lost → weight 0**: under a real Prefect server and process
  worker (`golive server up`, `prefect deploy`), a go-live deployment run at 25 % is killed with
  SIGKILL, cancelled through the API, or killed together with its worker (a lost machine: only
  the missing heartbeats tell); the seconds from then to the router serving weight 0.

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
from golive import layout  # noqa: E402
from golive.settings import merge_settings  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from readme_section import read_section, write_section  # noqa: E402



def _go_live(settings: dict, work: Path):
    from flows.go_live import go_live
    from sandbox.release_repo import create_release_repo

    repo = create_release_repo(work / "source", "1.4.0", "1.3.2")  # a Live go-live tags it
    settings = merge_settings(settings, {"process": {"git": {"repo": str(repo)}, "blast_radius_seconds": 1,
                                                     "signing": {"key_path": str(work.parent / "key.pem")}}})
    return go_live(settings["release"], settings=settings, return_state=True)


def time_to_rollback(sandbox, evidence_root: Path) -> tuple[float, float]:
    from cli.demo import demo_settings

    settings = merge_settings(demo_settings("1.4.0", sandbox.golive_settings(), 15, 5, str(evidence_root)),
                              {"policy": {"stages": [25, 100]}})
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
    settings = merge_settings(sandbox.golive_settings(), {
        "release": "1.4.0", "process": {"evidence_root": str(evidence_root)},
        "policy": {"dwell_seconds": 2, "final_dwell_seconds": 2, "interval_seconds": 2, "hold_seconds": 2,
                   "hold_budget_seconds": 6, "judge": {"min_seconds": 0, "min_intervals": 1, "min_requests": 1,
                                                       "min_keyed_requests": 1, "relative_tolerance": 10}},
    })
    started = time.perf_counter()
    state = _go_live(settings, evidence_root)
    assert (evidence_root / "v1.4.0" / layout.stage_record(100)).exists(), state  # all five stages ran
    flight_check = json.loads((evidence_root / "v1.4.0" / layout.FLIGHT_CHECK).read_text())["elapsed_seconds"]
    return time.perf_counter() - started, flight_check


# What is timed is the ending, not the judge: a loaded machine's latency must not end the go-live first.
LATENCY_UNJUDGED = {name: {"threshold": 5000} for name in ("api_p95_ms", "event_loop_p95_ms", "gc_pause_avg_ms")}
ENDINGS = {"kill": "process killed → weight 0 (s)", "cancel": "cancel → weight 0 (s)",
           "lost": "process and worker killed (machine lost) → weight 0 (s)"}


def _deployed_stack(work: Path) -> tuple[object, dict]:
    import subprocess

    from cli.stack import Stack
    from sandbox.processes import free_ports

    stack = Stack(work / "stack")
    api_url = stack.up(free_ports(1)[0], tie_to_parent=True, say=lambda _m: None)
    env = {**stack.env(api_url), "PWD": str(ROOT)}
    subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"], env=env, cwd=ROOT,
                   check=True, capture_output=True, timeout=300)
    return stack, env


def safety_net_time(sandbox, stack, env: dict, work: Path, ending: str) -> float:
    """Seconds from ending a go-live deployment run at 25 % to weight 0: `kill` (SIGKILL to its
    process), `cancel` (through the API) or `lost` (its process and its worker killed, as when a
    machine is lost; another worker is started at once)."""
    import contextlib
    import signal
    import subprocess

    import yaml
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Cancelling

    from cli.demo import demo_settings
    from sandbox.release_repo import create_release_repo

    release = "1.4.0"  # the version the sandbox's canary serves
    settings = demo_settings(release, sandbox.golive_settings(), 600, 4, str(work / "evidence"))
    repo = create_release_repo(work / "source", release, "1.3.2")
    settings = merge_settings(settings, {
        "policy": {"stages": [25, 100], "signals": LATENCY_UNJUDGED},
        "process": {"blast_radius_seconds": 1, "git": {"repo": str(repo)},
                    "signing": {"key_path": str(work.parent / "key.pem"), "sigstore": "off"}}})
    settings.pop("release")
    config = work / "golive.yaml"
    config.write_text(yaml.safe_dump(settings))
    params = json.dumps({"release": release, "config": str(config), "blocks": None})
    out = subprocess.run([sys.executable, "-m", "prefect", "deployment", "run", "go-live/v1.4.0", "--params", params],
                         env=env, cwd=ROOT, check=True, capture_output=True, text=True, timeout=120).stdout
    run_id = re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", out).group()
    with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}), get_client(sync_client=True) as client:
        deadline = time.monotonic() + 300
        while sandbox.weight() != 25:
            state = client.read_flow_run(run_id).state
            assert time.monotonic() < deadline and not state.is_final(), f"go-live {run_id} never reached 25 %: {state}"
            time.sleep(0.3)
        pid = int(str(client.read_flow_run(run_id).infrastructure_pid).rsplit(":", 1)[-1])
        if ending == "cancel":
            client.set_flow_run_state(run_id, Cancelling(), force=True)
        else:
            if ending == "lost":  # the worker first, so that nobody sees the run's process exit
                os.killpg(stack.state()["processes"]["worker"]["pid"], signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        ended = time.monotonic()
        if ending == "lost":
            stack.start_worker(tie_to_parent=True)
        while sandbox.weight() != 0:
            assert time.monotonic() - ended < 600, f"weight still {sandbox.weight()} after the {ending}"
            time.sleep(0.2)
        seconds = time.monotonic() - ended
        for limit in client.read_global_concurrency_limits(limit=200):  # a killed run's leases outlive it
            if limit.name.startswith("go-live-"):
                client.delete_global_concurrency_limit_by_name(limit.name)
    time.sleep(20)  # the trigger's rollback finishes before the next go-live
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollbacks", type=int, default=3)
    parser.add_argument("--endings", type=int, default=3, help="kills and cancels under a real Prefect server")
    parser.add_argument("--endings-only", action="store_true",
                        help="measure only the endings; --write then replaces only their rows")
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
    walls, rollbacks = [], []
    endings: dict[str, list[float]] = {"kill": [], "cancel": [], "lost": []}
    try:
        if not args.endings_only:
            zero_dwell_wall_time(sandbox, work / "warmup")  # Prefect's temporary server starts here, untimed
            for i in range(3):
                sandbox.set_weight(0)
                walls.append(zero_dwell_wall_time(sandbox, work / f"zero{i}"))
            for i in range(args.rollbacks):
                sandbox.set_weight(0)
                rollbacks.append(time_to_rollback(sandbox, work / f"rollback{i}"))
        if args.endings:
            sandbox.set_weight(0)
            stack, env = _deployed_stack(work)
            try:
                for i in range(args.endings):
                    for ending, times in endings.items():
                        times.append(safety_net_time(sandbox, stack, env, work / f"{ending}{i}", ending))
            finally:
                stack.down()
    finally:
        sandbox.down()
    if args.endings_only:
        rows = [row for row in read_section("orchestration").splitlines()
                if not any(row.startswith(f"| {label} |") for label in ENDINGS.values())]
    else:
        injected = [r[0] for r in rollbacks]
        breach = [r[1] for r in rollbacks]
        rows = [
            "| measure | median | max | runs |",
            "|---|---|---|---|",
            f"| fault switched on → weight 0 (s) | {statistics.median(injected):.1f} | {max(injected):.1f} | "
            f"{len(injected)} |",
            f"| end of the breaching interval → weight 0 (s) | {statistics.median(breach):.1f} | {max(breach):.1f} | "
            f"{len(breach)} |",
            f"| zero-dwell five-stage go-live, wall time (s) | {statistics.median(w for w, _ in walls):.1f} | "
            f"{max(w for w, _ in walls):.1f} | {len(walls)} |",
            f"| … of which the flight check, 1-s drill and SBOM included (s) | "
            f"{statistics.median(f for _, f in walls):.1f} | {max(f for _, f in walls):.1f} | {len(walls)} |",
            f"| … of which waiting for the five 2-s intervals and Prometheus' scrape (s) | "
            f"{5 * (2 + SCRAPE_SETTLE_SECONDS):.1f} | – | – |",
        ]
    for ending, times in endings.items():
        if times:
            rows.append(f"| {ENDINGS[ending]} | {statistics.median(times):.1f} | {max(times):.1f} | {len(times)} |")
    table = "\n".join(rows)
    print(table)
    if args.write:
        write_section("orchestration", table)


if __name__ == "__main__":
    main()
