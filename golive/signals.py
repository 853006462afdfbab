"""The signals a go-live is judged on: names, rules and the PromQL that measures them.

The signal list is the user's data. `CATALOGUE` is the runbook's eight (the default list): the
thresholds are the runbook's field card, the queries templates over ``$track`` (``stable`` |
``canary``) and ``$window`` (a Prometheus duration such as ``60s``) pointing at the sandbox's
metric names; ``$track_selector`` is the label matchers that select a track (``track="$track"``
unless the pack or the target says otherwise: `render_query`). A target's settings start from a
pack (golive.signal_packs: the runbook's eight, the router's, an exporter's, an ingress
controller's) and change it (`signal_list`): re-point, re-threshold, rename, add or remove a
signal, or give the whole list; a list that cannot be judged is refused at load.

What golive reads a signal for beyond judging it is a role, never its name: the signal with role
``errors`` (a ratio with counts) is the error ratio of the SLO, the alerts and the drill; the one
with role ``latency`` the drill's p95 and the one-liner's.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from string import Template
from typing import Literal, get_args

__all__ = [
    "BROWSER_QUERIES",
    "CATALOGUE",
    "QUERIES",
    "DRILL_MARK",
    "DRILL_REQUESTS_METRIC",
    "IDEMPOTENCY_CONFLICTS_METRIC",
    "TRACKS",
    "PROBE_MARK",
    "TRAFFIC_CANARY_QUERY",
    "TRAFFIC_TOTAL_QUERY",
    "SIGNAL_NAMES",
    "TRACK_SELECTOR",
    "ROLES",
    "Kind",
    "Role",
    "Rule",
    "Signal",
    "by_role",
    "carried_selectors",
    "check_signal_list",
    "judged_signals",
    "readiness_queries",
    "render_query",
    "select_track",
    "signal_list",
    "with_overrides",
    "with_track_selectors",
]

Kind = Literal["quantile", "ratio", "gauge", "rate"]
# max: value <= threshold; below: value < threshold; max_ratio_to_baseline: canary <= baseline * threshold
Rule = Literal["max", "below", "max_ratio_to_baseline"]
# errors: the error ratio (SLO burn, alerts, the drill's 5xx); latency: the drill's p95, the one-liner's.
Role = Literal["errors", "latency"]
ROLES: tuple[str, ...] = get_args(Role)

# Classic histograms give no quantile without `sum by (le)`; a ratio whose numerator has no series
# yet (no 5xx ever served) must read 0, not "no data", hence `or vector(0)` on numerators only.
_REQUESTS = 'sum(increase(spark_http_requests_total{track="$track"}[$window]))'


# A signal's PromQL fields: its own, and its form in the shadow stage's browser check (all or none).
BROWSER_QUERIES = ("browser_value_query", "browser_bad_query", "browser_total_query")
QUERIES = ("value_query", "bad_query", "total_query", *BROWSER_QUERIES)


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
    role: Role | None = None
    # Whether a mirror (shadow traffic, no user sees the answer) shows this signal: latency, errors
    # and the decisions a paper fill makes as a live one would (risk, idempotency) do; what only a
    # real browser sends (CSP reports, a websocket's messages) does not (the shadow stage's browser
    # check can show some: the `browser_*` queries below).
    mirror_visible: bool = False
    # Its total counts keyed requests (orders with an idempotency key), not all requests: the
    # policy's min_keyed_requests stands for min_requests.
    keyed: bool = False
    # The signal as the shadow stage's browser check shows it (a real browser loading each track's
    # pages, its requests named `golive-browser-check` in their User-Agent, which the services
    # count as `source="browser"`): the same three queries, counting only
    # what that browser caused. A signal with all three is judged in the shadow stage while the
    # check runs, in this form (`in_browser`).
    browser_value_query: str | None = None
    browser_bad_query: str | None = None
    browser_total_query: str | None = None

    @property
    def has_counts(self) -> bool:
        return self.bad_query is not None and self.total_query is not None

    @property
    def browser_visible(self) -> bool:
        return all(getattr(self, name) is not None for name in BROWSER_QUERIES)

    @property
    def shadow_visible(self) -> bool:
        """The shadow stage can show it: through the mirror, or through its browser check."""
        return self.mirror_visible or self.browser_visible

    def in_browser(self) -> Signal:
        """The signal read from the browser check's traffic alone (the shadow stage's form)."""
        return replace(self, value_query=self.browser_value_query, bad_query=self.browser_bad_query,
                       total_query=self.browser_total_query, mirror_visible=True)

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
        role="latency",
        mirror_visible=True,
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
        role="errors",
        mirror_visible=True,
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
        mirror_visible=True,
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
        mirror_visible=True,
        keyed=True,
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
        # In the shadow stage: the reports the browser check's page loads caused, per page load.
        browser_value_query='60 * sum(rate(spark_csp_violations_total{track="$track",source="browser"}[$window]))',
        browser_bad_query='sum(increase(spark_csp_violations_total{track="$track",source="browser"}[$window]))',
        browser_total_query=(
            'sum(increase(spark_http_requests_total{track="$track",route="/app",source="browser"}[$window]))'),
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
        mirror_visible=True,
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
        mirror_visible=True,
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


# How a track is selected where a query says `$track_selector` and nothing chooses otherwise: the
# `track` label the scrape configuration gives each version's target.
TRACK_SELECTOR = 'track="$track"'
# A query whose track is told apart by other labels (an ingress controller's, a mesh's) carries its
# matchers per track on a first line, a PromQL comment: `# track_selector {"stable": …, "canary": …}`.
_SELECTOR_PLACEHOLDER = re.compile(r"\$(?:track_selector\b|\{track_selector\})")
_CARRIED = re.compile(r"\A#\s*track_selector\s+(\{[^\n]*\})[ \t]*(?:\n|\Z)")


def carried_selectors(template: str) -> tuple[dict[str, str] | None, str]:
    """The per-track matchers a query template carries (None: none), and the template without them."""
    found = _CARRIED.match(template)
    if not found:
        return None, template
    return json.loads(found.group(1)), template[found.end():]


def with_track_selectors(template: str, selectors: dict[str, str] | None) -> str:
    """`template` carrying `selectors` ({stable: matchers, canary: matchers}) for its `$track_selector`;
    as it is when it has no `$track_selector` or `selectors` is None."""
    _, body = carried_selectors(template)
    if selectors is None or not _SELECTOR_PLACEHOLDER.search(body):
        return template
    pair = {track: selectors[track] for track in TRACKS}
    return f"# track_selector {json.dumps(pair, ensure_ascii=False)}\n{body}"


def select_track(template: str, selector: str) -> str:
    """`template` with `$track_selector` (or `${track_selector}`) filled by `selector`; `$track`,
    `$window` and PromQL's own `$` stay for later."""
    return _SELECTOR_PLACEHOLDER.sub(lambda _: selector, template)


def render_query(template: str, track: str, window_seconds: float,
                 selectors: dict[str, str] | None = None) -> str:
    """Fill a query template for one track and window (rounded to whole seconds, at least 2 s).

    `$track_selector` is the label matchers that select `track`: `selectors[track]` when given,
    else those the template carries (`with_track_selectors`), else `track="$track"`. Then only
    `$track` and `$window` are replaced: any other `$` (a regex anchor such as `path=~"/api$"`)
    is PromQL's own and stays as written. A track the matchers do not name (the traffic split's
    "") fills `$track_selector` with nothing to select by: ``ValueError``.
    """
    carried, body = carried_selectors(template)
    chosen = selectors if selectors is not None else carried
    if chosen is None:
        selector = TRACK_SELECTOR
    elif track in chosen:
        selector = chosen[track]
    elif _SELECTOR_PLACEHOLDER.search(body):
        raise ValueError(f"no label matchers select the track {track!r} (given: {', '.join(chosen)})")
    else:
        selector = ""
    window = f"{max(2, round(window_seconds))}s"
    return Template(select_track(body, selector)).safe_substitute(track=track, window=window)


def readiness_queries(catalogue: tuple[Signal, ...] = CATALOGUE, window_seconds: float = 10.0) -> dict[str, str]:
    """Every signal's value query for both tracks (`api_p95_ms[canary]` → PromQL): what a target
    must answer before a go-live can judge it."""
    return {f"{sig.name}[{track}]": render_query(sig.value_query, track, window_seconds)
            for sig in catalogue for track in TRACKS}


# A signal's name becomes part of evidence file names.
_SIGNAL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
# What a signal new to the list must say; the rest has defaults (title and column: its name).
_REQUIRED = ("kind", "rule", "threshold", "value_query")
_NEW_DEFAULTS = {"unit": ""}
# Written into the alert rules' Go-template annotations: one `{{` there makes Prometheus refuse the
# whole rules file, every alert in it lost.
_TEMPLATE_FREE = ("title", "column", "unit")


def _field_problem(field: str, value: object) -> str | None:
    """Why `value` cannot be the signal field `field`; None when it can."""
    if field == "threshold":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            return f"expected a finite number >= 0, got {value!r}"
    elif field == "kind" and value not in get_args(Kind):
        return f"expected one of {', '.join(get_args(Kind))}, got {value!r}"
    elif field == "rule" and value not in get_args(Rule):
        return f"expected one of {', '.join(get_args(Rule))}, got {value!r}"
    elif field == "role" and value is not None and value not in ROLES:
        return f"expected one of {', '.join(ROLES)} or null, got {value!r}"
    elif field in ("request_derived", "mirror_visible", "keyed") and not isinstance(value, bool):
        return f"expected true or false, got {value!r}"
    elif field == "name" and not (isinstance(value, str) and _SIGNAL_NAME.fullmatch(value)):
        return f"expected a name of letters, digits and _, got {value!r}"
    elif field in ("bad_query", "total_query", *BROWSER_QUERIES) and not (
            value is None or (isinstance(value, str) and value.strip())):
        return f"expected a PromQL query or null, got {value!r}"
    elif field in ("title", "column", "unit", "value_query") and not isinstance(value, str):
        return f"expected text, got {value!r}"
    elif field == "value_query" and not value.strip():
        return "expected a PromQL query, got an empty one"
    elif field == "column" and not value.strip():
        return "expected a column heading, got an empty one"
    elif field in _TEMPLATE_FREE and ("{{" in value or "}}" in value):
        return f"expected text without {{{{ or }}}} (an alert's summary is a template), got {value!r}"
    return None


def _checked_fields(where: str, changes: dict) -> None:
    """Refuse an unknown field or a value of the wrong type or range: `<where>.<field>: …`."""
    unknown = set(changes) - set(Signal.__dataclass_fields__)
    if unknown:
        raise KeyError(f"{where}.{sorted(unknown)[0]}: unknown field")
    for field, value in changes.items():
        problem = _field_problem(field, value)
        if problem:
            raise ValueError(f"{where}.{field}: {problem}")


def _new_signal(where: str, fields: dict) -> Signal:
    """A signal that is no pack's, from its fields: kind, rule, threshold and value_query required."""
    _checked_fields(where, fields)
    for required in _REQUIRED:
        if required not in fields:
            raise ValueError(f"{where}.{required}: required for a signal new to the list "
                             f"({', '.join(_REQUIRED)} are; a rule without a threshold cannot be judged)")
    return Signal(**{"title": fields["name"], "column": fields["name"], **_NEW_DEFAULTS, **fields})


def with_overrides(catalogue: tuple[Signal, ...], overrides: dict[str, dict | None]) -> tuple[Signal, ...]:
    """Return the catalogue with its changes applied: per-signal field overrides (threshold,
    queries, name, …), a signal removed (`None`), a signal added (a name not in the catalogue
    with at least kind, rule, threshold and value_query). The result is not yet checked as a
    whole (see `signal_list`).

    An unknown name without a new signal's fields, or an unknown field, raises ``KeyError``; a
    value of the wrong type or range (or a name another signal has) raises ``ValueError``; each
    message is one line starting with `<signal>.<field>`.
    """
    by_name = {s.name: s for s in catalogue}
    for name, changes in overrides.items():
        if name not in by_name and not (isinstance(changes, dict) and {"kind", "value_query"} & set(changes)):
            raise KeyError(f"{name}: unknown signal (known: {', '.join(by_name)})")
        if changes is not None and not isinstance(changes, dict):
            raise ValueError(f"{name}: expected a mapping of fields to override, or null to remove the signal")
    result = []
    for sig in catalogue:
        if sig.name in overrides and overrides[sig.name] is None:
            continue
        changes = overrides.get(sig.name, {})
        _checked_fields(sig.name, changes)
        changed = replace(sig, **changes)
        if (changed.bad_query is None) != (changed.total_query is None):
            raise ValueError(f"{sig.name}.bad_query: bad_query and total_query are given together or not at all")
        result.append(changed)
    result += [_new_signal(name, {"name": name, **changes}) for name, changes in overrides.items()
               if name not in by_name]
    names = [s.name for s in result]
    for sig in result:
        if names.count(sig.name) > 1:
            renamed = next((s.name for s in catalogue if s.name != sig.name
                            and (overrides.get(s.name) or {}).get("name") == sig.name), sig.name)
            raise ValueError(f"{renamed}.name: {sig.name!r} is already another signal's name")
    return tuple(result)


def _from_list(catalogue: tuple[Signal, ...], items: list) -> tuple[Signal, ...]:
    """A whole list of signals: an item named as a signal of `catalogue` starts from it (so
    `{name: api_p95_ms}` alone keeps it as it is), any other is a new signal."""
    by_name = {s.name: s for s in catalogue}
    result = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"[{i}]: expected a mapping of a signal's fields")
        name = item.get("name")
        problem = "required" if name is None else _field_problem("name", name)
        if problem:
            raise ValueError(f"[{i}].name: {problem}")
        if name in by_name:
            changes = {k: v for k, v in item.items() if k != "name"}
            _checked_fields(name, changes)
            result.append(replace(by_name[name], **changes))
        else:
            result.append(_new_signal(name, item))
    return tuple(result)


def check_signal_list(signals: tuple[Signal, ...]) -> None:
    """Refuse a list the judge cannot judge, as one line naming the field (``ValueError``): an
    empty list; a name or a war-room column twice; a signal without a query; a ratio, or a
    request-derived rate, without the counts behind it (bad_query and total_query: without them
    no stage short of 100 % can tell); bad_query without total_query; the relative rule with a
    factor of 0; some of the browser check's queries without the others; a role that is not a ratio
    with counts (errors) or that two signals claim."""
    if not signals:
        raise ValueError(": an empty list: nothing to judge a go-live on")
    seen_names: set[str] = set()
    seen_columns: dict[str, str] = {}
    roles: dict[str, str] = {}
    for sig in signals:
        if sig.name in seen_names:
            raise ValueError(f"{sig.name}.name: {sig.name!r} is in the list twice")
        seen_names.add(sig.name)
        if sig.column in seen_columns:
            raise ValueError(f"{sig.name}.column: {sig.column!r} is already {seen_columns[sig.column]}'s column")
        seen_columns[sig.column] = sig.name
        if not sig.value_query.strip():
            raise ValueError(f"{sig.name}.value_query: no query, nothing to judge")
        if (sig.bad_query is None) != (sig.total_query is None):
            raise ValueError(f"{sig.name}.bad_query: bad_query and total_query are given together or not at all")
        if not sig.has_counts and (sig.kind == "ratio" or (sig.kind == "rate" and sig.request_derived)):
            raise ValueError(f"{sig.name}.bad_query: a {'ratio' if sig.kind == 'ratio' else 'request-derived rate'} "
                             "needs bad_query and total_query (the events and the requests they are counted among)")
        if sig.rule == "max_ratio_to_baseline" and sig.threshold <= 0:
            raise ValueError(f"{sig.name}.threshold: the relative rule needs a factor > 0, got {sig.threshold:g}")
        browser = [getattr(sig, name) is not None for name in BROWSER_QUERIES]
        if any(browser) and not all(browser):
            missing = BROWSER_QUERIES[browser.index(False)]
            raise ValueError(f"{sig.name}.{missing}: the browser check's three queries are given together "
                             "or not at all")
        if sig.role is not None:
            if sig.role in roles:
                raise ValueError(f"{sig.name}.role: {sig.role!r} is already {roles[sig.role]}'s role")
            roles[sig.role] = sig.name
            if sig.role == "errors" and not (sig.kind == "ratio" and sig.has_counts):
                raise ValueError(f"{sig.name}.role: the errors role needs a ratio with bad_query and total_query")


def signal_list(catalogue: tuple[Signal, ...], spec: dict | list | tuple | None) -> tuple[Signal, ...]:
    """The signals a go-live is judged on: `catalogue` (a pack) changed by `spec`, checked whole.

    `spec` is a mapping of changes (`with_overrides`: override, add, remove with null, rename)
    or a list that is the whole list (`{name: …}` items; one named as a signal of `catalogue`
    starts from it). Errors as `with_overrides` and `check_signal_list`: one line, starting with
    the signal and field (`queue_depth.threshold: …`) or the item (`[2].name: …`).
    """
    if spec is None:
        signals = catalogue
    elif isinstance(spec, dict):
        signals = with_overrides(catalogue, spec)
    elif isinstance(spec, (list, tuple)):
        signals = _from_list(catalogue, list(spec))
    else:
        raise ValueError(": expected a mapping of changes to the pack's signals, or a list of signals")
    check_signal_list(signals)
    return signals


def by_role(signals: tuple[Signal, ...], role: Role) -> Signal | None:
    """The signal of the list that plays `role`; None when none does (what needs it says so)."""
    return next((s for s in signals if s.role == role), None)


def judged_signals(signals: tuple[Signal, ...], mirrored: bool, browser: bool = False) -> tuple[Signal, ...]:
    """The signals a stage judges: all of them, or under a mirror (the shadow stage) those a mirror
    shows, and, while its browser check runs (`browser`), those the browser shows, in that form."""
    if not mirrored:
        return signals
    return tuple(s if s.mirror_visible else s.in_browser() for s in signals
                 if s.mirror_visible or (browser and s.browser_visible))
