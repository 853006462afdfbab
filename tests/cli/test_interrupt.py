"""Ctrl-C during a go-live in this process (`golive demo`, `golive go-live`): it is counted by a
handler, never raised into whatever the main thread is doing, so the rollback's first line cannot
wait on a lock that an interrupted screen refresh left held, and the go-live never runs on."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

import cli.interrupt
from cli.interrupt import Interrupted, run_rolling_back_on_interrupt


def test_ctrl_c_inside_the_screens_refresh_still_rolls_back_and_restores_the_handler(monkeypatch):
    screen = threading.Lock()
    said: list[str] = []
    go_live_running = threading.Event()
    stop_go_live = threading.Event()

    def say(line: str) -> None:
        if not screen.acquire(timeout=2):
            raise AssertionError("the screen's lock was left held by the interrupted refresh")
        try:
            said.append(line)
        finally:
            screen.release()

    def tick() -> None:
        if not go_live_running.is_set():
            return
        screen.acquire()
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the refresh holds the screen
        time.sleep(0.05)
        screen.release()

    def go_live() -> str:
        go_live_running.set()
        stop_go_live.wait(10)
        return "Live"

    def roll_back(_settings, say) -> str:
        say("interrupted: rolling back first")
        stop_go_live.set()  # fenced off: the go-live ends
        return "RolledBack"

    monkeypatch.setattr(cli.interrupt, "_roll_back", roll_back)
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(Interrupted, match="^RolledBack$"):
        run_rolling_back_on_interrupt(None, go_live, say=say, tick=tick, grace_seconds=5)
    assert said[0] == "interrupted: rolling back first" and said[1].startswith("waiting up to 5 s")
    assert stop_go_live.is_set() and signal.getsignal(signal.SIGINT) is before
