"""The Kubernetes routers and rollout checks, with the official client, against the Kubernetes API
emulator (kmock over real HTTP, extended with resourceVersion conflicts). Every weight is read
back from the emulator's stored objects, not from golive."""

from __future__ import annotations

import pytest

from golive.rollout import rollout_triggers
from golive.settings import KubernetesSettings
from tasks.kubernetes import (
    CANARY, CANARY_BY_HEADER, GatewayApiRouter, IngressNginxRouter, read_kubernetes_rollout, scale_canary,
)
from tasks.router_base import RouterError, RouterForbidden, retry_unless_refused
from tests.emulators.kubernetes import DEPLOYMENTS, HTTP_ROUTES, INGRESSES, PODS, canary_pod

WEIGHTS = (0, 1, 5, 25, 50, 100)


def settings(cluster: dict, **overrides) -> KubernetesSettings:
    return KubernetesSettings(**cluster, **overrides)


def stored_route_weights(emulator, namespace: str) -> tuple[int, int]:
    rule = emulator.stored(HTTP_ROUTES, namespace, "spark")["spec"]["rules"][1]
    weights = {ref["name"]: ref["weight"] for ref in rule["backendRefs"]}
    return weights["spark-stable"], weights["spark-canary"]


def test_ingress_nginx_creates_the_canary_ingress_from_the_primary(kube_emulator, cluster):
    namespace = cluster["namespace"]
    router = IngressNginxRouter(settings(cluster))
    assert kube_emulator.stored(INGRESSES, namespace, "spark-canary") is None
    assert router.read_weight() == 0  # no canary Ingress: everything goes to the primary

    assert router.set_weight(1) == 1

    canary = kube_emulator.stored(INGRESSES, namespace, "spark-canary")
    primary = kube_emulator.stored(INGRESSES, namespace, "spark")
    assert canary["metadata"]["annotations"][CANARY] == "true"
    assert canary["metadata"]["annotations"][CANARY_BY_HEADER] == "X-Canary"
    assert canary["spec"]["rules"][0]["host"] == primary["spec"]["rules"][0]["host"]
    assert canary["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "spark-canary"
    assert canary["spec"]["ingressClassName"] == "nginx"
    assert primary["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "spark-stable"


def test_ingress_nginx_weights_are_stored_and_read_back(kube_emulator, cluster):
    router = IngressNginxRouter(settings(cluster))
    for weight in WEIGHTS:
        assert router.set_weight(weight) == weight
        assert kube_emulator.canary_weight(cluster["namespace"]) == weight
        assert router.read_weight() == weight


def test_ingress_nginx_weight_total_scales_the_annotation(kube_emulator, cluster):
    router = IngressNginxRouter(settings(cluster, canary_weight_total=1000))
    assert router.set_weight(5) == 5
    assert kube_emulator.canary_weight(cluster["namespace"]) == 50


def test_gateway_api_weights_are_stored_and_read_back(kube_emulator, cluster):
    router = GatewayApiRouter(settings(cluster))
    assert router.read_weight() == 0
    for weight in WEIGHTS:
        assert router.set_weight(weight) == weight
        assert stored_route_weights(kube_emulator, cluster["namespace"]) == (100 - weight, weight)
        assert router.read_weight() == weight
    header_rule = kube_emulator.stored(HTTP_ROUTES, cluster["namespace"], "spark")["spec"]["rules"][0]
    assert header_rule["backendRefs"] == [{"name": "spark-canary", "port": 80}]  # the drills' rule is left alone


def test_gateway_api_route_without_both_services_is_a_clear_error(kube_emulator, cluster):
    router = GatewayApiRouter(settings(cluster, canary_service="spark-next"))
    with pytest.raises(RouterError, match="no rule sending to both spark-stable and spark-next"):
        router.set_weight(5)


@pytest.mark.parametrize("router_class, plural, name", [
    (IngressNginxRouter, "ingresses", "spark-canary"), (GatewayApiRouter, "httproutes", "spark"),
])
def test_a_conflict_on_the_first_patch_is_retried_by_rereading(kube_emulator, cluster, router_class, plural, name):
    router = router_class(settings(cluster))
    router.set_weight(1)
    before = len(kube_emulator.calls(plural))
    # Another writer changes the object between golive's read and its patch.
    kube_emulator.write_after_next_read(plural, name, {"metadata": {"labels": {"touched-by": "another-writer"}}})

    assert router.set_weight(5) == 5

    calls = kube_emulator.calls(plural)[before:]
    assert [action for action, _ in calls] == ["fetch", "update", "fetch", "update", "fetch"]  # refused, re-read, applied
    stored = kube_emulator.stored(INGRESSES if plural == "ingresses" else HTTP_ROUTES, cluster["namespace"], name)
    assert stored["metadata"]["labels"]["touched-by"] == "another-writer"  # the other write was not lost
    assert router.read_weight() == 5


def test_a_stale_write_without_rereading_is_refused(kube_emulator, cluster):
    """The emulator really enforces resourceVersion: the retry above is needed, not decorative."""
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=cluster["kubeconfig"], persist_config=False)
    networking = client.NetworkingV1Api(api)
    stale = networking.read_namespaced_ingress("spark", cluster["namespace"]).metadata.resource_version
    networking.patch_namespaced_ingress("spark", cluster["namespace"], {"metadata": {"labels": {"a": "1"}}})
    with pytest.raises(client.ApiException) as refused:
        networking.patch_namespaced_ingress("spark", cluster["namespace"],
                                            {"metadata": {"resourceVersion": stale, "labels": {"a": "2"}}})
    assert refused.value.status == 409


def test_a_forbidden_patch_stops_with_one_line_naming_verb_and_resource(kube_emulator, cluster):
    router = IngressNginxRouter(settings(cluster))
    router.set_weight(1)
    kube_emulator.fail_next("update", "ingresses", 403)
    with pytest.raises(RouterForbidden) as denied:
        router.set_weight(5)
    message = str(denied.value)
    assert "\n" not in message
    assert "patch" in message and "ingresses" in message and f"{cluster['namespace']}/spark-canary" in message
    assert kube_emulator.canary_weight(cluster["namespace"]) == 1


def test_a_forbidden_call_is_not_retried_by_prefect():
    from prefect.states import Failed

    assert retry_unless_refused(None, None, Failed(data=RouterForbidden("no"))) is False
    assert retry_unless_refused(None, None, Failed(data=RouterError("busy"))) is True


def test_server_errors_are_retried_with_backoff(kube_emulator, cluster):
    router = GatewayApiRouter(settings(cluster))
    kube_emulator.fail_next("update", "httproutes", 503, times=2)
    assert router.set_weight(25) == 25
    assert stored_route_weights(kube_emulator, cluster["namespace"]) == (75, 25)


def test_server_errors_that_do_not_stop_end_in_a_router_error(kube_emulator, cluster, monkeypatch):
    monkeypatch.setattr("tasks.kubernetes.BACKOFF_SECONDS", (0.01, 0.01))
    kube_emulator.fail_next("fetch", "httproutes", 503, times=3)
    with pytest.raises(RouterError, match="failed 3 times, last: HTTP 503"):
        GatewayApiRouter(settings(cluster)).read_weight()


def test_a_fit_canary_raises_no_trigger(cluster):
    observation = read_kubernetes_rollout.fn(settings(cluster))
    assert (observation.desired, observation.ready, observation.restarts) == (1, 1, 0)
    assert set(observation.versions) == {"1.4.0"}
    assert rollout_triggers(observation, "1.4.0", restarts_at_start=0) == {}


def test_version_mismatch_raises_its_trigger(kube_emulator, cluster):
    containers = [{"name": "spark", "image": "registry.example.com/shop/spark:1.3.9"}]
    kube_emulator.patch(DEPLOYMENTS, cluster["namespace"], "spark-canary",
                        {"spec": {"template": {"spec": {"containers": containers}}}})
    observation = read_kubernetes_rollout.fn(settings(cluster))
    assert list(rollout_triggers(observation, "1.4.0", 0)) == ["version-mismatch"]


def test_canary_not_ready_raises_its_trigger(kube_emulator, cluster):
    kube_emulator.patch(DEPLOYMENTS, cluster["namespace"], "spark-canary", {"status": {"readyReplicas": 0}})
    observation = read_kubernetes_rollout.fn(settings(cluster))
    assert list(rollout_triggers(observation, "1.4.0", 0)) == ["canary-not-ready"]


def test_rising_restarts_raise_crash_loop(kube_emulator, cluster):
    at_start = read_kubernetes_rollout.fn(settings(cluster)).restarts
    kube_emulator.put(PODS, cluster["namespace"], canary_pod(0, "registry.example.com/shop/spark:1.4.0", restarts=3))
    observation = read_kubernetes_rollout.fn(settings(cluster))
    fired = rollout_triggers(observation, "1.4.0", at_start)
    assert list(fired) == ["crash-loop"]
    assert "0 → 3" in fired["crash-loop"]


def test_scale_canary_to_zero(kube_emulator, cluster):
    assert scale_canary.fn(settings(cluster), 0) == 0
    assert kube_emulator.stored(DEPLOYMENTS, cluster["namespace"], "spark-canary")["spec"]["replicas"] == 0


def test_kubeconfig_that_does_not_exist_is_a_clear_error(cluster, tmp_path):
    with pytest.raises(RouterError, match="cannot load credentials"):
        IngressNginxRouter(settings({**cluster, "kubeconfig": str(tmp_path / "absent")}))
