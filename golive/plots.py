"""PNG plots for the evidence (matplotlib, no display): one figure made the same way each time."""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["drift_png", "flamegraph_png", "png", "signal_png", "stage_decisions", "stage_frame"]


def png(draw: Callable, xlabel: str, ylabel: str) -> bytes:
    """A 800×360 PNG of what `draw(axes)` puts on the axes, with a legend; no timestamp in it.

    A figure of its own (not pyplot's, which keeps figures in one global list) with fixed margins:
    a go-live draws forty of these, and fitting the margins to the labels took a third of each."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.6), dpi=100)
    figure.subplots_adjust(left=0.09, right=0.98, bottom=0.14, top=0.9)
    axes = figure.add_subplot()
    draw(axes)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.legend(loc="upper left", fontsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def drift_png(histogram: list[dict], limit_ms: float, title: str) -> bytes:
    """The shadow stage's matched fills per bucket of |drift| (`golive.drift`), the buckets at or
    over the limit in red."""
    labels = [f"{b['from_ms']:g}–{b['to_ms']:g}" if b["to_ms"] is not None else f"≥{b['from_ms']:g}"
              for b in histogram]
    over = [b["to_ms"] is None or b["to_ms"] > limit_ms for b in histogram]

    def draw(axes) -> None:
        axes.bar(labels, [b["pairs"] for b in histogram], color=["#c0392b" if o else "#2e86c1" for o in over],
                 label=f"matched fills (red: |drift| reaching {limit_ms:g} ms)")
        axes.set_title(title, fontsize=10)

    return png(draw, "|paper fill − live fill| (ms)", "orders")


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


def flamegraph_png(stacks: dict[tuple[str, ...], int], title: str, min_share: float = 0.005,
                   max_depth: int = 40) -> bytes:
    """A flame graph of aggregated stacks (root first, with their samples): one box per frame, as
    wide as its samples, children stacked on their caller, frames sorted by name so that two
    tracks' pictures line up. Boxes narrower than `min_share` of all samples are left out."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    total = sum(stacks.values())
    tree: dict = {}
    for stack, count in stacks.items():
        node = tree
        for frame in stack[:max_depth]:
            entry = node.setdefault(frame, [0, {}])
            entry[0] += count
            node = entry[1]
    boxes: list[tuple[float, int, float, str]] = []

    def place(node: dict, left: float, depth: int) -> None:
        for frame in sorted(node):
            width, children = node[frame][0] / total, node[frame][1]
            if width >= min_share:
                boxes.append((left, depth, width, frame))
                place(children, left, depth + 1)
            left += width

    if total:
        place(tree, 0.0, 0)
    depth = max((b[1] for b in boxes), default=0) + 1
    figure, axes = plt.subplots(figsize=(12, max(2.5, 0.28 * depth + 1)), dpi=100)
    palette = ("#f2a65a", "#eec170", "#f58549", "#e4572e", "#f3c969", "#ee964b")
    for left, level, width, frame in boxes:
        colour = palette[zlib.crc32(frame.encode()) % len(palette)]
        axes.add_patch(plt.Rectangle((left, level), width, 0.95, facecolor=colour, edgecolor="white", linewidth=0.5))
        if width > 0.04:
            label = frame if len(frame) * 0.006 < width else frame[: max(3, int(width / 0.006)) - 1] + "…"
            axes.text(left + 0.003, level + 0.45, label, fontsize=6.5, va="center", clip_on=True)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, depth)
    axes.set_yticks([])
    axes.set_xlabel(f"share of {total} samples")
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()
