"""PNG plots for the evidence (matplotlib, no display): one figure made the same way each time."""

from __future__ import annotations

import io
from collections.abc import Callable

__all__ = ["png"]


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
