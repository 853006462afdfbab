"""PNG plots for the evidence (matplotlib, no display): one figure made the same way each time."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["png", "signal_png", "stage_decisions", "stage_frame"]


def png(draw: Callable, xlabel: str, ylabel: str) -> bytes:
    """A 800×360 PNG of what `draw(axes)` puts on the axes, with a legend; no timestamp in it."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 3.6), dpi=100)
    draw(axes)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def stage_frame(snapshots: list[dict], signal: str) -> pd.DataFrame:
    """One signal's canary and stable values over a stage, from its decision snapshots (a dwell
    window and its holds), one row per interval's end, in seconds since the stage's first window."""
    import pandas as pd

    rows = []
    for snap in snapshots:
        series = snap.get("series") or {}
        arms = ((series.get("scenario") or {}).get("signals") or {}).get(signal) or {}
        for i, at in enumerate(series.get("timestamps") or []):
            rows.append({"at": at, "canary": _value(arms.get("canary"), i), "stable": _value(arms.get("baseline"), i)})
    frame = pd.DataFrame(rows, columns=["at", "canary", "stable"], dtype=float)
    frame = frame.drop_duplicates("at", keep="last").sort_values("at")
    start = min((s["window"][0] for s in snapshots if s.get("window")), default=frame["at"].min())
    frame["seconds"] = frame["at"] - start
    return frame.reset_index(drop=True)


def _value(observations: list | None, i: int) -> float | None:
    if not observations or i >= len(observations) or not isinstance(observations[i], dict):
        return None
    return observations[i].get("value")


def stage_decisions(snapshots: list[dict]) -> list[tuple[float, str]]:
    """(seconds since the stage's first window, decision) of each snapshot, in order."""
    start = min((s["window"][0] for s in snapshots if s.get("window")), default=0.0)
    return sorted((s["window"][1] - start, s.get("decision", "?")) for s in snapshots if s.get("window"))


def signal_png(frame: pd.DataFrame, decisions: list[tuple[float, str]], title: str, unit: str, rule: str,
               threshold: float) -> bytes:
    """Canary against stable with the threshold (for a rule relative to stable, stable × the
    ratio) and a marked line at each decision."""
    def draw(axes) -> None:
        axes.plot(frame["seconds"], frame["stable"], marker=".", color="#1f77b4", label="stable")
        axes.plot(frame["seconds"], frame["canary"], marker=".", color="#d62728", label="canary")
        if rule == "max_ratio_to_baseline":
            axes.plot(frame["seconds"], frame["stable"] * threshold, linestyle="--", color="#555",
                      label=f"threshold: stable × {threshold:g}")
        else:
            axes.axhline(threshold, linestyle="--", color="#555",
                         label=f"threshold: {'<' if rule == 'below' else '≤'} {threshold:g} {unit}")
        for at, decision in decisions:
            axes.axvline(at, color=_DECISION_COLOURS.get(decision, "#888"), linewidth=1)
            axes.annotate(decision, (at, 1.0), xycoords=("data", "axes fraction"), rotation=90, fontsize=7,
                          ha="right", va="top", color=_DECISION_COLOURS.get(decision, "#888"))
        axes.set_title(title, fontsize=10)

    return png(draw, "seconds into the stage", unit)


_DECISION_COLOURS = {"proceed": "#2e7d32", "hold": "#b7860b", "rollback": "#c62828", "pause": "#5e35b1",
                     "extend": "#888888"}
