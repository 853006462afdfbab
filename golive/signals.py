"""The eight golden signals: names, rules and the PromQL that measures them.

The catalogue is data. Thresholds are the runbook's field card; the queries are templates over
``$track`` (``stable`` | ``canary``) and ``$window`` (a Prometheus duration such as ``60s``) and
point at the sandbox's metric names by default. A user re-points a signal at their own metrics by
overriding its queries (YAML or the policy block), never by editing the judge.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from string import Template
from typing import Literal, get_args

__all__ = [
    "CATALOGUE",
    "DRILL_MARK",
    "DRILL_REQUESTS_METRIC",
    "IDEMPOTENCY_CONFLICTS_METRIC",
    "TRACKS",
    "PROBE_MARK",
    "TRAFFIC_CANARY_QUERY",
    "TRAFFIC_TOTAL_QUERY",
    "SIGNAL_NAMES",
    "Kind",
    "Rule",
    "Signal",
    "readiness_queries",
    "render_query",
    "with_overrides",
]

Kind = Literal["quantile", "ratio", "gauge", "rate"]
# max: value <= threshold; below: value < threshold; max_ratio_to_baseline: canary <= baseline * threshold
Rule = Literal["max", "below", "max_ratio_to_baseline"]

# Classic histograms give no quantile without `sum by (le)`; a ratio whose numerator has no series
# yet (no 5xx ever served) must read 0, not "no data", hence `or vector(0)` on numerators only.
_REQUESTS = 'sum(increase(spark_http_requests_total{track="$track"}[$window]))'


@dataclass(frozen=True)
class Signal:
    name: str
    title: str
    column: str
    unit: str
    kind: Kind
    rule: Rule
    threshold: float
    value_query: str
    bad_query: str | None = None
    total_query: str | None = None
    # Signals computed from requests need a minimum of canary requests before they can be green.
    request_derived: bool = False

    @property
    def has_counts(self) -> bool:
        return self.bad_query is not None and self.total_query is not None

    def rule_text(self) -> str:
        if self.rule == "max":
            return f"<= {self.threshold:g} {self.unit}"
        if self.rule == "below":
            return f"< {self.threshold:g} {self.unit}"
        return f"<= baseline x {self.threshold:g}"


CATALOGUE: tuple[Signal, ...] = (
    Signal(
        name="api_p95_ms",
        title="API latency p95",
        column="p95",
        unit="ms",
        kind="quantile",
        rule="max",
        threshold=200.0,
        value_query=(
            "1000 * histogram_quantile(0.95, sum by (le) ("
            'rate(spark_http_request_duration_seconds_bucket{track="$track",route=~"/api/.*"}[$window])))'
        ),
        request_derived=True,
    ),
    Signal(
        name="http_5xx_pct",
        title="5xx responses",
        column="5xx%",
        unit="%",
        kind="ratio",
        rule="max",
        threshold=1.0,
        value_query=(
            '100 * (sum(rate(spark_http_requests_total{track="$track",code=~"5.."}[$window])) or vector(0))'
            ' / sum(rate(spark_http_requests_total{track="$track"}[$window]))'
        ),
        bad_query='sum(increase(spark_http_requests_total{track="$track",code=~"5.."}[$window])) or vector(0)',
        total_query=_REQUESTS,
        request_derived=True,
    ),
    Signal(
        name="ws_staleness_s",
        title="Websocket staleness",
        column="ws_stale",
        unit="s",
        kind="gauge",
        rule="max",
        threshold=30.0,
        value_query='max(max_over_time(spark_ws_last_message_age_seconds{track="$track"}[$window]))',
    ),
    Signal(
        name="risk_blocks_per_min",
        title="Risk blocks",
        column="risk/min",
        unit="/min",
        kind="rate",
        rule="below",
        threshold=0.5,
        value_query='60 * sum(rate(spark_risk_blocks_total{track="$track"}[$window]))',
        bad_query='sum(increase(spark_risk_blocks_total{track="$track"}[$window]))',
        total_query=_REQUESTS,
        request_derived=True,
    ),
    Signal(
        name="idempotency_conflict_pct",
        title="Idempotency conflicts",
        column="idem%",
        unit="%",
        kind="ratio",
        rule="max",
        threshold=1.0,
        value_query=(
            '100 * sum(rate(spark_idempotency_conflicts_total{track="$track"}[$window]))'
            ' / sum(rate(spark_idempotency_keyed_requests_total{track="$track"}[$window]))'
        ),
        bad_query='sum(increase(spark_idempotency_conflicts_total{track="$track"}[$window]))',
        total_query='sum(increase(spark_idempotency_keyed_requests_total{track="$track"}[$window]))',
        request_derived=True,
    ),
    Signal(
        name="csp_violations_per_min",
        title="CSP violations",
        column="cspΔ",
        unit="/min",
        kind="rate",
        rule="max_ratio_to_baseline",
        threshold=1.10,
        value_query='60 * sum(rate(spark_csp_violations_total{track="$track"}[$window]))',
        bad_query='sum(increase(spark_csp_violations_total{track="$track"}[$window]))',
        total_query=_REQUESTS,
        request_derived=True,
    ),
    Signal(
        name="event_loop_p95_ms",
        title="Event-loop lag p95",
        column="evloop",
        unit="ms",
        kind="quantile",
        rule="max",
        threshold=50.0,
        value_query=(
            "1000 * histogram_quantile(0.95, sum by (le) ("
            'rate(spark_event_loop_lag_seconds_bucket{track="$track"}[$window])))'
        ),
    ),
    Signal(
        name="gc_pause_avg_ms",
        title="GC pause mean",
        column="gc",
        unit="ms",
        kind="gauge",
        rule="max",
        threshold=20.0,
        value_query=(
            '1000 * sum(rate(spark_gc_pause_seconds_sum{track="$track"}[$window]))'
            ' / sum(rate(spark_gc_pause_seconds_count{track="$track"}[$window]))'
        ),
    ),
)

SIGNAL_NAMES: tuple[str, ...] = tuple(s.name for s in CATALOGUE)
TRACKS = ("stable", "canary")

# golive's own requests carry a mark, so services count them apart from users' (the traffic
# split is users' requests only): checks are probes, drills are counted as `source="drill"`, so a
# drill can prove where it landed.
PROBE_MARK = {"X-Synthetic": "1"}
DRILL_MARK = {"X-Synthetic": "drill"}
DRILL_REQUESTS_METRIC = "spark_http_requests_total"
IDEMPOTENCY_CONFLICTS_METRIC = "spark_idempotency_conflicts_total"
TRAFFIC_CANARY_QUERY = 'sum(increase(spark_http_requests_total{source="user",track="canary"}[$window]))'
TRAFFIC_TOTAL_QUERY = 'sum(increase(spark_http_requests_total{source="user"}[$window]))'


def render_query(template: str, track: str, window_seconds: float) -> str:
    """Fill a query template for one track and window (rounded to whole seconds, at least 2 s).

    Only `$track` and `$window` are replaced: any other `$` (a regex anchor such as
    `path=~"/api$"`) is PromQL's own and stays as written.
    """
    window = f"{max(2, round(window_seconds))}s"
    return Template(template).safe_substitute(track=track, window=window)


def readiness_queries(catalogue: tuple[Signal, ...] = CATALOGUE, window_seconds: float = 10.0) -> dict[str, str]:
    """Every signal's value query for both tracks (`api_p95_ms[canary]` → PromQL): what a target
    must answer before a go-live can judge it."""
    return {f"{sig.name}[{track}]": render_query(sig.value_query, track, window_seconds)
            for sig in catalogue for track in TRACKS}


# A signal's name becomes part of evidence file names.
_SIGNAL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def _field_problem(field: str, value: object) -> str | None:
    """Why `value` cannot be the signal field `field`; None when it can."""
    if field == "threshold":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            return f"expected a finite number >= 0, got {value!r}"
    elif field == "kind" and value not in get_args(Kind):
        return f"expected one of {', '.join(get_args(Kind))}, got {value!r}"
    elif field == "rule" and value not in get_args(Rule):
        return f"expected one of {', '.join(get_args(Rule))}, got {value!r}"
    elif field == "request_derived" and not isinstance(value, bool):
        return f"expected true or false, got {value!r}"
    elif field == "name" and not (isinstance(value, str) and _SIGNAL_NAME.fullmatch(value)):
        return f"expected a name of letters, digits and _, got {value!r}"
    elif field in ("bad_query", "total_query") and not (value is None or (isinstance(value, str) and value.strip())):
        return f"expected a PromQL query or null, got {value!r}"
    elif field in ("title", "column", "unit", "value_query") and not isinstance(value, str):
        return f"expected text, got {value!r}"
    elif field == "value_query" and not value.strip():
        return "expected a PromQL query, got an empty one"
    return None


def with_overrides(catalogue: tuple[Signal, ...], overrides: dict[str, dict]) -> tuple[Signal, ...]:
    """Return the catalogue with per-signal field overrides applied (threshold, queries, …).

    `overrides` maps a signal name to the fields to replace. An unknown name or field raises
    ``KeyError``, a value of the wrong type or range (or a name another signal has) raises
    ``ValueError``; each message is one line starting with `<signal>.<field>`.
    """
    by_name = {s.name: s for s in catalogue}
    for name, changes in overrides.items():
        if name not in by_name:
            raise KeyError(f"{name}: unknown signal (known: {', '.join(by_name)})")
        if not isinstance(changes, dict):
            raise ValueError(f"{name}: expected a mapping of fields to override")
    allowed = set(Signal.__dataclass_fields__)
    result = []
    for sig in catalogue:
        changes = overrides.get(sig.name, {})
        unknown = set(changes) - allowed
        if unknown:
            raise KeyError(f"{sig.name}.{sorted(unknown)[0]}: unknown field")
        for field, value in changes.items():
            problem = _field_problem(field, value)
            if problem:
                raise ValueError(f"{sig.name}.{field}: {problem}")
        changed = replace(sig, **changes)
        if (changed.bad_query is None) != (changed.total_query is None):
            raise ValueError(f"{sig.name}.bad_query: bad_query and total_query are given together or not at all")
        result.append(changed)
    names = [s.name for s in result]
    for sig in result:
        if names.count(sig.name) > 1:
            renamed = next(s.name for s in catalogue if s.name != sig.name and overrides.get(s.name, {}).get("name") == sig.name)
            raise ValueError(f"{renamed}.name: {sig.name!r} is already another signal's name")
    return tuple(result)
