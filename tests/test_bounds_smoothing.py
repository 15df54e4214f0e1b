import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from sklearn_certify.bounds import (
    clopper_pearson_lower,
    clopper_pearson_upper,
    cohen_radius,
    hoeffding_bounds,
    l2_radius_per_sample,
    linf_to_l2,
    rab_radius,
)

# (nA, n, alpha, sigma, pA_low, radius or None for abstain), computed independently of the code
# under test: pA_low = scipy.stats.beta.ppf(alpha, nA, n - nA + 1) (= alpha ** (1 / n) when
# nA == n), radius = sigma * norm.ppf(pA_low), abstain when pA_low <= 1/2.
COHEN_VECTORS = [
    (990, 1000, 0.001, 0.5, 0.9760361872, 0.989005),
    (1000, 1000, 0.001, 0.5, 0.9931160484, 1.231631),
    (100000, 100000, 0.001, 0.25, 0.9999309248, 0.952864),
    (99000, 100000, 0.001, 0.5, 0.9889893404, 1.145000),
    (9990, 10000, 0.001, 1.0, 0.9975883080, 2.818598),
    (550, 1000, 0.001, 0.5, 0.5006759601, 0.000847),
    (528, 1000, 0.001, 0.5, 0.4786576447, None),
    (510, 1000, 0.001, 0.5, 0.4607130330, None),
    (60, 100, 0.001, 0.25, 0.4409842652, None),
]


@pytest.mark.parametrize(("k", "n", "alpha", "sigma", "p_low", "radius"), COHEN_VECTORS)
def test_cohen_certify_vectors(k, n, alpha, sigma, p_low, radius):
    p = clopper_pearson_lower(k, n, alpha)
    assert p == pytest.approx(p_low, abs=1e-10)
    r = cohen_radius(p, sigma)
    assert r == pytest.approx(0.0 if radius is None else radius, abs=1e-6)


def test_all_successes_lower_bound_is_alpha_root():
    assert clopper_pearson_lower(1000, 1000, 0.001) == pytest.approx(0.001 ** (1 / 1000), rel=1e-12)


def test_lower_is_two_sided_interval_at_twice_alpha():
    res = stats.binomtest(700, 1000).proportion_ci(confidence_level=1 - 2 * 0.01, method="exact")
    assert clopper_pearson_lower(700, 1000, 0.01) == pytest.approx(res.low, abs=1e-12)
    assert clopper_pearson_upper(700, 1000, 0.01) == pytest.approx(res.high, abs=1e-12)


def test_edges_and_vectorization():
    k = np.array([0, 5, 10])
    assert clopper_pearson_lower(k, 10, 0.05)[0] == 0.0
    assert clopper_pearson_upper(k, 10, 0.05)[-1] == 1.0
    lo, hi = clopper_pearson_lower(k, 10, 0.05), clopper_pearson_upper(k, 10, 0.05)
    assert np.all(lo < k / 10 + 1e-12) and np.all(hi > k / 10 - 1e-12)


@given(st.integers(1, 200), st.data())
def test_bounds_bracket_the_estimate_and_are_monotone(n, data):
    k = data.draw(st.integers(0, n))
    alpha = data.draw(st.floats(1e-4, 0.4))
    lo, hi = clopper_pearson_lower(k, n, alpha), clopper_pearson_upper(k, n, alpha)
    assert 0 <= lo <= k / n <= hi <= 1
    if k < n:
        assert clopper_pearson_lower(k + 1, n, alpha) >= lo
    assert clopper_pearson_lower(k, n, alpha / 2) <= lo + 1e-12


@pytest.mark.parametrize("p", [0.3, 0.8, 0.97])
def test_lower_bound_fails_at_most_alpha_of_the_time(p):
    """Monte Carlo: P(lower bound > p) <= alpha, up to binomial sampling error."""
    alpha, n, trials = 0.05, 60, 20000
    rng = np.random.default_rng(int(p * 100))
    k = rng.binomial(n, p, size=trials)
    failures = np.mean(clopper_pearson_lower(k, n, alpha) > p)
    tolerance = 3 * np.sqrt(alpha * (1 - alpha) / trials)
    assert failures <= alpha + tolerance
    upper_failures = np.mean(clopper_pearson_upper(k, n, alpha) < p)
    assert upper_failures <= alpha + tolerance


# RAB Hoeffding vectors (pA_exp, N, alpha, sigma, R), hand-derived: eps = sqrt(ln(1/alpha) / (2N)),
# pA_low = pA_exp - eps, pB_up = (1 - pA_exp) + eps, R = sigma/2 * (Phi^-1(pA_low) - Phi^-1(pB_up));
# e.g. (0.90, 1000, 0.001): eps = 0.05877, R = 0.5 * 2 * Phi^-1(0.84123) = 0.99953.
RAB_VECTORS = [
    (0.90, 1000, 0.001, 1.0, 0.999527),
    (0.75, 1000, 0.001, 1.0, 0.499341),
    (0.99, 1000, 0.001, 0.5, 0.742508),
    (0.55, 1000, 0.001, 1.0, 0.0),  # official R = -0.021984: not certified
    (0.90, 1000, 0.010, 1.0, 1.045113),
]


@pytest.mark.parametrize(("p_a", "n", "alpha", "sigma", "radius"), RAB_VECTORS)
def test_rab_hoeffding_vectors(p_a, n, alpha, sigma, radius):
    lo, hi = hoeffding_bounds(p_a, 1 - p_a, n, alpha)
    assert rab_radius(lo, hi, sigma) == pytest.approx(radius, abs=1e-6)


def test_rab_with_clopper_pearson_bonferroni_vector():
    lo = clopper_pearson_lower(900, 1000, 0.0005)
    hi = clopper_pearson_upper(100, 1000, 0.0005)
    assert (lo, hi) == (pytest.approx(0.865225, abs=1e-6), pytest.approx(0.134775, abs=1e-6))
    assert rab_radius(lo, hi, 1.0) == pytest.approx(1.104099, abs=1e-6)
    assert cohen_radius(clopper_pearson_lower(900, 1000, 0.001), 1.0) == pytest.approx(
        1.114483, abs=1e-6
    )


def test_binary_rab_equals_cohen():
    p = np.array([0.6, 0.8, 0.95])
    assert np.allclose(rab_radius(p, 1 - p, 0.7), cohen_radius(p, 0.7))


def test_radius_zero_not_negative_when_not_certified():
    assert cohen_radius(0.5, 1.0) == 0.0 and cohen_radius(0.2, 1.0) == 0.0
    assert rab_radius(0.4, 0.45, 1.0) == 0.0


def test_conversions():
    assert l2_radius_per_sample(3.0, 9) == pytest.approx(1.0)
    assert linf_to_l2(0.1, 784) == pytest.approx(2.8)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: clopper_pearson_lower(5, 10, 0.0), "alpha"),
        (lambda: clopper_pearson_lower(5, 10, 1.0), "alpha"),
        (lambda: clopper_pearson_upper(11, 10, 0.1), "k must not exceed n"),
        (lambda: clopper_pearson_lower(-1, 10, 0.1), "k"),
        (lambda: clopper_pearson_lower(1.5, 10, 0.1), "k"),
        (lambda: clopper_pearson_lower(0, 0, 0.1), "n must be >= 1"),
        (lambda: cohen_radius(0.9, 0.0), "sigma"),
        (lambda: cohen_radius(0.9, -1.0), "sigma"),
        (lambda: cohen_radius(1.0, 1.0), "p_lower"),
        (lambda: cohen_radius(np.nan, 1.0), "p_lower"),
        (lambda: rab_radius(0.9, 0.0, 1.0), "p_b_upper"),
        (lambda: rab_radius(1.2, 0.1, 1.0), "p_a_lower"),
        (lambda: hoeffding_bounds(0.9, 0.1, 0, 0.01), "n"),
        (lambda: l2_radius_per_sample(1.0, 0), "n_poisoned"),
        (lambda: linf_to_l2(-0.1, 3), "epsilon_inf"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_alpha_type_error():
    with pytest.raises(TypeError, match="alpha"):
        clopper_pearson_lower(1, 2, "0.1")
