"""The shadow stage's mirror on the cluster routers, with the official client against the Kubernetes
API emulator (kmock over real HTTP, with resourceVersion conflicts). ingress-nginx carries it as
`mirror-target` on the primary Ingress, Gateway API as a `RequestMirror` filter on the HTTPRoute's
split rules; every check reads the emulator's stored objects, not golive's memory."""

from __future__ import annotations

import re

import pytest

from golive.fencing import FenceHolder
from golive.settings import KubernetesSettings, RouterSettings
from tasks.kubernetes import (
    CANARY_WEIGHT, GENERATION, MIRROR_BACKEND, MIRROR_GENERATION, MIRROR_REQUEST_BODY, MIRROR_TARGET,
    GatewayApiRouter, IngressNginxRouter,
)
from tasks.router import read_weight, set_weight
from tasks.router_base import RouterFenced, RouterRefused
from tests.emulators.kubernetes import HTTP_ROUTES, INGRESSES

GO_LIVE = FenceHolder(kind="go-live", name="go-live v1.4.0", run="run-of-the-go-live")
ROLLBACK = FenceHolder(kind="rollback", name="rollback v1.4.0 (p95 regression)", run="run-of-the-rollback")
SHADOW = {"shadow_service": "spark-shadow", "shadow_port": 8081}
GOLIVE_FILTER = {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "spark-shadow", "port": 8081}}}
ROUTERS = pytest.mark.parametrize("router_class", [IngressNginxRouter, GatewayApiRouter],
                                  ids=["ingress-nginx", "gateway-api"])


def settings(cluster: dict, **overrides) -> KubernetesSettings:
    return KubernetesSettings(**{**cluster, **SHADOW, **overrides})


def primary_annotations(emulator, namespace: str) -> dict:
    return emulator.stored(INGRESSES, namespace, "spark")["metadata"].get("annotations") or {}


def route(emulator, namespace: str) -> dict:
    return emulator.stored(HTTP_ROUTES, namespace, "spark")


def split_rule(emulator, namespace: str) -> dict:
    return route(emulator, namespace)["spec"]["rules"][1]


def stored_mirror(emulator, router_class, namespace: str) -> bool:
    """Whether the cluster's objects copy users' requests to the shadow Service."""
    if router_class is IngressNginxRouter:
        return MIRROR_TARGET in primary_annotations(emulator, namespace)
    return any(f.get("type") == "RequestMirror" for f in split_rule(emulator, namespace).get("filters") or [])


def test_ingress_nginx_mirror_is_the_primarys_mirror_target(kube_emulator, cluster):
    namespace = cluster["namespace"]
    router = IngressNginxRouter(settings(cluster))
    taken = router.take_generation(GO_LIVE)

    assert router.set_weight(0, taken.generation, mirror=True) == 0

    annotations = primary_annotations(kube_emulator, namespace)
    assert annotations[MIRROR_TARGET] == f"http://spark-shadow.{namespace}.svc.cluster.local:8081$request_uri"
    assert annotations[MIRROR_REQUEST_BODY] == "on"  # orders are POSTs: their copies need the body
    assert annotations[MIRROR_GENERATION] == str(taken.generation)
    canary = kube_emulator.stored(INGRESSES, namespace, "spark-canary")["metadata"]["annotations"]
    assert canary[CANARY_WEIGHT] == "0" and MIRROR_TARGET not in canary
    state = router.read()
    assert (state.weight, state.mirror, state.fence) == (0, True, taken)


def test_gateway_api_mirror_is_a_filter_on_each_split_rule(kube_emulator, cluster):
    namespace = cluster["namespace"]
    router = GatewayApiRouter(settings(cluster))
    taken = router.take_generation(GO_LIVE)

    assert router.set_weight(0, taken.generation, mirror=True) == 0

    stored = route(kube_emulator, namespace)
    assert stored["spec"]["rules"][1]["filters"] == [GOLIVE_FILTER]
    assert "filters" not in stored["spec"]["rules"][0]  # the drills' rule sends to the canary alone: no copies
    assert stored["metadata"]["annotations"][MIRROR_GENERATION] == str(taken.generation)
    assert stored["metadata"]["annotations"][GENERATION] == str(taken.generation)  # the same object, one write
    state = router.read()
    assert (state.weight, state.mirror, state.fence) == (0, True, taken)


@ROUTERS
@pytest.mark.parametrize("next_write", ["first-stage", "rollback"])
def test_any_later_write_takes_the_mirror_off(kube_emulator, cluster, router_class, next_write):
    namespace = cluster["namespace"]
    router = router_class(settings(cluster))
    taken = router.take_generation(GO_LIVE)
    router.set_weight(0, taken.generation, mirror=True)
    assert stored_mirror(kube_emulator, router_class, namespace)

    if next_write == "first-stage":
        assert router.set_weight(1, taken.generation) == 1
    else:
        rollback = router_class(settings(cluster))
        assert rollback.set_weight(0, rollback.take_generation(ROLLBACK).generation) == 0

    assert not stored_mirror(kube_emulator, router_class, namespace)
    assert router.read().mirror is False
    if router_class is IngressNginxRouter:
        assert MIRROR_GENERATION not in primary_annotations(kube_emulator, namespace)
    else:
        assert MIRROR_GENERATION not in route(kube_emulator, namespace)["metadata"]["annotations"]


@ROUTERS
def test_a_stale_generations_mirror_is_refused(kube_emulator, cluster, router_class):
    namespace = cluster["namespace"]
    go_live, rollback = router_class(settings(cluster)), router_class(settings(cluster))
    stale = go_live.take_generation(GO_LIVE)
    newer = rollback.take_generation(ROLLBACK)
    rollback.set_weight(0, newer.generation)

    with pytest.raises(RouterFenced, match=f"generation {stale.generation} is fenced: the target is at generation "
                                           f"{newer.generation}") as refused:
        go_live.set_weight(0, stale.generation, mirror=True)

    assert refused.value.fence == newer
    assert not stored_mirror(kube_emulator, router_class, namespace)


@ROUTERS
def test_a_stale_writer_leaves_a_newer_generations_mirror_on(kube_emulator, cluster, router_class):
    namespace = cluster["namespace"]
    stale_writer, newer_writer = router_class(settings(cluster)), router_class(settings(cluster))
    stale = stale_writer.take_generation(GO_LIVE)
    newer = newer_writer.take_generation(GO_LIVE)
    newer_writer.set_weight(0, newer.generation, mirror=True)

    with pytest.raises(RouterFenced):
        stale_writer.set_weight(0, stale.generation)

    assert stored_mirror(kube_emulator, router_class, namespace)
    assert newer_writer.read().mirror is True


def test_ingress_nginx_writer_fenced_before_its_primary_patch_leaves_no_mirror(kube_emulator, cluster, monkeypatch):
    """The go-live passes the fence on the canary Ingress, pauses, and a rollback takes the target
    and sets weight 0 (finding no mirror to take off); the go-live wakes and patches the primary.
    Its second read of the fence finds it fenced: it takes its own mirror off again."""
    namespace = cluster["namespace"]
    go_live, rollback = IngressNginxRouter(settings(cluster)), IngressNginxRouter(settings(cluster))
    taken = go_live.take_generation(GO_LIVE)
    patch_primary = go_live._mirror_on

    def paused_before_the_primary(generation: int) -> None:
        rollback.set_weight(0, rollback.take_generation(ROLLBACK).generation)
        patch_primary(generation)

    monkeypatch.setattr(go_live, "_mirror_on", paused_before_the_primary)
    before = len(kube_emulator.calls("ingresses"))

    with pytest.raises(RouterFenced, match="refused the mirror: generation 1 is fenced: the target is at generation 2"):
        go_live.set_weight(0, taken.generation, mirror=True)

    primary_writes = [action for action, name in kube_emulator.calls("ingresses")[before:]
                      if name == "spark" and action == "update"]
    assert primary_writes == ["update", "update"]  # the mirror went on, then off again
    assert not stored_mirror(kube_emulator, IngressNginxRouter, namespace)
    assert rollback.read().mirror is False


def test_ingress_nginx_writer_fenced_meanwhile_leaves_the_newer_mirror_on(kube_emulator, cluster, monkeypatch):
    """As above, but the writer that took the target meanwhile is a newer go-live in its shadow
    stage: the older writer neither overwrites its mirror nor takes it off."""
    namespace = cluster["namespace"]
    older, newer = IngressNginxRouter(settings(cluster)), IngressNginxRouter(settings(cluster))
    taken = older.take_generation(GO_LIVE)
    patch_primary = older._mirror_on

    def paused_before_the_primary(generation: int) -> None:
        newer.set_weight(0, newer.take_generation(GO_LIVE).generation, mirror=True)
        patch_primary(generation)

    monkeypatch.setattr(older, "_mirror_on", paused_before_the_primary)
    with pytest.raises(RouterFenced, match="refused the mirror: generation 1 is fenced"):
        older.set_weight(0, taken.generation, mirror=True)

    assert primary_annotations(kube_emulator, namespace)[MIRROR_GENERATION] == "2"
    assert stored_mirror(kube_emulator, IngressNginxRouter, namespace)


def test_gateway_api_keeps_the_filters_golive_did_not_write(kube_emulator, cluster):
    namespace = cluster["namespace"]
    theirs = [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "X-Env", "value": "prod"}]}},
              {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "analytics", "port": 80}}}]
    rules = route(kube_emulator, namespace)["spec"]["rules"]
    rules[1]["filters"] = theirs
    kube_emulator.patch(HTTP_ROUTES, namespace, "spark", {"spec": {"rules": rules}})
    router = GatewayApiRouter(settings(cluster))
    taken = router.take_generation(GO_LIVE)

    router.set_weight(0, taken.generation, mirror=True)
    assert split_rule(kube_emulator, namespace)["filters"] == [*theirs, GOLIVE_FILTER]

    router.set_weight(1, taken.generation)
    assert split_rule(kube_emulator, namespace)["filters"] == theirs
    assert router.read().mirror is False  # their mirror is not the shadow stage's


def test_ingress_nginx_keeps_the_annotations_golive_did_not_write(kube_emulator, cluster):
    namespace = cluster["namespace"]
    kube_emulator.patch(INGRESSES, namespace, "spark",
                        {"metadata": {"annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "8m"}}})
    router = IngressNginxRouter(settings(cluster))
    taken = router.take_generation(GO_LIVE)

    router.set_weight(0, taken.generation, mirror=True)
    router.set_weight(1, taken.generation)

    assert primary_annotations(kube_emulator, namespace) == {"nginx.ingress.kubernetes.io/proxy-body-size": "8m"}


def test_ingress_nginx_refuses_to_replace_a_mirror_it_did_not_write(kube_emulator, cluster):
    namespace = cluster["namespace"]
    theirs = "http://audit.shop.svc.cluster.local$request_uri"
    kube_emulator.patch(INGRESSES, namespace, "spark", {"metadata": {"annotations": {MIRROR_TARGET: theirs}}})
    router = IngressNginxRouter(settings(cluster))
    taken = router.take_generation(GO_LIVE)

    with pytest.raises(RouterRefused) as refused:
        router.set_weight(0, taken.generation, mirror=True)

    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"ingress {namespace}/spark: mirror: it carries a {MIRROR_TARGET} golive did not write")
    router.set_weight(0, taken.generation)  # a write without the mirror leaves theirs too
    assert primary_annotations(kube_emulator, namespace)[MIRROR_TARGET] == theirs
    assert router.read().mirror is False


@ROUTERS
def test_a_mirror_above_weight_zero_is_one_line(kube_emulator, cluster, router_class):
    router = router_class(settings(cluster))
    taken = router.take_generation(GO_LIVE)
    router.set_weight(1, taken.generation)

    with pytest.raises(RouterRefused) as refused:
        router.set_weight(5, taken.generation, mirror=True)

    assert "\n" not in str(refused.value)
    assert str(refused.value).endswith(": mirror: only at weight 0 (users on stable, their copies to the canary), "
                                       "not 5")
    assert (router.read().weight, router.read().mirror) == (1, False)


@ROUTERS
def test_without_a_shadow_service_there_is_no_mirror(kube_emulator, cluster, router_class):
    router = router_class(KubernetesSettings(**cluster))
    taken = router.take_generation(GO_LIVE)
    assert router.mirrors is False

    with pytest.raises(RouterRefused, match="mirror: no shadow Service to copy to "
                                            r"\(target.router.kubernetes.shadow_service\)$"):
        router.set_weight(0, taken.generation, mirror=True)

    kind = "ingress-nginx" if router_class is IngressNginxRouter else "gateway-api"
    unshadowed = RouterSettings(kind=kind, kubernetes=KubernetesSettings(**cluster))
    with pytest.raises(RouterRefused, match="shadow_service"):
        set_weight.fn(unshadowed, 0, taken.generation, mirror=True)
    assert not stored_mirror(kube_emulator, router_class, cluster["namespace"])


@ROUTERS
def test_the_router_tasks_mirror_and_read_it_back(kube_emulator, cluster, router_class):
    kind = "ingress-nginx" if router_class is IngressNginxRouter else "gateway-api"
    router_settings = RouterSettings(kind=kind, kubernetes=settings(cluster))
    taken = router_class(settings(cluster)).take_generation(GO_LIVE)

    written = set_weight.fn(router_settings, 0, taken.generation, mirror=True)

    assert (written.in_force, written.mirror) == (0, True)
    assert read_weight.fn(router_settings).mirror is True
    assert stored_mirror(kube_emulator, router_class, cluster["namespace"])


@ROUTERS
def test_a_rollback_without_the_shadow_service_still_takes_golives_mirror_off(kube_emulator, cluster, router_class):
    """The settings lost `shadow_service` between the shadow stage and the rollback: the mirror
    golive wrote is still known as golive's, from the marks it wrote beside it."""
    namespace = cluster["namespace"]
    go_live = router_class(settings(cluster))
    go_live.set_weight(0, go_live.take_generation(GO_LIVE).generation, mirror=True)
    if router_class is GatewayApiRouter:
        assert route(kube_emulator, namespace)["metadata"]["annotations"][MIRROR_BACKEND] == "spark-shadow:8081"

    rollback = router_class(KubernetesSettings(**cluster))
    assert rollback.read().mirror is True
    rollback.set_weight(0, rollback.take_generation(ROLLBACK).generation)

    assert not stored_mirror(kube_emulator, router_class, namespace)
    assert rollback.read().mirror is False


def test_gateway_api_knows_its_filter_as_the_api_server_stores_it(kube_emulator, cluster):
    """The HTTPRoute CRD defaults a backendRef's group to "" and kind to Service: the filter read
    back in that form is still golive's, reported on and taken off by the next write."""
    namespace = cluster["namespace"]
    router = GatewayApiRouter(settings(cluster))
    taken = router.take_generation(GO_LIVE)
    router.set_weight(0, taken.generation, mirror=True)
    rules = route(kube_emulator, namespace)["spec"]["rules"]
    defaulted = {"group": "", "kind": "Service", "name": "spark-shadow", "port": 8081}
    rules[1]["filters"] = [{"type": "RequestMirror", "requestMirror": {"backendRef": defaulted}}]
    kube_emulator.patch(HTTP_ROUTES, namespace, "spark", {"spec": {"rules": rules}})

    assert router.read().mirror is True
    router.set_weight(1, taken.generation)

    assert "filters" not in split_rule(kube_emulator, namespace)
    assert router.read().mirror is False


# ingress-nginx validates `mirror-target` as a server name and `mirror-request-body` as on/off
# (its annotation validation): a value outside these characters makes it reject the primary Ingress.
NGINX_SERVER_NAME = re.compile(r"[/\-._~a-zA-Z0-9:^$\[\](){}*+?|&=\\]*")


@pytest.mark.parametrize("cluster_domain", ["cluster.local", "k8s.shop.example"])
def test_ingress_nginx_mirror_passes_ingress_nginxs_annotation_validation(kube_emulator, cluster, cluster_domain):
    namespace = cluster["namespace"]
    router = IngressNginxRouter(settings(cluster, cluster_domain=cluster_domain))
    router.set_weight(0, router.take_generation(GO_LIVE).generation, mirror=True)

    annotations = primary_annotations(kube_emulator, namespace)
    target = annotations[MIRROR_TARGET]
    assert target == f"http://spark-shadow.{namespace}.svc.{cluster_domain}:8081$request_uri"
    assert NGINX_SERVER_NAME.fullmatch(target)
    assert annotations[MIRROR_REQUEST_BODY] in ("on", "off")
