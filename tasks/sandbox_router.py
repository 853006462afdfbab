"""The sandbox's router: nginx, steered through its control API (as an ingress controller has one)."""

from __future__ import annotations

import httpx
from pydantic import ValidationError

from golive.fencing import Fence, FenceHolder, TargetState
from tasks.http_client import shared_client
from tasks.router_base import Deadline, RouterError, RouterFenced

__all__ = ["SandboxRouter"]


class SandboxRouter:
    """The sandbox's nginx, through `GET/PUT /weight` and `POST /fence` on its control port."""

    def __init__(self, control_url: str, timeout: float = 20.0, deadline: Deadline | None = None,
                 mirror_routes: list[dict] | None = None):
        self.control_url = control_url.rstrip("/")
        self.mirror_routes = mirror_routes  # what a mirror copies; the router's own default when None
        self.timeout = timeout
        self.deadline = deadline or Deadline()

    def _call(self, method: str, path: str, **kwargs) -> dict:
        try:
            response = shared_client().request(method, f"{self.control_url}{path}",
                                               timeout=self.deadline.timeout(self.timeout), **kwargs)
        except httpx.TransportError as exc:
            raise RouterError(f"router at {self.control_url} does not answer: {type(exc).__name__} {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if response.status_code == 409 and isinstance(body.get("fence"), dict):
            raise RouterFenced(f"router refused {method} {path}: {body.get('error')}", _fence(body["fence"]))
        if response.status_code != 200:
            raise RouterError(f"router refused {method} {path}: HTTP {response.status_code} "
                              f"{body.get('error') or response.text[:200]}")
        return body

    def read(self) -> TargetState:
        body = self._call("GET", "/weight")
        return TargetState(weight=_weight(body), fence=_fence(body.get("fence") or {}),
                           mirror=body.get("mirror") is True)

    def take_generation(self, holder: FenceHolder, if_generation: int | None = None) -> Fence:
        body = self._call("POST", "/fence", json={"holder": holder.model_dump(mode="json", exclude={"at"}),
                                                  "if_generation": if_generation})
        return _fence(body)

    mirrors = True

    def set_weight(self, weight: int, generation: int, mirror: bool = False) -> int:
        mirrored = {"mirror": True, **({"mirror_routes": self.mirror_routes} if self.mirror_routes else {})}
        return _weight(self._call("PUT", "/weight", json={"weight": weight, "generation": generation,
                                                          **(mirrored if mirror else {})}))


def _weight(body: dict) -> int:
    weight = body.get("weight")
    if isinstance(weight, bool) or not isinstance(weight, int):
        raise RouterError(f"router answered without a weight: {str(body)[:200]}")
    return weight


def _fence(body: dict) -> Fence:
    try:
        return Fence.model_validate({"generation": body.get("generation", 0), "holder": body.get("holder")})
    except ValidationError as exc:
        raise RouterError(f"router answered a malformed fence: {exc.errors()[0]['msg']}") from None
