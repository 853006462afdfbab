"""The go-live's configuration as Prefect Blocks, one per section of the settings (as
prefect-kubernetes has one per system). Each block *is* its section's model: it subclasses Block
and the model (`golive.settings.PolicySettings`, …) and declares no field of its own, so its
fields, defaults and checks are the model's, and a YAML file and a set of blocks configure a
go-live the same way; `golive blocks apply` turns the one into the other."""

from __future__ import annotations

from pathlib import Path

import yaml
from kubernetes import client, config
from kubernetes.config.kube_config import KUBE_CONFIG_DEFAULT_LOCATION
from prefect.blocks.core import Block
from prefect.types import SecretDict
from pydantic import Field, ValidationError

from golive.settings import (
    GoLiveSettings,
    PolicySettings,
    ProcessSettings,
    PrometheusSettings,
    SettingsError,
    TargetSettings,
    load_settings,
    settings_error,
)

__all__ = ["BLOCK_TYPES", "CanaryPolicy", "KubernetesCluster", "PrometheusSource", "ReleaseProcess", "TrafficTarget",
           "blocks_from_settings", "settings_for_run", "settings_from_blocks", "settings_part"]


class CanaryPolicy(Block, PolicySettings):
    """Stages, timings, hold budget, the human gate and the judge's policy and signal overrides."""

    _block_type_name = "golive canary policy"
    _description = "Canary stages, dwell, hold budget and gate policy for golive."


class PrometheusSource(Block, PrometheusSettings):
    """Where the golden signals, the traffic split and the critical alerts are read."""

    _block_type_name = "golive prometheus source"
    _description = "The Prometheus golive queries for the eight golden signals."


class TrafficTarget(Block, TargetSettings):
    """The router that moves traffic, where users' requests enter, and the two versions."""

    _block_type_name = "golive traffic target"
    _description = "The traffic router (its kind and control address) and the stable and canary services."


class ReleaseProcess(Block, ProcessSettings):
    """Everything around the canary: evidence, flight check, signing, git, GitHub, first night, game day,
    the people and the channel."""

    _block_type_name = "golive release process"
    _description = "Evidence folder, flight check, signing key, release repository, GitHub freeze label, first night."


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


BLOCK_TYPES: dict[str, type[Block]] = {"policy": CanaryPolicy, "prometheus": PrometheusSource, "target": TrafficTarget,
                                       "process": ReleaseProcess}


def settings_part(block: Block) -> dict:
    """A settings block's section as the settings hold it: its fields, which are the section's
    (a block's dump also names its block type)."""
    return block.model_dump(mode="json", include=set(type(block).model_fields))


def blocks_from_settings(settings: GoLiveSettings) -> dict[str, Block]:
    """The four blocks holding `settings` (all but the release), one per section."""
    return {role: block_type(**getattr(settings, role).model_dump()) for role, block_type in BLOCK_TYPES.items()}


def settings_from_blocks(release: str, names: dict[str, str | None], **overrides) -> GoLiveSettings:
    """Load the blocks by name (`names`: section → block name; no process block: its defaults) and
    make validated settings of them; `overrides` are sections' fields on top (`policy={...}`)."""
    data = {role: settings_part(_load(role, name)) for role, name in names.items() if name}
    return load_settings({"release": release, **data}, **overrides)


def _load(role: str, name: str) -> Block:
    """The block, or the bad value it holds (saved from the UI, or by an older golive) named in one line."""
    block_type = BLOCK_TYPES[role]
    try:
        return block_type.load(name)
    except RuntimeError as exc:
        if not isinstance(exc.__cause__, ValidationError):
            raise
        error = settings_error(exc.__cause__, role)
        raise SettingsError(f"{error} (the {block_type.get_block_type_name()!r} block {name!r}; "
                            f"`golive blocks apply` saves it anew)") from None


def settings_for_run(release: str, config: str | None = None, settings: dict | None = None,
                     blocks: dict[str, str] | None = None, **overrides) -> GoLiveSettings:
    """A flow's settings from whichever it was given: block names (a deployment), a mapping, or
    a YAML file (the command line); keyword overrides on top."""
    if blocks:
        unknown = set(blocks) - set(BLOCK_TYPES)
        if unknown or not {"policy", "prometheus", "target"} <= set(blocks):
            raise SettingsError(f"blocks: expected names for policy, prometheus, target (and process), "
                                f"got {sorted(blocks)}")
        return settings_from_blocks(release, blocks, **overrides)
    return load_settings(settings if settings is not None else config, release=release, **overrides)
