"""The go-live's configuration as Prefect Blocks, one per concern (as prefect-kubernetes has one
per system). Together they hold every field of `golive.settings.GoLiveSettings` but the release,
so a YAML file and a set of blocks configure a go-live the same way; `golive blocks apply`
turns the one into the other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.config.kube_config import KUBE_CONFIG_DEFAULT_LOCATION
from prefect.blocks.core import Block
from prefect.types import SecretDict
from pydantic import Field

from golive.settings import GoLiveSettings, load_settings

__all__ = ["BLOCK_TYPES", "CanaryPolicy", "KubernetesCluster", "PrometheusSource", "ReleaseProcess", "TrafficTarget",
           "blocks_from_settings", "settings_for_run", "settings_from_blocks"]


class CanaryPolicy(Block):
    """Stages, timings, hold budget, the human gate and the judge's policy and signal overrides."""

    _block_type_name = "golive canary policy"
    _description = "Canary stages, dwell, hold budget and gate policy for golive."

    stages: list[int] = Field(default=[1, 5, 25, 50, 100])
    dwell_seconds: float = 900.0
    final_dwell_seconds: float = 1800.0
    interval_seconds: float = 60.0
    hold_seconds: float = 600.0
    hold_budget_seconds: float = 1200.0
    max_dwell_seconds: float | None = None
    on_insufficient_traffic: str = "pause"
    rollback_budget_seconds: float = 60.0
    weight_tolerance_points: float = 2.0
    judge: dict[str, float] = Field(default_factory=dict, description="JudgePolicy overrides")
    signals: dict[str, dict] = Field(default_factory=dict, description="per-signal catalogue overrides")
    approve_each_stage: bool = False
    approval_timeout_seconds: float = 3600.0

    def settings_part(self) -> dict:
        return self.model_dump(include=set(CanaryPolicy.model_fields) - set(Block.model_fields))


class PrometheusSource(Block):
    """Where the golden signals and the traffic split are read."""

    _block_type_name = "golive prometheus source"
    _description = "The Prometheus golive queries for the eight golden signals."

    url: str = "http://127.0.0.1:19090"  # never with credentials: name auth_secret_block instead
    traffic_canary_query: str | None = None  # None: the catalogue's default
    traffic_total_query: str | None = None
    tls_verify: bool = True
    ca_file: str | None = None
    auth_secret_block: str | None = Field(None, description="a Secret block: a bearer token or {username, password}")
    alertmanager_url: str | None = Field(None, description="its firing critical alerts for the service roll back")

    def settings_part(self) -> dict:
        part = {"prometheus_url": self.url, "prometheus_tls_verify": self.tls_verify,
                "prometheus_ca_file": self.ca_file, "prometheus_auth_secret_block": self.auth_secret_block,
                "alertmanager_url": self.alertmanager_url}
        part.update({k: v for k in ("traffic_canary_query", "traffic_total_query") if (v := getattr(self, k))})
        return part


class TrafficTarget(Block):
    """The router that moves traffic, where users' requests enter, and the two versions."""

    _block_type_name = "golive traffic target"
    _description = "The traffic router (its kind and control address) and the stable and canary services."

    service: str = "spark"
    kind: str = "sandbox"
    control_url: str = "http://127.0.0.1:18070"
    traffic_url: str = "http://127.0.0.1:18080"
    canary_url: str = "http://127.0.0.1:18082"
    stable_url: str = "http://127.0.0.1:18081"
    canary_admin_url: str | None = None
    kubernetes: dict[str, Any] | None = Field(None, description="namespace, object names, credentials_block")

    def settings_part(self) -> dict:
        router = {"kind": self.kind, "control_url": self.control_url, "kubernetes": self.kubernetes}
        return {"router": router, "service": self.service, "traffic_url": self.traffic_url,
                "canary_url": self.canary_url, "stable_url": self.stable_url, "canary_admin_url": self.canary_admin_url}


class ReleaseProcess(Block):
    """Everything around the canary: evidence, flight check, signing, git, GitHub, first night, game day,
    the people and the channel."""

    _block_type_name = "golive release process"
    _description = "Evidence folder, flight check, signing key, release repository, GitHub freeze label, first night."

    evidence_root: str = "evidence"
    preflight_budget_seconds: float = 90.0
    blast_radius_seconds: float = 30.0
    blast_radius_concurrency: int = 4
    sbom_environment: str | None = None
    signing: dict[str, Any] = Field(default_factory=dict)
    git: dict[str, Any] = Field(default_factory=dict)
    tag_message: str | None = None
    github: dict[str, Any] | None = None
    first_night: dict[str, Any] = Field(default_factory=dict)
    game_day: dict[str, Any] = Field(default_factory=dict)
    notify_block: str | None = Field(None, description="the notification block of the war-room channel")
    operator: dict[str, Any] = Field(default_factory=dict, description="incident commander, escalation, channel")

    def settings_part(self) -> dict:
        part = self.model_dump(include=set(ReleaseProcess.model_fields) - set(Block.model_fields))
        # An unset field the settings cannot hold as None (the tag message) takes the settings' default.
        return {k: v for k, v in part.items() if v is not None or GoLiveSettings.model_fields[k].default is None}


class KubernetesCluster(Block):
    """How golive reaches a cluster: a kubeconfig's content (kept secret) or the pod's own
    service account. (prefect-kubernetes' credentials hand out kubernetes_asyncio clients;
    golive's routers use the official synchronous client, so this block builds one of those.)"""

    _block_type_name = "golive kubernetes cluster"
    _description = "Credentials for the cluster whose Ingress or HTTPRoute golive moves traffic on."

    kubeconfig: SecretDict | None = Field(None, description="the kubeconfig, as a mapping; None: in-cluster")
    context: str | None = Field(None, description="the kubeconfig context; None: its current-context")

    @classmethod
    def from_file(cls, path: str | None = None, context: str | None = None) -> KubernetesCluster:
        return cls(kubeconfig=yaml.safe_load(Path(path or KUBE_CONFIG_DEFAULT_LOCATION).expanduser().read_text()),
                   context=context)

    def api_client(self) -> client.ApiClient:
        if self.kubeconfig is None:
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)
            return client.ApiClient(configuration)
        return config.new_client_from_config_dict(self.kubeconfig.get_secret_value(), context=self.context,
                                                  persist_config=False)


BLOCK_TYPES = {"policy": CanaryPolicy, "prometheus": PrometheusSource, "target": TrafficTarget,
               "process": ReleaseProcess}


def blocks_from_settings(settings: GoLiveSettings) -> dict[str, Block]:
    """The four blocks holding `settings` (all but the release)."""
    data = settings.model_dump(mode="json")
    return {
        "policy": CanaryPolicy(**{k: data[k] for k in CanaryPolicy().settings_part()}),
        "prometheus": PrometheusSource(url=data["prometheus_url"], traffic_canary_query=data["traffic_canary_query"],
                                       traffic_total_query=data["traffic_total_query"],
                                       tls_verify=data["prometheus_tls_verify"], ca_file=data["prometheus_ca_file"],
                                       auth_secret_block=data["prometheus_auth_secret_block"],
                                       alertmanager_url=data["alertmanager_url"]),
        "target": TrafficTarget(kind=data["router"]["kind"], control_url=data["router"]["control_url"],
                                kubernetes=data["router"]["kubernetes"],
                                **{k: data[k] for k in ("service", "traffic_url", "canary_url", "stable_url",
                                                        "canary_admin_url")}),
        "process": ReleaseProcess(**{k: data[k] for k in set(ReleaseProcess.model_fields) - set(Block.model_fields)}),
    }


def settings_from_blocks(release: str, policy: str, prometheus: str, target: str, process: str | None = None,
                         **overrides) -> GoLiveSettings:
    """Load the blocks by name and make validated settings of them."""
    data = {
        **CanaryPolicy.load(policy).settings_part(),
        **PrometheusSource.load(prometheus).settings_part(),
        **TrafficTarget.load(target).settings_part(),
        **(ReleaseProcess.load(process).settings_part() if process else {}),
        "release": release,
    }
    return load_settings(data, **overrides)


def settings_for_run(release: str, config: str | None = None, settings: dict | None = None,
                     blocks: dict[str, str] | None = None, **overrides) -> GoLiveSettings:
    """A flow's settings from whichever it was given: block names (a deployment), a mapping, or
    a YAML file (the command line); keyword overrides on top."""
    if blocks:
        unknown = set(blocks) - set(BLOCK_TYPES)
        if unknown or not {"policy", "prometheus", "target"} <= set(blocks):
            from golive.settings import SettingsError

            raise SettingsError(f"blocks: expected names for policy, prometheus, target (and process), "
                                f"got {sorted(blocks)}")
        return settings_from_blocks(release, **blocks, **overrides)
    return load_settings(settings if settings is not None else config, release=release, **overrides)
