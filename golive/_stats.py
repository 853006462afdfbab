"""Small, dependency-free statistics for the judge: tail probabilities and e-processes.

Why e-processes: the gate looks again every interval. A fixed-sample test run at every look
rejects a healthy canary far more often than its nominal level; an e-process E_t satisfies
P(sup_t E_t >= 1/alpha) <= alpha under the null (Ville's inequality), so the gate may peek as
often as it likes. Both tests below are mixtures of likelihood ratios (or bets) over a fixed grid
of alternatives, which keeps them valid and makes them cheap.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = [
    "count_log_evalue",
    "gaussian_log_evalue",
    "mean_log_evalue",
    "negative_binomial_shape",
    "poisson_sf",
    "quasi_poisson_dispersion",
    "requests_to_tell",
    "sign_log_evalue",
    "trend_slope",
]

_TINY = 1e-300

# Alternatives for the count test, as multiples of the null rate ratio.
_RATIO_ALTERNATIVES = (1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 100.0)
_DISPERSION_PRIOR_DF = 4
# Betting fractions for the sign test; the mixture adapts to how consistently the canary is worse.
_BETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def _log_mean_exp(logs: Sequence[float]) -> float:
    top = max(logs)
    return top + math.log(sum(math.exp(x - top) for x in logs) / len(logs))


def _regularized_lower_gamma(a: float, x: float) -> float:
    """P(a, x), by its series for x < a + 1 and its continued fraction otherwise."""
    if x <= 0:
        return 0.0
    log_prefix = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        ap = a
        for _ in range(1000):
            ap += 1
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return min(1.0, total * math.exp(log_prefix))
    b = x + 1 - a
    c = 1 / _TINY
    d = 1 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = d if abs(d) > _TINY else _TINY
        c = b + an / c
        c = c if abs(c) > _TINY else _TINY
        d = 1 / d
        step = d * c
        h *= step
        if abs(step - 1) < 1e-15:
            break
    return max(0.0, 1.0 - math.exp(log_prefix) * h)


def poisson_sf(observed: float, expected: float, dispersion: float = 1.0) -> float:
    """P(X >= observed) for X ~ Poisson(expected), quasi-Poisson scaled by `dispersion`.

    Counts from Prometheus' `increase()` are extrapolated and need not be whole; the gamma form
    of the tail accepts them. With dispersion phi > 1 both the count and its mean are divided by
    phi, the usual quasi-Poisson correction for counts noisier than Poisson.
    """
    k = observed / dispersion
    mu = expected / dispersion
    if k <= 0:
        return 1.0
    if mu <= 0:
        return 0.0
    return _regularized_lower_gamma(k, mu)


def requests_to_tell(rate_at_threshold: float, alpha: float) -> float:
    """Requests a canary must serve before a healthy one can be told from one at the threshold.

    A canary whose per-request event rate sits at the threshold p shows X ~ Poisson(n p) events
    in n requests (the binomial's limit: p is small). The healthiest observation, no event at
    all, has probability e^(-n p) under "at the threshold"; the exact one-sided test rejects
    that hypothesis at level alpha once e^(-n p) <= alpha, that is

        n p >= k = ln(1 / alpha),    n >= ln(1 / alpha) / p

    (k = 3.0 events expected at the threshold for alpha = 0.05: the same three events that make
    a sparse run informative to the judge). With fewer requests a canary at the threshold shows
    nothing often enough that no count, not even zero, tells it from a healthy one. A rate of
    zero at the threshold (a threshold of 0: any event is over it) needs no requests.
    """
    if rate_at_threshold <= 0:
        return 0.0
    return math.log(1 / alpha) / rate_at_threshold


def quasi_poisson_dispersion(pairs: Iterable[tuple[float, float]]) -> float:
    """Pearson dispersion of per-interval counts (bad, exposure) around their pooled rate, >= 1."""
    pairs = [(b, t) for b, t in pairs if t > 0]
    if len(pairs) < 3:
        return 1.0
    rate = sum(b for b, _ in pairs) / sum(t for _, t in pairs)
    if rate <= 0:
        return 1.0
    chi2 = sum((b - t * rate) ** 2 / (t * rate) for b, t in pairs)
    df = len(pairs) - 1
    # Shrunk toward 1 (Poisson) with _DISPERSION_PRIOR_DF pseudo degrees of freedom: from a handful
    # of sparse intervals the raw Pearson ratio swings wildly, and one outlier would mute a test.
    raw = chi2 / df
    return min(10.0, max(1.0, (raw * df + _DISPERSION_PRIOR_DF) / (df + _DISPERSION_PRIOR_DF)))


def negative_binomial_shape(pairs: Iterable[tuple[float, float]]) -> float | None:
    """Shape k of a negative binomial (variance mu + mu^2/k) fitted to per-interval counts, or
    None where they are no noisier than Poisson. Lets stable's overdispersion be scaled to the
    canary's far smaller counts: phi = 1 + mu_canary / k."""
    pairs = [(b, t) for b, t in pairs if t > 0]
    phi = quasi_poisson_dispersion(pairs)
    if phi <= 1.0:
        return None
    mean_count = sum(b for b, _ in pairs) / len(pairs)
    return mean_count / (phi - 1.0) if mean_count > 0 else None


def count_log_evalue(
    intervals: Iterable[tuple[float, float, float, float]],
    null_ratio: float,
    dispersion: float = 1.0,
) -> float:
    """Log e-value against "canary rate <= null_ratio x baseline rate" for event counts.

    Each interval gives (canary events, canary exposure, baseline events, baseline exposure).
    Conditional on the interval's total events N, the canary's share is Binomial(N, p) with
    p = theta*e_c / (theta*e_c + e_b), where theta is the canary/baseline rate ratio: the
    unknown common rate (and any drift shared by both arms) cancels. The product of likelihood
    ratios over intervals, mixed over a grid of theta > null_ratio, is an e-process (Lindon,
    Sanden & Shirikian, KDD 2022, in its conditional-binomial form). It is also one for every
    theta below the null ratio (monotone likelihood ratio), so the null is composite.
    """
    logs = [0.0] * len(_RATIO_ALTERNATIVES)
    for bad_c, exp_c, bad_b, exp_b in intervals:
        if exp_c <= 0 or exp_b <= 0 or bad_c + bad_b <= 0:
            continue
        p0 = null_ratio * exp_c / (null_ratio * exp_c + exp_b)
        for j, mult in enumerate(_RATIO_ALTERNATIVES):
            theta = null_ratio * mult
            p1 = theta * exp_c / (theta * exp_c + exp_b)
            logs[j] += bad_c * math.log(p1 / p0) + bad_b * math.log((1 - p1) / (1 - p0))
    return _log_mean_exp([x / dispersion for x in logs])


def sign_log_evalue(exceeds: Iterable[bool]) -> float:
    """Log e-value against "P(canary exceeds baseline + margin) <= 1/2" per interval.

    A distribution-free sequential sign test: each interval bets a fraction lambda on the canary
    being worse; wealth prod(1 + lambda*(2x - 1)) is a nonnegative supermartingale under the
    null whatever the shape of the noise, and the mixture over lambda keeps that property.
    """
    logs = [0.0] * len(_BETS)
    for worse in exceeds:
        sign = 1.0 if worse else -1.0
        for j, lam in enumerate(_BETS):
            logs[j] += math.log1p(lam * sign)
    return _log_mean_exp(logs)


def gaussian_log_evalue(deltas: Sequence[float], sigma_floor: float, prior_scale: float = 1.0) -> float:
    """Log e-value against "mean delta <= 0": a one-sided mSPRT with a half-normal mixture.

    deltas are per-interval log-ratios (canary over stable, less the tolerated margin). Under a
    Gaussian model with variance sigma^2 the mixture over mu ~ HalfNormal(prior_scale) of
    likelihood ratios is an e-process (Johari et al., "Always Valid Inference"); sigma is the
    sample's, floored at `sigma_floor` so that three lucky intervals cannot look certain.
    Closed form: 2/(tau*sqrt(a)) * exp(b^2 / 2a) * Phi(b / sqrt(a)), a = n/s^2 + 1/tau^2, b = S/s^2.
    """
    n = len(deltas)
    if n < 2:
        return 0.0
    mean = sum(deltas) / n
    var = sum((d - mean) ** 2 for d in deltas) / (n - 1)
    sigma2 = max(var, sigma_floor**2)
    a = n / sigma2 + 1 / prior_scale**2
    b = sum(deltas) / sigma2
    z = b / math.sqrt(a)
    return math.log(2) - math.log(prior_scale * math.sqrt(a)) + _half_z2_plus_log_phi(z)


def _half_z2_plus_log_phi(z: float) -> float:
    """z^2/2 + log Phi(z), computed so that neither term overflows for very negative z."""
    if z > -8:
        return z * z / 2 + math.log(0.5 * math.erfc(-z / math.sqrt(2)))
    # Mills' ratio: Phi(z) ~ phi(z)/|z| * (1 - 1/z^2 + 3/z^4) as z -> -inf
    return -math.log(-z) - 0.5 * math.log(2 * math.pi) + math.log1p(-1 / z**2 + 3 / z**4)


def mean_log_evalue(*log_evalues: float) -> float:
    """The average of e-values is an e-value: combine tests that are each valid under the null."""
    return _log_mean_exp(list(log_evalues))


def trend_slope(values: Sequence[float]) -> float:
    """Least-squares slope per interval of an evenly spaced series (0 for fewer than 2 points)."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    num = sum((i - mean_x) * (y - mean_y) for i, y in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den
