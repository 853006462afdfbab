"""Event-loop lag and GC pauses, measured from inside any asyncio service, as Prometheus histograms.

Two probes, each usable alone:

- `LoopLagProbe`: the sleep-overshoot method. A coroutine asks the loop to wake it after
  `interval` seconds and measures how much later it woke; whatever ran on the loop meanwhile
  (a synchronous call, a long callback) is that overshoot. Every lag is observed, so a histogram's
  quantiles are the loop's, not a sample's.
- `GCPauses`: `gc.callbacks` calls it at the start and the end of every collection, with the
  generation collected; each pause is observed by generation, so a growing generation 2 (full
  collections tracing long-lived objects) is told apart from a busy young generation.

    from prometheus_client import CollectorRegistry
    from loopwatch import instrument

    registry = CollectorRegistry()
    lag, gc_pauses = instrument(registry, prefix="myservice_", labels={"version": "1.4.0"})
    gc_pauses.install()                      # at start-up
    asyncio.create_task(lag.run())          # inside the running loop

This package depends on nothing but the standard library and `prometheus_client`, so the demo
service and any other service can import it without importing golive.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable

__all__ = ["GC_BUCKETS", "LOOP_BUCKETS", "GCPauses", "LoopLagProbe", "instrument"]

LOOP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5)
GC_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1)


class LoopLagProbe:
    """Observes the running loop's lag every `interval` seconds (sleep overshoot, never negative).

    Args:
        observe: called with each lag in seconds (a histogram child's `observe`).
        interval: how long each probe sleeps; the probe wakes 1/interval times a second."""

    def __init__(self, observe: Callable[[float], None], interval: float = 0.05):
        if not interval > 0:
            raise ValueError(f"interval: expected seconds > 0, got {interval!r}")
        self.observe, self.interval = observe, interval

    async def run(self) -> None:
        """Probe until cancelled."""
        while True:
            started = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.observe(max(0.0, time.perf_counter() - started - self.interval))


class GCPauses:
    """Observes every garbage collection's pause with its generation, from `gc.callbacks`.

    Args:
        observe: called with (generation, seconds) at the end of each collection."""

    def __init__(self, observe: Callable[[int, float], None]):
        self.observe = observe
        self._started = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.observe(int(info.get("generation", -1)), time.perf_counter() - self._started)

    def install(self) -> None:
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def remove(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)


def instrument(registry, prefix: str = "", labels: dict[str, str] | None = None,
               interval: float = 0.05) -> tuple[LoopLagProbe, GCPauses]:
    """The two probes wired to histograms `<prefix>event_loop_lag_seconds` and
    `<prefix>gc_pause_seconds` (with a `generation` label) in `registry`, each with `labels`.

    Args:
        registry: a `prometheus_client.CollectorRegistry`.
        prefix: the metric names' prefix, e.g. "myservice_".
        labels: constant labels of the service (track, version, …).
        interval: the lag probe's sleep.

    Returns:
        (the lag probe, to run as a task; the GC probe, to install)."""
    from prometheus_client import Histogram

    labels = dict(labels or {})
    lag = Histogram(f"{prefix}event_loop_lag_seconds", "asyncio event-loop lag (sleep overshoot)", list(labels),
                    buckets=LOOP_BUCKETS, registry=registry)
    pauses = Histogram(f"{prefix}gc_pause_seconds", "GC pauses by generation", [*labels, "generation"],
                       buckets=GC_BUCKETS, registry=registry)
    lag_child = lag.labels(**labels) if labels else lag
    children = {g: pauses.labels(**labels, generation=str(g)) for g in range(3)}

    def observe_pause(generation: int, seconds: float) -> None:
        child = children.get(generation) or pauses.labels(**labels, generation=str(generation))
        child.observe(seconds)

    return LoopLagProbe(lag_child.observe, interval), GCPauses(observe_pause)
