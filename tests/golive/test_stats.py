"""golive._stats against SciPy: the special functions and closed forms the judge rests on."""

from __future__ import annotations

import math

import pytest

from golive import _stats

special = pytest.importorskip("scipy.special")
stats = pytest.importorskip("scipy.stats")
integrate = pytest.importorskip("scipy.integrate")


@pytest.mark.parametrize("a", [0.3, 1.0, 2.5, 7.0, 30.0, 250.0])
@pytest.mark.parametrize("x", [0.01, 0.5, 1.0, 3.0, 9.9, 40.0, 300.0])
def test_the_regularized_lower_gamma_is_scipys_gammainc(a, x):
    # both branches: the series below a + 1, the continued fraction above
    assert _stats._regularized_lower_gamma(a, x) == pytest.approx(special.gammainc(a, x), rel=1e-9, abs=1e-14)


@pytest.mark.parametrize("observed", [1, 2, 5, 17, 60])
@pytest.mark.parametrize("expected", [0.2, 1.0, 4.0, 25.0])
def test_the_poisson_tail_is_scipys_for_whole_counts(observed, expected):
    assert _stats.poisson_sf(observed, expected) == pytest.approx(stats.poisson.sf(observed - 1, expected),
                                                                   rel=1e-9, abs=1e-14)


def test_the_poisson_tail_of_extrapolated_and_overdispersed_counts_is_the_gamma_form():
    assert _stats.poisson_sf(2.7, 1.3) == pytest.approx(special.gammainc(2.7, 1.3), rel=1e-9)
    assert _stats.poisson_sf(12.0, 4.0, dispersion=3.0) == pytest.approx(special.gammainc(4.0, 4.0 / 3.0), rel=1e-9)
    assert (_stats.poisson_sf(0, 5.0), _stats.poisson_sf(3, 0.0)) == (1.0, 0.0)


@pytest.mark.parametrize("alpha", [0.05, 0.01, 0.0025])
@pytest.mark.parametrize("rate", [0.001, 0.02])
def test_requests_to_tell_leave_a_canary_at_the_threshold_silent_with_probability_alpha(alpha, rate):
    n = _stats.requests_to_tell(rate, alpha)
    assert stats.poisson.pmf(0, n * rate) == pytest.approx(alpha, rel=1e-12)


@pytest.mark.parametrize("z", [-60.0, -20.0, -8.5, -8.0, -7.9, -3.0, 0.0, 2.5, 6.0])
def test_half_z_squared_plus_log_phi_is_scipys_log_ndtr(z):
    expected = z * z / 2 + special.log_ndtr(z)
    # Below -8 Mills' series stops at 3/z^4: its error is about the next term, 15/z^6.
    tolerance = 1e-9 if z > -8 else 15 / z**6
    assert _stats._half_z2_plus_log_phi(z) == pytest.approx(expected, abs=tolerance)


@pytest.mark.parametrize("deltas", [[0.1, 0.3, 0.2], [-0.2, 0.1, -0.1, 0.05], [0.8, 0.9, 1.1, 0.7, 1.0]])
def test_the_gaussian_e_value_is_its_half_normal_mixture_integrated(deltas):
    n, prior_scale, sigma_floor = len(deltas), 1.0, 0.05
    sigma2 = max(stats.tstd(deltas) ** 2, sigma_floor**2)
    total = sum(deltas)

    def mixed_likelihood_ratio(mu: float) -> float:
        ratio = math.exp(mu * total / sigma2 - n * mu * mu / (2 * sigma2))
        return 2 * stats.norm.pdf(mu, scale=prior_scale) * ratio

    evalue, _ = integrate.quad(mixed_likelihood_ratio, 0, math.inf)
    assert _stats.gaussian_log_evalue(deltas, sigma_floor, prior_scale) == pytest.approx(math.log(evalue), rel=1e-6)


def test_the_count_e_value_is_the_binomial_likelihood_ratio_mixture():
    intervals = [(4, 100.0, 10, 400.0), (7, 120.0, 9, 380.0)]
    null_ratio = 1.1
    logs = []
    for mult in _stats._RATIO_ALTERNATIVES:
        total = 0.0
        for bad_c, exp_c, bad_b, exp_b in intervals:
            p0 = null_ratio * exp_c / (null_ratio * exp_c + exp_b)
            p1 = null_ratio * mult * exp_c / (null_ratio * mult * exp_c + exp_b)
            total += stats.binom.logpmf(bad_c, bad_c + bad_b, p1) - stats.binom.logpmf(bad_c, bad_c + bad_b, p0)
        logs.append(total)
    expected = special.logsumexp(logs) - math.log(len(logs))
    assert _stats.count_log_evalue(intervals, null_ratio) == pytest.approx(expected, rel=1e-9)


def test_the_mean_of_e_values_is_a_log_sum_exp():
    assert _stats.mean_log_evalue(0.5, 3.0, -2.0) == pytest.approx(special.logsumexp([0.5, 3.0, -2.0]) - math.log(3))


def test_the_trend_is_the_least_squares_slope():
    values = [3.0, 3.4, 3.1, 4.2, 4.4, 5.0]
    assert _stats.trend_slope(values) == pytest.approx(stats.linregress(range(len(values)), values).slope)
