"""The go-live flow with the ingress-nginx router: the Ingress lives in the Kubernetes API
emulator, users' traffic and the signals in the sandbox (nginx, Prometheus). A stand-in for
ingress-nginx's controller carries the canary Ingress's weight, and the primary's mirror, into
the sandbox's nginx; one for a Gateway API controller, the HTTPRoute's split and mirror."""

from __future__ import annotations

import json

import pytest

from golive import layout
from golive.stage import SHADOW_STAGE
from tests.emulators.kubernetes import (
    DEPLOYMENTS, INGRESSES, PODS, GatewayControllerStandIn, IngressControllerStandIn, canary_pod,
)
from tests.flows.helpers import EvidenceWatcher, flow_settings, stage_started

pytestmark = pytest.mark.sandbox


@pytest.fixture
def on_kubernetes(sandbox, canary_weight, kube_emulator, cluster, signing_key, tmp_path):
    """Settings for the ingress-nginx router in this test's namespace, with the controller running."""
    # The sandbox's nginx stands in for the controller's: it pins by the same value golive writes
    # as canary-by-header-value, which the drills send.
    settings = flow_settings(sandbox, signing_key, tmp_path, [25, 100], target={"router": {
        "kind": "ingress-nginx", "kubernetes": {**cluster, "scale_canary_to_zero": True},
        "canary_pin_file": str(sandbox.canary_pin_file)}})
    with IngressControllerStandIn(kube_emulator, cluster["namespace"], sandbox.set_weight) as controller:
        yield settings, controller


def run_go_live(settings: dict):
    from flows.go_live import go_live

    return go_live(settings["release"], settings=settings, return_state=True)


def test_a_release_goes_live_through_the_canary_ingress(on_kubernetes, kube_emulator, cluster, sandbox, tmp_path):
    settings, controller = on_kubernetes
    state = run_go_live(settings)

    assert state.name == "Live", state.message
    assert kube_emulator.canary_weight(cluster["namespace"]) == 100
    assert controller.applied == [0, 25, 100]
    annotations = kube_emulator.stored(INGRESSES, cluster["namespace"], "spark-canary")["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/canary-by-header-value"] == sandbox.canary_pin()
    folder = tmp_path / "v1.4.0"
    rollout = json.loads((folder / layout.rollout(25)).read_text())
    assert rollout["source"] == f"deployment {cluster['namespace']}/spark-canary"
    assert rollout["versions"] == ["1.4.0", "1.4.0"]  # the template's tag and the running pod's
    readback = json.loads((folder / layout.weight_readback(100)).read_text())
    assert readback["in_force"] == 100


def test_a_canary_fault_rolls_back_and_the_ingress_ends_at_zero(on_kubernetes, sandbox, kube_emulator, cluster,
                                                                  tmp_path):
    settings, _ = on_kubernetes
    folder = tmp_path / "v1.4.0"
    with EvidenceWatcher(folder, stage_started(25), lambda: sandbox.set_faults("canary", {"latency_ms": 400})):
        state = run_go_live(settings)

    assert (state.type.value, state.name) == ("FAILED", "RolledBack")
    assert "breach:api_p95_ms" in state.message
    assert kube_emulator.canary_weight(cluster["namespace"]) == 0
    assert kube_emulator.stored(DEPLOYMENTS, cluster["namespace"], "spark-canary")["spec"]["replicas"] == 0
    (record,) = folder.glob(layout.ROLLBACKS)
    assert f"scaled deployment {cluster['namespace']}/spark-canary to 0 replicas" in record.read_text()


def test_canary_pods_restarting_mid_stage_roll_back_as_crash_loop(on_kubernetes, kube_emulator, cluster, tmp_path):
    settings, _ = on_kubernetes
    folder = tmp_path / "v1.4.0"
    restart = lambda: kube_emulator.put(  # noqa: E731
        PODS, cluster["namespace"], canary_pod(0, "registry.example.com/shop/spark:1.4.0", restarts=2))
    with EvidenceWatcher(folder, stage_started(25), restart):
        state = run_go_live(settings)

    assert state.name == "RolledBack"
    assert "crash-loop" in state.message
    assert kube_emulator.canary_weight(cluster["namespace"]) == 0


@pytest.mark.parametrize("kind, controller_class", [("ingress-nginx", IngressControllerStandIn),
                                                     ("gateway-api", GatewayControllerStandIn)])
def test_the_shadow_stage_mirrors_through_the_cluster_router_before_any_user(
        kind, controller_class, sandbox, canary_weight, kube_emulator, cluster, signing_key, tmp_path):
    settings = flow_settings(sandbox, signing_key, tmp_path, [100], shadow=True, target={"router": {
        "kind": kind, "canary_pin_file": str(sandbox.canary_pin_file),
        "kubernetes": {**cluster, "shadow_service": "spark-shadow", "shadow_port": 8081}}})
    canary_weight(0)
    with controller_class(kube_emulator, cluster["namespace"], sandbox.set_weight) as controller:
        state = run_go_live(settings)

    assert state.name == "Live", state.message
    applied = list(zip(controller.applied, controller.mirrored))
    assert (0, True) in applied and applied[-1] == (100, False)
    assert applied.index((0, True)) < applied.index((100, False))  # copies before any user reached the canary
    folder = tmp_path / "v1.4.0"
    shadow = json.loads((folder / layout.stage_record(SHADOW_STAGE)).read_text())
    assert (shadow["outcome"], shadow["weight_verified"]) == ("proceed", True)  # the mirror read back from the cluster
    drift = json.loads((folder / layout.SHADOW_DRIFT).read_text())
    assert drift["pairs"] > 0, drift["detail"]  # the canary filled the copies of users' orders on paper
    assert controller.state() == (100, False)  # the first stage's write took golive's mirror off
