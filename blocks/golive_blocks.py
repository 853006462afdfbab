"""The go-live's configuration as Prefect Blocks, one per concern (as prefect-kubernetes has one
per system). Each holds a part of `golive.settings.GoLiveSettings`; together they make one, so a
YAML file and a set of blocks configure a go-live the same way."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field

from golive.settings import GoLiveSettings, load_settings


class CanaryPolicy(Block):
    """Stages, timings, hold budget and the judge's policy and signal overrides."""

    _block_type_name = "golive canary policy"
    _description = "Canary stages, dwell, hold budget and gate policy for golive."

    stages: list[int] = Field(default=[1, 5, 25, 50, 100])
    dwell_seconds: float = 900.0
    final_dwell_seconds: float = 1800.0
    interval_seconds: float = 60.0
    hold_seconds: float = 600.0
    hold_budget_seconds: float = 1200.0
    weight_tolerance_points: float = 2.0
    judge: dict[str, float] = Field(default_factory=dict, description="JudgePolicy overrides")
    signals: dict[str, dict] = Field(default_factory=dict, description="per-signal catalogue overrides")

    def settings_part(self) -> dict:
        return self.model_dump(include={
            "stages", "dwell_seconds", "final_dwell_seconds", "interval_seconds", "hold_seconds",
            "hold_budget_seconds", "weight_tolerance_points", "judge", "signals",
        })


class PrometheusSource(Block):
    """Where the golden signals are read."""

    _block_type_name = "golive prometheus source"
    _description = "The Prometheus golive queries for the eight golden signals."

    url: str = "http://127.0.0.1:19090"

    def settings_part(self) -> dict:
        return {"prometheus_url": self.url}


class TrafficTarget(Block):
    """The router that moves traffic, and the two versions behind it."""

    _block_type_name = "golive traffic target"
    _description = "The traffic router (its kind and control address) and the stable and canary services."

    kind: str = "sandbox"
    control_url: str = "http://127.0.0.1:18070"
    traffic_url: str = "http://127.0.0.1:18080"
    canary_url: str = "http://127.0.0.1:18082"
    stable_url: str = "http://127.0.0.1:18081"

    def settings_part(self) -> dict:
        return {"router": {"kind": self.kind, "control_url": self.control_url}, "traffic_url": self.traffic_url,
                "canary_url": self.canary_url, "stable_url": self.stable_url}


def settings_from_blocks(release: str, policy: str, prometheus: str, target: str, **overrides) -> GoLiveSettings:
    """Load the three blocks by name and make validated settings of them."""
    data = {
        **CanaryPolicy.load(policy).settings_part(),
        **PrometheusSource.load(prometheus).settings_part(),
        **TrafficTarget.load(target).settings_part(),
        "release": release,
    }
    return load_settings(data, **overrides)
