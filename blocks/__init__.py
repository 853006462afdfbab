"""Prefect Blocks: the configuration a deployment finds by name (`golive blocks …` saves them)."""

from blocks.golive_blocks import CanaryPolicy, PrometheusSource, TrafficTarget, settings_from_blocks

__all__ = ["CanaryPolicy", "PrometheusSource", "TrafficTarget", "settings_from_blocks"]
