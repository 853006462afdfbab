"""Chaos on the sandbox: its services' fault switch (`POST/DELETE /faults` on the admin port),
and on a real system the team's own chaos command."""

from __future__ import annotations

import os
import shlex
import subprocess
import time

from prefect import task
from prefect.cache_policies import NO_CACHE

from golive.validation import without_environment_secrets
from tasks.http_client import shared_client


@task(name="switch a fault on", retries=1, retry_delay_seconds=1, cache_policy=NO_CACHE)
def switch_fault_on(admin_url: str, faults: dict) -> dict:
    response = shared_client().post(f"{admin_url.rstrip('/')}/faults", json=faults, timeout=5)
    response.raise_for_status()
    return response.json()


@task(name="switch the faults off", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def switch_faults_off(admin_url: str) -> dict:
    response = shared_client().delete(f"{admin_url.rstrip('/')}/faults", timeout=5)
    response.raise_for_status()
    return response.json()


@task(name="run the chaos command", cache_policy=NO_CACHE)
def run_command(command: str, timeout_seconds: float = 1800) -> dict:
    """Run `command` (no shell); its exit code, the tail of its output, how long it took. The
    command gets this process's environment (a team's chaos tool may need its credentials); what
    it prints of a secret variable's value (`set -x`, `env`) is masked in the record."""
    started = time.monotonic()
    try:
        done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=timeout_seconds)
        code, output = done.returncode, done.stdout + done.stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        code, output = None, str(exc)
    output = without_environment_secrets(output, os.environ)
    return {"command": command, "exit_code": code, "output_tail": output[-4000:],
            "seconds": round(time.monotonic() - started, 2)}
