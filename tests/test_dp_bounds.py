"""The differential-privacy radius map: hand-derived vectors, brute force, laws, mechanisms.

Notation: an (eps, delta)-DP learner, ``pA`` a lower bound on the predicted class's
probability, ``pB`` an upper bound on every other class's, ``delta_k = k e^((k-1) eps) delta``.
The prediction survives ``k`` inserted or deleted rows when
``e^(-k eps) (pA - delta_k) > e^(k eps) pB + delta_k`` (Ma, Zhu & Hsu 2019); the radius is the
largest ``k`` for which this holds at every ``j <= k``.
"""

import itertools
import math
import warnings

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from sklearn_certify.bounds import dp_group_radius, simultaneous_vote_bounds


# ------------------------------------------------------------------ the condition, verbatim
def _condition(p_a, p_b, eps, delta, k, rel=0.0):
    """The group-privacy condition at ``k`` in 50-digit arithmetic, with a relative margin."""
    with mpmath.workdps(50):
        eps, delta = mpmath.mpf(eps), mpmath.mpf(delta)
        delta_k = k * mpmath.exp((k - 1) * eps) * delta
        lhs = mpmath.exp(-k * eps) * (mpmath.mpf(p_a) - delta_k)
        rhs = mpmath.exp(k * eps) * mpmath.mpf(p_b) + delta_k
        return lhs > rhs * (1 + rel)


def _brute_radius(p_a, p_b, eps, delta, k_max, rel=0.0):
    """Largest ``k <= k_max`` with the condition at every ``j <= k`` (0 if none), by counting."""
    if not _condition(p_a, p_b, eps, delta, 0, rel):
        return 0
    k = 0
    while k < k_max and _condition(p_a, p_b, eps, delta, k + 1, rel):
        k += 1
    return k


def _radius(p_a, p_b, eps, delta, **kwargs):
    return int(dp_group_radius(p_a, p_b, eps, delta, **kwargs))


# ------------------------------------------------------------------ hand-derived vectors
def test_hand_derived_pure_dp():
    # eps = ln 2, delta = 0: the condition is pA / 4^k > pB.
    # 0.9 / 4 = 0.225 > 0.1, 0.9 / 16 = 0.05625 < 0.1: radius 1.
    # 0.99 / 4^k > 0.01 iff 4^k < 99: 64 < 99 < 256, radius 3.
    # 0.6 / 4 = 0.15 < 0.4: only k = 0 holds. 0.5 vs 0.5: not even k = 0.
    out = dp_group_radius([0.9, 0.99, 0.6, 0.5], [0.1, 0.01, 0.4, 0.5], math.log(2), 0.0)
    assert out.tolist() == [1, 3, 0, 0]
    assert out.dtype == np.int64


def test_hand_derived_tie_is_not_certified():
    # eps = ln 3: 0.9 / 9^k > 0.1 iff 9^k < 9. At k = 1 both sides are 0.1 (up to the
    # rounding of ln 3), a tie, which must not be certified.
    assert _radius(0.9, 0.1, math.log(3), 0.0) == 0
    # eps = ln 2, pA = 4 pB exactly: pA / 4 = pB at k = 1, again a tie.
    assert _radius(0.4, 0.1, math.log(2), 0.0) == 0


def test_hand_derived_with_delta():
    # eps = ln 2, delta = 0.01, pA = 0.9, pB = 0.05:
    # k = 1: delta_1 = 0.01, (0.9 - 0.01) / 2 = 0.445 > 2 * 0.05 + 0.01 = 0.11: holds;
    # k = 2: delta_2 = 2 * 2 * 0.01 = 0.04, (0.9 - 0.04) / 4 = 0.215 < 4 * 0.05 + 0.04 = 0.24.
    # With delta = 0 k = 2 holds (0.225 > 0.2) and k = 3 fails (0.1125 < 0.4).
    assert _radius(0.9, 0.05, math.log(2), 0.01) == 1
    assert _radius(0.9, 0.05, math.log(2), 0.0) == 2
    # pA = 1, pB = 0, delta = 0.01: delta_k = k 2^(k-1) / 100 and (1 - delta_k) / 2^k > delta_k:
    # k = 2: 0.96 / 4 = 0.24 > 0.04; k = 3: 0.88 / 8 = 0.11 < 0.12.
    assert _radius(1.0, 0.0, math.log(2), 0.01) == 2


def test_without_delta_matches_the_closed_form_at_large_radii():
    # delta = 0: pA e^(-2 k eps) > pB iff k < ln(pA / pB) / (2 eps).
    # ln 9 / 2e-9 = 1098612288.67 and ln 3 / 2e-6 = 549306.14: far from integers.
    assert _radius(0.9, 0.1, 1e-9, 0.0) == 1098612288
    assert _radius(0.75, 0.25, 1e-6, 0.0) == 549306
    assert math.log(9) / 2e-9 == pytest.approx(1098612288.67, abs=0.01)


def test_max_radius_caps_a_condition_that_never_fails():
    # delta = 0 and pB = 0: pA e^(-2 k eps) > 0 for every k.
    assert _radius(0.7, 0.0, 1.0, 0.0) == 2**53
    assert _radius(0.7, 0.0, 1.0, 0.0, max_radius=7) == 7
    assert _radius(0.7, 0.0, 1e300, 0.0, max_radius=7) == 7  # 2 k eps overflows; still exact
    assert _radius(0.9, 0.1, math.log(2), 0.0, max_radius=0) == 0
    # The cap never raises a radius: the true radius 1 stays 1.
    assert _radius(0.9, 0.1, math.log(2), 0.0, max_radius=10) == 1


def test_extreme_parameters_neither_overflow_nor_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dp_group_radius([1.0, 0.9, 0.0], [0.0, 0.1, 0.0], 1e308, 0.5).tolist() == [0, 0, 0]
        assert _radius(0.9, 0.1, 1e-300, 0.0) == 2**53
        assert _radius(0.9, 0.1, 5e-324, 1e-300) == 2**53
        assert _radius(1.0, 5e-324, 1.0, 0.0) == 372  # ln(1 / 5e-324) / 2 = 372.2
        assert _radius(0.0, 0.0, 1.0, 0.0) == 0


# ------------------------------------------------------------------ inputs and shapes
@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        ((1.2, 0.1, 1.0, 0.0), {}, ValueError, "p_lower"),
        ((0.9, np.nan, 1.0, 0.0), {}, ValueError, "p_upper"),
        ((0.9, -0.1, 1.0, 0.0), {}, ValueError, "p_upper"),
        ((["a"], 0.1, 1.0, 0.0), {}, TypeError, "p_lower"),
        (([0.9, 0.8], [0.1, 0.1, 0.1], 1.0, 0.0), {}, ValueError, "shape"),
        ((0.9, 0.1, 0.0, 0.0), {}, ValueError, "epsilon"),
        ((0.9, 0.1, -1.0, 0.0), {}, ValueError, "epsilon"),
        ((0.9, 0.1, np.inf, 0.0), {}, ValueError, "epsilon"),
        ((0.9, 0.1, np.nan, 0.0), {}, ValueError, "epsilon"),
        ((0.9, 0.1, True, 0.0), {}, TypeError, "epsilon"),
        ((0.9, 0.1, [1.0], 0.0), {}, TypeError, "epsilon"),
        ((0.9, 0.1, 1.0, -0.1), {}, ValueError, "delta"),
        ((0.9, 0.1, 1.0, 1.0), {}, ValueError, "delta"),
        ((0.9, 0.1, 1.0, np.nan), {}, ValueError, "delta"),
        ((0.9, 0.1, 1.0, "0"), {}, TypeError, "delta"),
        ((0.9, 0.1, 1.0, 0.0), {"max_radius": -1}, ValueError, "max_radius"),
        ((0.9, 0.1, 1.0, 0.0), {"max_radius": 2**53 + 1}, ValueError, "max_radius"),
        ((0.9, 0.1, 1.0, 0.0), {"max_radius": 2.5}, TypeError, "max_radius"),
        ((0.9, 0.1, 1.0, 0.0), {"max_radius": True}, TypeError, "max_radius"),
    ],
)
def test_bad_input_names_the_parameter(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        dp_group_radius(*args, **kwargs)


def test_shapes_broadcast_and_scalars_stay_zero_dimensional():
    p_a = np.array([[0.9], [0.99], [0.5]])
    out = dp_group_radius(p_a, [[0.1, 0.01]], math.log(2), 0.0)
    assert out.shape == (3, 2) and out.dtype == np.int64
    # 0.9 vs 0.01: 4^k < 90, radius 3; 0.99 vs 0.1: 4^k < 9.9, radius 1; 0.5: 4^k < 5 and 4^k < 50.
    assert out.tolist() == [[1, 3], [1, 3], [1, 2]]
    assert dp_group_radius(0.9, 0.1, math.log(2), 0.0).shape == ()
    assert dp_group_radius([], [], 1.0, 0.0).shape == (0,)


def test_each_entry_is_certified_on_its_own():
    rng = np.random.default_rng(0)
    p_a = rng.uniform(size=60)
    p_b = rng.uniform(size=60) * (1 - p_a)
    together = dp_group_radius(p_a, p_b, 0.05, 1e-4)
    assert together.tolist() == [_radius(a, b, 0.05, 1e-4) for a, b in zip(p_a, p_b, strict=True)]
    assert together.max() >= 10


# ------------------------------------------------------------------ brute force
def test_brute_force_equality_on_a_grid():
    grid = itertools.product(
        [0.55, 0.7, 0.9, 0.99, 1.0],
        [0.0, 0.001, 0.01, 0.1, 0.3],
        [0.02, 0.1, math.log(2), 1.0],
        [0.0, 1e-5, 1e-3, 0.01],
    )
    k_max, compared = 60, 0
    for p_a, p_b, eps, delta in grid:
        exact = _brute_radius(p_a, p_b, eps, delta, k_max)
        got = _radius(p_a, p_b, eps, delta, max_radius=k_max)
        if exact == _brute_radius(p_a, p_b, eps, delta, k_max, rel=1e-6):
            assert got == exact, (p_a, p_b, eps, delta)
            compared += 1
    assert compared >= 390  # of 400: near-ties within 1e-6 are the only ones left out


probabilities = st.floats(0.0, 1.0)
epsilons = st.floats(1e-3, 10.0)
deltas = st.one_of(st.just(0.0), st.floats(0.0, 0.5))


@settings(max_examples=150, deadline=None)
@given(probabilities, probabilities, epsilons, deltas)
def test_brute_force_brackets_the_radius(p_a, p_b, eps, delta):
    # Never more than the exact condition allows; never less unless within 1e-6 of a tie.
    k_max = 40
    got = _radius(p_a, p_b, eps, delta, max_radius=k_max)
    assert got <= _brute_radius(p_a, p_b, eps, delta, k_max)
    assert got >= _brute_radius(p_a, p_b, eps, delta, k_max, rel=1e-6)


# ------------------------------------------------------------------ laws
@settings(max_examples=100, deadline=None)
@given(probabilities, probabilities, probabilities, epsilons, deltas)
def test_radius_grows_with_p_lower_and_shrinks_with_p_upper(x, y, p, eps, delta):
    lo, hi = sorted((x, y))
    assert _radius(hi, p, eps, delta) >= _radius(lo, p, eps, delta)
    assert _radius(p, lo, eps, delta) >= _radius(p, hi, eps, delta)


@settings(max_examples=100, deadline=None)
@given(probabilities, probabilities, epsilons, epsilons, deltas, deltas)
def test_radius_shrinks_with_epsilon_and_delta(p_a, p_b, e1, e2, d1, d2):
    e_lo, e_hi = sorted((e1, e2))
    d_lo, d_hi = sorted((d1, d2))
    assert _radius(p_a, p_b, e_lo, d1) >= _radius(p_a, p_b, e_hi, d1)
    assert _radius(p_a, p_b, e1, d_lo) >= _radius(p_a, p_b, e1, d_hi)


@settings(max_examples=100, deadline=None)
@given(probabilities, probabilities, epsilons, deltas)
def test_nothing_is_certified_where_the_bounds_do_not_separate(x, y, eps, delta):
    p_a, p_b = sorted((x, y))  # p_a <= p_b
    assert _radius(p_a, p_b, eps, delta) == 0


# ------------------------------------------------------------------ DP mechanisms
def _laplace_plus(score, eps):
    """P[score + Laplace(1/eps) > 0], exactly."""
    score = np.asarray(score, dtype=float)
    return np.where(score >= 0, 1 - 0.5 * np.exp(-eps * np.abs(score)), 0.5 * np.exp(eps * score))


def test_laplace_vote_survives_within_the_radius_and_is_nearly_tight():
    # Rows labelled +1 or -1; the learner outputs the sign of (#plus - #minus) + Laplace(1/eps),
    # eps-DP for one inserted or deleted row, which moves the score s by one. k rows reach
    # every score in [s - k, s + k], so the prediction sign(s) survives exactly k < |s| rows.
    # With the exact probabilities the certificate is ln(2 e^(eps s) - 1) / (2 eps) rounded
    # up, less one: about s - eps s^2 / 2, so for small eps s^2 it is exact (s = 14: 13.14
    # gives 13) and it falls behind beyond (s = 15: 14.02 gives 14; s = 30: 26.52, 26).
    eps = 0.01
    scores = np.arange(1, 31)
    p_a = _laplace_plus(scores, eps)
    radius = dp_group_radius(p_a, 1 - p_a, eps, 0.0)
    assert np.all(radius < scores)
    assert radius[:14].tolist() == list(range(14))
    assert radius[[14, 29]].tolist() == [14, 26]


def test_laplace_vote_from_sampled_models_never_overclaims():
    # The same learner, its probabilities estimated from 20000 trained "models" per score:
    # the bounds hold (seeded), the prediction is sign(s), and the radius stays below |s|.
    rng = np.random.default_rng(0)
    eps, n_draws = 0.05, 20000
    scores = np.array([s for s in range(-25, 26) if s])
    plus = (scores[:, None] + rng.laplace(0.0, 1 / eps, (len(scores), n_draws)) > 0).sum(axis=1)
    bounds = simultaneous_vote_bounds(np.column_stack([n_draws - plus, plus]), alpha=0.001)
    p_plus = _laplace_plus(scores, eps)
    p_top = np.where(scores > 0, p_plus, 1 - p_plus)
    assert np.array_equal(bounds.prediction, (scores > 0).astype(int))
    assert np.all(bounds.p_lower <= p_top) and np.all(bounds.p_upper >= 1 - p_top)
    radius = dp_group_radius(bounds.p_lower, bounds.p_upper, eps, 0.0)
    assert np.all(radius < np.abs(scores))
    assert radius.max() >= 10  # not vacuous


def test_exponential_mechanism_vote_survives_every_poisoning_within_the_radius():
    # Three classes with counts n; the learner outputs class c with probability proportional
    # to exp(eps n_c), eps-DP for one inserted or deleted row (one count moves by one; the
    # utility is monotone). Every count vector within L1 distance r of n is a training set r
    # insertions or deletions away; on each, the top class must stay the certified one.
    eps = 0.3
    rng = np.random.default_rng(1)
    counts = np.array([[12, 3, 5], [9, 8, 0], [20, 2, 14], [4, 4, 4], [7, 0, 15]])

    def probabilities(n):
        w = np.exp(eps * (n - n.max()))
        return w / w.sum()

    draws = np.stack(
        [np.bincount(rng.choice(3, 5000, p=probabilities(n)), minlength=3) for n in counts]
    )
    bounds = simultaneous_vote_bounds(draws, alpha=0.001)
    radius = dp_group_radius(bounds.p_lower, bounds.p_upper, eps, 0.0)
    assert not bounds.separated[3] and radius[3] == 0  # a three-way tie abstains
    assert radius.max() >= 3
    kept = bounds.separated
    for n, top, r in zip(counts[kept], bounds.prediction[kept], radius[kept], strict=True):
        for step in itertools.product(range(-r, r + 1), repeat=3):
            moved = n + np.array(step)
            if np.abs(step).sum() <= r and np.all(moved >= 0):
                p = probabilities(moved)
                assert p[top] > np.delete(p, top).max(), (n, step)


def _gaussian_delta(eps, sigma):
    """Exact delta(eps) of the Gaussian mechanism with sensitivity 1 (Balle & Wang 2018)."""
    shift = 0.5 / sigma
    return norm.cdf(shift - eps * sigma) - math.exp(eps) * norm.cdf(-shift - eps * sigma)


def test_gaussian_mechanism_group_privacy_and_certificate():
    # The score s plus N(0, sigma^2) is (eps, delta(eps))-DP for every eps; its worst events
    # are half-lines, so the sup over thresholds t of P_s[x > t] - e^eps P_(s-1)[x > t] is
    # delta(eps) itself. Group privacy bounds the same events k rows apart with k eps and
    # k e^((k-1) eps) delta; the certificate built on it never claims a row past |s| - 1.
    sigma = 4.0
    t = np.linspace(-60, 60, 24001)

    def tail(s):
        return norm.sf((t - s) / sigma)

    for eps in (0.1, 0.25, 0.5):
        delta = _gaussian_delta(eps, sigma)
        assert np.max(tail(1) - math.exp(eps) * tail(0)) == pytest.approx(delta, rel=1e-6)
        for k in range(1, 12):
            delta_k = k * math.exp((k - 1) * eps) * delta
            assert np.all(tail(k) <= math.exp(k * eps) * tail(0) + delta_k + 1e-15)
            assert np.all(1 - tail(0) <= math.exp(k * eps) * (1 - tail(k)) + delta_k + 1e-15)

        scores = np.arange(1, 41)
        p_a = norm.cdf(scores / sigma)
        radius = dp_group_radius(p_a, 1 - p_a, eps, delta)
        assert np.all(radius < scores)
        assert radius.max() >= 1
