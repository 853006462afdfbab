"""outbox-lag-smoke: the outbox lag read for a window, against the runbook's percentiles, and
the saw-tooth ("teeth") of a stalling worker looked for in it; a plot goes into the evidence."""

from __future__ import annotations

import time

from prefect import flow

from golive import layout
from golive.drills import outbox_verdict, plot_lag
from golive.settings import GoLiveSettings
from tasks.drill_traffic import read_outbox_lag
from tasks.evidence import ReleaseFolder


@flow(name="outbox-lag-smoke", flow_run_name="outbox lag smoke")
def outbox_smoke(settings: GoLiveSettings, folder: str, window_seconds: float | None = None,
                 interval_seconds: float | None = None) -> dict:
    """Read /api/outbox/lag of the canary every interval for the window and judge the series."""
    game_day = settings.process.game_day
    window = window_seconds or game_day.outbox_window_seconds
    interval = interval_seconds or game_day.outbox_interval_seconds
    samples = []
    deadline = time.time() + window
    while time.time() < deadline:
        tick = time.time()
        samples.append(read_outbox_lag(settings.target.canary_url, game_day.outbox_lag_window_seconds))
        time.sleep(max(0.0, interval - (time.time() - tick)))
    verdict = outbox_verdict(samples)
    worst = verdict["worst"]
    summary = ", ".join(f"{k} {v:.2f}s" for k, v in worst.items() if v is not None)
    result = {**verdict, "summary": summary + (f"; teeth ×{verdict['teeth']['teeth']}" if verdict["teeth"]["found"] else ""),
              "inputs": {"url": settings.target.canary_url, "window_seconds": window, "interval_seconds": interval,
                         "lag_window_seconds": game_day.outbox_lag_window_seconds},
              "series": samples}
    evidence = ReleaseFolder(path=folder, signing=settings.process.signing)
    evidence.record(layout.OUTBOX_SMOKE, result)
    evidence.record(layout.OUTBOX_SMOKE_PLOT, plot_lag(samples))
    evidence.seal("outbox-lag-smoke")
    return result
