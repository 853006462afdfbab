"""py-spy: sample a running Python service from outside, through a stage, into speedscope JSON.

py-spy reads the target's memory with ptrace (`process_vm_readv`): no change to the service, no
agent inside it. `--nonblocking` never pauses the target, so the service's latency only pays for
the CPU py-spy takes on the machine (measured in `benchmarks/profiler_overhead.py`). Attaching
needs the right to trace the process: the same user with `kernel.yama.ptrace_scope` 0, the parent,
or CAP_SYS_PTRACE. Where it is refused the sampling says so in one line and the stage goes on: a
missing profile is evidence not taken, never a reason to stop a release.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from golive.evidence import pid_alive

__all__ = ["ProfileSampling", "TakenProfile", "discard_scratch", "ends_with_this_thread", "find_service_pid",
           "py_spy_executable", "start_profiling", "stop_profiling", "sweep_scratch_of_dead_go_lives", "tell_to_stop"]

# How long py-spy may take to attach (or to refuse) before the stage goes on without it.
ATTACH_SECONDS = 5.0
# How long it may take to write its file once told to stop.
STOP_SECONDS = 15.0
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# py-spy's words when the kernel refuses ptrace (lower-cased).
_REFUSED = ("permission denied", "operation not permitted", "os error 1)", "os error 13)")

# The running py-spy processes of this process, by their pid: a task's result is plain data.
_RUNNING: dict[int, subprocess.Popen] = {}
# Those already told to stop: a second SIGINT is not sent.
_TOLD: set[int] = set()
_LOCK = threading.Lock()
_PR_SET_PDEATHSIG = 1  # prctl(2)
_SCRATCH_PREFIX = "golive-profile-"


class ProfileSampling(BaseModel):
    """A py-spy started on one track (or why none was)."""

    track: str
    pid: int | None = None  # the service's process
    found_by: str = ""  # how the pid was known
    profiler_pid: int | None = None
    output: str | None = None  # the speedscope file py-spy writes when stopped
    log: str | None = None
    rate_hz: int = 0
    started_at: float = 0.0
    scratch: str | None = None  # py-spy's folder, removed once its file is in the evidence
    max_seconds: int | None = None  # py-spy stops by itself after this long
    problem: str | None = None  # one line: why there is no sampling


class TakenProfile(BaseModel):
    """One track's profile of a stage: its speedscope file, or why it was not taken."""

    track: str
    pid: int | None = None
    output: str | None = None
    seconds: float = 0.0
    rate_hz: int = 0
    started_at: float = 0.0
    ended_at: float = 0.0
    scratch: str | None = None
    problem: str | None = None


def py_spy_executable(configured: str = "py-spy") -> str | None:
    """The py-spy to run: a path as configured, else the one installed beside this Python (the
    wheel's script), else the PATH's."""
    if os.sep in configured:
        return configured if os.access(configured, os.X_OK) else None
    beside = Path(sys.executable).parent / configured
    return str(beside) if os.access(beside, os.X_OK) else shutil.which(configured)


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def find_service_pid(url: str, configured: int | None = None) -> tuple[int | None, str]:
    """The service's process: the configured pid, else, for a service at a loopback URL, the
    process listening on its port (Linux /proc; the sandbox's services are found this way).

    Args:
        url: the track's URL (`target.stable_url` / `target.canary_url`).
        configured: `process.profiling.pids[track]`, when set.

    Returns:
        (pid or None, how it was found or why it was not)."""
    if configured is not None:
        return configured, "configured pid"
    parts = urlsplit(url)
    if parts.hostname not in _LOOPBACK:
        return None, f"{parts.hostname} is not this machine: set process.profiling.pids to profile it"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    sockets = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if sockets:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                links = {os.readlink(fd) for fd in (entry / "fd").iterdir()}
            except OSError:
                continue
            if links & sockets:
                return int(entry.name), f"listening on port {port}"
    return None, f"no process of this machine seen listening on port {port}"


@task(name="start profiling a track", cache_policy=NO_CACHE)
def start_profiling(track: str, url: str, pid: int | None, rate_hz: int, py_spy: str = "py-spy",
                    max_seconds: int | None = None) -> ProfileSampling:
    """Start py-spy on one track's process, sampling `rate_hz` times a second without pausing it,
    until `stop_profiling`.

    Args:
        track: "stable" or "canary".
        url: the track's URL, to find its process when `pid` is None.
        pid: the configured process id, or None.
        rate_hz: samples a second.
        py_spy: the executable (see `py_spy_executable`).
        max_seconds: py-spy stops by itself after this long (its file written), so that a
            profiler whose stage's process died does not sample on for ever; None: no limit.

    Returns:
        The sampling (to stop later), or one with `problem` set: no process found, py-spy missing,
        or ptrace refused. Never raises for these."""
    found, how = find_service_pid(url, pid)
    if found is None:
        return ProfileSampling(track=track, found_by=how, problem=f"{track}: no process to profile: {how}")
    executable = py_spy_executable(py_spy)
    if executable is None:
        return ProfileSampling(track=track, pid=found, found_by=how,
                               problem=f"{track}: py-spy not installed ({py_spy}): pip install py-spy")
    scratch = None
    try:
        sweep_scratch_of_dead_go_lives()
        scratch = Path(tempfile.mkdtemp(prefix=f"{_SCRATCH_PREFIX}{track}-{os.getpid()}-"))
        output, log = scratch / "speedscope", scratch / "py-spy.log"
        with open(log, "wb") as log_file:
            process = subprocess.Popen(
                [executable, "record", "--pid", str(found), "--rate", str(rate_hz), "--nonblocking",
                 "--format", "speedscope", "--output", str(output),
                 *(["--duration", str(max_seconds)] if max_seconds else [])],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=ends_with_this_thread if sys.platform == "linux" else None)
    except OSError as exc:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        return ProfileSampling(track=track, pid=found, found_by=how,
                               problem=f"{track}: py-spy could not be started: {exc.strerror or exc}")
    sampling = ProfileSampling(track=track, pid=found, found_by=how, profiler_pid=process.pid, output=str(output),
                               log=str(log), rate_hz=rate_hz, started_at=time.time(), scratch=str(scratch),
                               max_seconds=max_seconds)
    deadline = time.monotonic() + ATTACH_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sampling.problem = f"{track}: {_refusal(log.read_text(errors='replace'), found)}"
            sampling.profiler_pid = sampling.output = sampling.log = sampling.scratch = None
            shutil.rmtree(scratch, ignore_errors=True)
            return sampling
        if "Sampling process" in log.read_text(errors="replace"):
            break
        time.sleep(0.05)
    with _LOCK:
        _RUNNING[process.pid] = process
    return sampling


def ends_with_this_thread() -> None:
    """preexec_fn: the kernel kills the child (py-spy, the browser check's browser) when the thread
    that started it ends (a stage's tasks run in its flow's thread), so that a go-live killed
    mid-stage leaves no profiler sampling the service until its time limit, which counts the hold
    budget and the approval wait, and no browser loading pages."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _refusal(log: str, pid: int) -> str:
    """py-spy's own error, as one line; ptrace refused said plainly."""
    if any(marker in log.lower() for marker in _REFUSED):
        return (f"ptrace refused: py-spy may not attach to pid {pid} (run golive as the service's user with "
                "kernel.yama.ptrace_scope=0, or with CAP_SYS_PTRACE); no profile this stage")
    first = next((line.strip() for line in log.splitlines() if line.startswith("Error")), "")
    first = first or next((line.strip() for line in log.splitlines() if line.strip()), "py-spy exited")
    return f"py-spy could not sample pid {pid}: {first.removeprefix('Error: ')}"


@task(name="stop profiling a track", cache_policy=NO_CACHE)
def stop_profiling(sampling: ProfileSampling) -> TakenProfile:
    """Tell py-spy to stop (SIGINT, as Ctrl-C: it writes its file) and wait for the file.

    Args:
        sampling: what `start_profiling` returned.

    Returns:
        The profile's file and how long it sampled, or why there is none."""
    taken = TakenProfile(track=sampling.track, pid=sampling.pid, rate_hz=sampling.rate_hz,
                         started_at=sampling.started_at, ended_at=time.time(), scratch=sampling.scratch,
                         problem=sampling.problem)
    if sampling.problem or sampling.profiler_pid is None:
        return taken
    with _LOCK:
        process = _RUNNING.pop(sampling.profiler_pid, None)
    if process is None:
        taken.problem = f"{sampling.track}: the profiler of this stage is not running in this process"
        return taken
    _interrupt(process)
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    with _LOCK:
        _TOLD.discard(process.pid)
    taken.ended_at = time.time()
    if sampling.max_seconds:  # a py-spy that reached its own limit sampled no longer than it
        taken.ended_at = min(taken.ended_at, sampling.started_at + sampling.max_seconds)
    taken.seconds = round(taken.ended_at - sampling.started_at, 3)
    output = Path(sampling.output)
    if output.is_file() and output.stat().st_size:
        taken.output = str(output)
    else:
        log = Path(sampling.log).read_text(errors="replace") if sampling.log else ""
        taken.problem = f"{sampling.track}: {_refusal(log, sampling.pid)}" if "Error" in log \
            else f"{sampling.track}: py-spy wrote no profile (the process may have ended)"
    return taken


def _interrupt(process: subprocess.Popen) -> None:
    with _LOCK:
        if process.pid in _TOLD:
            return
        _TOLD.add(process.pid)
    if process.poll() is None:
        process.send_signal(signal.SIGINT)


def tell_to_stop(sampling: ProfileSampling) -> None:
    """Send py-spy its stop signal without waiting for its file (`stop_profiling` collects it):
    the tracks' profilers are told at once, so that their waits overlap."""
    with _LOCK:
        process = _RUNNING.get(sampling.profiler_pid) if sampling.profiler_pid is not None else None
    if process is not None:
        _interrupt(process)


def discard_scratch(taken: TakenProfile) -> None:
    """Remove py-spy's scratch folder once its file is in the evidence (or there is none)."""
    if taken.scratch:
        shutil.rmtree(taken.scratch, ignore_errors=True)


def sweep_scratch_of_dead_go_lives(where: Path | None = None) -> list[Path]:
    """Remove the scratch folders (`golive-profile-<track>-<pid>-…`) of go-live processes that are
    gone: killed mid-stage, they could not remove them, and their py-spy died with them
    (`ends_with_this_thread`). Returns the folders removed."""
    removed = []
    for folder in Path(where or tempfile.gettempdir()).glob(f"{_SCRATCH_PREFIX}*-*-*"):
        pid = folder.name.removeprefix(_SCRATCH_PREFIX).split("-")[1]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
