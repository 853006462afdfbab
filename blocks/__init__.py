"""Prefect Blocks: the configuration a deployment finds by name (`golive blocks apply` saves them)."""

from blocks.golive_blocks import (
    BLOCK_TYPES,
    CanaryPolicy,
    KubernetesCluster,
    PrometheusSource,
    ReleaseProcess,
    TrafficTarget,
    blocks_from_settings,
    settings_for_run,
    settings_from_blocks,
    settings_part,
)

__all__ = ["BLOCK_TYPES", "CanaryPolicy", "KubernetesCluster", "PrometheusSource", "ReleaseProcess", "TrafficTarget",
           "blocks_from_settings", "settings_for_run", "settings_from_blocks", "settings_part"]
