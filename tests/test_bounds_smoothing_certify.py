"""Smoothing certificates from counts: hand vectors, the radius formula, and statistical validity.

Validity tests draw many independent "ensembles" from known class probabilities and count how
often a certificate's bounds fail. Each configuration is one test at a tolerance
``binom.ppf(1 - 1e-6, n_trials, alpha)`` (so a sound bound fails the test with probability
below 1e-6, and the ~20 configurations below together below 2e-5, Bonferroni), while a bound
failing at twice the rate would exceed it: the trials are sized so that
``binom.cdf(tolerance, n_trials, 2 alpha)`` is tiny.
"""

import numpy as np
import pytest
from scipy import stats

from sklearn_certify.bounds import (
    cohen_certify,
    cohen_predict,
    hoeffding_certify,
    rab_eval_certify,
    rab_radius,
    simultaneous_certify,
)
from tests.test_bounds_smoothing import COHEN_VECTORS

ALPHA = 0.1
N_TRIALS = 4000
TOLERANCE = int(stats.binom.ppf(1 - 1e-6, N_TRIALS, ALPHA))


def test_trials_detect_twice_alpha():
    """The tolerance would catch a bound that fails at 2 alpha (power of the tests below)."""
    assert stats.binom.cdf(TOLERANCE, N_TRIALS, 2 * ALPHA) < 1e-6


# ------------------------------------------------------------------ hand vectors
@pytest.mark.parametrize(("k", "n", "alpha", "sigma", "p_low", "radius"), COHEN_VECTORS)
def test_cohen_certify_reproduces_the_reference_vectors(k, n, alpha, sigma, p_low, radius):
    # the selection draws point at class 1; class 1 then has k of the n estimation draws
    out = cohen_certify([[0, 100]], [[n - k, k]], alpha, sigma)
    assert out.prediction[0] == 1
    assert out.p_lower[0] == pytest.approx(p_low, abs=1e-10)
    assert out.p_upper[0] == pytest.approx(1 - p_low, abs=1e-10)
    if radius is None:
        assert out.abstain[0] and out.radius[0] == 0.0
    else:
        assert not out.abstain[0] and out.radius[0] == pytest.approx(radius, abs=1e-6)


@pytest.mark.parametrize(
    ("c1", "c2", "alpha", "abstain"),
    [
        (60, 40, 0.001, True),
        (510, 490, 0.001, True),
        (700, 300, 0.001, False),
        (90, 10, 0.001, False),
        (55, 45, 0.05, True),
    ],
)
def test_cohen_predict_vectors(c1, c2, alpha, abstain):
    """Two-sided binomial test of c1 of c1 + c2 at 1/2 (p-values 0.0569, 0.548, 1.8e-37,
    3.1e-17 and 0.368 for these rows)."""
    prediction, out = cohen_predict([[c2, c1, 0]], alpha)
    assert prediction[0] == 1 and out[0] == abstain


@pytest.mark.parametrize(
    ("mean_a", "n", "alpha", "sigma", "radius"),
    # the official RAB evaluation: eps = sqrt(ln(1/alpha)/(2N)), R = sigma/2 (Phi^-1(pA - eps)
    # - Phi^-1(pB + eps)) with pB = 1 - pA (binary); negative where the bounds cross
    [
        (0.90, 1000, 0.001, 1.0, 0.999527),
        (0.75, 1000, 0.001, 1.0, 0.499341),
        (0.99, 1000, 0.001, 0.5, 0.742508),
        (0.55, 1000, 0.001, 1.0, -0.021984),
        (0.90, 1000, 0.010, 1.0, 1.045113),
    ],
)
def test_rab_eval_certify_reproduces_the_official_numbers(mean_a, n, alpha, sigma, radius):
    prediction, r = rab_eval_certify([[1 - mean_a, mean_a]], n, alpha, sigma)
    assert prediction[0] == 1 and r[0] == pytest.approx(radius, abs=1e-6)


def test_simultaneous_binary_vector():
    """nA=900, nB=100, N=1000, alpha=0.001: one-sided Clopper-Pearson at alpha/2 per class."""
    out = simultaneous_certify([[100, 900]], 0.001, 1.0)
    assert out.p_lower[0] == pytest.approx(0.865225, abs=1e-6)
    assert out.p_upper[0] == pytest.approx(0.134775, abs=1e-6)
    assert out.radius[0] == pytest.approx(1.104099, abs=1e-6)


def test_simultaneous_multiclass_uses_alpha_over_2k_per_side():
    counts = np.array([[600, 300, 100]])
    out = simultaneous_certify(counts, 0.03, 0.5)
    level = 0.03 / 6
    assert out.p_lower[0] == pytest.approx(stats.beta.ppf(level, 600, 401))
    upper_b = stats.beta.ppf(1 - level, 301, 700)
    assert out.p_upper[0] == pytest.approx(min(upper_b, 1 - out.p_lower[0]))


@pytest.mark.parametrize("certify", ["cohen", "simultaneous", "hoeffding"])
def test_radius_is_the_formula_of_its_own_bounds(certify):
    rng = np.random.default_rng(0)
    counts = rng.multinomial(200, [0.6, 0.3, 0.1], size=50)
    if certify == "cohen":
        out = cohen_certify(rng.multinomial(20, [0.6, 0.3, 0.1], size=50), counts, 0.01, 0.7)
    elif certify == "simultaneous":
        out = simultaneous_certify(counts, 0.01, 0.7)
    else:
        mean = counts / 200.0
        out = hoeffding_certify(mean, mean, 200, 0.01, 0.7)
    certified = ~out.abstain
    assert certified.any()
    expected = rab_radius(out.p_lower[certified], out.p_upper[certified], 0.7)
    np.testing.assert_allclose(out.radius[certified], expected)
    assert np.all(out.radius[out.abstain] == 0.0)
    assert np.all(out.abstain == (out.p_lower <= out.p_upper))


def test_abstaining_draws_count_in_n():
    """A draw that voted for no class is among the n draws, not the top class's vote."""
    with_abstentions = cohen_certify([[0, 5]], [[10, 80]], 0.01, 1.0, n_estimate=100)
    plain = cohen_certify([[0, 5]], [[20, 80]], 0.01, 1.0)
    assert with_abstentions.p_lower[0] == pytest.approx(plain.p_lower[0])
    with pytest.raises(ValueError, match="at least the number of votes"):
        cohen_certify([[0, 5]], [[10, 80]], 0.01, 1.0, n_estimate=50)


@pytest.mark.parametrize(
    ("fn", "args", "error"),
    [
        (cohen_certify, ([[1, 2]], [[1, 2, 3]], 0.1, 1.0), ValueError),
        (cohen_certify, ([[1, 2]], [[1, 2]], 1.5, 1.0), ValueError),
        (simultaneous_certify, ([[1, 2]], 0.1, 0.0), ValueError),
        (simultaneous_certify, ([[1]], 0.1, 1.0), ValueError),
        (hoeffding_certify, ([[0.5, 0.5]], [[0.5, 0.5]], 0, 0.1, 1.0), ValueError),
        (hoeffding_certify, ([[0.5, 1.5]], [[0.5, 0.5]], 10, 0.1, 1.0), ValueError),
        (cohen_predict, ([[1, 2]], "0.1"), TypeError),
    ],
)
def test_bad_input(fn, args, error):
    with pytest.raises(error):
        fn(*args)


# ------------------------------------------------------------------ statistical validity
PROBABILITIES = [
    [0.5, 0.5],
    [0.55, 0.45],
    [0.9, 0.1],
    [0.4, 0.35, 0.25],
    [0.34, 0.33, 0.33],
    [0.7, 0.2, 0.1],
    [0.3, 0.3, 0.2, 0.1, 0.1],
]


def _failed(out, p) -> np.ndarray:
    """Trials whose bounds do not hold: the top class below p_lower or another above p_upper."""
    p = np.asarray(p)
    truth_top = p[out.prediction]
    others = np.array([np.delete(p, c).max() for c in out.prediction])
    return (truth_top < out.p_lower) | (others > out.p_upper)


@pytest.mark.parametrize("p", PROBABILITIES, ids=str)
@pytest.mark.parametrize("n", [30, 200])
def test_cohen_bounds_fail_at_most_alpha(p, n):
    rng = np.random.default_rng([1, n, *np.round(np.array(p) * 100).astype(int)])
    select = rng.multinomial(max(1, n // 10), p, size=N_TRIALS)
    estimate = rng.multinomial(n, p, size=N_TRIALS)
    out = cohen_certify(select, estimate, ALPHA, 1.0)
    assert _failed(out, p).sum() <= TOLERANCE


@pytest.mark.parametrize("p", PROBABILITIES, ids=str)
@pytest.mark.parametrize("n", [30, 200])
def test_simultaneous_bounds_fail_at_most_alpha(p, n):
    rng = np.random.default_rng([2, n, *np.round(np.array(p) * 100).astype(int)])
    out = simultaneous_certify(rng.multinomial(n, p, size=N_TRIALS), ALPHA, 1.0)
    assert _failed(out, p).sum() <= TOLERANCE


@pytest.mark.parametrize("p", PROBABILITIES, ids=str)
def test_hoeffding_bounds_fail_at_most_alpha(p):
    """Members output soft probabilities: Dirichlet draws with mean p (what is bounded)."""
    rng = np.random.default_rng([3, *np.round(np.array(p) * 100).astype(int)])
    n_select, n = 10, 100
    concentration = 5.0 * np.asarray(p)
    draws = rng.dirichlet(concentration, size=(N_TRIALS, n_select + n))
    out = hoeffding_certify(
        draws[:, :n_select].mean(axis=1), draws[:, n_select:].mean(axis=1), n, ALPHA, 1.0
    )
    assert _failed(out, p).sum() <= TOLERANCE
