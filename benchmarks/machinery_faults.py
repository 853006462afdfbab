"""golive under its own faults: a go-live on the sandbox with one fault of golive's machinery (not
the service's) per case, and what became of it.

    python benchmarks/machinery_faults.py [--cases NAME,NAME] [--write]

Every case runs the README's Prefect path for real: a Prefect server with the safety net, a
process worker, `go-live/v1.4.0` run from its deployment, on the sandbox (stages 1 → 5 → 25 → 100
of 24 s, judged every 4 s). The fault lands at a named stage, right after its weight is in force.
Measured per case:

- **ending**: the go-live run's final state;
- **final weight**: the router's weight once the run and any rollback it caused are over;
- **weight safe**: the weight never rose after the first rollback wrote 0 (sampled every 50 ms
  from nginx's workers), and ended where the ending says (Live: 100; any other: 0);
- **records agree**: `golive evidence verify` passes on the folder (nothing edited, missing or
  unsealed, and no record denies a rollback sealed before it) and the rollback records match
  the ending;
- **to safe weight**: seconds from the fault to weight 0 (cases that must go on: –).

Needs root for the evidence tmpfs cases, and Debian's `faketime` (libfaketime) for the clock.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cli.prefect_env import configure_prefect, wait_until_healthy  # noqa: E402
from golive import layout  # noqa: E402
from golive.settings import merge_settings  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from readme_section import write_section  # noqa: E402

STAGES = [1, 5, 25, 100]
STAGE_SECONDS, INTERVAL_SECONDS = 24, 4
LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


# -- the parts ---------------------------------------------------------------------------------

class Stack:
    """A Prefect server (SQLite, in the work folder) that can be stopped and started again on the
    same port and database, with golive deployed, and process workers on chosen work queues."""

    def __init__(self, work: Path):
        from sandbox.processes import free_ports

        self.work, self.port = work, free_ports(1)[0]
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.env = {**os.environ, "PREFECT_API_URL": self.api_url, "PREFECT_HOME": str(work / "prefect"),
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_WORKER_QUERY_SECONDS": "2",
                    "PREFECT_WORKER_CANCELLATION_POLL_SECONDS": "5", "PWD": str(ROOT)}
        self.server: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []

    def _spawn(self, log: str, *args: str, env: dict | None = None) -> subprocess.Popen:
        from sandbox.processes import die_with_parent

        with open(self.work / log, "ab") as out:
            return subprocess.Popen([sys.executable, "-m", "prefect", *args], env=env or self.env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                    preexec_fn=die_with_parent, cwd=ROOT)

    def start_server(self) -> None:
        self.server = self._spawn("server.log", "server", "start", "--host", "127.0.0.1", "--port", str(self.port))
        if not wait_until_healthy(self.api_url, self.server, 180):
            raise RuntimeError("the Prefect server did not start; see server.log")

    def stop_server(self) -> None:
        os.killpg(self.server.pid, signal.SIGTERM)
        self.server.wait(30)

    def deploy(self) -> None:
        for args in (["work-pool", "create", "golive-local", "--type", "process"], ["--no-prompt", "deploy", "--all"]):
            subprocess.run([sys.executable, "-m", "prefect", *args], env=self.env, cwd=ROOT, check=True,
                           capture_output=True, timeout=300)

    def start_worker(self, queue: str = "default", api_url: str | None = None) -> subprocess.Popen:
        env = {**self.env, "PREFECT_API_URL": api_url or self.api_url}
        worker = self._spawn(f"worker-{queue}.log", "worker", "start", "--pool", "golive-local", "--work-queue", queue,
                             env=env)
        self.workers.append(worker)
        return worker

    def stop_workers(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                try:
                    worker.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(worker.pid, signal.SIGKILL)
        self.workers.clear()

    def down(self) -> None:
        self.stop_workers()
        if self.server and self.server.poll() is None:
            self.stop_server()

    def client(self):
        from prefect import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        class _Client:
            def __enter__(inner):
                inner.settings = temporary_settings({PREFECT_API_URL: self.api_url})
                inner.settings.__enter__()
                inner.client = get_client(sync_client=True).__enter__()
                return inner.client

            def __exit__(inner, *exc):
                inner.client.__exit__(*exc)
                inner.settings.__exit__(*exc)

        return _Client()


class Relay:
    """A TCP relay to `port` on loopback that can be cut (new and open connections hang, as across
    a partition) and healed, or made to answer late (`delay_seconds` before each request passes)."""

    def __init__(self, port: int):
        self.target, self.cut, self.delay_seconds = port, threading.Event(), 0.0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        while self.cut.is_set():
            time.sleep(0.2)
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target))
        except OSError:
            conn.close()
            return
        threading.Thread(target=self._pipe, args=(upstream, conn, False), daemon=True).start()
        self._pipe(conn, upstream, True)

    def _pipe(self, source: socket.socket, sink: socket.socket, requests: bool) -> None:
        try:
            while data := source.recv(65536):
                while self.cut.is_set():
                    time.sleep(0.2)
                if requests and self.delay_seconds:
                    time.sleep(self.delay_seconds)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.close()
                except OSError:
                    pass

    def close(self) -> None:
        self.cut.clear()
        self.listener.close()


class WeightWatch:
    """The router's weight every 50 ms, with the time it was read."""

    def __init__(self, sandbox):
        self.sandbox, self.samples, self._stop = sandbox, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.time(), self.sandbox.weight()))
            except Exception:  # noqa: BLE001 - a read that fails is a gap, not a weight
                pass
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def first_zero_after(self, at: float) -> float | None:
        return next((t for t, w in self.samples if t >= at and w == 0), None)

    def rose_after(self, at: float | None) -> bool:
        return at is not None and any(w > 0 for t, w in self.samples if t > at)


# -- one case ----------------------------------------------------------------------------------

@dataclass
class Run:
    """What a case needs while it runs: the parts, and when its fault landed."""

    stack: Stack
    sandbox: object
    folder: Path
    run_id: str = ""
    fault_at: float | None = None
    notes: list[str] = field(default_factory=list)

    def mark(self, note: str = "") -> None:
        self.fault_at = self.fault_at or time.time()
        if note:
            self.notes.append(note)

    def pid(self) -> int:
        with self.stack.client() as client:
            run = client.read_flow_run(self.run_id)
        return int(str(run.infrastructure_pid).rsplit(":", 1)[-1])

    def state(self):
        with self.stack.client() as client:
            return client.read_flow_run(self.run_id).state

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not within {timeout:g} s")
            time.sleep(0.1)

    def rollback_runs(self) -> list:
        from prefect.client.schemas.filters import FlowFilter, FlowFilterName

        with self.stack.client() as client:
            runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["rollback"])))
        return [r for r in runs if r.parameters.get("crashed_run") == f"prefect.flow-run.{self.run_id}"]


@dataclass
class Case:
    name: str
    fault: str  # the fault, as the table says it
    stage: int  # the stage it lands at (right after that stage's weight is in force)
    inject: Callable[[Run], None]
    settings: dict = field(default_factory=dict)
    queue: str = "default"
    job_env: dict = field(default_factory=dict)
    evidence_root: Callable[[Path], Path] | None = None  # where the case's evidence lives (a tmpfs, say)
    not_here: str | None = None  # why the case cannot be made on this machine


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def _freeze(seconds: float | None) -> Callable[[Run], None]:
    """SIGSTOP the go-live's process; SIGCONT after `seconds`, or (None) once the server's crash
    trigger has rolled it back."""
    def inject(run: Run) -> None:
        pid = run.pid()
        os.kill(pid, signal.SIGSTOP)
        run.mark(f"process {pid} frozen")
        try:
            if seconds is not None:
                time.sleep(seconds)
            else:
                run.wait_for(lambda: any(r.state and r.state.is_final() for r in run.rollback_runs()), 300,
                             "the crash trigger's rollback")
                run.notes.append(f"rolled back by the server after {time.time() - run.fault_at:.0f} s frozen")
        finally:
            os.kill(pid, signal.SIGCONT)
    return inject


def _stop_prometheus(seconds: float) -> Callable[[Run], None]:
    def inject(run: Run) -> None:
        prometheus = next(c for c in run.sandbox.status() if c.name == "prometheus")
        os.kill(prometheus.pid, signal.SIGSTOP)
        run.mark()
        time.sleep(seconds)
        os.kill(prometheus.pid, signal.SIGCONT)
    return inject


def _router_faults(seconds: float, **faults) -> Callable[[Run], None]:
    def inject(run: Run) -> None:
        run.sandbox.set_router_faults(**faults)
        run.mark()
        time.sleep(seconds)
        run.sandbox.clear_router_faults()
    return inject


def _broken_nginx_snippet(seconds: float) -> Callable[[Run], None]:
    def inject(run: Run) -> None:
        snippet = run.sandbox.workdir / "nginx" / "conf.d" / "broken.conf"
        snippet.write_text("this is not nginx\n")
        run.mark()
        time.sleep(seconds)
        snippet.unlink()
    return inject


def _evidence_disk(how: str) -> Callable[[Run], None]:
    def inject(run: Run) -> None:
        mount = run.folder.parent
        if how == "read-only":
            subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        else:
            with open(mount / "filler", "wb") as filler:
                try:
                    while True:
                        filler.write(b"\0" * (1 << 16))
                        filler.flush()
                except OSError:
                    pass
        run.mark()
    return inject


def _restart_server(seconds: float) -> Callable[[Run], None]:
    def inject(run: Run) -> None:
        run.stack.stop_server()
        run.mark()
        time.sleep(seconds)
        run.stack.start_server()
    return inject


def _partition(run: Run) -> None:
    relay = run.stack.relay
    relay.cut.set()
    run.mark()
    try:
        run.wait_for(lambda: any(r.state and r.state.is_final() for r in run.rollback_runs()), 300,
                     "the crash trigger's rollback on the other worker")
        run.notes.append(f"rolled back from the server's side after {time.time() - run.fault_at:.0f} s cut off")
    finally:
        relay.cut.clear()


def _jump_clock(run: Run) -> None:
    (run.stack.work / "faketime").write_text("+1h\n")
    run.mark()


def _cases(work: Path) -> list[Case]:
    faketime = None if Path(LIBFAKETIME).exists() else "libfaketime is not installed (apt-get install faketime)"
    root = None if os.geteuid() == 0 else "needs root to mount a tmpfs"
    # libfaketime moves the monotonic clock too: its option to leave it alone makes every sleep
    # fail here (EINVAL), so this jump is harsher than a real step of the wall clock.
    clock_env = {"LD_PRELOAD": LIBFAKETIME, "FAKETIME_TIMESTAMP_FILE": str(work / "faketime"),
                 "FAKETIME_NO_CACHE": "1"}
    holds_long = {"policy": {"hold_budget_seconds": 60}}
    return [
        *(Case(f"frozen-past-timeout-{p}", "process frozen past the crash timeout, then woken", p, _freeze(None))
          for p in (1, 5, 25)),
        Case("frozen-short-25", "process frozen 30 s (shorter than the crash timeout)", 25, _freeze(30)),
        Case("prometheus-down-25", "Prometheus stopped for 30 s", 25, _stop_prometheus(30), settings=holds_long),
        Case("prometheus-slow-25", "Prometheus answering in 5 s", 25, lambda run: run.mark()),
        Case("router-refusing-25", "router control API refuses 4 writes", 25, _router_faults(20, refuse=4)),
        Case("router-timing-out-25", "router control API answers 25 s late for 40 s", 25,
             _router_faults(40, delay_seconds=25)),
        Case("nginx-reload-fails-25", "nginx reload fails (a broken snippet) for 10 s", 25, _broken_nginx_snippet(10)),
        Case("evidence-read-only-25", "evidence folder remounted read-only", 25, _evidence_disk("read-only"),
             evidence_root=lambda case_work: case_work / "tmpfs", not_here=root),
        Case("evidence-full-25", "evidence disk full", 25, _evidence_disk("full"),
             evidence_root=lambda case_work: case_work / "tmpfs", not_here=root),
        Case("prefect-server-restart-25", "Prefect server stopped for 20 s, then started", 25, _restart_server(20)),
        Case("worker-cut-off-25", "worker cut off from the server, router reachable", 25, _partition,
             queue="partitioned"),
        Case("clock-jump-25", "the go-live's clock jumps an hour forward", 25, _jump_clock, job_env=clock_env,
             not_here=faketime),
    ]


def _config(sandbox, case: Case, case_work: Path, key: Path, prometheus_url: str | None) -> tuple[Path, Path]:
    import yaml

    from cli.demo import demo_settings
    from sandbox.release_repo import create_release_repo

    evidence_root = case.evidence_root(case_work) if case.evidence_root else case_work / "evidence"
    settings = demo_settings("1.4.0", sandbox.golive_settings(), STAGE_SECONDS, INTERVAL_SECONDS, str(evidence_root))
    settings.pop("release")
    repo = create_release_repo(case_work / "source", "1.4.0", "1.3.2")
    settings = merge_settings(settings, {
        "policy": {"stages": STAGES},
        "process": {"blast_radius_seconds": 2, "git": {"repo": str(repo)},
                    "signing": {"key_path": str(key), "sigstore": "off"}}}, case.settings)
    if prometheus_url:
        settings["prometheus"]["url"] = prometheus_url
    config = case_work / "golive.yaml"
    config.write_text(yaml.safe_dump(settings))
    return config, evidence_root / "v1.4.0"


def _agree(ending: str, final_weight: int | None, folder: Path, started: float, public_key) -> tuple[bool, bool, str]:
    """(nothing lost, records agree, what else is worth a note) for a finished case.

    Nothing lost: every file the evidence chain sealed is there as it was sealed. Records agree:
    nothing in the folder contradicts the ending or the router: no record denies a rollback
    sealed before it, a Live ending has no rollback record and the router at 100, any other has
    no record claiming Live and the router at 0 (RollbackFailed: wherever the router says).
    Files written after the last seal (a disk that refused the seal) are noted, not counted lost.
    """
    from golive.closing import rollbacks_since
    from golive.verify import verify_folder

    if not folder.exists():
        return True, ending in ("NoGo", "Refused"), "no evidence folder"
    report = verify_folder(folder, public_key)
    rollbacks = rollbacks_since([p.name for p in folder.iterdir()], started)
    lost = [p for p in report.problems if p.endswith((": missing", "(sha256 differs from the manifest)"))]
    unsealed = [p for p in report.problems if p.endswith(": not in the manifest")]
    contradictions = [p for p in report.problems if "records disagree" in p]
    oneliner = folder / layout.RELEASE_ONELINER
    claims_live = oneliner.exists() and "rollback=0" in oneliner.read_text() and not ending == "Live"
    if ending == "Live":
        agree = final_weight == 100 and not rollbacks
    elif ending == "RollbackFailed":
        agree = not claims_live
    else:
        agree = final_weight == 0 and not claims_live
    notes = "; ".join([*lost[:2], *contradictions[:2]]) or (
        f"{len(unsealed)} files written after the last seal (the disk refused it)" if unsealed else "")
    return not lost, agree and not contradictions, notes


def run_case(case: Case, stack: Stack, sandbox, work: Path, key: Path, public_key) -> dict:
    if case.not_here:
        return {"case": case.name, "fault": case.fault, "stage": case.stage, "not_here": case.not_here}
    case_work = work / case.name
    case_work.mkdir(parents=True)
    mounted = False
    if case.evidence_root:
        (case_work / "tmpfs").mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(case_work / "tmpfs")], check=True)
        mounted = True
    relay = Relay(int(sandbox.prometheus_url.rsplit(":", 1)[1])) if case.name == "prometheus-slow-25" else None
    try:
        config, folder = _config(sandbox, case, case_work, key, f"http://127.0.0.1:{relay.port}" if relay else None)
        sandbox.set_weight(0)
        if case.job_env:
            (work / "faketime").write_text("+0\n")
        watch = WeightWatch(sandbox)
        with stack.client() as client:
            deployment = client.read_deployment_by_name("go-live/v1.4.0")
            started = time.time()
            flow_run = client.create_flow_run_from_deployment(
                deployment.id, parameters={"release": "1.4.0", "config": str(config), "blocks": None},
                name=f"go-live v1.4.0 ({case.name})", work_queue_name=case.queue,
                job_variables={"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30", **case.job_env}})
        run = Run(stack, sandbox, folder, str(flow_run.id))
        run.wait_for(lambda: (folder / layout.weight_set(case.stage)).exists() or run.state().is_final(), 400,
                     f"stage {case.stage}")
        if relay:
            relay.delay_seconds = 5.0
        process = run.pid() if not run.state().is_final() else None
        if process is not None:
            case.inject(run)
        # A frozen run is Crashed (final) on the server before its process wakes: the end is its
        # process's end too.
        run.wait_for(lambda: run.state().is_final() and (process is None or not _alive(process)), 600,
                     "the go-live's end")
        ended = run.state()
        time.sleep(2)
        run.wait_for(lambda: all(r.state and r.state.is_final() for r in run.rollback_runs()), 300,
                     "the trigger's rollbacks")
        if relay:
            relay.delay_seconds = 0.0
        final_weight = sandbox.weight()
        watch.stop()
        if mounted:
            subprocess.run(["mount", "-o", "remount,rw", str(case_work / "tmpfs")], check=False)
            (case_work / "tmpfs" / "filler").unlink(missing_ok=True)
        first_zero = watch.first_zero_after(run.fault_at) if run.fault_at else None
        rolled = ended.name != "Live"
        lost_nothing, agree, why = _agree(ended.name, final_weight, folder, started, public_key)
        weight_safe = (final_weight == (100 if ended.name == "Live" else 0)
                       and not (rolled and watch.rose_after(first_zero)))
        return {
            "case": case.name, "fault": case.fault, "stage": case.stage, "ending": ended.name,
            "message": (ended.message or "")[:300], "final_weight": final_weight, "weight_safe": weight_safe,
            "nothing_lost": lost_nothing, "records_agree": agree, "why": why, "notes": run.notes,
            "to_safe": round(first_zero - run.fault_at, 1) if rolled and first_zero and run.fault_at else None,
        }
    finally:
        if relay:
            relay.close()
        _end_leftover_runs(stack, sandbox)
        if mounted:
            subprocess.run(["umount", "-l", str(case_work / "tmpfs")], check=False)


def _end_leftover_runs(stack: Stack, sandbox) -> None:
    """A case that did not end must not hold the target for the next: its go-live runs are
    cancelled (they roll back), and the weight is 0 again."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.states import Cancelling

    active = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[
        StateType.PENDING, StateType.RUNNING, StateType.PAUSED, StateType.CANCELLING])))
    try:
        with stack.client() as client:
            for run in client.read_flow_runs(flow_run_filter=active):
                client.set_flow_run_state(run.id, Cancelling(), force=True)
            deadline = time.monotonic() + 120
            while client.read_flow_runs(flow_run_filter=active) and time.monotonic() < deadline:
                time.sleep(1)
    except Exception as exc:  # noqa: BLE001 - the server may be the case's casualty
        print(f"could not end the leftover runs: {exc}", flush=True)
    sandbox.set_weight(0)


def _notes(result: dict) -> str:
    told = [n for n in result.get("notes", []) if n.startswith("rolled back")]
    return "; ".join(filter(None, [*told, result.get("why")]))


def table(results: list[dict]) -> str:
    rows = ["| fault | stage | ending | final weight | nothing lost | weight safe | records agree | to safe weight (s) "
            "| notes |", "|---|---:|---|---:|---|---|---|---:|---|"]
    for r in results:
        if r.get("not_here"):
            rows.append(f"| {r['fault']} | {r['stage']} % | not made here: {r['not_here']} | | | | | | |")
            continue
        yes = {True: "yes", False: "**no**"}
        rows.append(f"| {r['fault']} | {r['stage']} % | {r['ending']} | {r['final_weight']} | {yes[r['nothing_lost']]} "
                    f"| {yes[r['weight_safe']]} | {yes[r['records_agree']]} | "
                    f"{'–' if r['to_safe'] is None else r['to_safe']} | {_notes(r)} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--write", action="store_true", help="write the table into benchmarks/README.md")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (evidence, logs)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="golive-bench-faults-"))
    configure_prefect(work / "prefect")
    from golive.signals import readiness_queries
    from golive.signing import generate_key, load_public_key
    from sandbox.control import Sandbox

    key, public = generate_key(work, "key")
    public_key = load_public_key(public.read_bytes())
    cases = _cases(work)
    if args.cases:
        wanted = set(args.cases.split(","))
        cases = [c for c in cases if c.name in wanted]
    stack = Stack(work)
    sandbox = None
    results = []
    try:
        stack.start_server()
        stack.deploy()
        stack.start_worker("default")
        stack.relay = Relay(stack.port)
        stack.start_worker("partitioned", api_url=f"http://127.0.0.1:{stack.relay.port}/api")
        sandbox = Sandbox.up(work / "sandbox", free_ports=True, owner_pid=os.getpid(), probe_rate=5,
                             timeout=90, ready_queries=readiness_queries())
        for case in cases:
            try:
                result = run_case(case, stack, sandbox, work, key, public_key)
            except Exception as exc:  # noqa: BLE001 - one broken case must not lose the others' rows
                result = {"case": case.name, "fault": case.fault, "stage": case.stage, "ending": f"harness: {exc}",
                          "final_weight": None, "weight_safe": False, "nothing_lost": False, "records_agree": False,
                          "to_safe": None}
            results.append(result)
            print(json.dumps(result), flush=True)
    finally:
        if sandbox is not None:
            sandbox.down()
        stack.down()
    if args.keep or not all(r.get("not_here") or (r["weight_safe"] and r["records_agree"]) for r in results):
        print(f"the work folder is kept: {work}", flush=True)
    else:
        shutil.rmtree(work, ignore_errors=True)
    result = table(results)
    print(result)
    if args.write:
        write_section("machinery-faults", result)


if __name__ == "__main__":
    main()
