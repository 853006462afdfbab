"""Helpers for the tests on a real Prefect server: commands, a client, waiting for runs."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def run(env: dict, *args: str) -> str:
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{args}: {done.stdout[-1500:]}{done.stderr[-1500:]}"
    return done.stdout


class client:
    """A sync Prefect client on the stack's server, for a `with` block."""

    def __init__(self, env: dict):
        self.api_url = env["PREFECT_API_URL"]

    def __enter__(self):
        from prefect import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        self.settings = temporary_settings({PREFECT_API_URL: self.api_url})
        self.settings.__enter__()
        self.client = get_client(sync_client=True).__enter__()
        return self.client

    def __exit__(self, *exc):
        self.client.__exit__(*exc)
        self.settings.__exit__(*exc)


def wait(env: dict, run_id: str, until, timeout: float = 240):
    deadline = time.monotonic() + timeout
    with client(env) as prefect:
        while time.monotonic() < deadline:
            flow_run = prefect.read_flow_run(run_id)
            if until(flow_run):
                return flow_run
            time.sleep(0.5)
    raise AssertionError(f"flow run {run_id} still {flow_run.state_name} after {timeout:g} s")


def final(flow_run) -> bool:
    return flow_run.state is not None and flow_run.state.is_final()


def flow_run_pid(flow_run) -> int:
    """The pid of a run's process: the worker records it as `host:pid`; else the process whose
    environment names the run."""
    if flow_run.infrastructure_pid:
        return int(str(flow_run.infrastructure_pid).rsplit(":", 1)[-1])
    wanted = f"PREFECT__FLOW_RUN_ID={flow_run.id}".encode()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and wanted in (entry / "environ").read_bytes().split(b"\0"):
                return int(entry.name)
        except OSError:
            continue
    raise AssertionError(f"no process runs flow run {flow_run.id}")


def wait_for(condition, timeout: float, what: str, step: float = 0.2) -> float:
    """Seconds until `condition()` held; AssertionError naming `what` after `timeout`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(step)
    return time.monotonic() - started


def os_environ_scoped(**values: str):
    """Set environment variables for a fixture's life; returns a function that restores them."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)

    def restore() -> None:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    return restore


def approve(env: dict, run_id: str, approver: str) -> int:
    """`golive approve RUN_ID --approver NAME`, in this process, against the stack's server."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from cli.main import main

    with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
        return main(["approve", run_id, "--approver", approver, "--reason", "green"])


def paused_stage(env: dict, parent_id: str, seen: frozenset[str] = frozenset()):
    """The parent's paused stage run not in `seen` (a stage just resumed may still read paused), once
    there is one; None if the parent ended first."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    found = {}

    def paused(_run) -> bool:
        with client(env) as prefect:
            children = prefect.read_flow_runs(flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id])))
        found["stage"] = next((c for c in children if c.state and c.state.is_paused() and str(c.id) not in seen), None)
        return found["stage"] is not None

    ended = final(wait(env, parent_id, lambda run: paused(run) or final(run)))
    return None if ended else found["stage"]
