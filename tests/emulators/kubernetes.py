"""A Kubernetes API emulator for the tests: kmock's `KubernetesEmulator` over real HTTP on a free
loopback port, in a thread of its own so synchronous code (the official client) can talk to it.

kmock keeps objects as plain dicts; a real API server also stamps every write with a new
`metadata.resourceVersion` and refuses a write carrying a stale one with 409. The routers'
conflict handling, and so their fencing, depend on exactly that, so it is added here. Tests can
also make the next matching calls fail with a status (403, 503) and make "another writer" change
(or create) an object right after golive read it.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import threading
from dataclasses import dataclass
from pathlib import Path

import attrs
import yaml
from kmock import KubernetesEmulator, Server, resource
from kmock._internal.enums import action as Action
from kmock._internal.k8s import KubernetesError

from tasks.kubernetes import MIRROR_TARGET

INGRESSES = resource("networking.k8s.io", "v1", "ingresses")
HTTP_ROUTES = resource("gateway.networking.k8s.io", "v1", "httproutes")
DEPLOYMENTS = resource("apps", "v1", "deployments")
PODS = resource("", "v1", "pods")


@dataclass
class Fault:
    action: str  # "create", "update", "fetch", "list"
    plural: str
    status: int
    times: int


@attrs.define(kw_only=True)
class VersionedEmulator(KubernetesEmulator):
    faults: list[Fault] = attrs.field(factory=list)
    interleaved_writes: dict[tuple[str, str], dict] = attrs.field(factory=dict)  # (plural, name) → patch
    _versions: itertools.count = attrs.field(factory=lambda: itertools.count(1000))

    def stamped(self, body: dict) -> dict:
        """`body` with a new resourceVersion, as every write gets one."""
        return {**body, "metadata": {**body.get("metadata", {}), "resourceVersion": str(next(self._versions))}}

    def _take_fault(self, request) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.plural == request.resource.plural and fault.action == request.action.value.lower():
                fault.times -= 1
                return fault
        return None

    async def _handle(self, request):
        if request.resource is None:
            return await super()._handle(request)
        if fault := self._take_fault(request):
            raise KubernetesError(status=fault.status, reason={403: "Forbidden", 503: "ServiceUnavailable"}.get(fault.status),
                                  message=f"injected by the test: {fault.status}")
        if request.action in (Action.CREATE, Action.UPDATE) and isinstance(request.data, dict):
            metadata = request.data.setdefault("metadata", {})
            if request.action == Action.UPDATE:
                key = (request.resource, request.namespace, request.name)
                stored = self.objects[key].get("metadata", {}).get("resourceVersion") if key in self.objects else None
                given = metadata.get("resourceVersion")
                if given is not None and given != stored:
                    raise KubernetesError(
                        status=409, reason="Conflict",
                        message=f'Operation cannot be fulfilled on {request.resource.plural} "{request.name}": the '
                                "object has been modified; please apply your changes to the latest version and try again")
            metadata["resourceVersion"] = str(next(self._versions))
        try:
            return await super()._handle(request)
        finally:
            if request.action == Action.FETCH and (
                    patch := self.interleaved_writes.pop((request.resource.plural, request.name), None)):
                self._write_as_another_writer(request, patch)

    def _write_as_another_writer(self, request, patch: dict) -> None:
        """`patch` applied to the object just read, or stored as the object when the read found none
        (another writer created it)."""
        key = (request.resource, request.namespace, request.name)
        if key in self.objects and not self.objects[key].deleted:
            self.objects[key].patch(self.stamped(patch))
        else:
            metadata = {**patch.get("metadata", {}), "name": request.name, "namespace": request.namespace}
            self.objects[key] = self.stamped({**patch, "metadata": metadata})


class RunningEmulator:
    """The emulator served from a background event loop; `stop()` ends both."""

    def __init__(self):
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), name="kubernetes-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the Kubernetes emulator did not start")

    async def _serve(self) -> None:
        async with VersionedEmulator() as emulator, Server(emulator) as server:
            emulator.resources.load_bundled()
            self.emulator, self.url = emulator, str(server.url).rstrip("/")
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            self._ready.set()
            await self._stop.wait()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def write_kubeconfig(self, path: Path, namespace: str = "shop") -> Path:
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "emulator",
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "golive", "user": {"token": "emulator-token"}}],
            "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "golive", "namespace": namespace}}],
        }))
        return path

    def _on_loop(self, fn):
        async def run():
            return fn()
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def put(self, kind: resource, namespace: str, body: dict) -> None:
        """Store an object as it is (status included), as if the cluster held it already."""
        def store():
            self.emulator.objects[kind, namespace, body["metadata"]["name"]] = self.emulator.stamped(
                {**body, "metadata": {**body["metadata"], "namespace": namespace}})
        self._on_loop(store)

    def patch(self, kind: resource, namespace: str, name: str, patch: dict) -> None:
        """Change a stored object the way a controller would (a new resourceVersion)."""
        self._on_loop(lambda: self.emulator.objects[kind, namespace, name].patch(self.emulator.stamped(patch)))

    def stored(self, kind: resource, namespace: str, name: str) -> dict | None:
        """The object as the emulator holds it now; None when absent."""
        def read():
            key = (kind, namespace, name)
            if key not in self.emulator.objects or self.emulator.objects[key].deleted:
                return None
            return copy.deepcopy(self.emulator.objects[key].raw)
        return self._on_loop(read)

    def canary_weight(self, namespace: str, name: str = "spark-canary") -> int | None:
        """The `canary-weight` the stored canary Ingress carries; None when there is none."""
        canary = self.stored(INGRESSES, namespace, name)
        annotations = (canary or {}).get("metadata", {}).get("annotations", {})
        weight = annotations.get("nginx.ingress.kubernetes.io/canary-weight")
        return None if weight is None else int(weight)

    def fail_next(self, action: str, plural: str, status: int, times: int = 1) -> None:
        self._on_loop(lambda: self.emulator.faults.append(Fault(action, plural, status, times)))

    def clear_faults(self) -> None:
        """Forget the failures still to come, so they do not reach the next test."""
        self._on_loop(self.emulator.faults.clear)

    def write_after_next_read(self, plural: str, name: str, patch: dict) -> None:
        """Another writer changes the object right after the next GET of it, so a write based on
        that read carries a stale resourceVersion; when that GET found nothing, the other writer
        creates it (`patch` is then the whole object)."""
        def arm():
            self.emulator.interleaved_writes[(plural, name)] = patch
        self._on_loop(arm)

    def calls(self, plural: str) -> list[tuple[str, str | None]]:
        """(action, name) of every request made for `plural`, in order."""
        return self._on_loop(lambda: [(r.action.value.lower(), r.name) for r in self.emulator._requests
                                      if r.resource is not None and r.resource.plural == plural])


KINDS = {"Deployment": DEPLOYMENTS, "Ingress": INGRESSES, "HTTPRoute": HTTP_ROUTES,
         "Service": resource("", "v1", "services")}
EXAMPLE_MANIFESTS = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "spark.yaml"


def canary_pod(index: int, image: str, restarts: int = 0, waiting: str | None = None) -> dict:
    """A canary pod as the kubelet reports it."""
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {"startedAt": "2026-11-27T10:00:00Z"}}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"spark-canary-{index}", "labels": {"app": "spark", "track": "canary"}},
        "status": {"phase": "Running", "containerStatuses": [
            {"name": "spark", "image": image, "imageID": f"{image.rsplit(':', 1)[0]}@sha256:{'0' * 64}",
             "ready": waiting is None, "restartCount": restarts, "state": state}]},
    }


def seed_release(emulator: RunningEmulator, namespace: str) -> dict[str, dict]:
    """The example manifests in `namespace`, as a cluster running them would hold them: each
    Deployment's replicas ready, the canary's pods running. Returns the stored objects by name."""
    objects = {}
    for manifest in yaml.safe_load_all(EXAMPLE_MANIFESTS.read_text()):
        if manifest["kind"] == "Deployment":
            manifest["status"] = {"replicas": manifest["spec"]["replicas"], "readyReplicas": manifest["spec"]["replicas"]}
        emulator.put(KINDS[manifest["kind"]], namespace, manifest)
        objects[f"{manifest['kind']}/{manifest['metadata']['name']}"] = manifest
    canary = objects["Deployment/spark-canary"]
    image = canary["spec"]["template"]["spec"]["containers"][0]["image"]
    for index in range(canary["spec"]["replicas"]):
        emulator.put(PODS, namespace, canary_pod(index, image))
    return objects


class IngressControllerStandIn:
    """What ingress-nginx's controller does in a cluster, for the sandbox: watch the canary
    Ingress the emulator stores and put its weight into the sandbox's nginx, which serves users;
    and while the primary Ingress carries a `mirror-target`, have nginx copy users' requests to the
    canary. The sandbox's copies go to the canary's own port marked as shadow traffic, where a
    cluster's go to the shadow Service's port, on which every request is shadow traffic."""

    def __init__(self, emulator: RunningEmulator, namespace: str, apply_weight, name: str = "spark-canary",
                 primary: str = "spark"):
        self.emulator, self.namespace, self.name, self.apply_weight = emulator, namespace, name, apply_weight
        self.primary = primary
        self.applied: list[int] = []  # each weight put into nginx …
        self.mirrored: list[bool] = []  # … and whether with the mirror
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._reconcile, name="ingress-controller-stand-in", daemon=True)

    def state(self) -> tuple[int, bool]:
        """The canary weight the cluster's objects ask for, and whether they ask for the mirror."""
        primary = self.emulator.stored(INGRESSES, self.namespace, self.primary) or {}
        mirror = MIRROR_TARGET in (primary.get("metadata", {}).get("annotations") or {})
        return self.emulator.canary_weight(self.namespace, self.name) or 0, mirror

    def _reconcile(self) -> None:
        while not self._stop.wait(0.1):
            weight, mirror = self.state()
            if not self.applied or (self.applied[-1], self.mirrored[-1]) != (weight, mirror):
                self.apply_weight(weight, mirror=mirror)
                self.applied.append(weight)
                self.mirrored.append(mirror)

    def __enter__(self) -> IngressControllerStandIn:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(5)


class GatewayControllerStandIn(IngressControllerStandIn):
    """The same for a Gateway API controller: the HTTPRoute's rule that splits stable and canary
    gives the weight, and a `RequestMirror` filter on it the mirror."""

    def __init__(self, emulator: RunningEmulator, namespace: str, apply_weight, route: str = "spark"):
        super().__init__(emulator, namespace, apply_weight)
        self.route = route

    def state(self) -> tuple[int, bool]:
        route = self.emulator.stored(HTTP_ROUTES, self.namespace, self.route) or {}
        for rule in route.get("spec", {}).get("rules", []):
            weights = {ref.get("name"): int(ref.get("weight", 1)) for ref in rule.get("backendRefs", [])}
            if {"spark-stable", "spark-canary"} <= set(weights) and sum(weights.values()):
                mirror = any(f.get("type") == "RequestMirror" for f in rule.get("filters") or [])
                return round(100 * weights["spark-canary"] / sum(weights.values())), mirror
        return 0, False
