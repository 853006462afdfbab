"""One HTTP client per process for the plain calls to the service, the router and Alertmanager.

`httpx.get` and `httpx.Client()` build a client per call, and a client loads the TLS certificate
store when it is made: hundreds of milliseconds of CPU on a busy machine, paid twice an interval
by every go-live. One client, made once, also keeps its connections alive. httpx clients are
safe to share between threads.
"""

from __future__ import annotations

import threading

import httpx

__all__ = ["shared_client"]

_lock = threading.Lock()
_client: httpx.Client | None = None


def shared_client() -> httpx.Client:
    """The process's client; each call still passes its own timeout."""
    global _client
    with _lock:
        if _client is None or _client.is_closed:
            _client = httpx.Client()
        return _client
