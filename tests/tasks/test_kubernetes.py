"""The Kubernetes routers and rollout checks, with the official client, against the Kubernetes API
emulator (kmock over real HTTP, extended with resourceVersion conflicts). Every weight and fence
is read back from the emulator's stored objects, not from golive."""

from __future__ import annotations

import json
import socket
import time

import pytest
import yaml

from golive.fencing import Fence, FenceHolder, TargetState
from golive.rollout import rollout_triggers
from golive.settings import KubernetesSettings
from tasks.kubernetes import (
    CANARY, CANARY_BY_HEADER, CANARY_BY_HEADER_VALUE, CANARY_WEIGHT, CANARY_WEIGHT_TOTAL, FENCE_HOLDER, GENERATION,
    GatewayApiRouter, IngressNginxRouter, api_client, read_kubernetes_rollout, scale_canary,
)
from tasks.router_base import Deadline, RouterError, RouterFenced, RouterForbidden, retry_unless_refused
from tests.emulators.kubernetes import DEPLOYMENTS, HTTP_ROUTES, INGRESSES, PODS, canary_pod

WEIGHTS = (0, 1, 5, 25, 50, 100)
GO_LIVE = FenceHolder(kind="go-live", name="go-live v1.4.0", run="run-of-the-go-live")
ROLLBACK = FenceHolder(kind="rollback", name="rollback v1.4.0 (p95 regression)", run="run-of-the-rollback")

# Each router, the kind and name of the object that carries its weight and fence. (Test names stay
# short: the `cluster` fixture names a test's namespace after its first 50 characters.)
ROUTERS = pytest.mark.parametrize("router_class, kind, name", [
    (IngressNginxRouter, INGRESSES, "spark-canary"), (GatewayApiRouter, HTTP_ROUTES, "spark"),
], ids=["ingress-nginx", "gateway-api"])


def settings(cluster: dict, **overrides) -> KubernetesSettings:
    return KubernetesSettings(**cluster, **overrides)


def stored_route_weights(emulator, namespace: str) -> tuple[int, int]:
    rule = emulator.stored(HTTP_ROUTES, namespace, "spark")["spec"]["rules"][1]
    weights = {ref["name"]: ref["weight"] for ref in rule["backendRefs"]}
    return weights["spark-stable"], weights["spark-canary"]


def stored_weight(emulator, kind, namespace: str) -> int | None:
    """The canary's weight as the cluster holds it."""
    if kind == INGRESSES:
        return emulator.canary_weight(namespace)
    return stored_route_weights(emulator, namespace)[1]


def stored_annotations(emulator, kind, namespace: str, name: str) -> dict:
    return emulator.stored(kind, namespace, name)["metadata"].get("annotations") or {}


def plural(kind) -> str:
    return "ingresses" if kind == INGRESSES else "httproutes"


@pytest.fixture
def faults(kube_emulator):
    """The emulator's failures for one test, forgotten afterwards whatever happened."""
    try:
        yield kube_emulator
    finally:
        kube_emulator.clear_faults()


def test_ingress_nginx_creates_the_canary_ingress_from_the_primary(kube_emulator, cluster):
    namespace = cluster["namespace"]
    router = IngressNginxRouter(settings(cluster))
    assert kube_emulator.stored(INGRESSES, namespace, "spark-canary") is None
    assert router.read() == TargetState(weight=0)  # no canary Ingress: everything goes to the primary

    fence = router.take_generation(GO_LIVE)

    assert fence.generation == 1 and fence.holder.name == GO_LIVE.name
    canary = kube_emulator.stored(INGRESSES, namespace, "spark-canary")
    primary = kube_emulator.stored(INGRESSES, namespace, "spark")
    assert canary["metadata"]["annotations"][CANARY] == "true"
    assert canary["metadata"]["annotations"][CANARY_WEIGHT] == "0"  # made at weight 0, carrying the fence
    assert canary["metadata"]["annotations"][GENERATION] == "1"
    assert canary["metadata"]["annotations"][CANARY_BY_HEADER] == "X-Canary"
    assert canary["spec"]["rules"][0]["host"] == primary["spec"]["rules"][0]["host"]
    assert canary["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "spark-canary"
    assert canary["spec"]["ingressClassName"] == "nginx"
    assert primary["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "spark-stable"
    assert GENERATION not in (primary["metadata"].get("annotations") or {})

    assert router.set_weight(1, fence.generation) == 1
    assert kube_emulator.canary_weight(namespace) == 1


def test_ingress_nginx_weights_are_stored_and_read_back(kube_emulator, cluster):
    router = IngressNginxRouter(settings(cluster))
    fence = router.take_generation(GO_LIVE)
    for weight in WEIGHTS:
        assert router.set_weight(weight, fence.generation) == weight
        assert kube_emulator.canary_weight(cluster["namespace"]) == weight
        assert router.read() == TargetState(weight=weight, fence=fence)


def test_ingress_nginx_pins_the_canary_by_the_routers_value_only_and_a_rollback_keeps_it(kube_emulator, cluster,
                                                                                          tmp_path):
    from golive.settings import RouterSettings
    from tasks.router import router_for

    pin_file = tmp_path / "pin"
    pin_file.write_text("s3cret-pin\n")
    router_settings = RouterSettings(kind="ingress-nginx", kubernetes=settings(cluster), canary_pin_file=str(pin_file))
    fence = router_for(router_settings).take_generation(GO_LIVE)
    annotations = kube_emulator.stored(INGRESSES, cluster["namespace"], "spark-canary")["metadata"]["annotations"]
    assert (annotations[CANARY_BY_HEADER], annotations[CANARY_BY_HEADER_VALUE]) == ("X-Canary", "s3cret-pin")

    pin_file.unlink()  # unreadable at the rollback: the weight is written all the same, the pin kept
    assert router_for(router_settings).set_weight(0, fence.generation) == 0
    annotations = kube_emulator.stored(INGRESSES, cluster["namespace"], "spark-canary")["metadata"]["annotations"]
    assert annotations[CANARY_BY_HEADER_VALUE] == "s3cret-pin"

    pin_file.write_text("new-pin\n")  # changed since: in force from the next go-live's fence, before any weight
    router_for(router_settings).take_generation(GO_LIVE)
    annotations = kube_emulator.stored(INGRESSES, cluster["namespace"], "spark-canary")["metadata"]["annotations"]
    assert annotations[CANARY_BY_HEADER_VALUE] == "new-pin"
    unpinned = router_settings.model_copy(update={"canary_pin_file": None})  # no pin set: the value goes
    router_for(unpinned).take_generation(GO_LIVE)
    annotations = kube_emulator.stored(INGRESSES, cluster["namespace"], "spark-canary")["metadata"]["annotations"]
    assert CANARY_BY_HEADER_VALUE not in annotations


def test_ingress_nginx_weight_total_scales_the_annotation(kube_emulator, cluster):
    router = IngressNginxRouter(settings(cluster, canary_weight_total=1000))
    assert router.set_weight(5, router.take_generation(GO_LIVE).generation) == 5
    assert kube_emulator.canary_weight(cluster["namespace"]) == 50


def test_ingress_nginx_weight_total_left_from_other_settings_is_removed(kube_emulator, cluster):
    namespace = cluster["namespace"]
    router = IngressNginxRouter(settings(cluster))
    taken = router.take_generation(GO_LIVE)
    left = {"metadata": {"annotations": {CANARY_WEIGHT_TOTAL: "1000"}}}  # from settings changed since
    kube_emulator.patch(INGRESSES, namespace, "spark-canary", left)
    assert router.set_weight(25, taken.generation) == 25
    annotations = stored_annotations(kube_emulator, INGRESSES, namespace, "spark-canary")
    assert annotations[CANARY_WEIGHT] == "25" and CANARY_WEIGHT_TOTAL not in annotations


def test_ingress_nginx_weight_total_of_zero_is_one_line(kube_emulator, cluster):
    router = IngressNginxRouter(settings(cluster))
    router.take_generation(GO_LIVE)
    kube_emulator.patch(INGRESSES, cluster["namespace"], "spark-canary",
                        {"metadata": {"annotations": {CANARY_WEIGHT_TOTAL: "0"}}})
    with pytest.raises(RouterError, match=f"^ingress {cluster['namespace']}/spark-canary: {CANARY_WEIGHT_TOTAL} is 0: "):
        router.read()


def test_ingress_nginx_without_a_canary_ingress_was_never_taken(kube_emulator, cluster):
    router = IngressNginxRouter(settings(cluster))
    with pytest.raises(RouterFenced, match="generation 1 was never issued: the target is at generation 0$"):
        router.set_weight(25, 1)
    assert kube_emulator.stored(INGRESSES, cluster["namespace"], "spark-canary") is None


def test_ingress_nginx_canary_made_by_another_writer_meanwhile_is_read_again(kube_emulator, cluster):
    """Two takers both find no canary Ingress; the other creates it first, so golive's create is
    refused (409) and it reads again: its conditional take on generation 0 is then refused."""
    namespace = cluster["namespace"]
    other = IngressNginxRouter(settings(cluster))
    other.take_generation(ROLLBACK)
    made_by_the_other = kube_emulator.stored(INGRESSES, namespace, "spark-canary")
    kube_emulator.put(INGRESSES, namespace, {**made_by_the_other, "metadata": {"name": "parked"}})
    kube_emulator.emulator.objects[INGRESSES, namespace, "spark-canary"].delete()  # back to "no canary yet"
    kube_emulator.write_after_next_read("ingresses", "spark-canary", made_by_the_other)

    with pytest.raises(RouterFenced, match="the target moved on from generation 0: it is at generation 1, taken by "
                                           "rollback v1.4.0"):
        IngressNginxRouter(settings(cluster)).take_generation(GO_LIVE, if_generation=0)

    assert [action for action, _ in kube_emulator.calls("ingresses")][-4:] == ["fetch", "fetch", "create", "fetch"]
    assert stored_annotations(kube_emulator, INGRESSES, namespace, "spark-canary")[GENERATION] == "1"


def test_gateway_api_weights_are_stored_and_read_back(kube_emulator, cluster):
    router = GatewayApiRouter(settings(cluster))
    assert router.read() == TargetState(weight=0)
    fence = router.take_generation(GO_LIVE)
    for weight in WEIGHTS:
        assert router.set_weight(weight, fence.generation) == weight
        assert stored_route_weights(kube_emulator, cluster["namespace"]) == (100 - weight, weight)
        assert router.read() == TargetState(weight=weight, fence=fence)
    header_rule = kube_emulator.stored(HTTP_ROUTES, cluster["namespace"], "spark")["spec"]["rules"][0]
    assert header_rule["backendRefs"] == [{"name": "spark-canary", "port": 80}]  # the drills' rule is left alone


def test_gateway_api_route_without_both_services_is_a_clear_error(kube_emulator, cluster):
    router = GatewayApiRouter(settings(cluster, canary_service="spark-next"))
    fence = router.take_generation(GO_LIVE)
    with pytest.raises(RouterError, match="no rule sending to both spark-stable and spark-next"):
        router.set_weight(5, fence.generation)


@ROUTERS
def test_the_fence_is_two_annotations(kube_emulator, cluster, router_class, kind, name):
    router = router_class(settings(cluster))
    before = time.time()
    fence = router.take_generation(GO_LIVE)

    annotations = stored_annotations(kube_emulator, kind, cluster["namespace"], name)
    assert annotations[GENERATION] == "1"
    holder = json.loads(annotations[FENCE_HOLDER])
    assert set(holder) == {"kind", "name", "run", "at"}
    assert (holder["kind"], holder["name"], holder["run"]) == ("go-live", "go-live v1.4.0", "run-of-the-go-live")
    assert before <= holder["at"] <= time.time()
    assert annotations[FENCE_HOLDER] == json.dumps(holder, separators=(",", ":"))  # compact
    assert fence == Fence(generation=1, holder=FenceHolder(**holder))
    assert router.read().fence == fence

    assert router.take_generation(ROLLBACK).generation == 2
    annotations = stored_annotations(kube_emulator, kind, cluster["namespace"], name)
    assert annotations[GENERATION] == "2" and json.loads(annotations[FENCE_HOLDER])["kind"] == "rollback"


@ROUTERS
@pytest.mark.parametrize("annotation, value", [
    (GENERATION, "seven"), (GENERATION, "-1"),
    (FENCE_HOLDER, "{oops"), (FENCE_HOLDER, '{"kind": "intern", "name": "x"}'),
], ids=["gen-word", "gen-neg", "holder-json", "holder-kind"])
def test_a_malformed_fence_is_one_line(kube_emulator, cluster, router_class, kind, name, annotation, value):
    router = router_class(settings(cluster))
    router.take_generation(GO_LIVE)
    kube_emulator.patch(kind, cluster["namespace"], name, {"metadata": {"annotations": {annotation: value}}})
    with pytest.raises(RouterError) as malformed:
        router.read()
    message = str(malformed.value)
    assert "\n" not in message
    assert message.startswith(f"{'ingress' if kind == INGRESSES else 'httproute'} {cluster['namespace']}/{name}: "
                              f"annotation {annotation} ")


@ROUTERS
def test_a_stale_generations_write_is_refused(kube_emulator, cluster, router_class, kind, name):
    namespace = cluster["namespace"]
    go_live, rollback = router_class(settings(cluster)), router_class(settings(cluster))
    taken = go_live.take_generation(GO_LIVE)
    assert go_live.set_weight(5, taken.generation) == 5
    newer = rollback.take_generation(ROLLBACK)
    assert rollback.set_weight(0, newer.generation) == 0

    with pytest.raises(RouterFenced) as refused:
        go_live.set_weight(25, taken.generation)

    message = str(refused.value)
    assert "\n" not in message and f"{namespace}/{name}" in message
    assert "generation 1 is fenced: the target is at generation 2, taken by rollback v1.4.0 (p95 regression) " \
           "(flow run run-of-the-rollback) at " in message
    assert refused.value.fence == newer
    assert retry_unless_refused(None, None, _failed(refused.value)) is False
    assert stored_weight(kube_emulator, kind, namespace) == 0
    assert stored_annotations(kube_emulator, kind, namespace, name)[GENERATION] == "2"


@ROUTERS
def test_a_conditional_take_after_a_newer_one(kube_emulator, cluster, router_class, kind, name):
    namespace = cluster["namespace"]
    router = router_class(settings(cluster))
    read = router.read().fence.generation
    assert router.take_generation(GO_LIVE, if_generation=read).generation == 1
    assert router.take_generation(ROLLBACK, if_generation=1).generation == 2

    with pytest.raises(RouterFenced, match="the target moved on from generation 1: it is at generation 2, taken by "
                                           "rollback v1.4.0") as refused:
        router.take_generation(GO_LIVE, if_generation=1)
    assert refused.value.fence.generation == 2
    assert stored_annotations(kube_emulator, kind, namespace, name)[GENERATION] == "2"

    assert router.take_generation(GO_LIVE, if_generation=2).generation == 3
    annotations = stored_annotations(kube_emulator, kind, namespace, name)
    assert annotations[GENERATION] == "3" and json.loads(annotations[FENCE_HOLDER])["kind"] == "go-live"


@ROUTERS
def test_a_writer_paused_between_read_and_write(kube_emulator, cluster, router_class, kind, name):
    """The other writer takes the target right after golive's read: golive's patch carries a
    stale resourceVersion (409), it reads again, and finds itself fenced."""
    namespace = cluster["namespace"]
    router = router_class(settings(cluster))
    taken = router.take_generation(GO_LIVE)
    router.set_weight(5, taken.generation)
    before = len(kube_emulator.calls(plural(kind)))
    rollback = json.dumps({"kind": "rollback", "name": "rollback v1.4.0 (crashed)", "run": None, "at": time.time()})
    kube_emulator.write_after_next_read(plural(kind), name,
                                        {"metadata": {"annotations": {GENERATION: "2", FENCE_HOLDER: rollback}}})

    with pytest.raises(RouterFenced, match="generation 1 is fenced: the target is at generation 2, taken by "
                                           "rollback v1.4.0 \\(crashed\\) at ") as refused:
        router.set_weight(25, taken.generation)

    assert refused.value.fence.generation == 2
    assert [action for action, _ in kube_emulator.calls(plural(kind))[before:]] == ["fetch", "update", "fetch"]
    assert stored_weight(kube_emulator, kind, namespace) == 5  # not golive's 25


@ROUTERS
def test_a_deadline_holds_inside_an_attempt(faults, cluster, router_class, kind, name):
    router = router_class(settings(cluster))
    taken = router.take_generation(GO_LIVE)
    faults.fail_next("fetch", plural(kind), 503, times=100)
    budgeted = router_class(settings(cluster), deadline=Deadline.after(2.0))

    started = time.monotonic()
    with pytest.raises(RouterError, match="the budget ran out after [0-9]+ attempts, last: HTTP 503") as spent:
        budgeted.set_weight(25, taken.generation)
    elapsed = time.monotonic() - started

    assert 1.0 < elapsed < 4.0  # tried again while the budget allowed, and stopped inside it
    assert "\n" not in str(spent.value) and f"{cluster['namespace']}/{name}" in str(spent.value)


def test_a_deadline_holds_when_the_api_server_does_not_answer(cluster, tmp_path):
    """A server that accepts connections and never answers: each request's timeout is cut to the
    budget, and no request is tried again out of sight of it."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    kubeconfig = tmp_path / "silent-kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "silent",
        "clusters": [{"name": "silent", "cluster": {"server": f"http://127.0.0.1:{silent.getsockname()[1]}"}}],
        "users": [{"name": "golive", "user": {"token": "t"}}],
        "contexts": [{"name": "silent", "context": {"cluster": "silent", "user": "golive"}}]}))
    try:
        router = GatewayApiRouter(settings({**cluster, "kubeconfig": str(kubeconfig)}), deadline=Deadline.after(1.5))
        started = time.monotonic()
        with pytest.raises(RouterError, match="no answer"):
            router.set_weight(0, 1)
        assert time.monotonic() - started < 2.5
    finally:
        silent.close()


@ROUTERS
def test_a_conflict_is_retried_by_rereading(kube_emulator, cluster, router_class, kind, name):
    router = router_class(settings(cluster))
    taken = router.take_generation(GO_LIVE)
    router.set_weight(1, taken.generation)
    before = len(kube_emulator.calls(plural(kind)))
    # Another writer changes the object between golive's read and its patch, leaving the fence alone.
    kube_emulator.write_after_next_read(plural(kind), name, {"metadata": {"labels": {"touched-by": "another-writer"}}})

    assert router.set_weight(5, taken.generation) == 5

    # On the object that carries the weight (ingress-nginx also reads the primary, for the mirror).
    calls = [action for action, called in kube_emulator.calls(plural(kind))[before:] if called == name]
    assert calls == ["fetch", "update", "fetch", "update", "fetch"]  # refused, re-read, applied
    stored = kube_emulator.stored(kind, cluster["namespace"], name)
    assert stored["metadata"]["labels"]["touched-by"] == "another-writer"  # the other write was not lost
    assert stored_weight(kube_emulator, kind, cluster["namespace"]) == 5


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
    api.close()


def test_a_forbidden_patch_stops_with_one_line_naming_verb_and_resource(faults, cluster):
    router = IngressNginxRouter(settings(cluster))
    taken = router.take_generation(GO_LIVE)
    router.set_weight(1, taken.generation)
    faults.fail_next("update", "ingresses", 403)
    with pytest.raises(RouterForbidden) as denied:
        router.set_weight(5, taken.generation)
    message = str(denied.value)
    assert "\n" not in message
    assert "patch" in message and "ingresses" in message and f"{cluster['namespace']}/spark-canary" in message
    assert faults.canary_weight(cluster["namespace"]) == 1


def _failed(exc: Exception):
    from prefect.states import Failed

    return Failed(data=exc)


def test_refusals_are_not_retried_by_prefect():
    assert retry_unless_refused(None, None, _failed(RouterForbidden("no"))) is False
    assert retry_unless_refused(None, None, _failed(RouterFenced("fenced", Fence(generation=2)))) is False
    assert retry_unless_refused(None, None, _failed(RouterError("busy"))) is True


def test_server_errors_are_retried_with_backoff(faults, cluster):
    router = GatewayApiRouter(settings(cluster))
    taken = router.take_generation(GO_LIVE)
    faults.fail_next("update", "httproutes", 503, times=2)
    assert router.set_weight(25, taken.generation) == 25
    assert stored_route_weights(faults, cluster["namespace"]) == (75, 25)


def test_server_errors_that_do_not_stop_end_in_a_router_error(faults, cluster, monkeypatch):
    monkeypatch.setattr("tasks.kubernetes.BACKOFF_SECONDS", (0.01, 0.01))
    faults.fail_next("fetch", "httproutes", 503, times=3)
    with pytest.raises(RouterError, match="failed 3 times, last: HTTP 503"):
        GatewayApiRouter(settings(cluster)).read()


def test_one_client_per_settings_in_a_process(cluster):
    assert api_client(settings(cluster)) is api_client(settings(cluster))
    assert api_client(settings(cluster)) is not api_client(settings(cluster, context="emulator"))
    assert api_client(settings(cluster)).configuration.retries is False  # golive retries, inside its budget


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
