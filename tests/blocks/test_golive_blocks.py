"""The blocks a deployment loads make the same settings as a YAML file."""

from __future__ import annotations

import pytest

from golive.settings import SettingsError, load_settings

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_blocks_make_the_same_settings_as_the_equivalent_mapping():
    from blocks import CanaryPolicy, PrometheusSource, TrafficTarget, settings_from_blocks

    CanaryPolicy(stages=[25, 100], dwell_seconds=600, final_dwell_seconds=1200, interval_seconds=30,
                 hold_seconds=300, judge={"min_requests": 50}).save("policy-test", overwrite=True)
    PrometheusSource(url="http://127.0.0.1:29090").save("prometheus-test", overwrite=True)
    TrafficTarget(control_url="http://127.0.0.1:28070", canary_url="http://127.0.0.1:28082",
                  stable_url="http://127.0.0.1:28081").save("target-test", overwrite=True)

    from_blocks = settings_from_blocks("1.4.0", policy="policy-test", prometheus="prometheus-test",
                                       target="target-test")
    from_mapping = load_settings({
        "release": "1.4.0", "stages": [25, 100], "dwell_seconds": 600, "final_dwell_seconds": 1200,
        "interval_seconds": 30, "hold_seconds": 300, "judge": {"min_requests": 50},
        "prometheus_url": "http://127.0.0.1:29090",
        "router": {"kind": "sandbox", "control_url": "http://127.0.0.1:28070"},
        "canary_url": "http://127.0.0.1:28082", "stable_url": "http://127.0.0.1:28081",
    })
    assert from_blocks == from_mapping


def test_a_bad_policy_block_fails_naming_the_field():
    from blocks import CanaryPolicy, PrometheusSource, TrafficTarget, settings_from_blocks

    CanaryPolicy(stages=[25, 50]).save("policy-bad", overwrite=True)
    PrometheusSource().save("prometheus-default", overwrite=True)
    TrafficTarget().save("target-default", overwrite=True)
    with pytest.raises(SettingsError, match="stages: the last stage must be 100"):
        settings_from_blocks("1.4.0", policy="policy-bad", prometheus="prometheus-default", target="target-default")


def test_blocks_apply_saves_every_setting_and_they_load_back_the_same(tmp_path, capsys):
    import yaml

    from blocks import blocks_from_settings, settings_from_blocks
    from cli.main import main
    from golive.settings import GoLiveSettings

    every_field_set = load_settings({"release": "1.0.0", "sbom_environment": "/usr/bin/python3",
                                     "canary_admin_url": "http://127.0.0.1:1"})
    covered = [key for block in blocks_from_settings(every_field_set).values() for key in block.settings_part()]
    assert sorted(covered) == sorted(set(GoLiveSettings.model_fields) - {"release"})  # each in one block

    data = {"stages": [25, 100], "interval_seconds": 30, "dwell_seconds": 600, "final_dwell_seconds": 900,
            "hold_seconds": 300, "evidence_root": str(tmp_path / "evidence"), "blast_radius_seconds": 5,
            "signing": {"key_path": "/keys/k.pem", "sigstore": "off"}, "git": {"repo": None},
            "github": {"repository": "spark/trading"}, "first_night": {"hours": 6, "hour_seconds": 60}}
    config = tmp_path / "golive.yaml"
    config.write_text(yaml.safe_dump(data))
    assert main(["blocks", "apply", str(config), "--name", "round-trip"]) == 0
    assert capsys.readouterr().out.count("saved") == 4
    loaded = settings_from_blocks("1.4.0", policy="round-trip", prometheus="round-trip", target="round-trip",
                                  process="round-trip")
    assert loaded == load_settings({**data, "release": "1.4.0"})


def test_blocks_apply_names_the_bad_field(tmp_path, capsys):
    from cli.main import main

    config = tmp_path / "golive.yaml"
    config.write_text("interval_seconds: -1\n")
    assert main(["blocks", "apply", str(config)]) == 2
    assert "interval_seconds" in capsys.readouterr().err


def test_the_kubernetes_example_settings_round_trip_through_blocks(capsys):
    from blocks import settings_from_blocks
    from cli.main import main

    assert main(["blocks", "apply", "deploy/golive.kubernetes.yaml", "--name", "cluster-example"]) == 0
    loaded = settings_from_blocks("1.4.0", policy="cluster-example", prometheus="cluster-example",
                                  target="cluster-example", process="cluster-example")
    assert loaded == load_settings("deploy/golive.kubernetes.yaml", release="1.4.0")
    assert (loaded.router.kind, loaded.router.kubernetes.credentials_block) == ("ingress-nginx", "prod")


def test_a_cluster_block_from_a_kubeconfig_reaches_the_cluster(cluster, kube_emulator, capsys):
    from blocks import KubernetesCluster
    from cli.main import main
    from golive.settings import KubernetesSettings
    from tasks.kubernetes import IngressNginxRouter

    assert main(["blocks", "cluster", "emulator", "--kubeconfig", cluster["kubeconfig"]]) == 0
    assert "stored as a secret" in capsys.readouterr().out
    saved = KubernetesCluster.load("emulator")
    assert "emulator-token" not in repr(saved) and "emulator-token" not in saved.model_dump_json()
    router = IngressNginxRouter(KubernetesSettings(namespace=cluster["namespace"], credentials_block="emulator"))
    assert router.set_weight(5) == 5


def test_a_cluster_block_from_a_missing_kubeconfig_names_it(tmp_path, capsys):
    from cli.main import main

    assert main(["blocks", "cluster", "nowhere", "--kubeconfig", str(tmp_path / "absent")]) == 2
    assert capsys.readouterr().err.strip().endswith(f"--kubeconfig: No such file or directory: {tmp_path / 'absent'}")
