"""The faults a track can be given at run time, each pushing a golden signal the way real bugs do."""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["FAULTS", "Faults", "FaultError", "checked_faults"]


class FaultError(ValueError):
    """An unknown fault or a value out of its range; the message names it."""


def checked_faults(values: dict, known: tuple[str, ...], unknown: str) -> dict[str, float]:
    """`values` as numbers, each a fault of `known` inside its range (FAULTS); FaultError, its
    message starting with the fault's name (`unknown` says what a name outside `known` is), else."""
    checked = {}
    for name, raw in values.items():
        if name not in known:
            raise FaultError(f"{name}: {unknown} (known: {', '.join(known)})")
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise FaultError(f"{name}: expected a number, got {raw!r}") from None
        low, high = FAULTS[name][2], FAULTS[name][3]
        if not low <= value <= high:  # NaN is in no range
            raise FaultError(f"{name}: expected a number in [{low:g}, {high:g}], got {value:g}")
        checked[name] = value
    return checked


# name: (what it does, the signal it moves, lowest, highest)
FAULTS: dict[str, tuple[str, str, float, float]] = {
    "latency_ms": ("adds this many ms to every API request", "api_p95_ms", 0, 60_000),
    "error_rate": ("answers this share of API requests with 500", "http_5xx_pct", 0, 1),
    "ws_stall": ("1 stops the websocket tick feed", "ws_staleness_s", 0, 1),
    "ws_lag_s": ("the tick feed's upstream lags: ticks carry prices this many seconds old", "ws_staleness_s", 0, 3600),
    "risk_block_rate": ("the risk engine blocks this share of orders", "risk_blocks_per_min", 0, 1),
    "idem_key_chars": (
        "the key store keeps only the first N characters of a key, so distinct keys collide (0 = off)",
        "idempotency_conflict_pct", 0, 64,
    ),
    "idempotency_broken": ("1 accepts repeated idempotency keys as new orders", "(duplicates)", 0, 1),
    "csp_inline_rate": ("this share of pages carry an inline script the CSP forbids", "csp_violations_per_min", 0, 1),
    "loop_block_ms": ("blocks the event loop this long every 100 ms", "event_loop_p95_ms", 0, 5_000),
    "gc_pressure": (
        "young-generation GC threshold in thousands of objects, with cyclic garbage churn (0 = off)",
        "gc_pause_avg_ms", 0, 5_000,
    ),
    "slow_db_ms": ("every outbox write waits this many ms", "outbox lag", 0, 10_000),
    "cpu_burn_ms": (
        "every API request burns this many ms of CPU on the event loop in spark_price_checksum_burn",
        "api_p95_ms", 0, 1_000,
    ),
    "paper_fill_delay_ms": (
        "every paper fill (a mirrored order's) is decided this many ms late", "consistency drift", 0, 10_000,
    ),
    "quote_skew_pct": (
        "every quote's price is off the market's by this many percent", "shadow response differences", -50, 50,
    ),
}


@dataclass
class Faults:
    latency_ms: float = 0.0
    error_rate: float = 0.0
    ws_stall: float = 0.0
    ws_lag_s: float = 0.0
    risk_block_rate: float = 0.0
    idem_key_chars: float = 0.0
    idempotency_broken: float = 0.0
    csp_inline_rate: float = 0.0
    loop_block_ms: float = 0.0
    gc_pressure: float = 0.0
    slow_db_ms: float = 0.0
    cpu_burn_ms: float = 0.0
    paper_fill_delay_ms: float = 0.0
    quote_skew_pct: float = 0.0

    def update(self, values: dict) -> None:
        """Validate every value first, then apply them all: a bad request changes nothing."""
        checked = checked_faults(values, tuple(FAULTS), "unknown fault")
        for name, value in checked.items():
            setattr(self, name, value)

    def clear(self) -> None:
        for f in fields(self):
            setattr(self, f.name, 0.0)

    def active(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}
