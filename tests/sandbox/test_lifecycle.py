"""Starting, refusing, noticing a dead part, and stopping without leaving anything behind."""

from __future__ import annotations

import os
import signal

import pytest

from golive.signals import readiness_queries
from sandbox import processes
from sandbox.control import Sandbox, SandboxError

pytestmark = pytest.mark.sandbox


def test_down_stops_exactly_what_up_started(tmp_path):
    sandbox = Sandbox.up(tmp_path / "sb", free_ports=True, owner_pid=os.getpid(), rate=5, timeout=45,
                         ready_queries=readiness_queries())
    try:
        with pytest.raises(SandboxError, match="already running"):
            Sandbox.up(tmp_path / "sb", free_ports=True, owner_pid=os.getpid(), rate=5)

        components = {c.name: c for c in sandbox.status()}
        os.kill(components["canary"].pid, signal.SIGKILL)
        assert _eventually(lambda: not {c.name: c for c in sandbox.status()}["canary"].alive)
        unhealthy = [c.name for c in sandbox.status() if not c.healthy]
        assert unhealthy == ["canary"]
    finally:
        stopped = sandbox.down()
    assert "stable" in stopped and "canary" not in stopped
    ports = sandbox.ports.as_dict().values()
    assert not any(processes.alive(c.pid) for c in components.values())
    assert not any(processes.listening(p) for p in ports)
    assert sandbox.status() == []
    assert sandbox.down() == []  # a second down is harmless


def _eventually(check, tries: int = 50) -> bool:
    import time

    for _ in range(tries):
        if check():
            return True
        time.sleep(0.1)
    return False
