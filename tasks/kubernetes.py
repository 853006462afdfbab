"""Kubernetes: the ingress-nginx and Gateway API routers, the canary Deployment's rollout, and
scaling the canary down, through the official client.

Each router keeps golive's fence (`golive.fencing`) on the object that carries the weight (the
canary Ingress, the HTTPRoute), in the annotations `golive.dev/generation` and
`golive.dev/fence-holder`. Every write is one read-modify-write: read the object, check the fence
it carries, write with the resourceVersion that read returned. A writer that changed the object
in between (a newer generation taken, say) makes the API server refuse the write with 409, and
golive reads again and checks the fence again; so a go-live paused between its read and its
write, and rolled back meanwhile, is refused when it wakes.

Every call goes through `_call`, which does what an API server asks of its clients: a 409 on a
stale resourceVersion is answered by re-reading and trying again (`_update`); 429, 5xx and
timeouts are retried with backoff; a 403 stops at once with one line naming the verb and the
resource the role lacks; any other refusal is one line naming the call and its status. A router's
`Deadline` bounds all of it: each request's timeout is cut to what is left of the budget, and no
backoff or re-read starts that would end past it.

The shadow stage's mirror (`KubernetesSettings.shadow_service`): neither router can mark a copy
with a header, so copies go to a Service whose port takes every request as shadow traffic. Gateway
API carries it as a `RequestMirror` filter on each rule that splits stable and canary, in the same
write as the weight; ingress-nginx only reads `mirror-target` on the primary Ingress, so there it
is a second object (see `IngressNginxRouter`). The mirror copies every request those rules or that
Ingress route: `target.router.mirror_routes` narrows only the sandbox's mirror.
"""

from __future__ import annotations

import atexit
import copy
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client import rest
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import ValidationError

from blocks.golive_blocks import KubernetesCluster
from golive.fencing import Fence, FenceHolder, TargetState, take_refusal, write_refusal
from golive.models import RolloutObservation
from golive.rollout import image_tag
from golive.settings import KubernetesSettings
from golive.validation import escape_line
from tasks.router_base import Deadline, RouterError, RouterFenced, RouterForbidden, RouterRefused, retry_unless_refused

__all__ = ["FENCE_HOLDER", "GENERATION", "MIRROR_BACKEND", "MIRROR_GENERATION", "MIRROR_REQUEST_BODY",
           "MIRROR_TARGET", "GatewayApiRouter", "IngressNginxRouter", "api_client", "read_kubernetes_rollout",
           "scale_canary"]

NGINX = "nginx.ingress.kubernetes.io/"
CANARY, CANARY_WEIGHT, CANARY_WEIGHT_TOTAL, CANARY_BY_HEADER, CANARY_BY_HEADER_VALUE = (
    f"{NGINX}canary", f"{NGINX}canary-weight", f"{NGINX}canary-weight-total", f"{NGINX}canary-by-header",
    f"{NGINX}canary-by-header-value")
GOLIVE = "golive.dev/"
GENERATION, FENCE_HOLDER = f"{GOLIVE}generation", f"{GOLIVE}fence-holder"
MIRROR_TARGET, MIRROR_REQUEST_BODY = f"{NGINX}mirror-target", f"{NGINX}mirror-request-body"
# Beside the mirror golive wrote: the generation that wrote it, and (Gateway API) the backend it copies to.
MIRROR_GENERATION, MIRROR_BACKEND = f"{GOLIVE}mirror-generation", f"{GOLIVE}mirror-backend"
GATEWAY_GROUP, GATEWAY_VERSION, HTTP_ROUTES = "gateway.networking.k8s.io", "v1", "httproutes"
MERGE_PATCH = "application/merge-patch+json"
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
BACKOFF_SECONDS = (0.2, 0.5, 1.0, 2.0, 4.0)
CONFLICT_ATTEMPTS = 5

T = TypeVar("T")

_clients: dict[str, client.ApiClient] = {}
_clients_lock = threading.Lock()


def api_client(settings: KubernetesSettings) -> client.ApiClient:
    """The process's client for these settings: made on first use (from the credentials block,
    the pod's service account, or a kubeconfig file), then shared, and closed at exit."""
    key = settings.model_dump_json()
    with _clients_lock:
        if key not in _clients:
            _clients[key] = _without_hidden_retries(_new_api_client(settings))
        return _clients[key]


def _new_api_client(settings: KubernetesSettings) -> client.ApiClient:
    try:
        if settings.credentials_block:
            return KubernetesCluster.load(settings.credentials_block).api_client()
        if settings.in_cluster:
            return KubernetesCluster().api_client()
        return config.new_client_from_config(config_file=settings.kubeconfig, context=settings.context,
                                             persist_config=False)
    except (ConfigException, OSError) as exc:
        raise RouterError(f"kubernetes: cannot load credentials: {exc}") from None


def _without_hidden_retries(api: client.ApiClient) -> client.ApiClient:
    # urllib3 would try a request that timed out three more times, each with the whole timeout,
    # out of sight of the budget; `_call` tries again itself, inside it.
    api.rest_client.close()
    api.configuration.retries = False
    api.rest_client = rest.RESTClientObject(api.configuration)
    return api


@atexit.register
def _close_clients() -> None:
    with _clients_lock:
        for api in _clients.values():
            api.close()
        _clients.clear()


def _attempts(count: int) -> str:
    return f"{count} attempt" if count == 1 else f"{count} attempts"


def _call(verb: str, resource: str, where: str, fn: Callable[..., Any], *args, deadline: Deadline,
          timeout: float, passes: tuple[int, ...] = (), **kwargs) -> Any:
    """One API call, each attempt's timeout cut to what is left of `deadline`; transient failures
    retried with backoff while the budget allows. The statuses in `passes` (404, 409) are the
    caller's to handle and come back as `ApiException`; any other refusal is a RouterError."""
    for attempt, delay in enumerate((*BACKOFF_SECONDS, None), start=1):
        try:
            return fn(*args, _request_timeout=deadline.timeout(timeout), **kwargs)
        except ApiException as exc:
            if exc.status in passes:
                raise
            if exc.status == 403:
                raise RouterForbidden(f"kubernetes forbids {verb} on {resource} {where}: the role needs "
                                      f"verb '{verb}' on '{resource}'") from None
            if exc.status == 401:
                raise RouterError(f"kubernetes: not authenticated for {verb} on {resource} {where}") from None
            if exc.status not in TRANSIENT_STATUSES:
                raise RouterError(f"kubernetes: {verb} on {resource} {where}: HTTP {exc.status} {exc.reason}") from None
            failure = f"HTTP {exc.status} {exc.reason}"
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            failure = f"no answer ({type(exc).__name__})"
        if delay is None:
            raise RouterError(f"kubernetes: {verb} on {resource} {where} failed {attempt} times, last: {failure}")
        if not deadline.allows(delay):
            raise RouterError(f"kubernetes: {verb} on {resource} {where}: the budget ran out after "
                              f"{_attempts(attempt)}, last: {failure}")
        time.sleep(delay)


def _update(describe: str, attempt: Callable[[], T], deadline: Deadline) -> T:
    """Run a read-modify-write `attempt` until it is not refused as stale (its writes pass 409),
    reading again only while the budget lasts."""
    for count in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            return attempt()
        except ApiException as exc:
            if not deadline.allows(0):
                raise RouterError(f"kubernetes: {describe}: the budget ran out after {_attempts(count)}, "
                                  f"last: HTTP {exc.status} {exc.reason}") from None
    raise RouterError(f"kubernetes: {describe}: still conflicting after {CONFLICT_ATTEMPTS} re-reads")


def _fence_from(annotations: dict, described: str) -> Fence:
    """The fence an object's annotations keep: generation 0 and no holder when they are absent."""
    generation = annotations.get(GENERATION, "0")
    if not isinstance(generation, str) or not re.fullmatch(r"[0-9]{1,18}", generation):
        raise RouterError(f"{described}: annotation {GENERATION} is not a generation: {str(generation)[:40]!r}")
    holder = annotations.get(FENCE_HOLDER)
    if holder is None:
        return Fence(generation=int(generation))
    try:
        return Fence(generation=int(generation), holder=FenceHolder.model_validate_json(holder))
    except ValidationError as exc:
        reason = " ".join(str(exc.errors()[0]["msg"]).split())
        raise RouterError(f"{described}: annotation {FENCE_HOLDER} is not a holder: {reason}") from None


def _fence_annotations(fence: Fence) -> dict[str, str]:
    holder = fence.holder.model_dump(mode="json") if fence.holder else None
    return {GENERATION: str(fence.generation),
            FENCE_HOLDER: json.dumps(holder, separators=(",", ":"), ensure_ascii=False)}


def _annotations_of(obj: dict | None) -> dict:
    return ((obj or {}).get("metadata") or {}).get("annotations") or {}


def _mirror_generation(annotations: dict) -> int | None:
    """The generation that wrote golive's mirror; None when golive's mirror is not there (0 when
    its mark is unreadable: any writer may take such a mirror off)."""
    written = annotations.get(MIRROR_GENERATION)
    if written is None:
        return None
    return int(written) if isinstance(written, str) and re.fullmatch(r"[0-9]{1,18}", written) else 0


def _resource_version(obj: dict, described: str) -> str:
    version = (obj.get("metadata") or {}).get("resourceVersion")
    if not version:
        raise RouterError(f"{described} came without a resourceVersion: golive writes it only on that condition")
    return version


class _KubernetesObjects:
    def __init__(self, settings: KubernetesSettings, api: client.ApiClient | None = None,
                 deadline: Deadline | None = None):
        self.settings = settings
        self.api = api or api_client(settings)
        self.namespace = settings.namespace
        self.timeout = settings.request_timeout_seconds
        self.deadline = deadline or Deadline()

    def as_dict(self, model: Any) -> dict:
        return self.api.sanitize_for_serialization(model)

    def where(self, name: str) -> str:
        return f"{self.namespace}/{name}"

    def call(self, verb: str, resource: str, where: str, fn: Callable[..., Any], *args,
             passes: tuple[int, ...] = (), **kwargs) -> Any:
        return _call(verb, resource, where, fn, *args, deadline=self.deadline, timeout=self.timeout,
                     passes=passes, **kwargs)

    def read_deployment(self, name: str) -> dict:
        apps = client.AppsV1Api(self.api)
        return self.as_dict(self.call("get", "deployments", self.where(name), apps.read_namespaced_deployment,
                                      name, self.namespace))


class _FencedRouter(_KubernetesObjects):
    """What both routers share: the fence read and checked in the same read-modify-write as the
    write it guards. Each router says how to read its object, its weight, and how to write them."""

    described: str  # "ingress shop/spark-canary": how every refusal names the object

    @property
    def mirrors(self) -> bool:
        """Whether `set_weight` takes `mirror=True`: a shadow Service is named to copy to."""
        return self.settings.mirrors

    def _get(self) -> dict | None:
        """The object carrying the weight; None when there is none yet."""
        raise NotImplementedError

    def _weight_of(self, obj: dict | None) -> int:
        raise NotImplementedError

    def _write_fence(self, obj: dict | None, fence: Fence) -> None:
        raise NotImplementedError

    def _write_weight(self, obj: dict | None, weight: int, mirror: bool, generation: int) -> None:
        """Write the weight; a router that keeps the mirror on the same object writes it here too
        (on with `mirror`, golive's off otherwise)."""
        raise NotImplementedError

    def _mirror_of(self, obj: dict | None) -> bool:
        """Whether golive's mirror copies users' requests now."""
        raise NotImplementedError

    def _after_weight(self, weight: int, generation: int, mirror: bool) -> None:
        """What a write does once the weight is in: a mirror kept on another object is written there."""

    def _fence_of(self, obj: dict | None) -> Fence:
        return _fence_from(_annotations_of(obj), self.described)

    def _shadow_backend(self) -> tuple[str, int]:
        if self.settings.shadow_service is None or self.settings.shadow_port is None:
            raise RouterRefused(f"{self.described}: mirror: no shadow Service to copy to "
                                "(target.router.kubernetes.shadow_service)")
        return self.settings.shadow_service, self.settings.shadow_port

    def read(self) -> TargetState:
        """The weight in force, the fence beside it and whether the mirror is on."""
        obj = self._get()
        return TargetState(weight=self._weight_of(obj), fence=self._fence_of(obj), mirror=self._mirror_of(obj))

    def read_weight(self) -> int:
        return self.read().weight

    def take_generation(self, holder: FenceHolder, if_generation: int | None = None) -> Fence:
        """The object's next generation, for `holder`; RouterFenced unless its newest is
        `if_generation`, when given."""
        def attempt() -> Fence:
            obj = self._get()
            fence = self._fence_of(obj)
            if why := take_refusal(fence, if_generation):
                raise RouterFenced(f"{self.described} refused a new generation: {why}", fence)
            taken = Fence(generation=fence.generation + 1, holder=holder.model_copy(update={"at": time.time()}))
            self._write_fence(obj, taken)
            return taken

        return _update(f"take a new generation at {self.described}", attempt, self.deadline)

    def set_weight(self, weight: int, generation: int, mirror: bool = False) -> int:
        """Set the canary's share as the holder of `generation`; RouterFenced unless it is the
        object's newest. `mirror` (at weight 0 only: the shadow stage) copies users' requests to
        the shadow Service; any write without it takes golive's mirror off. Returns the weight
        read back once written."""
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            raise RouterRefused(f"{self.described}: the weight must be a whole number from 0 to 100, not {weight!r}")
        if mirror and weight != 0:
            raise RouterRefused(f"{self.described}: mirror: only at weight 0 (users on stable, their copies to the "
                                f"canary), not {weight}")
        if mirror:
            self._shadow_backend()

        def attempt() -> None:
            obj = self._get()
            fence = self._fence_of(obj)
            if why := write_refusal(fence, generation):
                raise RouterFenced(f"{self.described} refused the weight {weight}: {why}", fence)
            self._write_weight(obj, weight, mirror, generation)

        _update(f"set the weight of {self.described}", attempt, self.deadline)
        self._after_weight(weight, generation, mirror)
        return self.read().weight


class IngressNginxRouter(_FencedRouter):
    """ingress-nginx: a canary Ingress beside the primary, weighted by `canary-weight`; the fence
    is kept on the canary Ingress, which golive makes from the primary when it first takes it.

    The mirror is `mirror-target` on the primary Ingress (ingress-nginx ignores it on a canary
    Ingress), so it is not on the object that carries the fence, and no one write covers both. The
    primary's mirror carries the generation that wrote it (`golive.dev/mirror-generation`). A mirror
    write checks the fence on the canary Ingress (writing weight 0 there), patches the primary with
    the resourceVersion it read, then reads the canary's fence again and takes its own mirror off
    if it was fenced meanwhile. Any write without the mirror (a rollback's above all) takes golive's
    mirror off the primary once it has passed the fence, unless a newer generation wrote it.

    What is left: a writer paused (or killed) between its primary patch and its second fence read
    leaves its mirror on until that read, or until the next write of any golive run, finds it. A
    rollback that ran meanwhile has then set weight 0 and may have finished with copies of users'
    requests still going to the shadow Service: users are answered by stable all along, the copies
    are filled on paper, and the mirror can slow stable (ingress-nginx waits for the copy's
    answer) for that long.
    """

    def __init__(self, settings: KubernetesSettings, api: client.ApiClient | None = None,
                 deadline: Deadline | None = None, canary_pin: str | bool | None = None):
        super().__init__(settings, api, deadline)
        self.networking = client.NetworkingV1Api(self.api)
        self.canary_name = settings.canary_ingress_name
        # `canary-by-header-value`: only this value of the header pins. None: no pin is set (any value
        # there is removed); False: one is set but could not be read (the Ingress keeps its value).
        self.canary_pin = canary_pin
        self.described = f"ingress {self.where(self.canary_name)}"

    def _read(self, name: str, passes: tuple[int, ...] = ()) -> dict:
        return self.as_dict(self.call("get", "ingresses", self.where(name), self.networking.read_namespaced_ingress,
                                      name, self.namespace, passes=passes))

    def _get(self) -> dict | None:
        try:
            return self._read(self.canary_name, passes=(404,))
        except ApiException:
            return None  # no canary Ingress: every request goes to the primary

    def _mirror_of(self, canary: dict | None) -> bool:
        annotations = _annotations_of(self._read(self.settings.ingress))
        return _mirror_generation(annotations) is not None and MIRROR_TARGET in annotations

    def _mirror_target(self) -> str:
        service, port = self._shadow_backend()
        return f"http://{service}.{self.namespace}.svc.{self.settings.cluster_domain}:{port}$request_uri"

    def _patch_primary(self, primary: dict, annotations: dict[str, str | None]) -> None:
        name = self.settings.ingress
        patch = {"metadata": {"resourceVersion": _resource_version(primary, f"ingress {self.where(name)}"),
                              "annotations": annotations}}
        # 409: changed since we read it; `_update` reads it again.
        self.call("patch", "ingresses", self.where(name), self.networking.patch_namespaced_ingress,
                  name, self.namespace, patch, passes=(409,), _content_type=MERGE_PATCH)

    def _mirror_on(self, generation: int) -> None:
        primary = self._read(self.settings.ingress)
        annotations = _annotations_of(primary)
        written = _mirror_generation(annotations)
        if written is None and annotations.get(MIRROR_TARGET):
            raise RouterRefused(f"ingress {self.where(self.settings.ingress)}: mirror: it carries a {MIRROR_TARGET} "
                                f"golive did not write ({escape_line(annotations[MIRROR_TARGET])[:80]})")
        if written is not None and written > generation:
            return  # a newer generation's mirror: the second fence read finds this writer fenced
        self._patch_primary(primary, {MIRROR_TARGET: self._mirror_target(), MIRROR_REQUEST_BODY: "on",
                                      MIRROR_GENERATION: str(generation)})

    def _mirror_off(self, generation: int) -> None:
        """Take golive's mirror off the primary, unless a newer generation than `generation` wrote it."""
        primary = self._read(self.settings.ingress)
        written = _mirror_generation(_annotations_of(primary))
        if written is None or written > generation:
            return
        self._patch_primary(primary, {MIRROR_TARGET: None, MIRROR_REQUEST_BODY: None, MIRROR_GENERATION: None})

    def _after_weight(self, weight: int, generation: int, mirror: bool) -> None:
        primary = f"ingress {self.where(self.settings.ingress)}"
        if not mirror:
            _update(f"take the mirror off {primary}", lambda: self._mirror_off(generation), self.deadline)
            return
        _update(f"mirror at {primary}", lambda: self._mirror_on(generation), self.deadline)
        fence = self._fence_of(self._get())
        if why := write_refusal(fence, generation):
            _update(f"take the mirror off {primary}", lambda: self._mirror_off(generation), self.deadline)
            raise RouterFenced(f"{self.described} refused the mirror: {why}", fence)

    def _weight_of(self, canary: dict | None) -> int:
        if canary is None:
            return 0
        annotations = canary.get("metadata", {}).get("annotations") or {}
        if annotations.get(CANARY) != "true":
            raise RouterError(f"{self.described} is not marked {CANARY}=\"true\"")
        try:
            weight = int(annotations.get(CANARY_WEIGHT, "0"))
            total = int(annotations.get(CANARY_WEIGHT_TOTAL, "100"))
        except ValueError:
            raise RouterError(f"{self.described}: {CANARY_WEIGHT} is not a number") from None
        if total <= 0:
            raise RouterError(f"{self.described}: {CANARY_WEIGHT_TOTAL} is {total}: no weight is a share of it")
        return round(weight * 100 / total)

    def _annotation_weight(self, percent: int) -> str:
        total = self.settings.canary_weight_total
        if percent * total % 100:
            raise RouterError(f"target.router.kubernetes.canary_weight_total: {percent}% of {total} "
                              "is not a whole weight")
        return str(percent * total // 100)

    def _canary_annotations(self, percent: int) -> dict[str, str]:
        annotations = {CANARY: "true", CANARY_WEIGHT: self._annotation_weight(percent), **self._header_annotations()}
        if self.settings.canary_weight_total != 100:
            annotations[CANARY_WEIGHT_TOTAL] = str(self.settings.canary_weight_total)
        return annotations

    def _header_annotations(self) -> dict[str, str | None]:
        """`canary-by-header` and its value: written with the fence too, so that a pin set or changed
        since the canary Ingress was made is in force from the go-live's first write."""
        annotations: dict[str, str | None] = {CANARY_BY_HEADER: self.settings.canary_header}
        if self.canary_pin is not False:
            annotations[CANARY_BY_HEADER_VALUE] = self.canary_pin or None
        return annotations

    def _create_canary(self, percent: int, fence: Fence | None) -> None:
        # As Flagger does: a copy of the primary, backends swapped to the canary Service.
        primary = self._read(self.settings.ingress)
        spec = copy.deepcopy(primary.get("spec", {}))
        backends = [path.get("backend", {}) for rule in spec.get("rules", [])
                    for path in rule.get("http", {}).get("paths", [])]
        backends.append(spec.get("defaultBackend") or {})
        swapped = 0
        for backend in backends:
            service = backend.get("service") or {}
            if service.get("name") == self.settings.stable_service:
                service["name"] = self.settings.canary_service
                swapped += 1
        if not swapped:
            raise RouterError(f"ingress {self.where(self.settings.ingress)} routes nothing to service "
                              f"{self.settings.stable_service}: no canary can be made of it")
        metadata = primary.get("metadata", {})
        kept = {k: v for k, v in (metadata.get("annotations") or {}).items()
                if not k.startswith((CANARY, GOLIVE, f"{NGINX}mirror-"))
                and k != "kubectl.kubernetes.io/last-applied-configuration"}
        fenced = _fence_annotations(fence) if fence else {}
        written = {**kept, **self._canary_annotations(percent), **fenced}
        annotations = {k: v for k, v in written.items() if v is not None}
        body = {
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": self.canary_name, "namespace": self.namespace, "labels": metadata.get("labels") or {},
                         "annotations": annotations},
            "spec": spec,
        }
        # 409 here: another writer created it since we looked; `_update` reads it again.
        self.call("create", "ingresses", self.where(self.canary_name), self.networking.create_namespaced_ingress,
                  self.namespace, body, passes=(409,))

    def _patch_annotations(self, canary: dict, annotations: dict[str, str | None]) -> None:
        patch = {"metadata": {"resourceVersion": _resource_version(canary, self.described), "annotations": annotations}}
        # 409: changed since we read it; 404: deleted since. Either way `_update` reads it again.
        self.call("patch", "ingresses", self.where(self.canary_name), self.networking.patch_namespaced_ingress,
                  self.canary_name, self.namespace, patch, passes=(404, 409), _content_type=MERGE_PATCH)

    def _write_fence(self, canary: dict | None, fence: Fence) -> None:
        if canary is None:
            return self._create_canary(0, fence)
        self._patch_annotations(canary, {**_fence_annotations(fence), **self._header_annotations()})

    def _write_weight(self, canary: dict | None, weight: int, mirror: bool, generation: int) -> None:
        # The mirror is the primary's: `_after_weight` writes it once this weight is in.
        if canary is None:
            return self._create_canary(weight, None)  # generation 0: nobody ever took the target
        annotations: dict[str, str | None] = {CANARY_WEIGHT_TOTAL: None, **self._canary_annotations(weight)}
        # A total left from other settings would scale the weight written here (None removes it).
        self._patch_annotations(canary, annotations)


class GatewayApiRouter(_FencedRouter):
    """Gateway API: an HTTPRoute whose rules send to the stable and canary Services by weight; the
    fence is kept on the HTTPRoute."""

    def __init__(self, settings: KubernetesSettings, api: client.ApiClient | None = None,
                 deadline: Deadline | None = None):
        super().__init__(settings, api, deadline)
        self.custom = client.CustomObjectsApi(self.api)
        self.name = settings.http_route
        self.described = f"httproute {self.where(self.name)}"

    def _get(self) -> dict:
        return self.call("get", "httproutes", self.where(self.name), self.custom.get_namespaced_custom_object,
                         GATEWAY_GROUP, GATEWAY_VERSION, self.namespace, HTTP_ROUTES, self.name)

    def _split(self, route: dict) -> list[tuple[dict, dict, dict]]:
        """(rule, stable, canary backendRefs) of every rule that sends to both."""
        pairs = []
        for rule in route.get("spec", {}).get("rules", []):
            refs = {ref.get("name"): ref for ref in rule.get("backendRefs", [])
                    if ref.get("kind", "Service") == "Service"}
            if self.settings.stable_service in refs and self.settings.canary_service in refs:
                pairs.append((rule, refs[self.settings.stable_service], refs[self.settings.canary_service]))
        if not pairs:
            raise RouterError(f"{self.described} has no rule sending to both "
                              f"{self.settings.stable_service} and {self.settings.canary_service}")
        return pairs

    def _weight_of(self, route: dict) -> int:
        shares = set()
        for _rule, stable, canary in self._split(route):
            # An absent weight is 1 in Gateway API.
            stable_weight, canary_weight = int(stable.get("weight", 1)), int(canary.get("weight", 1))
            if stable_weight + canary_weight == 0:
                raise RouterError(f"{self.described} weighs both backends 0: no traffic at all")
            shares.add(round(canary_weight * 100 / (stable_weight + canary_weight)))
        if len(shares) > 1:
            raise RouterError(f"{self.described}: its rules split traffic differently: {sorted(shares)}%")
        return shares.pop()

    def _patch(self, route: dict, patch: dict) -> None:
        patch["metadata"] = {**patch.get("metadata", {}), "resourceVersion": _resource_version(route, self.described)}
        self.call("patch", "httproutes", self.where(self.name), self.custom.patch_namespaced_custom_object,
                  GATEWAY_GROUP, GATEWAY_VERSION, self.namespace, HTTP_ROUTES, self.name, patch,
                  passes=(409,), _content_type=MERGE_PATCH)

    def _write_fence(self, route: dict, fence: Fence) -> None:
        self._patch(route, {"metadata": {"annotations": _fence_annotations(fence)}})

    def _mirror_filter(self) -> dict:
        service, port = self._shadow_backend()
        return {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": service, "port": port}}}

    def _golive_backends(self, route: dict) -> set[tuple[str, int]]:
        """The backends golive mirrors to: the settings' shadow Service, and the one it wrote last
        (settings may have changed since)."""
        backends = set()
        if self.settings.shadow_service and self.settings.shadow_port:
            backends.add((self.settings.shadow_service, self.settings.shadow_port))
        name, _, port = str(_annotations_of(route).get(MIRROR_BACKEND, "")).rpartition(":")
        if name and port.isdigit():
            backends.add((name, int(port)))
        return backends

    def _is_golive_mirror(self, rule_filter: dict, backends: set[tuple[str, int]]) -> bool:
        if not isinstance(rule_filter, dict) or rule_filter.get("type") != "RequestMirror":
            return False
        ref = (rule_filter.get("requestMirror") or {}).get("backendRef") or {}
        return (ref.get("group", "") == "" and ref.get("kind", "Service") == "Service"
                and ref.get("namespace", self.namespace) == self.namespace
                and (ref.get("name"), ref.get("port")) in backends)

    def _mirror_of(self, route: dict) -> bool:
        backends = self._golive_backends(route)
        return any(self._is_golive_mirror(rule_filter, backends)
                   for rule, _stable, _canary in self._split(route) for rule_filter in rule.get("filters") or [])

    def _write_weight(self, route: dict, weight: int, mirror: bool, generation: int) -> None:
        backends = self._golive_backends(route)
        for rule, stable, canary in self._split(route):
            stable["weight"], canary["weight"] = 100 - weight, weight
            # Filters golive did not write stay as they are, in their order.
            filters = [f for f in rule.get("filters") or [] if not self._is_golive_mirror(f, backends)]
            if mirror:
                filters.append(self._mirror_filter())
            if filters:
                rule["filters"] = filters
            else:
                rule.pop("filters", None)
        service, port = self._shadow_backend() if mirror else (None, None)
        marks = ({MIRROR_GENERATION: str(generation), MIRROR_BACKEND: f"{service}:{port}"} if mirror
                 else {MIRROR_GENERATION: None, MIRROR_BACKEND: None})
        self._patch(route, {"metadata": {"annotations": marks}, "spec": {"rules": route["spec"]["rules"]}})


def _matches(labels: dict, selector: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@task(name="read the canary's rollout", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE,
      retry_condition_fn=retry_unless_refused)
def read_kubernetes_rollout(settings: KubernetesSettings) -> RolloutObservation:
    """The canary Deployment's replicas asked and ready, its container's image tags (template and
    pods), and its pods' restarts and waiting reasons."""
    objects = _KubernetesObjects(settings)
    core = client.CoreV1Api(objects.api)
    name = settings.canary_deployment
    deployment = objects.read_deployment(name)
    spec, status = deployment.get("spec", {}), deployment.get("status") or {}
    containers = spec.get("template", {}).get("spec", {}).get("containers", [])
    container = settings.container or (containers[0]["name"] if containers else "")
    versions = [image_tag(c.get("image", "")) for c in containers if c.get("name") == container]

    selector = spec.get("selector", {}).get("matchLabels", {})
    pods = objects.as_dict(objects.call("list", "pods", objects.namespace, core.list_namespaced_pod, objects.namespace,
                                        label_selector=",".join(f"{k}={v}" for k, v in selector.items()))
                           ).get("items", [])
    restarts, waiting = 0, []
    for pod in pods:
        if not _matches(pod.get("metadata", {}).get("labels") or {}, selector):
            continue
        for state in (pod.get("status") or {}).get("containerStatuses") or []:
            if state.get("name") != container:
                continue
            restarts += int(state.get("restartCount", 0))
            versions.append(image_tag(state.get("image", "")))
            if reason := ((state.get("state") or {}).get("waiting") or {}).get("reason"):
                waiting.append(reason)
    return RolloutObservation(
        source=f"deployment {objects.where(name)}", desired=int(spec.get("replicas", 1)),
        ready=int(status.get("readyReplicas") or 0), versions=versions, restarts=restarts, waiting=waiting,
        detail=f"{len(pods)} pods", at=time.time(),
    )


@task(name="scale the canary", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE,
      retry_condition_fn=retry_unless_refused)
def scale_canary(settings: KubernetesSettings, replicas: int) -> int:
    """Set the canary Deployment's replicas; the count it then asks for, read back."""
    objects = _KubernetesObjects(settings)
    apps = client.AppsV1Api(objects.api)
    name = settings.canary_deployment
    patch = {"spec": {"replicas": replicas}}
    objects.call("patch", "deployments", objects.where(name), apps.patch_namespaced_deployment, name,
                 objects.namespace, patch, _content_type=MERGE_PATCH)
    return int(objects.read_deployment(name).get("spec", {}).get("replicas", 0))
