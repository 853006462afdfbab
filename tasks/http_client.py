"""The clients of a run: made once, shared by its tasks, closed when the run ends.

`httpx.get` and `httpx.Client()` build a client per call, and a client loads the TLS certificate
store when it is made: hundreds of milliseconds of CPU on a busy machine, paid twice an interval
by every go-live. A run's one client keeps its connections alive, and the certificate store is
loaded once per process whatever the number of runs. httpx clients are safe to share between
threads.

A flow opens `clients_for_this_run()` around its work; its subflows and its tasks (submitted ones
too: Prefect copies the context into their threads) share what it holds, and the clients are
closed when the flow that opened it ends. Outside any run (a command, a test calling a task's
function) the process keeps one of each.
"""

from __future__ import annotations

import contextvars
import functools
import ssl
import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

import httpx

__all__ = ["RunClients", "clients_for_this_run", "run_client", "shared_client"]


class _Closable(Protocol):
    def close(self) -> Any: ...


C = TypeVar("C", bound=_Closable)


class RunClients:
    """The clients made for one run, by key; `close` closes every one of them."""

    def __init__(self):
        self._lock = threading.Lock()
        self._made: dict[Hashable, _Closable] = {}

    def get(self, key: Hashable, make: Callable[[], C]) -> C:
        with self._lock:
            client = self._made.get(key)
            if client is None or getattr(client, "is_closed", False):
                client = self._made[key] = make()
            return client  # type: ignore[return-value]

    def close(self) -> None:
        with self._lock:
            made, self._made = list(self._made.values()), {}
        for client in made:
            client.close()


_PROCESS = RunClients()
_THIS_RUN: contextvars.ContextVar[RunClients | None] = contextvars.ContextVar("golive_run_clients", default=None)


@contextmanager
def clients_for_this_run() -> Iterator[RunClients]:
    """Hold the run's clients until the block ends, then close them; inside another run's block
    (a subflow), that run's clients are shared and left open."""
    outer = _THIS_RUN.get()
    if outer is not None:
        yield outer
        return
    clients = RunClients()
    token = _THIS_RUN.set(clients)
    try:
        yield clients
    finally:
        _THIS_RUN.reset(token)
        clients.close()


def run_client(key: Hashable, make: Callable[[], C]) -> C:
    """The run's client under `key`, made by `make()` the first time it is asked for."""
    return (_THIS_RUN.get() or _PROCESS).get(key, make)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The certificate store as httpx loads it by default, loaded once per process."""
    return httpx.create_ssl_context()


def shared_client() -> httpx.Client:
    """The run's plain HTTP client; each call still passes its own timeout."""
    return run_client("httpx", lambda: httpx.Client(verify=_tls_context()))
