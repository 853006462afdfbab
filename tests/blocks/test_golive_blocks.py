"""Each block is its section of the settings: the same fields, defaults and checks, so the
blocks a deployment loads make the same settings as a YAML file."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from blocks import BLOCK_TYPES, CanaryPolicy, PrometheusSource, ReleaseProcess, TrafficTarget
from blocks import blocks_from_settings, settings_for_run, settings_from_blocks, settings_part
from golive.settings import (SECTIONS, GoLiveSettings, PolicySettings, ProcessSettings, PrometheusSettings,
                             SettingsError, TargetSettings, load_settings)

SECTION_MODELS = {"policy": PolicySettings, "prometheus": PrometheusSettings, "target": TargetSettings,
                  "process": ProcessSettings}

# Every section away from its defaults: tuples, nested frozen models, optional models, mappings.
EVERY_PART_SET = {
    "release": "1.4.0",
    "policy": {"stages": [25, 100], "dwell_seconds": 600, "final_dwell_seconds": 900, "interval_seconds": 30,
               "hold_seconds": 300, "max_dwell_seconds": 1200, "on_insufficient_traffic": "rollback",
               "judge": {"min_requests": 50}, "signals": {"api_p95_ms": {"threshold": 250}},
               "approve_each_stage": True},
    "prometheus": {"url": "https://prometheus.internal:9090", "tls_verify": False, "ca_file": "/etc/ssl/ca.pem",
                   "auth_secret_block": "prom-auth", "alertmanager_url": "http://alertmanager:9093"},
    "target": {"service": "shop", "canary_admin_url": "http://127.0.0.1:1",
               "router": {"kind": "ingress-nginx", "kubernetes": {"namespace": "prod", "credentials_block": "prod"}}},
    "process": {"evidence_root": "evidence", "sbom_environment": "/usr/bin/python3",
                "signing": {"key_path": "/keys/k.pem", "sigstore": "off"}, "git": {"repo": None},
                "github": {"repository": "spark/trading"}, "first_night": {"hours": 6, "hour_seconds": 60},
                "game_day": {"chaos_commands": {"slow-database": "make chaos"}},
                "operator": {"escalation": ["Mehmet", "CTO"]}, "notify_block": "slack-webhook/war-room"},
}


def test_the_blocks_are_one_a_section_in_the_settings_order():
    assert tuple(BLOCK_TYPES) == SECTIONS == tuple(GoLiveSettings.model_fields)[1:]


@pytest.mark.parametrize("role", SECTIONS)
def test_a_block_is_its_section_and_declares_no_field_of_its_own(role):
    block_type, model = BLOCK_TYPES[role], SECTION_MODELS[role]
    assert isinstance(block_type(), model)
    assert not block_type.__dict__.get("__annotations__")
    assert block_type.model_fields.keys() == model.model_fields.keys()
    assert settings_part(block_type()) == model().model_dump(mode="json")


def test_a_field_added_to_a_section_is_in_its_block_with_no_other_edit():
    from prefect.blocks.core import Block

    class LongerPolicy(PolicySettings):
        freeze_window: str = "fri 16:00-mon 08:00"

    class LongerCanaryPolicy(Block, LongerPolicy):
        _block_type_name = "golive longer canary policy test"

    assert settings_part(LongerCanaryPolicy(freeze_window="never"))["freeze_window"] == "never"
    assert "freeze_window" in LongerCanaryPolicy.model_json_schema()["properties"]


def test_settings_make_blocks_that_make_the_same_settings():
    settings = load_settings(EVERY_PART_SET)
    blocks = blocks_from_settings(settings)
    assert {role: type(block) for role, block in blocks.items()} == BLOCK_TYPES
    again = load_settings({"release": "1.4.0", **{role: settings_part(block) for role, block in blocks.items()}})
    assert again == settings


@pytest.mark.parametrize(("make", "field"), [
    (lambda: CanaryPolicy(stages=[25, 50]), "stages"),
    (lambda: CanaryPolicy(dwell_seconds=float("inf")), "dwell_seconds"),
    (lambda: CanaryPolicy(hold_seconds=10), "hold_seconds"),
    (lambda: PrometheusSource(url="https://u:p@prometheus.internal"), "url"),
    (lambda: TrafficTarget(router={"kind": "gateway-api"}), "router"),
    (lambda: ReleaseProcess(tag_message="{nope}"), "tag_message"),
    (lambda: ReleaseProcess(evidence_dir="x"), "evidence_dir"),
])
def test_a_bad_value_in_a_block_is_refused_naming_the_field(make, field):
    with pytest.raises(ValidationError) as exc:
        make()
    assert field in str(exc.value)


def test_a_block_is_frozen_as_its_section():
    with pytest.raises(ValidationError):
        CanaryPolicy().dwell_seconds = 1  # type: ignore[misc]


TEST_BLOCKS = {"policy": "policy-test", "prometheus": "prometheus-test", "target": "target-test"}


def _each(name: str) -> dict[str, str]:
    """`name` for every section's block."""
    return {section: name for section in SECTIONS}


@pytest.mark.usefixtures("prefect_harness")
def test_saved_blocks_load_back_the_same_settings():
    settings = load_settings(EVERY_PART_SET)
    for block in blocks_from_settings(settings).values():
        block.save("every-part", overwrite=True)
    loaded = ReleaseProcess.load("every-part")
    assert isinstance(loaded, ProcessSettings) and loaded.operator.escalation == ("Mehmet", "CTO")
    assert CanaryPolicy.load("every-part").stages == (25, 100)
    assert settings_from_blocks("1.4.0", _each("every-part")) == settings


@pytest.mark.usefixtures("prefect_harness")
def test_blocks_make_the_same_settings_as_the_equivalent_mapping():
    CanaryPolicy(stages=[25, 100], dwell_seconds=600, final_dwell_seconds=1200, interval_seconds=30,
                 hold_seconds=300, judge={"min_requests": 50}).save("policy-test", overwrite=True)
    PrometheusSource(url="http://127.0.0.1:29090").save("prometheus-test", overwrite=True)
    TrafficTarget(router={"control_url": "http://127.0.0.1:28070"}, canary_url="http://127.0.0.1:28082",
                  stable_url="http://127.0.0.1:28081").save("target-test", overwrite=True)

    from_blocks = settings_from_blocks("1.4.0", TEST_BLOCKS)
    from_mapping = load_settings({
        "release": "1.4.0",
        "policy": {"stages": [25, 100], "dwell_seconds": 600, "final_dwell_seconds": 1200, "interval_seconds": 30,
                   "hold_seconds": 300, "judge": {"min_requests": 50}},
        "prometheus": {"url": "http://127.0.0.1:29090"},
        "target": {"router": {"kind": "sandbox", "control_url": "http://127.0.0.1:28070"},
                   "canary_url": "http://127.0.0.1:28082", "stable_url": "http://127.0.0.1:28081"},
    })
    assert from_blocks == from_mapping
    # A deployment's run parameters are fields of a section over the blocks (the same names).
    over = settings_for_run("1.4.0", blocks=TEST_BLOCKS, policy={"dwell_seconds": 900, "hold_seconds": None})
    assert over.policy == from_mapping.policy.model_copy(update={"dwell_seconds": 900})
    assert over.model_copy(update={"policy": from_mapping.policy}) == from_mapping


@pytest.mark.usefixtures("prefect_harness")
def test_a_bad_value_stored_in_a_block_fails_naming_the_field_and_the_block():
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import BlockDocumentUpdate

    CanaryPolicy().save("policy-bad", overwrite=True)
    PrometheusSource().save("prometheus-default", overwrite=True)
    TrafficTarget().save("target-default", overwrite=True)
    # As the UI or an older golive could have left it: the server stores what it is given.
    with get_client(sync_client=True) as client:
        stored = client.read_block_document_by_name("policy-bad", CanaryPolicy.get_block_type_slug())
        client.update_block_document(stored.id, BlockDocumentUpdate(data={**stored.data, "stages": [25, 50]}))
    with pytest.raises(SettingsError) as exc:
        settings_from_blocks("1.4.0", {"policy": "policy-bad", "prometheus": "prometheus-default",
                                       "target": "target-default"})
    assert str(exc.value) == ("policy.stages: the last stage must be 100 "
                              "(the 'golive canary policy' block 'policy-bad'; `golive blocks apply` saves it anew)")


@pytest.mark.usefixtures("prefect_harness")
def test_blocks_apply_saves_every_setting_and_they_load_back_the_same(tmp_path, capsys):
    import yaml

    from cli.main import main

    data = {section: EVERY_PART_SET[section] for section in SECTIONS}
    data["process"] = {**data["process"], "evidence_root": str(tmp_path / "evidence")}
    config = tmp_path / "golive.yaml"
    config.write_text(yaml.safe_dump(data))
    assert main(["blocks", "apply", str(config), "--name", "round-trip"]) == 0
    assert capsys.readouterr().out.count("saved") == 4
    loaded = settings_from_blocks("1.4.0", _each("round-trip"))
    assert loaded == load_settings({**data, "release": "1.4.0"})


@pytest.mark.usefixtures("prefect_harness")
def test_blocks_apply_names_the_bad_field(tmp_path, capsys):
    from cli.main import main

    config = tmp_path / "golive.yaml"
    config.write_text("policy:\n  interval_seconds: -1\n")
    assert main(["blocks", "apply", str(config)]) == 2
    assert "policy.interval_seconds" in capsys.readouterr().err


@pytest.mark.usefixtures("prefect_harness")
def test_the_kubernetes_example_settings_round_trip_through_blocks(capsys):
    from cli.main import main

    assert main(["blocks", "apply", "deploy/golive.kubernetes.yaml", "--name", "cluster-example"]) == 0
    loaded = settings_from_blocks("1.4.0", _each("cluster-example"))
    assert loaded == load_settings("deploy/golive.kubernetes.yaml", release="1.4.0")
    router = loaded.target.router
    assert (router.kind, router.kubernetes.credentials_block) == ("ingress-nginx", "prod")


@pytest.mark.usefixtures("prefect_harness")
def test_a_cluster_block_from_a_kubeconfig_reaches_the_cluster(cluster, kube_emulator, capsys):
    from blocks import KubernetesCluster
    from cli.main import main
    from golive.fencing import FenceHolder
    from golive.settings import KubernetesSettings
    from tasks.kubernetes import IngressNginxRouter

    assert main(["blocks", "cluster", "emulator", "--kubeconfig", cluster["kubeconfig"]]) == 0
    assert "stored as a secret" in capsys.readouterr().out
    saved = KubernetesCluster.load("emulator")
    assert "emulator-token" not in repr(saved) and "emulator-token" not in saved.model_dump_json()
    router = IngressNginxRouter(KubernetesSettings(namespace=cluster["namespace"], credentials_block="emulator"))
    fence = router.take_generation(FenceHolder(kind="operator", name="the block's test"))
    assert router.set_weight(5, fence.generation) == 5
    assert kube_emulator.canary_weight(cluster["namespace"]) == 5


@pytest.mark.usefixtures("prefect_harness")
def test_a_cluster_block_from_a_missing_kubeconfig_names_it(tmp_path, capsys):
    from cli.main import main

    assert main(["blocks", "cluster", "nowhere", "--kubeconfig", str(tmp_path / "absent")]) == 2
    assert capsys.readouterr().err.strip().endswith(f"--kubeconfig: No such file or directory: {tmp_path / 'absent'}")
