"""Many go-lives at once through one Prefect server and one process worker.

    python benchmarks/concurrency.py [--sizes 1,2,4] [--write]

For each N, N go-lives of different releases, each on a sandbox of its own (its own service,
router, Prometheus and load), are started together as runs of the `go-live` deployment. Each
goes 25 → 100 % in compressed time (stages of 12 s, intervals of 4 s); at the start of 100 % its
canary gets 600 ms of latency, and the go-live must roll back. Measured:

- **wall time**: from starting the N runs to the last one's end;
- **judgement lag**: from an interval's end to its judge look on disk (the file's time against the
  interval end it names): the stage sleeps a 1.5 s scrape settle first, the rest is orchestration;
- **fault → weight 0**: from switching the fault on to the router serving weight 0.

Each against N = 1. The target: at N = 4, judgement lag and fault → weight 0 within 1.5× of N = 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cli.prefect_env import configure_prefect  # noqa: E402
from golive import layout  # noqa: E402
from golive.settings import merge_settings  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from readme_section import write_section  # noqa: E402

RELEASES = ("1.4.0", "1.5.0", "1.6.0", "1.7.0")
STAGES = [25, 100]
FAULT_STAGE = 100
STAGE_SECONDS, INTERVAL_SECONDS = 12, 4


def _deployed_stack(work: Path) -> tuple[object, dict]:
    import subprocess

    from cli.stack import Stack
    from sandbox.processes import free_ports

    stack = Stack(work / "stack")
    api_url = stack.up(free_ports(1)[0], timeout=300, tie_to_parent=True, say=lambda _m: None)
    env = {**stack.env(api_url), "PWD": str(ROOT)}
    subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"], env=env, cwd=ROOT,
                   check=True, capture_output=True, timeout=300)
    return stack, env


def _sandboxes(work: Path, n: int) -> list:
    from golive.signals import readiness_queries
    from sandbox.control import Sandbox

    def up(i: int):
        return Sandbox.up(work / f"sandbox{i}", release=RELEASES[i], free_ports=True, probe_rate=5,
                          owner_pid=os.getpid(), timeout=90, ready_queries=readiness_queries())

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(up, range(n)))


def _config(sandbox, release: str, work: Path) -> Path:
    import yaml

    from cli.demo import demo_settings
    from sandbox.release_repo import create_release_repo

    work.mkdir(parents=True, exist_ok=True)
    settings = demo_settings(release, sandbox.golive_settings(), STAGE_SECONDS, INTERVAL_SECONDS,
                             str(work / "evidence"))
    repo = create_release_repo(work / "source", release, "1.3.2")
    settings = merge_settings(settings, {"policy": {"stages": STAGES}, "process": {
        "blast_radius_seconds": 1, "git": {"repo": str(repo)},
        "signing": {"key_path": str(work.parent.parent / "key.pem"), "sigstore": "off"}}})
    settings.pop("release")
    config = work / "golive.yaml"
    config.write_text(yaml.safe_dump(settings))
    return config


class _Fault:
    """Switches the canary's latency on when the fault stage's weight is set; times weight 0."""

    def __init__(self, sandbox, folder: Path):
        self.sandbox, self.folder = sandbox, folder
        self.on_at: float | None = None
        self.zero_at: float | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not (self.folder / layout.weight_set(FAULT_STAGE)).exists():
            if self.done.wait(0.05):
                return
        self.sandbox.set_faults("canary", {"latency_ms": 600})
        self.on_at = time.time()
        while self.sandbox.weight() != 0:
            if self.done.wait(0.1):
                return
        self.zero_at = time.time()

    def seconds(self) -> float | None:
        return None if self.zero_at is None else self.zero_at - self.on_at


def _judgement_lags(folder: Path) -> list[float]:
    """Each judge look's time on disk after the end of the interval it judged."""
    lags = []
    for path in folder.glob(layout.ALL_JUDGE_LOOKS):
        interval_end = json.loads(path.read_text())["window"][1]
        lags.append(path.stat().st_mtime - interval_end)
    return lags


def round_of(n: int, env: dict, work: Path) -> dict:
    """N go-lives at once; their wall time, judgement lags and fault → weight 0 times."""
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    work.mkdir(parents=True)
    sandboxes = _sandboxes(work, n)
    try:
        configs = [_config(sb, RELEASES[i], work / f"golive{i}") for i, sb in enumerate(sandboxes)]
        folders = [work / f"golive{i}" / "evidence" / f"v{RELEASES[i]}" for i in range(n)]
        faults = [_Fault(sb, folder) for sb, folder in zip(sandboxes, folders)]
        with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}), get_client(sync_client=True) as client:
            deployment = client.read_deployment_by_name("go-live/v1.4.0")
            started = time.time()
            runs = [client.create_flow_run_from_deployment(
                deployment.id, parameters={"release": release, "config": str(config), "blocks": None},
                name=f"go-live v{release} (concurrency {n})") for release, config in zip(RELEASES, configs)]
            ends: dict[str, float] = {}
            states: dict[str, str] = {}
            unexpected: list[str] = []  # why a go-live ended other than rolled back by the fault
            deadline = time.monotonic() + 600
            while len(ends) < n and time.monotonic() < deadline:
                for run in runs:
                    state = client.read_flow_run(run.id).state
                    if str(run.id) not in ends and state.is_final():
                        ends[str(run.id)], states[str(run.id)] = time.time(), state.name
                        if state.name != "RolledBack":
                            unexpected.append(f"{state.name}: {state.message}")
                time.sleep(1)
        for fault in faults:
            fault.done.set()
            fault.thread.join(timeout=5)
        lags = [lag for folder in folders for lag in _judgement_lags(folder)]
        to_zero = [s for s in (f.seconds() for f in faults) if s is not None]
        return {"n": n, "wall": max(ends.values(), default=time.time()) - started, "lags": lags, "to_zero": to_zero,
                "states": sorted(states.values()), "unexpected": unexpected, "finished": len(ends)}
    finally:
        for sb in sandboxes:
            sb.down()


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}×" if base else "–"


def table(rounds: list[dict]) -> str:
    base = rounds[0]
    rows = ["| go-lives at once | wall time (s) | judgement lag median / max (s) | fault → weight 0 median / max (s) "
            "| endings |", "|---:|---:|---:|---:|---|"]
    for r in rounds:
        lag_med, lag_max = statistics.median(r["lags"]), max(r["lags"])
        zero_med, zero_max = (statistics.median(r["to_zero"]), max(r["to_zero"])) if r["to_zero"] else (0, 0)
        base_lag = statistics.median(base["lags"])
        base_zero = statistics.median(base["to_zero"]) if base["to_zero"] else 0
        unfinished = "" if r["finished"] == r["n"] else f" ({r['n'] - r['finished']} unfinished)"
        rows.append(
            f"| {r['n']} | {r['wall']:.0f} ({_ratio(r['wall'], base['wall'])}) "
            f"| {lag_med:.2f} / {lag_max:.2f} ({_ratio(lag_med, base_lag)}) "
            f"| {zero_med:.1f} / {zero_max:.1f} ({_ratio(zero_med, base_zero)}) "
            f"| {', '.join(r['states'])}{unfinished} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,2,4", help="how many go-lives at once, in turn")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="golive-bench-concurrency-"))
    configure_prefect(work / "prefect")
    from golive.signing import generate_key

    generate_key(work, "key")
    stack, env = _deployed_stack(work)
    rounds = []
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            rounds.append(round_of(n, env, work / f"n{n}"))
            print(json.dumps({k: v for k, v in rounds[-1].items() if k != "lags"}
                             | {"lag_median": statistics.median(rounds[-1]["lags"] or [0])}), flush=True)
    finally:
        stack.down()
    if any(r["unexpected"] for r in rounds):
        print(f"the evidence of every go-live is kept in {work}", flush=True)
    else:
        shutil.rmtree(work, ignore_errors=True)
    result = table(rounds)
    print(result)
    if args.write:
        write_section("concurrency", result)


if __name__ == "__main__":
    main()
