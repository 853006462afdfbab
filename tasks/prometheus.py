"""Prometheus: the signals of both tracks per interval, and the traffic split actually observed."""

from __future__ import annotations

import math
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import replace
from datetime import datetime, timezone

from prefect import task
from prefect.cache_policies import NO_CACHE
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from requests import RequestException, Session, Timeout
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from golive.gate import share_verdict
from golive.models import Check, ShareReading, SignalWindow
from golive.preflight import promql_check, scrape_targets_check, traffic_check
from golive.scenario import parse_scenario
from golive.settings import PolicySettings, PrometheusSettings
from golive.signal_check import Answer, ManySeries, check_signals, signal_queries, signals_check
from golive.signals import TRACKS, Signal, by_role, render_query
from tasks.http_client import run_client
from tasks.logs import run_logger
from tasks.secret_blocks import block_credentials

# Prometheus' answer for "no value" (an empty ratio): never a zero.
_NO_VALUE = {"NaN", "+Inf", "-Inf"}
# A look's range queries in flight at once (Prometheus itself runs 20 at a time by default).
QUERIES_IN_FLIGHT = 16
# A look's queries all answer within one interval, but never less than the first bound (a busy
# machine's slowest honest answer) nor more than the second (the client's own timeout).
LOOK_TIMEOUT_BOUNDS = (2.0, 10.0)


class PrometheusTimeout(TimeoutError):
    """Prometheus did not answer every query of a look in time; the message says how many it did."""


class PrometheusAuthError(ValueError):
    """The Secret block for Prometheus is missing or holds no usable credentials; the message
    names the block, never its value."""


def _client(prometheus: PrometheusSettings) -> PrometheusConnect:
    """A client that checks Prometheus' certificate (against its ca_file when given) and
    authenticates from the Secret block, if one is named; it keeps a connection for each query of
    a look in flight."""
    # One quick retry of a refused connection or a 502/503/504, never of an answer that is late
    # (the look's time would be spent twice): the gate must learn quickly that Prometheus is gone
    # (the client's default backs off for seconds on every request).
    retry = Retry(total=1, read=False, backoff_factor=0.1, status_forcelist=(502, 503, 504), allowed_methods=None)
    session = Session()
    session.verify = (prometheus.ca_file or True) if prometheus.tls_verify else False
    headers, auth = {}, None
    if prometheus.auth_secret_block:
        try:
            headers, auth = block_credentials("prometheus.auth_secret_block", prometheus.auth_secret_block)
        except ValueError as exc:
            raise PrometheusAuthError(str(exc)) from None
    client = PrometheusConnect(url=prometheus.url, headers=headers or None, auth=auth, session=session,
                               timeout=10, retry=retry)
    session.mount(client.url, HTTPAdapter(max_retries=retry, pool_maxsize=QUERIES_IN_FLIGHT))
    return client


def _prometheus(prometheus: PrometheusSettings) -> PrometheusConnect:
    """The run's one client for this Prometheus (tasks.http_client): its connections kept alive
    and its Secret block read once per run, not on every interval's queries."""
    return run_client(("prometheus", prometheus), lambda: _client(prometheus))


def look_timeout(interval_seconds: float) -> float:
    """How long a look's queries may take: one interval, within LOOK_TIMEOUT_BOUNDS."""
    low, high = LOOK_TIMEOUT_BOUNDS
    return min(high, max(low, interval_seconds))


def _series(prom: PrometheusConnect, promql: str, times: list[float], step: float,
            deadline: float | None = None) -> dict[float, float | None] | ManySeries:
    """One value per interval end; an interval with no sample or NaN is None; ManySeries when
    the query answers more than one series. The request's timeout is what is left until
    `deadline` (time.monotonic()), when given."""
    timeout = None
    if deadline is not None:
        timeout = deadline - time.monotonic()
        if timeout <= 0:
            raise PrometheusTimeout(f"no time left to ask Prometheus {promql!r}")
    result = prom.custom_query_range(
        promql,
        start_time=datetime.fromtimestamp(times[0], timezone.utc),
        end_time=datetime.fromtimestamp(times[-1], timezone.utc),
        step=f"{step:g}s",
        timeout=timeout,
    )
    if len(result) > 1:
        return ManySeries(len(result))
    values: dict[float, float | None] = {t: None for t in times}
    for series in result:
        for stamp, raw in series["values"]:
            nearest = min(times, key=lambda t: abs(t - float(stamp)))
            if abs(nearest - float(stamp)) < step / 2 and raw not in _NO_VALUE and math.isfinite(float(raw)):
                values[nearest] = float(raw)
    return values


def _all_series(prom: PrometheusConnect, promqls: dict[tuple, str], times: list[float], step: float,
                timeout: float) -> dict[tuple, dict[float, float | None] | ManySeries]:
    """Every query's series (by key), QUERIES_IN_FLIGHT at a time, all within `timeout` seconds.
    The first failure, or the time running out, fails them all and drops those not yet asked: a
    look answered in part is not answered."""
    deadline = time.monotonic() + timeout
    pool = ThreadPoolExecutor(max_workers=min(QUERIES_IN_FLIGHT, len(promqls)), thread_name_prefix="prometheus")
    try:
        asked = {pool.submit(_series, prom, promql, times, step, deadline): key for key, promql in promqls.items()}
        done, _ = wait(asked, timeout=timeout, return_when=FIRST_EXCEPTION)
        errors = [f.exception() for f in done if f.exception() is not None]
        if failed := next((e for e in errors if not isinstance(e, (PrometheusTimeout, Timeout))), None):
            raise failed
        answered = {asked[f]: f.result() for f in done if f.exception() is None}
        if len(answered) < len(asked):
            raise PrometheusTimeout(f"Prometheus answered {len(answered)} of {len(asked)} queries within {timeout:g} s")
        return answered
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


@task(name="query the signals", cache_policy=NO_CACHE)
def query_signals(prometheus: PrometheusSettings, policy: PolicySettings, stage_percent: int, start: float,
                  end: float, mirrored: bool = False, browser: bool = False) -> SignalWindow:
    """The signals of both tracks for each whole interval in [start, end], as a judge scenario.

    Every range query of the window is asked at once (at most QUERIES_IN_FLIGHT in flight), and
    all must answer within one interval (`look_timeout`): a Prometheus that is silent costs a look
    one timeout, whatever the number of queries. Not retried: a refused connection is tried again
    once at once, and the stage's next look asks again.

    Args:
        prometheus: where Prometheus is.
        policy: the interval, the signal catalogue, the judge's policy.
        stage_percent: the canary's share of traffic in this window.
        mirrored: the shadow stage (`stage_percent` 0): only the signals a mirror shows are asked.
        browser: the shadow stage's browser check ran: the signals it shows are asked too, in that form.
        start, end: the window, Unix seconds.

    Returns:
        The window with the PromQL as resolved and the judge's input (docs/judge.md).

    Raises:
        PrometheusTimeout: a query was not answered in time; any other failure of a query as it came.
    """
    interval = policy.interval_seconds
    count = int((end - start + 1e-6) // interval)
    times = [start + interval * (k + 1) for k in range(count)]
    catalogue = policy.judged(mirrored, browser)
    queries: dict[str, dict[str, dict[str, str]]] = {}
    signals: dict[str, dict[str, list]] = {}
    if times:
        for sig in catalogue:
            kinds = {"value": sig.value_query}
            if sig.has_counts:
                kinds.update(bad=sig.bad_query, total=sig.total_query)
            queries[sig.name] = {track: {kind: render_query(q, track, interval) for kind, q in kinds.items()}
                                 for track in TRACKS}
        columns = _all_series(_prometheus(prometheus),
                              {(name, track, kind): promql for name, tracks in queries.items()
                               for track, resolved in tracks.items() for kind, promql in resolved.items()},
                              times, interval, look_timeout(interval))
        for (name, track, kind), column in columns.items():
            if isinstance(column, ManySeries):
                run_logger().warning("signal %s on %s: its %s query %s; no data for it in this look",
                                     name, track, kind, column)
                columns[(name, track, kind)] = dict.fromkeys(times)
        for name, tracks in queries.items():
            signals[name] = {
                "canary" if track == "canary" else "baseline": [
                    {kind: columns[(name, track, kind)][t] for kind in resolved} for t in times
                ]
                for track, resolved in tracks.items()
            }
    # Prometheus' numbers enter the judge here, checked as any judge input is.
    measured = parse_scenario({"stage_percent": stage_percent, "interval_seconds": interval, "signals": signals,
                               **({"mirrored": True} if mirrored else {}),
                               **({"browser": True} if mirrored and browser else {})}, catalogue)
    return SignalWindow(stage_percent=stage_percent, start=start, end=end, interval_seconds=interval,
                        timestamps=times, queries=queries, scenario=replace(measured, policy=policy.judge_policy()))


# The shortest window render_query gives (a counter's increase needs two scrapes in it).
MIN_SHARE_WINDOW_SECONDS = 2


@task(name="observe the traffic split", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def observe_share(prometheus: PrometheusSettings, weight: int, tolerance_points: float, start: float,
                  end: float) -> ShareReading:
    """The canary's share of user requests (synthetic probes left out) over [start, end], and
    whether it matches the weight within `tolerance_points` beyond noise (golive.gate.share_verdict).

    The window is whole seconds ending at `end` and never reaches back before `start`: a request
    counted before `start` may have been routed by the weight before. Shorter than
    MIN_SHARE_WINDOW_SECONDS, nothing is counted yet (no observed share: asked again later); nor
    when a query answers several series (never the first one's count)."""
    window = math.floor(end - start)
    unobserved = ShareReading(weight=weight, canary_requests=0.0, total_requests=0.0, observed_pct=None,
                              tolerance_points=tolerance_points, ok=False, window_seconds=max(0.0, end - start))
    if window < MIN_SHARE_WINDOW_SECONDS:
        return unobserved
    prom = _prometheus(prometheus)
    answers = {name: _answer(prom, render_query(promql, "", window), end)
               for name, promql in (("canary", prometheus.traffic_canary_query),
                                    ("total", prometheus.traffic_total_query))}
    if several := [f"its {name} query {answer}" for name, answer in answers.items() if isinstance(answer, ManySeries)]:
        run_logger().warning("the traffic split is not observed: %s", "; ".join(several))
        return unobserved
    canary, everyone = answers["canary"] or 0.0, answers["total"] or 0.0
    observed, tolerance, ok = share_verdict(weight, canary, everyone, tolerance_points)
    return ShareReading(weight=weight, canary_requests=canary, total_requests=everyone, observed_pct=observed,
                        tolerance_points=round(tolerance, 3), ok=ok, window_seconds=window)


@task(name="read stable's level", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def stable_level(prometheus: PrometheusSettings, policy: PolicySettings, signal: str, start: float,
                 end: float) -> float | None:
    """One signal of stable over [start, end] as one number (its value query over that window):
    the shadow stage's level of stable before the mirror; None without data."""
    sig = next(s for s in policy.catalogue() if s.name == signal)
    window = max(MIN_SHARE_WINDOW_SECONDS, math.floor(end - start))
    return _value(_prometheus(prometheus), render_query(sig.value_query, "stable", window), end)


def _answer(prom: PrometheusConnect, promql: str, at: float) -> Answer:
    """The query's one number at `at`; None when it has none; ManySeries when it answers several."""
    result = prom.custom_query(promql, params={"time": at})
    if len(result) > 1:
        return ManySeries(len(result))
    if not result or result[0]["value"][1] in _NO_VALUE:
        return None
    return float(result[0]["value"][1])


def _value(prom: PrometheusConnect, promql: str, at: float) -> float | None:
    """The query's one number at `at`, or None: no value, or several series (never the first one's)."""
    answer = _answer(prom, promql, at)
    return None if isinstance(answer, ManySeries) else answer


@task(name="check a signal's PromQL", retries=1, retry_delay_seconds=1, cache_policy=NO_CACHE)
def check_promql(prometheus: PrometheusSettings, policy: PolicySettings, signal: str, track: str,
                 window_seconds: float = 30.0) -> Check:
    """Ask Prometheus the signal's queries (from the policy's catalogue) for `track` now
    (golive.preflight.promql_check)."""
    sig = next(s for s in policy.catalogue() if s.name == signal)
    queries = {"value": sig.value_query, **({"bad": sig.bad_query, "total": sig.total_query} if sig.has_counts else {})}
    resolved = {kind: render_query(q, track, window_seconds) for kind, q in queries.items()}
    prom = _prometheus(prometheus)
    now = time.time()
    try:
        answers = {kind: _answer(prom, promql, now) for kind, promql in resolved.items()}
    except (PrometheusApiClientException, RequestException) as exc:
        return promql_check(signal, track, window_seconds, resolved, None, str(exc))
    if several := [f"its {kind} query {answer}" for kind, answer in answers.items() if isinstance(answer, ManySeries)]:
        return promql_check(signal, track, window_seconds, resolved, None, "; ".join(several))
    return promql_check(signal, track, window_seconds, resolved, answers)


def ask_signal_queries(prometheus: PrometheusSettings, catalogue: tuple[Signal, ...], window_seconds: float,
                       at: float | None = None) -> tuple[dict[tuple[str, str, str], Answer], list[str]]:
    """Every query of every signal for both tracks over the window ending at `at` (now), and the
    metric names Prometheus knows: what golive.signal_check judges. A plain function, so that
    `golive signals check` asks without a flow."""
    prom = _prometheus(prometheus)
    at = time.time() if at is None else at
    answers = {key: _answer(prom, promql, at) for key, promql in signal_queries(catalogue, window_seconds).items()}
    return answers, prom.all_metrics()


@task(name="check every signal has data", retries=1, retry_delay_seconds=1, cache_policy=NO_CACHE)
def check_signal_data(prometheus: PrometheusSettings, policy: PolicySettings, window_seconds: float = 30.0) -> Check:
    """Every signal of the policy's list answers for both tracks, its metrics known to Prometheus
    (golive.signal_check).

    Args:
        prometheus: where Prometheus is.
        policy: the signal list.
        window_seconds: the window each query looks back over.

    Returns:
        The `signal_data` check: failed naming each signal without data and why.
    """
    catalogue = policy.catalogue()
    try:
        answers, known = ask_signal_queries(prometheus, catalogue, window_seconds)
    except (PrometheusApiClientException, RequestException) as exc:
        return signals_check([], window_seconds, str(exc))
    return signals_check(check_signals(catalogue, answers, known), window_seconds)


@task(name="check Prometheus scrapes every target", retries=1, retry_delay_seconds=1, cache_policy=NO_CACHE)
def check_scrape_targets(prometheus: PrometheusSettings) -> Check:
    """Read Prometheus' active scrape targets (golive.preflight.scrape_targets_check)."""
    try:
        targets = _prometheus(prometheus).get_targets(state="active")["activeTargets"]
    except (PrometheusApiClientException, RequestException) as exc:
        return scrape_targets_check(None, str(exc))
    return scrape_targets_check(targets)


@task(name="check users' traffic is measured", retries=1, retry_delay_seconds=1, cache_policy=NO_CACHE)
def check_traffic(prometheus: PrometheusSettings, window_seconds: float = 30.0) -> Check:
    """Ask the traffic-share queries for the last window (golive.preflight.traffic_check)."""
    prom = _prometheus(prometheus)
    queries = {"canary": render_query(prometheus.traffic_canary_query, "", window_seconds),
               "total": render_query(prometheus.traffic_total_query, "", window_seconds)}
    try:
        values = {name: _value(prom, promql, time.time()) for name, promql in queries.items()}
    except (PrometheusApiClientException, RequestException) as exc:
        return traffic_check(window_seconds, queries, None, str(exc))
    return traffic_check(window_seconds, queries, values)


# Prometheus needs a few scrapes inside a window; a compressed night's "5 minutes" may be shorter.
MIN_WINDOW_SECONDS = 5.0


@task(name="measure the error budget burn", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def measure_error_counts(prometheus: PrometheusSettings, policy: PolicySettings, track: str, windows: dict[str, float],
                         at: float) -> dict[str, list | None]:
    """5xx and all requests of `track` over each named window (seconds) ending at `at`:
    {name: [bad, total]}. A window whose total has no answer is None (no data, never a zero);
    no 5xx series where requests were counted is 0 errors. The errors are those of the list's
    signal with role `errors`; a list without one raises ValueError naming the field."""
    sig = by_role(policy.catalogue(), "errors")
    if sig is None:
        raise ValueError("policy.signals: no signal has role errors (a ratio with counts): the error budget "
                         "cannot be measured")
    prom = _prometheus(prometheus)
    counts: dict[str, list | None] = {}
    for name, seconds in windows.items():
        seconds = max(MIN_WINDOW_SECONDS, seconds)
        total = _value(prom, render_query(sig.total_query, track, seconds), at)
        bad = _value(prom, render_query(sig.bad_query, track, seconds), at)
        counts[name] = None if total is None else [bad or 0.0, total]
    return counts


@task(name="snapshot the signals", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def snapshot_signals(prometheus: PrometheusSettings, policy: PolicySettings, track: str, window_seconds: float,
                     at: float) -> dict[str, float | None]:
    """Each signal of the policy's catalogue: its value for `track` over the window ending at `at`
    (None: no value)."""
    prom = _prometheus(prometheus)
    return {sig.name: _value(prom, render_query(sig.value_query, track, window_seconds), at)
            for sig in policy.catalogue()}
