"""Process bookkeeping shared by the supervisor and the control side (Linux /proc)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks (with the pid, its identity); None if gone or a zombie."""
    if type(pid) is not int or pid <= 0:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def children(pid: int) -> list[int]:
    """Living child processes of `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def title(pid: int) -> str:
    """The process's command line as it shows it (nginx rewrites it to say what a worker does)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def clock_ticks_now() -> int:
    """The current time in the clock ticks of `start_ticks` (since boot)."""
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return int(uptime * os.sysconf("SC_CLK_TCK"))


def alive(pid: int, ticks: int | None = None) -> bool:
    """The process runs and, when `ticks` is given, is the one that was recorded (pids are reused)."""
    now = start_ticks(pid)
    return now is not None and (ticks is None or now == ticks)


def reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def send(pid: int, sig: int, ticks: int | None) -> bool:
    """Signal the process `pid` only while it is the one that started at `ticks`: a process whose
    start time was not recorded cannot be told from whatever reuses its pid, and is never signalled."""
    if type(ticks) is not int or not alive(pid, ticks):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
        return True
    return False


def die_with_parent() -> None:
    """preexec_fn: the kernel sends SIGTERM to the child when its parent dies (Linux)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Ports the kernel picks as free now (they stay free until someone binds them)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()
