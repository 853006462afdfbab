"""The sandbox's router: nginx, steered through its control API (as an ingress controller has one)."""

from __future__ import annotations

import httpx

from tasks.http_client import shared_client
from tasks.router_base import RouterError

__all__ = ["SandboxRouter"]


class SandboxRouter:
    """The sandbox's nginx, through `GET/PUT /weight` on its control port."""

    def __init__(self, control_url: str, timeout: float = 20.0):
        self.control_url = control_url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, **kwargs) -> int:
        try:
            response = shared_client().request(method, f"{self.control_url}/weight", timeout=self.timeout, **kwargs)
        except httpx.TransportError as exc:
            raise RouterError(f"router at {self.control_url} does not answer: {exc}") from exc
        if response.status_code != 200:
            raise RouterError(f"router refused {method} /weight: {response.json().get('error', response.text)}")
        return int(response.json()["weight"])

    def set_weight(self, weight: int) -> int:
        return self._call("PUT", json={"weight": weight})

    def read_weight(self) -> int:
        return self._call("GET")
