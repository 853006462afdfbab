"""Time to rollback and orchestration overhead, on the real sandbox.

    python benchmarks/orchestration.py [--zero-dwell 3] [--rollbacks 3] [--endings 3] [--write]
    python benchmarks/orchestration.py --compare <git-ref> [--against <git-ref>] [--rounds 2] [--write]

- **fault → weight 0**: a canary fault (400 ms of latency) is switched on when stage 25 % begins;
  the seconds from switching it on to the router serving weight 0, and from the end of the
  interval that breached to weight 0 (the rollback record's own figure).
- **zero-dwell go-live**: five stages of one 2-second interval each (the judge's minimums set to
  one interval; two seconds is the shortest window that still verifies the traffic split), so that
  the wall time is almost all orchestration: Prefect flow and task runs, Prometheus queries,
  router reloads, evidence. What the stages wait by design (from each stage's weight read back to
  its last interval's end, and the scrape settle after it) is taken from the evidence and shown
  apart; the rest is orchestration. Its flight check (with a one-second blast-radius drill and the
  SBOM) is timed on its own too, from its record.
- **a look's time**: from an interval's end and the scrape settle the stage waits after it, to the
  interval's judge look on disk (the file's time against the interval end it names): the router
  read, the queries of both tracks, the rollout, the judge and the write, every look of the runs.
- **Prefect API per go-live** (each zero-dwell go-live): the HTTP requests this process sent to
  the Prefect API (every request through Prefect's own clients: flow runs, subflows' task runs,
  states, logs, artifacts, locks), the events it sent over the events socket (task and flow run
  state changes, heartbeats), and the task runs and flow runs the server holds afterwards.

- **process killed / cancel / machine lost → weight 0**: under a real Prefect server and process
  worker (`golive server up`, `prefect deploy`), a go-live deployment run at 25 % is killed with
  SIGKILL, cancelled through the API, or killed together with its worker (a lost machine: only
  the missing heartbeats tell); the seconds from then to the router serving weight 0.

`--compare REF` measures two versions of golive in one run, so that a busy machine weighs on
both alike: the code at REF and the checkout (or `--against REF2`), each taken out of git into a
temporary folder, each side run in a process of its own (its own temporary Prefect server) on
one sandbox, in rounds whose order alternates. The table gives both and their ratio.

Every go-live gets a release repository and the signing key of the benchmark's own.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The code measured: the checkout, or (a side of --compare, in its own process) another version.
TREE = Path(os.environ.get("GOLIVE_BENCH_TREE") or ROOT)
sys.path.insert(0, str(TREE))

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


def _scrape_settle() -> float:
    from flows.canary_stage import SCRAPE_SETTLE_SECONDS

    return SCRAPE_SETTLE_SECONDS


def look_times(folder: Path) -> list[float]:
    """Each judge look's time: from its interval's end and the scrape settle after it, to the file."""
    settle = _scrape_settle()
    return [path.stat().st_mtime - json.loads(path.read_text())["window"][1] - settle
            for path in folder.glob(layout.ALL_JUDGE_LOOKS)]


def waited_by_design(folder: Path) -> tuple[float, int]:
    """(seconds the stages waited by design, looks): each stage from its weight read back to its last
    interval's end (holds' re-measures included), then the scrape settle before its last look."""
    waited, looks = 0.0, 0
    for readback in folder.glob(layout.weight_readback("*")):
        percent = int(re.search(r"stage_(\d+)", readback.name).group(1))
        ticks = [json.loads(p.read_text())["window"][1] for p in folder.glob(layout.judge_look_files(percent))]
        if ticks:
            waited += max(ticks) - json.loads(readback.read_text())["at"] + _scrape_settle()
            looks += len(ticks)
    return waited, looks


def time_to_rollback(sandbox, evidence_root: Path) -> dict:
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
    return {"from_fault": weight_zero_at - injected["at"], "from_breach": from_breach,
            "look_times": look_times(folder), "breach_end": record["decisions"][-1]["at"]}


def zero_dwell_wall_time(sandbox, evidence_root: Path) -> dict:
    settings = merge_settings(sandbox.golive_settings(), {
        "release": "1.4.0", "process": {"evidence_root": str(evidence_root)},
        "policy": {"dwell_seconds": 2, "final_dwell_seconds": 2, "interval_seconds": 2, "hold_seconds": 2,
                   "hold_budget_seconds": 6, "judge": {"min_seconds": 0, "min_intervals": 1, "min_requests": 1,
                                                       "min_keyed_requests": 1, "relative_tolerance": 10}},
    })
    started = time.perf_counter()
    state = _go_live(settings, evidence_root)
    wall = time.perf_counter() - started
    folder = evidence_root / "v1.4.0"
    assert (folder / layout.stage_record(100)).exists(), state  # all five stages ran
    flight_check = json.loads((folder / layout.FLIGHT_CHECK).read_text())["elapsed_seconds"]
    waited, looks = waited_by_design(folder)
    return {"wall": wall, "flight_check": flight_check, "waited": waited, "looks": looks,
            "look_times": look_times(folder)}


class PrefectTraffic:
    """What this process asks of the Prefect API, counted where Prefect's own clients send it:
    every HTTP request sent (by method and route; a retry is a request too), every answer 503
    (the server busy: SQLite locked; Prefect's client waits about 2 s and asks again) with its
    time, and every event handed to the events socket (by name)."""

    def __init__(self):
        import httpx
        from prefect.client.base import PrefectHttpxAsyncClient, PrefectHttpxSyncClient
        from prefect.events.worker import EventsWorker

        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self.busy: list[tuple[float, str]] = []
        sync_send, async_send, send_event = httpx.Client.send, httpx.AsyncClient.send, EventsWorker.send
        count = self

        def counted_sync(client, request, *args, **kwargs):
            response = sync_send(client, request, *args, **kwargs)
            if isinstance(client, PrefectHttpxSyncClient):
                count._answered(request, response)
            return response

        async def counted_async(client, request, *args, **kwargs):
            response = await async_send(client, request, *args, **kwargs)
            if isinstance(client, PrefectHttpxAsyncClient):
                count._answered(request, response)
            return response

        def counted_event(worker, event):
            with count._lock:
                count.events[event.event] += 1
            return send_event(worker, event)

        httpx.Client.send, httpx.AsyncClient.send = counted_sync, counted_async
        EventsWorker.send = counted_event

    def _answered(self, request, response) -> None:
        route = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", ":id",
                       request.url.path.split("/api", 1)[-1])
        with self._lock:
            self.requests[f"{request.method} {route}"] += 1
            if response.status_code == 503:
                self.busy.append((time.time(), f"{request.method} {route}"))

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.events.clear()
            self.busy.clear()

    def snapshot(self) -> dict:
        with self._lock:
            return {"requests": dict(self.requests), "events": dict(self.events), "busy": list(self.busy)}


def _drain_prefect() -> None:
    """Send what Prefect still holds (events, logs) before counting."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    EventsWorker.drain_all(timeout=60, at_exit=False)
    APILogWorker.drain_all(timeout=60, at_exit=False)


def _server_counts() -> dict[str, int]:
    """Task runs and flow runs on the server, once it has stored every event sent (it stores
    task runs from their events, a little later)."""
    from prefect import get_client

    last: dict[str, int] = {}
    with get_client(sync_client=True) as client:
        for _ in range(60):
            now = {kind: client._client.post(f"/{kind}/count", json={}).json() for kind in ("task_runs", "flow_runs")}
            if now == last:
                return now
            last = now
            time.sleep(1.0)
    return last


def measure(sandbox, work: Path, zero_dwell: int, rollbacks: int) -> dict:
    """Zero-dwell go-lives (timed, their Prefect API use counted) and fault rollbacks, after one
    untimed go-live (Prefect's temporary server starts there)."""
    traffic = PrefectTraffic()
    sandbox.set_weight(0)
    zero_dwell_wall_time(sandbox, work / "warmup")
    _drain_prefect()
    result: dict[str, list] = {"zero_dwell": [], "rollbacks": []}
    for i in range(zero_dwell):
        sandbox.set_weight(0)
        before = _server_counts()
        traffic.reset()
        run = zero_dwell_wall_time(sandbox, work / f"zero{i}")
        _drain_prefect()
        run["prefect"] = traffic.snapshot()
        after = _server_counts()
        run["prefect"].update({kind: after[kind] - before[kind] for kind in after})
        result["zero_dwell"].append(run)
    for i in range(rollbacks):
        sandbox.set_weight(0)
        traffic.reset()
        run = time_to_rollback(sandbox, work / f"rollback{i}")
        _drain_prefect()
        run["prefect"] = traffic.snapshot()
        result["rollbacks"].append(run)
    return result


# What is timed is the ending, not the judge: a loaded machine's latency must not end the go-live first.
LATENCY_UNJUDGED = {name: {"threshold": 5000} for name in ("api_p95_ms", "event_loop_p95_ms", "gc_pause_avg_ms")}
ENDINGS = {"kill": "process killed → weight 0 (s)", "cancel": "cancel → weight 0 (s)",
           "lost": "process and worker killed (machine lost) → weight 0 (s)"}
ENDINGS_HEADER = "| ending of a deployment run, real Prefect server | median | max | runs |"


def _deployed_stack(work: Path) -> tuple[object, dict]:
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


# -- the figures ----------------------------------------------------------------------------------

def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18] if len(values) > 1 else values[0]


def _busy_before_weight_zero(rollback: dict) -> int:
    """The 503s the Prefect server answered between the breaching interval's end and weight 0."""
    end, zero = rollback["breach_end"], rollback["breach_end"] + rollback["from_breach"]
    return sum(end <= at <= zero for at, _route in rollback["prefect"]["busy"])


def figures(results: list[dict]) -> list[tuple[str, list[float], str]]:
    """(measure, its values, how they are summed up: `time`, `quantiles`, `count` or `share`), in
    table order."""
    zero = [run for result in results for run in result["zero_dwell"]]
    rollbacks = [run for result in results for run in result["rollbacks"]]
    api = [run["prefect"] for run in zero]
    return [
        ("fault switched on → weight 0 (s)", [r["from_fault"] for r in rollbacks], "time"),
        ("end of the breaching interval → weight 0 (s)", [r["from_breach"] for r in rollbacks], "time"),
        ("… rollbacks delayed on the way by a busy Prefect server (a 503, about 2 s)",
         [min(1, _busy_before_weight_zero(r)) for r in rollbacks], "share"),
        ("a look: its interval's end and the scrape settle → its judge look on disk (s)",
         [t for run in rollbacks + zero for t in run["look_times"]], "quantiles"),
        ("zero-dwell five-stage go-live, wall time (s)", [r["wall"] for r in zero], "time"),
        ("… of which waiting by design: the intervals (a hold's re-measure too) and the scrape settle (s)",
         [r["waited"] for r in zero], "time"),
        ("… of which orchestration: the rest (s)", [r["wall"] - r["waited"] for r in zero], "time"),
        ("… … of it, the flight check, its 1-s drill and SBOM included (s)", [r["flight_check"] for r in zero],
         "time"),
        ("… looks (one per interval; a hold adds one)", [r["looks"] for r in zero], "count"),
        ("Prefect API per zero-dwell go-live: HTTP requests", [sum(a["requests"].values()) for a in api], "count"),
        ("… of which answered 503, busy (SQLite locked; asked again after about 2 s)",
         [len(a["busy"]) for a in api], "count"),
        ("… events sent (run states, heartbeats)", [sum(a["events"].values()) for a in api], "count"),
        ("… task runs stored by the server", [a["task_runs"] for a in api], "count"),
        ("… flow runs stored by the server", [a["flow_runs"] for a in api], "count"),
    ]


def _cell(values: list[float], how: str) -> str:
    if not values:
        return "–"
    if how == "quantiles":
        return f"p50 {statistics.median(values):.2f}, p95 {_p95(values):.2f} ({len(values)} looks)"
    if how == "share":
        return f"{sum(values):g} of {len(values)}"
    digits = 1 if how == "time" else 0
    return f"{statistics.median(values):.{digits}f} (max {max(values):.{digits}f})"


def _central(values: list[float], how: str) -> float:
    if how == "share":
        return sum(values) / len(values)
    return _p95(values) if how == "quantiles" else statistics.median(values)


def single_table(results: list[dict]) -> str:
    rows = ["| measure | median (max) | runs |", "|---|---|---|"]
    for label, values, how in figures(results):
        runs = "–" if how in ("quantiles", "share") else len(values)
        rows.append(f"| {label} | {_cell(values, how)} | {runs} |")
    return "\n".join(rows)


def compare_table(before: list[dict], after: list[dict], labels: dict[str, str]) -> str:
    rows = [f"| measure | before: {labels['before']} | after: {labels['after']} | after ÷ before |",
            "|---|---|---|---|"]
    for (label, old, how), (_, new, _) in zip(figures(before), figures(after)):
        ratio = (f"{_central(new, how) / _central(old, how):.2f}×"
                 if how != "share" and old and new and _central(old, how) else "–")
        rows.append(f"| {label} | {_cell(old, how)} | {_cell(new, how)} | {ratio} |")
    return "\n".join(rows)


def _busiest(results: list[dict]) -> str:
    """Where one go-live's Prefect traffic goes: the most frequent routes and events."""
    api = [run["prefect"] for result in results for run in result["zero_dwell"]]
    if not api:
        return ""
    last = api[-1]
    routes = ", ".join(f"{k} {v}" for k, v in Counter(last["requests"]).most_common(8))
    events = ", ".join(f"{k} {v}" for k, v in Counter(last["events"]).most_common(6))
    busy = [route for run in api for _at, route in run["busy"]]
    busy += [route for result in results for run in result["rollbacks"] for _at, route in run["prefect"]["busy"]]
    return f"  requests: {routes}\n  events: {events}\n  answered 503 (all runs): {dict(Counter(busy))}"


# -- the README section ---------------------------------------------------------------------------

def _split_section(text: str) -> tuple[str, dict[str, str]]:
    """(the section without its endings rows and their header, the endings rows by label)."""
    endings, kept = {}, []
    for line in text.splitlines():
        label = next((label for label in ENDINGS.values() if line.startswith(f"| {label} |")), None)
        if label:
            endings[label] = line
        else:
            kept.append(line)
    main = "\n".join(kept).rstrip()
    if main.endswith(ENDINGS_HEADER + "\n|---|---|---|---|"):
        main = main[: -len(ENDINGS_HEADER + "\n|---|---|---|---|")].rstrip()
    return main, endings


def _section(main: str, endings: dict[str, str]) -> str:
    rows = [endings[label] for label in ENDINGS.values() if label in endings]
    return main + (f"\n\n{ENDINGS_HEADER}\n|---|---|---|---|\n" + "\n".join(rows) if rows else "")


def _ending_rows(endings: dict[str, list[float]]) -> dict[str, str]:
    return {ENDINGS[e]: f"| {ENDINGS[e]} | {statistics.median(t):.1f} | {max(t):.1f} | {len(t)} |"
            for e, t in endings.items() if t}


# -- one side of a comparison, and the comparison ----------------------------------------------------

def _one_side(args: argparse.Namespace) -> None:
    """In a process of its own, on the code at GOLIVE_BENCH_TREE: measure, and write the result."""
    from golive.signing import generate_key
    from sandbox.control import Sandbox

    work = Path(tempfile.mkdtemp(prefix="golive-bench-side-"))
    configure_prefect(work / "prefect")
    _server_as_golive_starts_it()
    generate_key(work, "key")
    try:
        result = measure(Sandbox(Path(args.sandbox)), work, args.zero_dwell, args.rollbacks)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    Path(args.side).write_text(json.dumps(result))


def _server_as_golive_starts_it() -> None:
    """The go-lives run on the temporary Prefect server `golive go-live` and `golive demo` start (the
    measured code's own), as a user's do; code older than that server runs on Prefect's own."""
    import cli.prefect_env as prefect_env

    start = getattr(prefect_env, "use_a_server_of_its_own", None)
    if start is not None:
        start()


def _tree_at(ref: str, dest: Path) -> str:
    """golive's files at `ref`, out of git into `dest` (git's own state untouched); the commit."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", f"{ref}^{{commit}}"], check=True,
                            capture_output=True, text=True).stdout.strip()
    dest.mkdir(parents=True)
    archive = subprocess.Popen(["git", "-C", str(ROOT), "archive", "--format=tar", commit], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
    archive.stdout.close()
    if archive.wait():
        raise RuntimeError(f"git archive {commit} failed")
    return commit


def compare(args: argparse.Namespace) -> tuple[str, dict[str, list[dict]], dict[str, str]]:
    """Both versions measured in alternating rounds on one sandbox: (a heading line, each side's
    results, each side's name)."""
    from golive.signals import readiness_queries
    from sandbox.control import Sandbox

    work = Path(tempfile.mkdtemp(prefix="golive-bench-compare-"))
    trees = {"before": work / "before", "after": work / "after" if args.against else ROOT}
    labels = {"before": f"`{_tree_at(args.compare, trees['before'])}`",
              "after": f"`{_tree_at(args.against, trees['after'])}`" if args.against else "the checkout"}
    results: dict[str, list[dict]] = {"before": [], "after": []}
    load = [os.getloadavg()[0]]
    sandbox = Sandbox.up(work / "sandbox", free_ports=True, probe_rate=5, owner_pid=os.getpid(),
                         ready_queries=readiness_queries())
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_HOME")}
    try:
        for n in range(args.rounds):
            for side in ("before", "after") if n % 2 == 0 else ("after", "before"):
                out, log = work / f"{side}{n}.json", work / f"{side}{n}.log"
                print(f"round {n + 1}: {side} ({labels[side]})", flush=True)
                with open(log, "wb") as said:
                    ran = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--side", str(out),
                                          "--sandbox", str(sandbox.workdir), "--zero-dwell", str(args.zero_dwell),
                                          "--rollbacks", str(args.rollbacks)],
                                         env={**env, "GOLIVE_BENCH_TREE": str(trees[side])}, cwd=trees[side],
                                         stdout=said, stderr=subprocess.STDOUT, timeout=7200)
                if ran.returncode:
                    raise SystemExit(f"the {side} side failed; its output: {log}\n" + log.read_text()[-3000:])
                results[side].append(json.loads(out.read_text()))
                load.append(os.getloadavg()[0])
    finally:
        sandbox.down()
    shutil.rmtree(work, ignore_errors=True)
    heading = (f"{args.rounds} rounds, each side {args.zero_dwell} zero-dwell go-lives and {args.rollbacks} "
               f"fault rollbacks a round; load average {min(load):.1f}–{max(load):.1f}")
    return heading, results, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zero-dwell", type=int, default=3, help="timed zero-dwell go-lives (a round, with --compare)")
    parser.add_argument("--rollbacks", type=int, default=3, help="fault rollbacks (a round, with --compare)")
    parser.add_argument("--endings", type=int, default=3, help="kills and cancels under a real Prefect server")
    parser.add_argument("--endings-only", action="store_true",
                        help="measure only the endings; --write then replaces only their rows")
    parser.add_argument("--compare", metavar="REF", help="measure the code at this git ref against the checkout")
    parser.add_argument("--against", metavar="REF", help="with --compare: this git ref instead of the checkout")
    parser.add_argument("--rounds", type=int, default=2, help="with --compare: rounds, each side once a round")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--sandbox", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        _one_side(args)
        return
    main_table, endings_rows = _split_section(read_section("orchestration"))
    if args.compare:
        heading, results, labels = compare(args)
        for side in ("before", "after"):
            print(f"{side} ({labels[side]}), the last zero-dwell go-live's Prefect traffic:\n{_busiest(results[side])}")
        main_table = f"{heading}\n\n{compare_table(results['before'], results['after'], labels)}"
    else:
        work = Path(tempfile.mkdtemp(prefix="golive-bench-"))
        configure_prefect(work / "prefect")
        _server_as_golive_starts_it()
        from golive.signals import readiness_queries
        from golive.signing import generate_key
        from sandbox.control import Sandbox

        generate_key(work, "key")
        sandbox = Sandbox.up(work / "sandbox", free_ports=True, probe_rate=5, owner_pid=os.getpid(),
                             ready_queries=readiness_queries())
        endings: dict[str, list[float]] = {"kill": [], "cancel": [], "lost": []}
        try:
            if not args.endings_only:
                result = measure(sandbox, work, args.zero_dwell, args.rollbacks)
                main_table = single_table([result])
                print(_busiest([result]))
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
        endings_rows.update(_ending_rows(endings))
    section = _section(main_table, endings_rows)
    print(section)
    if args.write:
        write_section("orchestration", section)


if __name__ == "__main__":
    main()
