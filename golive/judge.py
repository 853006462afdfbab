"""The gate: Proceed / Hold / Rollback from the eight golden signals.

Pure: numbers in, a verdict out; no Prefect, no network, no clock. Modelled on argo-rollouts'
evaluator: each signal is judged on its own (pass / deviation / breach / insufficient / nodata),
then the verdicts and the triggers they raise make the decision.

Per signal, in order of precedence:
- **nodata**: no canary observation carries a value.
- **breach**: the canary is over the threshold in its recent intervals (for sparse counts,
  "recent" stretches until it holds a few expected events). It raises the signal's breach
  trigger (a rollback) only when sustained: some run of the latest intervals significantly over
  the threshold when pooled (Bonferroni over the runs scanned; two intervals suffice when
  `severe_factor` times over), for a measured level (p95, lag) each of the latest
  `breach_intervals` over it too, not falling, and not breached by stable as well (that is the
  environment, not the release); or, for an absolute threshold, over it for the stage while
  worse than stable beyond doubt.
- **deviation** (evidence against the canary): a breach that recovered; over the threshold for
  the stage without significance; the relative rule without stable data below 100 %.
- **insufficient** (data, too little to tell): fewer intervals with data than `min_intervals`
  and `min_seconds` ask; or, for a count signal, too few canary requests: a canary at the
  threshold would not yet have shown an event with probability 1 - `min_traffic_alpha`
  (n p >= ln(1/alpha), p the per-request rate at the threshold: `_stats.requests_to_tell`), or
  values without request counts at a partial stage. Gauges and quantiles need intervals, not
  events. The detail says how much was seen and how much the rule needs. A signal the shadow
  stage ended green on (`Scenario.shadow_proven`, shown there with the whole traffic) is not held
  for requests at a stage at or below `shadow_credit_max_percent`: it is judged as gauges are.
- **deviation**: the canary worse than stable (an e-process, so looking every interval stays
  honest). More than `critical_ratio` times worse, confidently, raises `critical-regression`.
- **pass** otherwise.

The decision: any trigger -> rollback; eight passes -> proceed; anything else -> hold.
`insufficient` alone never proceeds and never rolls back: the gate extends the window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from statistics import NormalDist, fmean
from typing import Literal

from golive import _stats
from golive.policy import JudgePolicy
from golive.scenario import Observation, Scenario, Series
from golive.signals import Signal
from golive.triggers import breach_trigger_id

__all__ = ["Decision", "SignalVerdict", "Verdict", "judge"]

Decision = Literal["proceed", "hold", "rollback"]
VerdictWord = Literal["pass", "deviation", "breach", "insufficient", "nodata"]


@dataclass(frozen=True)
class SignalVerdict:
    verdict: VerdictWord
    canary: float | None
    baseline: float | None
    threshold: float
    rule: str
    detail: str
    trend: str | None = None

    def to_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "canary": _round(self.canary),
            "baseline": _round(self.baseline),
            "threshold": self.threshold,
            "rule": self.rule,
            "trend": self.trend,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reason: str
    signals: dict[str, SignalVerdict]
    triggers: tuple[str, ...]

    def to_dict(self) -> dict:
        return {
            "decision": self.decision,
            "reason": self.reason,
            "signals": {name: v.to_dict() for name, v in self.signals.items()},
            "triggers": list(self.triggers),
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


@dataclass(frozen=True)
class _Point:
    """One interval of one arm, in the unit the threshold speaks."""

    level: float
    bad: float | None = None  # events, where counts were given
    exposure: float | None = None  # requests (or keyed requests) the events are counted among
    scale: float | None = None  # level = bad / exposure * scale, where counts made the level
    expected_at_threshold: float | None = None  # events that would put this interval at the threshold


# "Recent" for counts spans at least this many events expected at the threshold.
_RECENT_EXPECTED_EVENTS = 3.0
# Interval-to-interval scatter of log(canary/stable) assumed at least (about 10 %).
_LOG_RATIO_NOISE_FLOOR = 0.1


@dataclass(frozen=True)
class _Comparison:
    log_e: float  # evidence that the canary is worse than stable (beyond the tolerated margin)
    log_e_critical: float  # evidence that it is worse by more than the critical ratio
    evidence: str
    point_worse: str | None  # continuous signals: the point estimate alone is past tolerance


class _Context:
    """What the signals share: traffic split, interval, policy."""

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self.policy: JudgePolicy = scenario.policy
        # Each arm's share of the traffic it answers for: under a mirror both saw all of it.
        self.share = 1.0 if scenario.mirrored else scenario.stage_percent / 100.0
        self.baseline_share = 1.0 if scenario.mirrored else 1.0 - self.share
        self.minutes = scenario.interval_seconds / 60.0


def _points(sig: Signal, series: Series, ctx: _Context, arm: str) -> list[_Point | None]:
    """Per-interval levels of one arm, comparable across arms and with the threshold."""
    own = series.canary if arm == "canary" else series.baseline
    other = series.baseline if arm == "canary" else series.canary
    share = ctx.share if arm == "canary" else ctx.baseline_share
    points: list[_Point | None] = []
    for obs, peer in zip(own, other):
        if obs.value is None or (sig.kind in ("ratio", "rate") and obs.total == 0):
            points.append(None)  # no data, or no traffic to count among
            continue
        counted = obs.bad is not None and obs.total is not None and obs.total > 0
        if sig.kind == "ratio" and counted:
            points.append(_Point(100.0 * obs.bad / obs.total, obs.bad, obs.total, 100.0, obs.total * sig.threshold / 100.0))
        elif sig.kind == "rate":
            # Per unit of the arm's own traffic, scaled to the whole system's traffic, so that a
            # 1 % canary is not green merely because it is small.
            if counted and ctx.scenario.mirrored:
                system = obs.total  # a copy of the same requests: not two halves of the traffic
            elif counted:
                system = obs.total + peer.total if peer.total is not None else obs.total / max(share, 1e-9)
            else:
                system = None
            if system:
                per_minute_system = system / ctx.minutes
                level = obs.bad / obs.total * per_minute_system
                expected = sig.threshold * obs.total / per_minute_system
                points.append(_Point(level, obs.bad, obs.total, per_minute_system, expected))
            elif share > 0:
                points.append(_Point(obs.value / share))
            else:
                points.append(None)
        else:
            points.append(_Point(obs.value))
    return points


def _pooled_level(points: list[_Point]) -> float:
    """The level over several intervals: a ratio of summed counts where counts made every level."""
    if points and all(p.scale is not None for p in points):
        exposure = sum(p.exposure for p in points)
        scale = sum(p.scale * p.exposure for p in points) / exposure
        return sum(p.bad for p in points) / exposure * scale
    return fmean(p.level for p in points)


def _trend(points: list[_Point], window: int) -> str:
    """rising / flat / falling. Sparse counts are too noisy per interval, so where counts made
    the levels the latest `window` intervals are pooled and set against the `window` before."""
    if all(p.scale is not None for p in points):
        if len(points) < 2 * window:
            return "flat"
        now, before = _pooled_level(points[-window:]), _pooled_level(points[-2 * window:-window])
        if now < 0.5 * before:
            return "falling"
        return "rising" if now > 1.5 * before else "flat"
    levels = [p.level for p in points[-5:]]
    if len(levels) < 3:
        return "flat"
    # A move counts only when it is larger than twice the series' own interval-to-interval noise.
    change = _stats.trend_slope(levels) * (len(levels) - 1)
    noise = _noise([p.level for p in points], threshold=0.0)
    if change < -2 * noise and levels[-1] < 0.8 * max(levels):
        return "falling"
    if change > 2 * noise and levels[-1] > levels[0]:
        return "rising"
    return "flat"


def _noise(levels: list[float], threshold: float) -> float:
    """Interval-to-interval noise of a continuous series, from the median absolute successive
    difference: a trend does not inflate it, nor does the very spike being judged. Floored so
    that a short or flat series is not overconfident."""
    floor = (0.02 if len(levels) >= 4 else 0.05) * threshold
    if len(levels) < 3:
        return max(floor, 1e-9)
    diffs = sorted(abs(b - a) for a, b in zip(levels, levels[1:]))
    median = diffs[len(diffs) // 2] if len(diffs) % 2 else (diffs[len(diffs) // 2 - 1] + diffs[len(diffs) // 2]) / 2
    return max(1.4826 * median / math.sqrt(2), floor, 1e-9)


class _SignalJudge:
    def __init__(self, sig: Signal, series: Series | None, ctx: _Context):
        self.sig = sig
        self.ctx = ctx
        self.policy = ctx.policy
        n = ctx.scenario.intervals
        if series is None:
            empty = tuple(Observation(None) for _ in range(n))
            series = Series(empty, empty)
        self.series = series
        self.canary = _points(sig, series, ctx, "canary")
        self.baseline = _points(sig, series, ctx, "baseline")
        # Counts are noisier than Poisson. Stable's counts give the negative-binomial shape k; the
        # canary's counts, usually far smaller, are overdispersed by 1 + mean/k (nearly Poisson
        # when sparse). The canary's own scatter would also carry the regression under test.
        shape = _stats.negative_binomial_shape(
            (p.bad, p.exposure) for p in self.baseline if p is not None and p.scale is not None
        )
        canary_counts = [p.bad for p in self.canary if p is not None and p.scale is not None]
        mean_canary = fmean(canary_counts) if canary_counts else 0.0
        self.dispersion = 1.0 + mean_canary / shape if shape else 1.0
        self.triggers: list[str] = []

    # -- the parts -------------------------------------------------------------------------------

    def _present(self) -> list[tuple[int, _Point]]:
        return [(i, p) for i, p in enumerate(self.canary) if p is not None]

    def _past_threshold(self, level: float) -> bool:
        return level >= self.sig.threshold if self.sig.rule == "below" else level > self.sig.threshold

    def _level_over(self, idx: list[int]) -> bool:
        """The canary's pooled level over intervals `idx` is past the threshold (point estimate)."""
        level = _pooled_level([self.canary[i] for i in idx])
        if self.sig.rule == "max_ratio_to_baseline":
            base = [self.baseline[i] for i in idx if self.baseline[i] is not None]
            return bool(base) and level > self.sig.threshold * _pooled_level(base)
        return self._past_threshold(level)

    def _significantly_over(self, idx: list[int], alpha: float) -> bool:
        """The canary over the threshold pooled over intervals `idx`, at level `alpha`."""
        pts = [self.canary[i] for i in idx]
        if self.sig.rule == "max_ratio_to_baseline":
            pairs = [(p.bad, p.exposure, b.bad, b.exposure) for p, b in ((self.canary[i], self.baseline[i]) for i in idx)
                     if b is not None and p.scale is not None and b.scale is not None]
            if len(pairs) == len(idx):
                return _stats.count_log_evalue(pairs, self.sig.threshold, self.dispersion) >= math.log(1 / alpha)
            limits = [self.sig.threshold * self.baseline[i].level for i in idx if self.baseline[i] is not None]
            return len(limits) == len(idx) and self._mean_clears([p.level for p in pts], fmean(limits), alpha)
        if all(p.expected_at_threshold is not None for p in pts):
            bad = sum(p.bad for p in pts)
            expected = sum(p.expected_at_threshold for p in pts)
            return _stats.poisson_sf(bad, expected, self.dispersion) <= alpha
        return self._mean_clears([p.level for p in pts], self.sig.threshold, alpha)

    def _mean_clears(self, levels: list[float], limit: float, alpha: float) -> bool:
        history = [p.level for _, p in self._present()]
        z = NormalDist().inv_cdf(1 - alpha)
        return fmean(levels) - z * _noise(history, self.sig.threshold) / math.sqrt(len(levels)) > limit

    def _recent(self, idx: list[int]) -> list[int]:
        """The latest intervals: `breach_intervals` of them, extended for sparse counts until
        they hold enough information (`_RECENT_EXPECTED_EVENTS` events expected at the threshold,
        or at stable's rate for a relative rule): three quiet minutes of a 1 % canary say nothing."""
        k = self.policy.breach_intervals
        if self._expected_events(idx) is None:
            return idx[-k:]
        for start in range(len(idx) - k, 0, -1):
            if self._expected_events(idx[start:]) >= _RECENT_EXPECTED_EVENTS:
                return idx[start:]
        return idx

    def _expected_events(self, run: list[int]) -> float | None:
        pts = [self.canary[i] for i in run]
        if self.sig.rule == "max_ratio_to_baseline":
            bases = [self.baseline[i] for i in run]
            if any(b is None or b.scale is None for b in bases) or any(p.scale is None for p in pts):
                return None
            rate = sum(b.bad for b in bases) / sum(b.exposure for b in bases)
            return rate * self.sig.threshold * sum(p.exposure for p in pts)
        if any(p.expected_at_threshold is None for p in pts):
            return None
        return sum(p.expected_at_threshold for p in pts)

    def _breached(self, idx: list[int]) -> bool:
        """Over the threshold over `idx`, beyond the noise of one look."""
        return self._level_over(idx) and self._significantly_over(idx, self.policy.interval_alpha)

    def _breached_alone(self, i: int) -> bool:
        """Interval `i` alone is over the threshold beyond its noise, and holds enough events to
        say so: one conflict among three keyed requests of a 1 % canary is significant against a
        1 % threshold at one look, and comes by chance at one look in a few."""
        expected = self._expected_events([i])
        return (expected is None or expected >= _RECENT_EXPECTED_EVENTS) and self._breached([i])

    def _each_over(self, idx: list[int]) -> bool:
        """Every interval of `idx` past the threshold, where the canary's levels are measured
        values (a p95, a lag): one slow interval pooled with calm ones is a spike, not a sustained
        breach, as a gate counting failed checks (flagger, argo-rollouts) would see it. Counted
        levels are tested pooled only: a sparse canary's single interval is mostly noise."""
        pts = [self.canary[i] for i in idx]
        if self.sig.rule == "max_ratio_to_baseline" or any(p.expected_at_threshold is not None for p in pts):
            return True
        return all(self._past_threshold(p.level) for p in pts)

    def _leans_over(self, idx: list[int]) -> bool:
        """Over the threshold by the point estimate; where counts are sparse, a point estimate is
        noise (one risk block in a 1 % canary reads 7/min), so they must also lean over it."""
        if not self._level_over(idx):
            return False
        counted = all(self.canary[i].scale is not None for i in idx)
        return not counted or self._significantly_over(idx, self.policy.lean_alpha)

    def _baseline_breaching(self, idx: list[int]) -> bool:
        if self.sig.rule == "max_ratio_to_baseline":
            return False
        pts = [self.baseline[i] for i in idx]
        return all(p is not None for p in pts) and self._past_threshold(_pooled_level(pts))

    def _sustained(self, idx: list[int], trend: str) -> str | None:
        """Why the breach is sustained (a rollback), or None.

        The latest `breach_intervals` intervals (two when `severe_factor` times over) must each be
        over the threshold (`_each_over`), and some run of the latest intervals (at least that
        many) must be significantly over it when pooled. Scanning the runs is a multiple
        comparison: the level is split between them (Bonferroni), so a healthy canary stays at
        `breach_alpha`. Or the stage is over the threshold and the canary is worse than stable
        beyond doubt.
        """
        pol = self.policy
        if len(idx) < 2 or trend == "falling" or not self._level_over(self._recent(idx)):
            return None
        severe = self.sig.rule != "max_ratio_to_baseline" and all(
            self.canary[i].level >= pol.severe_factor * self.sig.threshold for i in idx[-2:]
        )
        shortest = 2 if severe else pol.breach_intervals
        if len(idx) < shortest:
            return None
        # Dyadic run lengths (and the whole stage) find an onset almost as well as every length
        # would, at a fraction of the multiple-comparison cost.
        runs = sorted({min(len(idx), shortest * 2**j) for j in range(8)} | {pol.breach_intervals} - {0})
        runs = [r for r in runs if shortest <= r <= len(idx)]
        for length in runs if self._each_over(idx[-shortest:]) else ():
            run = idx[-length:]
            if self._significantly_over(run, pol.breach_alpha / len(runs)):
                if self._baseline_breaching(run):
                    return None
                return f"the last {length} intervals" + (" (severe)" if length < pol.breach_intervals else "")
        # Too noisy to be sure of the threshold alone (a small canary's p95 swings), but over it
        # for the stage and worse than stable beyond doubt: the release is at fault. Not for the
        # relative rule: its test is this comparison already, made above at `breach_alpha`; a
        # healthy canary is over "stable x 1.10" by its point estimate half the time, so the
        # looser level would be the rule's own test at 0.01, paid again at every stage.
        cmp = self.comparison
        if (cmp and self.sig.rule != "max_ratio_to_baseline" and self._level_over(idx)
                and cmp.log_e >= math.log(1 / pol.breach_vs_stable_alpha)):
            return f"the stage, {cmp.evidence}"
        return None

    @cached_property
    def comparison(self) -> _Comparison | None:
        """Canary against stable over the intervals where both have data (None: too few)."""
        pairs = [(c, b) for c, b in zip(self.canary, self.baseline) if c is not None and b is not None]
        if len(pairs) < self.policy.min_intervals:
            return None
        pol = self.policy
        by_counts = all(c.scale is not None and b.scale is not None for c, b in pairs)
        if not by_counts and self.levels_incomparable:
            return None
        if by_counts:
            counted = [(c.bad, c.exposure, b.bad, b.exposure) for c, b in pairs]
            rate_c = sum(c[0] for c in counted) / sum(c[1] for c in counted)
            rate_b = sum(c[2] for c in counted) / sum(c[3] for c in counted)
            ratio = f"{rate_c / rate_b:.2f}x" if rate_b > 0 else "above zero"
            return _Comparison(
                log_e=_stats.count_log_evalue(counted, pol.count_null_ratio, self.dispersion),
                log_e_critical=_stats.count_log_evalue(counted, pol.critical_ratio, self.dispersion),
                evidence=f"canary rate {ratio} stable's",
                point_worse=None,
            )
        # One indifference margin for both tests: a difference smaller than 5 % of stable's
        # level and of the threshold is no difference (0.2 s of staleness against 30 s).
        floor = pol.absolute_floor * self.sig.threshold

        def evidence(tolerated) -> tuple[float, list[bool]]:
            limits = [tolerated(b.level) for _, b in pairs]
            flags = [c.level > limit for (c, _), limit in zip(pairs, limits)]
            # Sign test (valid for any noise) averaged with the Gaussian mSPRT on log-ratios
            # (far more power when the canary is many times worse).
            log_ratios = [math.log((c.level + floor) / (limit + floor)) for (c, _), limit in zip(pairs, limits)]
            gauss = _stats.gaussian_log_evalue(log_ratios, _LOG_RATIO_NOISE_FLOOR)
            return _stats.mean_log_evalue(_stats.sign_log_evalue(flags), gauss), flags

        log_e, worse = evidence(lambda b: b + max(pol.relative_margin * b, floor))
        log_e_critical, _ = evidence(lambda b: pol.critical_ratio * b + floor)
        mean_c = fmean(c.level for c, _ in pairs)
        mean_b = fmean(b.level for _, b in pairs)
        point_worse = None
        if mean_c - mean_b > max(pol.relative_tolerance * mean_b, floor):
            ratio = f"{mean_c / mean_b:.2f}x" if mean_b > 0 else f"+{mean_c - mean_b:.3g}"
            point_worse = f"canary/stable {ratio}, worse than tolerance (not yet conclusive)"
        return _Comparison(
            log_e=log_e,
            log_e_critical=log_e_critical,
            evidence=f"canary worse than stable in {sum(worse)}/{len(worse)} intervals",
            point_worse=point_worse,
        )

    @property
    def levels_incomparable(self) -> bool:
        return not self.ctx.scenario.mirrored and self.ctx.share * 100 > self.policy.level_comparison_max_percent

    @property
    def shadow_credited(self) -> bool:
        """The shadow stage ended green on this signal, shown there with the whole traffic, and
        this stage is small enough (`shadow_credit_max_percent`) to take its word for the traffic."""
        scenario = self.ctx.scenario
        return (self.sig.name in scenario.shadow_proven and self.sig.shadow_visible and not scenario.mirrored
                and scenario.stage_percent <= self.policy.shadow_credit_max_percent)

    def _too_little_traffic(self) -> str | None:
        """Why the canary's requests cannot tell yet (the `insufficient` detail), or None; None for a
        signal the shadow stage proved (`shadow_credited`): it is judged as gauges are."""
        shortfall = self._traffic_shortfall()
        return None if shortfall and self.shadow_credited else shortfall

    def _traffic_shortfall(self) -> str | None:
        """Why the canary's requests cannot tell yet, shadow or not, or None.

        Count signals only: their counts carry the sample size. At a partial stage, values
        without counts say nothing of the requests behind them: insufficient, never a pass. With
        counts the canary needs n >= ln(1/alpha) / p requests (`_stats.requests_to_tell`), where
        p is the per-request rate at the threshold: threshold / 100 for a ratio (300 requests for
        a 1 % threshold at alpha = 0.05), threshold x stable's pooled rate for the relative rule.

        A rate per minute of the whole system (risk blocks) has p = threshold / system requests a
        minute, so n p = threshold x share x minutes whatever the traffic: 0.075 events at the
        threshold over 15 minutes at 1 %, 3.75 at 50 %. No traffic makes a small stage testable
        at such a threshold and waiting for it would stall every small stage; it is judged as
        gauges are, on intervals with data, its breach rules catching what a stage can show.
        """
        sig, pol = self.sig, self.policy
        if sig.kind not in ("ratio", "rate") or not sig.request_derived:
            return None
        noun = "keyed requests" if sig.keyed else "requests"
        pairs = [(c, b) for c, b in zip(self.canary, self.baseline) if c is not None]
        counted = [(c, b) for c, b in pairs if c.scale is not None]
        if not counted:
            if self.ctx.share >= 1.0:
                return None
            return (f"too little to tell: values without request counts at {self.ctx.scenario.stage_percent:g} % "
                    f"(need bad and total: how many {noun} stand behind them)")
        seen = sum(c.exposure for c, _ in counted)
        flat = pol.min_keyed_requests if sig.keyed else pol.min_requests
        if flat is not None:
            needed, why = flat, "the policy's minimum"
        else:
            if sig.rule == "max_ratio_to_baseline":
                base = [b for _, b in counted if b is not None and b.scale is not None]
                exposure = sum(b.exposure for b in base)
                if not exposure or not sum(b.bad for b in base):
                    return None  # no stable rate to size the rule by (or the rule does not apply)
                at_threshold = sig.threshold * sum(b.bad for b in base) / exposure
            elif sig.kind == "ratio":
                at_threshold = sig.threshold / 100.0
            else:
                return None
            needed = _stats.requests_to_tell(at_threshold, pol.min_traffic_alpha)
            why = f"{math.log(1 / pol.min_traffic_alpha):.1f} events expected at the threshold"
        if seen >= needed:
            return None
        return f"too little traffic to tell: {seen:g} canary {noun} (need {math.ceil(needed):g}: {why})"

    def _nodata_beyond_budget(self) -> bool:
        trailing = 0
        for p in reversed(self.canary):
            if p is not None:
                break
            trailing += 1
        return trailing > 0 and trailing * self.ctx.scenario.interval_seconds >= self.policy.hold_budget_seconds

    # -- the verdict ------------------------------------------------------------------------------

    def verdict(self) -> SignalVerdict:
        sig = self.sig
        present = self._present()
        base_present = [p for p in self.baseline if p is not None]
        baseline_level = _pooled_level(base_present) if base_present else None
        threshold_word = sig.rule_text()

        def make(word: VerdictWord, detail: str, canary: float | None = None, trend: str | None = None) -> SignalVerdict:
            return SignalVerdict(word, canary, baseline_level, sig.threshold, threshold_word, detail, trend)

        if self._nodata_beyond_budget():
            self.triggers.append("nodata-beyond-budget")
        if not present:
            return make("nodata", "no canary data")

        canary_level = _pooled_level([p for _, p in present])
        trend = _trend([p for _, p in present], self.policy.breach_intervals)

        if sig.rule == "max_ratio_to_baseline" and baseline_level is None:
            if self.ctx.share < 1.0 or self.ctx.scenario.mirrored:
                return make("deviation", "no stable data to compare with", canary_level, trend)
            relative_note = "no stable traffic at 100 %: relative rule not applicable"
        else:
            relative_note = None

        idx = [i for i, _ in present]
        recent = self._recent(idx)
        sustained = self._sustained(idx, trend)
        if sustained:
            self.triggers.append(breach_trigger_id(sig.name))
            return make("breach", f"over {threshold_word} over {sustained}, trend {trend}", canary_level, trend)
        if self._breached(recent) or self._breached_alone(idx[-1]):
            if self._baseline_breaching(recent):
                detail = "over threshold, but stable breaches too: not the release"
            else:
                detail = "over threshold in recent intervals, not yet sustained"
            return make("breach", f"{detail} (trend {trend})", canary_level, trend)
        if any(self._breached_alone(i) for i in idx[-self.policy.breach_intervals:]):
            return make("deviation", "recovering from a breach in a recent interval", canary_level, trend)
        if self._leans_over(idx):
            return make("deviation", "over threshold over the stage so far, not significantly", canary_level, trend)
        needed = max(self.policy.min_intervals, math.ceil(self.policy.min_seconds / self.ctx.scenario.interval_seconds))
        if len(present) < needed:
            return make("insufficient", f"too little to tell: {len(present)} interval(s) with data (need {needed})",
                        canary_level, trend)
        thin = self._too_little_traffic()
        if thin:
            return make("insufficient", thin, canary_level, trend)
        cmp = self.comparison
        if cmp and cmp.log_e_critical >= math.log(1 / self.policy.critical_alpha):
            self.triggers.append("critical-regression")
            return make("deviation", f"critically worse than stable (> {self.policy.critical_ratio:g}x): {cmp.evidence}",
                        canary_level, trend)
        if cmp and cmp.log_e >= math.log(1 / self.policy.deviation_alpha):
            return make("deviation", f"{cmp.evidence}, significant (e={math.exp(min(cmp.log_e, 700)):.3g})",
                        canary_level, trend)
        if cmp and cmp.point_worse:
            return make("deviation", cmp.point_worse, canary_level, trend)
        detail = f"inside {threshold_word}, no significant difference from stable"
        if cmp is None and baseline_level is not None and self.levels_incomparable:
            detail = (f"inside {threshold_word}; not compared with stable, which serves fewer users "
                      f"at {self.ctx.scenario.stage_percent:g} %")
        if baseline_level is None:
            detail = f"inside {threshold_word}; no stable traffic to compare with"
        if relative_note:
            detail = relative_note
        if self.shadow_credited:
            shortfall = self._traffic_shortfall()
            lacking = shortfall.split(": ", 1)[-1] if shortfall else None
            detail += "; shown green in the shadow stage" + (f", which stands for the traffic this stage lacks: "
                                                             f"{lacking}" if lacking else "")
        return make("pass", detail, canary_level, trend)


def judge(scenario: Scenario) -> Verdict:
    """Judge one scenario: every catalogue signal gets a verdict, then one decision."""
    ctx = _Context(scenario)
    verdicts: dict[str, SignalVerdict] = {}
    triggers: list[str] = []
    for sig in scenario.catalogue:
        signal_judge = _SignalJudge(sig, scenario.signals.get(sig.name), ctx)
        verdicts[sig.name] = signal_judge.verdict()
        triggers.extend(t for t in signal_judge.triggers if t not in triggers)
    return Verdict(_decide(verdicts, triggers), _reason(verdicts, triggers, scenario), verdicts, tuple(triggers))


def _decide(verdicts: dict[str, SignalVerdict], triggers: list[str]) -> Decision:
    if triggers:
        return "rollback"
    if all(v.verdict == "pass" for v in verdicts.values()):
        return "proceed"
    return "hold"


def _reason(verdicts: dict[str, SignalVerdict], triggers: list[str], scenario: Scenario) -> str:
    total = len(verdicts)
    green = sum(v.verdict == "pass" for v in verdicts.values())
    if triggers:
        return f"rollback: {', '.join(triggers)}"
    if green == total:
        return f"{green}/{total} green over {scenario.intervals} intervals"
    by_word: dict[str, list[str]] = {}
    for name, v in verdicts.items():
        if v.verdict != "pass":
            by_word.setdefault(v.verdict, []).append(name)
    parts = [f"{len(names)} {word} ({', '.join(names)})" for word, names in by_word.items()]
    return f"hold: {green}/{total} green; " + "; ".join(parts)
