"""Kubernetes: the ingress-nginx and Gateway API routers, the canary Deployment's rollout, and
scaling the canary down, through the official client.

Every call goes through `_call`, which does what an API server asks of its clients: a 409 on a
stale resourceVersion is answered by re-reading and trying again (`_update`); 429, 5xx and
timeouts are retried with backoff; a 403 stops at once with one line naming the verb and the
resource the role lacks; any other refusal is one line naming the call and its status.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from prefect import task
from prefect.cache_policies import NO_CACHE

from blocks.golive_blocks import KubernetesCluster
from golive.models import RolloutObservation
from golive.rollout import image_tag
from golive.settings import KubernetesSettings
from tasks.router_base import RouterError, RouterForbidden, retry_unless_forbidden

__all__ = ["GatewayApiRouter", "IngressNginxRouter", "api_client", "read_kubernetes_rollout", "scale_canary"]

NGINX = "nginx.ingress.kubernetes.io/"
CANARY, CANARY_WEIGHT, CANARY_WEIGHT_TOTAL, CANARY_BY_HEADER = (
    f"{NGINX}canary", f"{NGINX}canary-weight", f"{NGINX}canary-weight-total", f"{NGINX}canary-by-header")
GATEWAY_GROUP, GATEWAY_VERSION, HTTP_ROUTES = "gateway.networking.k8s.io", "v1", "httproutes"
MERGE_PATCH = "application/merge-patch+json"
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
BACKOFF_SECONDS = (0.2, 0.5, 1.0, 2.0, 4.0)
CONFLICT_ATTEMPTS = 5


def api_client(settings: KubernetesSettings) -> client.ApiClient:
    """A client from the credentials block, the pod's service account, or a kubeconfig file."""
    try:
        if settings.credentials_block:
            return KubernetesCluster.load(settings.credentials_block).api_client()
        if settings.in_cluster:
            return KubernetesCluster().api_client()
        return config.new_client_from_config(config_file=settings.kubeconfig, context=settings.context,
                                             persist_config=False)
    except (ConfigException, OSError) as exc:
        raise RouterError(f"kubernetes: cannot load credentials: {exc}") from None


def _call(verb: str, resource: str, where: str, fn: Callable[..., Any], *args,
          passes: tuple[int, ...] = (), **kwargs) -> Any:
    """One API call; transient failures retried with backoff. The statuses in `passes` (404, 409)
    are the caller's to handle and come back as `ApiException`; any other refusal is a RouterError."""
    for delay in (*BACKOFF_SECONDS, None):
        try:
            return fn(*args, **kwargs)
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
            raise RouterError(f"kubernetes: {verb} on {resource} {where} failed {len(BACKOFF_SECONDS) + 1} "
                              f"times, last: {failure}")
        time.sleep(delay)


def _update(describe: str, attempt: Callable[[], Any]) -> Any:
    """Run a read-modify-write `attempt` until it is not refused as stale (its writes pass 409)."""
    for _ in range(CONFLICT_ATTEMPTS):
        try:
            return attempt()
        except ApiException:
            continue
    raise RouterError(f"kubernetes: {describe}: still conflicting after {CONFLICT_ATTEMPTS} re-reads")


class _KubernetesObjects:
    def __init__(self, settings: KubernetesSettings, api: client.ApiClient | None = None):
        self.settings = settings
        self.api = api or api_client(settings)
        self.namespace = settings.namespace
        self.timeout = settings.request_timeout_seconds

    def as_dict(self, model: Any) -> dict:
        return self.api.sanitize_for_serialization(model)

    def where(self, name: str) -> str:
        return f"{self.namespace}/{name}"

    def read_deployment(self, name: str) -> dict:
        apps = client.AppsV1Api(self.api)
        return self.as_dict(_call("get", "deployments", self.where(name), apps.read_namespaced_deployment,
                                  name, self.namespace, _request_timeout=self.timeout))


class IngressNginxRouter(_KubernetesObjects):
    """ingress-nginx: a canary Ingress beside the primary, weighted by `canary-weight`."""

    def __init__(self, settings: KubernetesSettings, api: client.ApiClient | None = None):
        super().__init__(settings, api)
        self.networking = client.NetworkingV1Api(self.api)
        self.canary_name = settings.canary_ingress_name

    def _read(self, name: str, passes: tuple[int, ...] = ()) -> dict:
        return self.as_dict(_call("get", "ingresses", self.where(name), self.networking.read_namespaced_ingress,
                                  name, self.namespace, passes=passes, _request_timeout=self.timeout))

    def _annotation_weight(self, percent: int) -> str:
        total = self.settings.canary_weight_total
        if percent * total % 100:
            raise RouterError(f"target.router.kubernetes.canary_weight_total: {percent}% of {total} is not a whole weight")
        return str(percent * total // 100)

    def _canary_annotations(self, percent: int) -> dict[str, str]:
        annotations = {CANARY: "true", CANARY_WEIGHT: self._annotation_weight(percent),
                       CANARY_BY_HEADER: self.settings.canary_header}
        if self.settings.canary_weight_total != 100:
            annotations[CANARY_WEIGHT_TOTAL] = str(self.settings.canary_weight_total)
        return annotations

    def _create_canary(self, percent: int) -> None:
        # As Flagger does: a copy of the primary, backends swapped to the canary Service.
        primary = self._read(self.settings.ingress)
        spec = copy.deepcopy(primary.get("spec", {}))
        backends = [path.get("backend", {}) for rule in spec.get("rules", []) for path in rule.get("http", {}).get("paths", [])]
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
                if not k.startswith(CANARY) and k != "kubectl.kubernetes.io/last-applied-configuration"}
        body = {
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": self.canary_name, "namespace": self.namespace, "labels": metadata.get("labels") or {},
                         "annotations": {**kept, **self._canary_annotations(percent)}},
            "spec": spec,
        }
        # 409 here: another writer created it since we looked; `_update` reads it again.
        _call("create", "ingresses", self.where(self.canary_name), self.networking.create_namespaced_ingress,
              self.namespace, body, passes=(409,), _request_timeout=self.timeout)

    def set_weight(self, weight: int) -> int:
        def attempt() -> None:
            try:
                current = self._read(self.canary_name, passes=(404,))
            except ApiException:
                return self._create_canary(weight)
            patch = {"metadata": {"resourceVersion": current["metadata"].get("resourceVersion"),
                                  "annotations": self._canary_annotations(weight)}}
            _call("patch", "ingresses", self.where(self.canary_name), self.networking.patch_namespaced_ingress,
                  self.canary_name, self.namespace, patch, passes=(409,), _content_type=MERGE_PATCH,
                  _request_timeout=self.timeout)

        _update(f"set the weight of ingress {self.where(self.canary_name)}", attempt)
        return self.read_weight()

    def read_weight(self) -> int:
        try:
            canary = self._read(self.canary_name, passes=(404,))
        except ApiException:
            return 0  # no canary Ingress: every request goes to the primary
        annotations = canary.get("metadata", {}).get("annotations") or {}
        if annotations.get(CANARY) != "true":
            raise RouterError(f"ingress {self.where(self.canary_name)} is not marked {CANARY}=\"true\"")
        try:
            weight = int(annotations.get(CANARY_WEIGHT, "0"))
            total = int(annotations.get(CANARY_WEIGHT_TOTAL, "100"))
        except ValueError:
            raise RouterError(f"ingress {self.where(self.canary_name)}: {CANARY_WEIGHT} is not a number") from None
        return round(weight * 100 / total)


class GatewayApiRouter(_KubernetesObjects):
    """Gateway API: an HTTPRoute whose rules send to the stable and canary Services by weight."""

    def __init__(self, settings: KubernetesSettings, api: client.ApiClient | None = None):
        super().__init__(settings, api)
        self.custom = client.CustomObjectsApi(self.api)
        self.name = settings.http_route

    def _read(self) -> dict:
        return _call("get", "httproutes", self.where(self.name), self.custom.get_namespaced_custom_object,
                     GATEWAY_GROUP, GATEWAY_VERSION, self.namespace, HTTP_ROUTES, self.name,
                     _request_timeout=self.timeout)

    def _split(self, route: dict) -> list[tuple[dict, dict]]:
        """(stable, canary) backendRefs of every rule that sends to both."""
        pairs = []
        for rule in route.get("spec", {}).get("rules", []):
            refs = {ref.get("name"): ref for ref in rule.get("backendRefs", []) if ref.get("kind", "Service") == "Service"}
            if self.settings.stable_service in refs and self.settings.canary_service in refs:
                pairs.append((refs[self.settings.stable_service], refs[self.settings.canary_service]))
        if not pairs:
            raise RouterError(f"httproute {self.where(self.name)} has no rule sending to both "
                              f"{self.settings.stable_service} and {self.settings.canary_service}")
        return pairs

    def set_weight(self, weight: int) -> int:
        def attempt() -> None:
            route = self._read()
            for stable, canary in self._split(route):
                stable["weight"], canary["weight"] = 100 - weight, weight
            patch = {"metadata": {"resourceVersion": route["metadata"].get("resourceVersion")},
                     "spec": {"rules": route["spec"]["rules"]}}
            _call("patch", "httproutes", self.where(self.name), self.custom.patch_namespaced_custom_object,
                  GATEWAY_GROUP, GATEWAY_VERSION, self.namespace, HTTP_ROUTES, self.name, patch,
                  passes=(409,), _content_type=MERGE_PATCH, _request_timeout=self.timeout)

        _update(f"set the weights of httproute {self.where(self.name)}", attempt)
        return self.read_weight()

    def read_weight(self) -> int:
        shares = set()
        for stable, canary in self._split(self._read()):
            # An absent weight is 1 in Gateway API.
            stable_weight, canary_weight = int(stable.get("weight", 1)), int(canary.get("weight", 1))
            if stable_weight + canary_weight == 0:
                raise RouterError(f"httproute {self.where(self.name)} weighs both backends 0: no traffic at all")
            shares.add(round(canary_weight * 100 / (stable_weight + canary_weight)))
        if len(shares) > 1:
            raise RouterError(f"httproute {self.where(self.name)}: its rules split traffic differently: {sorted(shares)}%")
        return shares.pop()


def _matches(labels: dict, selector: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@task(name="read the canary's rollout", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE,
      retry_condition_fn=retry_unless_forbidden)
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
    pods = objects.as_dict(_call("list", "pods", objects.namespace, core.list_namespaced_pod, objects.namespace,
                                 label_selector=",".join(f"{k}={v}" for k, v in selector.items()),
                                 _request_timeout=objects.timeout)).get("items", [])
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
      retry_condition_fn=retry_unless_forbidden)
def scale_canary(settings: KubernetesSettings, replicas: int) -> int:
    """Set the canary Deployment's replicas; the count it then asks for, read back."""
    objects = _KubernetesObjects(settings)
    apps = client.AppsV1Api(objects.api)
    name = settings.canary_deployment
    patch = {"spec": {"replicas": replicas}}
    _call("patch", "deployments", objects.where(name), apps.patch_namespaced_deployment, name, objects.namespace,
          patch, _content_type=MERGE_PATCH, _request_timeout=objects.timeout)
    return int(objects.read_deployment(name).get("spec", {}).get("replicas", 0))
