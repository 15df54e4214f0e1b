"""The bagging radius map: hand-derived vectors, Theorem 1 in exact arithmetic, brute force.

Notation: ``n`` training rows, members draw ``k`` rows with replacement, ``Delta = p_lower -
p_upper``. Theorem 1 (Jia, Cao & Gong 2021) certifies ``r`` when, for every poisoned size
``n'`` in ``[n - r, n + r]``, ``(n'/n)^k - 2 ((max(n, n') - r)/n)^k + 1 - Delta < 0``.
"""

import itertools
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_certify.bounds import bagging_kept_probability, bagging_radius
from tests._bagging_helpers import bagged_counts


def _theorem_radius(p_lower: float, p_upper: float, n: int, k: int) -> int:
    """Theorem 1 verbatim, in exact rational arithmetic, maximising over every ``n'``."""
    delta = Fraction(p_lower) - Fraction(p_upper)
    if delta <= 0:
        return 0

    def holds(r):
        return all(
            Fraction(n2, n) ** k - 2 * Fraction(max(n, n2) - r, n) ** k + 1 - delta < 0
            for n2 in range(n - r, n + r + 1)
        )

    r = 0
    while r + 1 < n and holds(r + 1):
        r += 1
    return r


# ------------------------------------------------------------------ hand-derived vectors
def test_hand_derived_k2():
    # n = 10, k = 2, Delta = 0.8. At n' = n: 1 - 2 ((10 - r)/10)^2 + 0.2 < 0 iff
    # ((10 - r)/10)^2 > 0.6 iff r < 10 (1 - sqrt(0.6)) = 2.254, so r <= 2 (r = 2: -0.08;
    # r = 3: +0.22). Beyond n the left side peaks at x* = r / (1 - 2^-1) = 2r = 4 < 10, so
    # n' > n is no worse. Delta = 0.2: ((10 - r)/10)^2 > 0.9 only for r = 0.
    radius = bagging_radius([0.9, 0.6, 0.5, 0.4], [0.1, 0.4, 0.5, 0.6], n_train=10, sample_size=2)
    assert radius.tolist() == [2, 0, 0, 0]
    assert radius.dtype == np.int64


def test_hand_derived_k1():
    # k = 1: the left side is n'/n - 2 (max(n, n') - r)/n + 1 - Delta. For n' >= n it is
    # (2r - n')/n + 1 - Delta, largest at n' = n: 2r/n - Delta < 0 iff r < n Delta / 2.
    # n = 100, Delta = 0.5: r < 25, so 24. (Evaluating only the far end n' = n + r would
    # give r/n - Delta < 0, i.e. 49: the brute force below shows such a claim breaks.)
    assert bagging_radius(0.75, 0.25, n_train=100, sample_size=1) == 24
    # Delta = 1: r < n / 2 exactly; r = 50 gives 0, not < 0.
    assert bagging_radius(1.0, 0.0, n_train=100, sample_size=1) == 49


def test_hand_derived_paper_scale():
    # n = 60000, k = 30, Delta = 0.98: (1 - r/n)^30 > 1 - 0.49 = 0.51 iff
    # r < 60000 (1 - 0.51^(1/30)) = 1331.6..., so 1331.
    assert bagging_radius(0.99, 0.01, n_train=60000, sample_size=30) == 1331
    assert 60000 * (1 - 0.51 ** (1 / 30)) == pytest.approx(1331.6, abs=0.1)


def test_kept_probability_hand_derived():
    # p_lower - 1 + (1 - r/n)^k: 0.9 - 1 + 0.9^2 = 0.71; 0.9 - 1 + 0.5^2 = 0.15;
    # 0.9 - 1 + 0.3^2 = -0.01 < 0 gives 0.
    out = bagging_kept_probability(0.9, n_train=10, sample_size=2, n_poisoned=[0, 1, 5, 7])
    np.testing.assert_allclose(out, [0.9, 0.71, 0.15, 0.0], atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(p_lower=1.2, p_upper=0.1, n_train=10, sample_size=2), "p_lower"),
        (dict(p_lower=0.9, p_upper=np.nan, n_train=10, sample_size=2), "p_upper"),
        (dict(p_lower=0.9, p_upper=0.1, n_train=0, sample_size=2), "n_train"),
        (dict(p_lower=0.9, p_upper=0.1, n_train=10, sample_size=2.5), "sample_size"),
        (dict(p_lower=[0.9, 0.8], p_upper=[0.1, 0.1, 0.1], n_train=10, sample_size=2), "shape"),
    ],
)
def test_bad_input_is_named(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        bagging_radius(**kwargs)


def test_kept_probability_refuses_sizes_outside_the_training_set():
    with pytest.raises(ValueError, match="n_poisoned"):
        bagging_kept_probability(0.9, n_train=10, sample_size=2, n_poisoned=11)
    with pytest.raises(TypeError, match="n_poisoned"):
        bagging_kept_probability(0.9, n_train=10, sample_size=2, n_poisoned=1.5)


# ------------------------------------------------------------------ Theorem 1, exactly
@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 40),
    k=st.integers(1, 15),
    p_lower=st.floats(0, 1),
    share=st.floats(0, 1),
)
def test_matches_theorem_1_in_exact_arithmetic(n, k, p_lower, share):
    p_upper = share * (1 - p_lower)  # a valid pair: p_upper <= 1 - p_lower
    ours = int(bagging_radius(p_lower, p_upper, n, k)[()])
    exact = _theorem_radius(p_lower, p_upper, n, k)
    assert ours <= exact  # never more than the theorem
    if ours < exact:  # only the round-off margin may cost one, at the boundary itself
        delta = Fraction(p_lower) - Fraction(p_upper)
        assert 2 - 2 * Fraction(n - exact, n) ** k - delta > Fraction(-1, 10**11)


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(1, 5000),
    k=st.integers(1, 200),
    p=st.lists(st.floats(0, 1), min_size=3, max_size=3).map(sorted),
)
def test_monotone_in_the_bounds(n, k, p):
    low, mid, high = p
    # a larger p_lower or a smaller p_upper never certifies less
    assert bagging_radius(high, low, n, k) >= bagging_radius(mid, low, n, k)
    assert bagging_radius(high, low, n, k) >= bagging_radius(high, mid, n, k)
    # zero where the bounds do not separate; below n (1 - 2^(-1/k)) always
    assert bagging_radius(low, high, n, k) == 0
    assert bagging_radius(high, low, n, k) < max(1.0, n * (1 - 2 ** (-1 / k)))


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 5000), k=st.integers(1, 200), p=st.floats(0.5, 1, exclude_min=True))
def test_the_two_bounds_agree_at_the_radius(n, k, p):
    # With p_upper = 1 - p_lower = 1 - p, after r modifications the top class keeps at least
    # q = p - 1 + (1 - r/n)^k and every other class at most 1 - p + 1 - (1 - r/n)^k = 1 - q:
    # the certified radius is exactly where q stays above one half.
    r = bagging_radius(p, 1 - p, n, k)
    assert bagging_kept_probability(p, n, k, r) > 0.5
    if r + 1 < n:
        assert bagging_kept_probability(p, n, k, r + 1) <= 0.5 + 1e-9


def test_vectorized_over_rows_equals_one_at_a_time():
    rng = np.random.default_rng(0)
    p_lower = rng.random(50)
    p_upper = rng.random(50) * (1 - p_lower)
    together = bagging_radius(p_lower, p_upper, 500, 7)
    alone = [int(bagging_radius(a, b, 500, 7)[()]) for a, b in zip(p_lower, p_upper, strict=True)]
    assert together.tolist() == alone
    assert bagging_radius(np.zeros(0), np.zeros(0), 500, 7).shape == (0,)


# ------------------------------------------------------------------ brute force
def _prediction(x, y, x_test, k, n_classes):
    """The exact bagged prediction, or -1 when the top probability is tied."""
    counts = bagged_counts(x, y, x_test, k, n_classes)
    top = np.sort(counts)[-2:]
    return int(np.argmax(counts)) if top[1] > top[0] else -1


def _poisonings(x, y, pool, r):
    """Every ``D' = D - S + T`` with ``|S| <= r`` and ``T`` a multiset of pool rows,
    ``|T| <= r``: exactly the poisoned sets with ``max(|D|, |D'|) - |D ∩ D'| <= r`` whose
    new rows come from the pool (an insertion, deletion or modification each cost one)."""
    n = len(x)
    for n_del in range(r + 1):
        for removed in itertools.combinations(range(n), n_del):
            keep = np.setdiff1d(np.arange(n), removed)
            for n_ins in range(r + 1):
                for added in itertools.combinations_with_replacement(range(len(pool)), n_ins):
                    add = np.array(added, dtype=np.int64)
                    yield (
                        np.concatenate([x[keep], pool[add, 0]]),
                        np.concatenate([y[keep], pool[add, 1]]),
                    )


def _pool(x_test, n_classes):
    """New rows an attacker may insert: on the test point and next to it, with every label."""
    return np.array([(x_test + d, c) for d in (0, 1) for c in range(n_classes)], dtype=np.int64)


def _brute_force(x, y, x_test, k, n_classes, r):
    """Whether every poisoning of size ``r`` keeps the clean bagged prediction."""
    clean = _prediction(x, y, x_test, k, n_classes)
    return all(
        _prediction(xp, yp, x_test, k, n_classes) == clean
        for xp, yp in _poisonings(x, y, _pool(x_test, n_classes), r)
    )


def _exact_radius(x, y, x_test, k, n_classes):
    """The radius from the exact bagged probabilities (p_lower = p_A, p_upper = max p_B)."""
    counts = bagged_counts(x, y, x_test, k, n_classes)
    total = len(x) ** k
    order = np.argsort(-counts, kind="stable")
    return int(bagging_radius(counts[order[0]] / total, counts[order[1]] / total, len(x), k))


def _random_case(seed):
    rng = np.random.default_rng(seed)
    n, k, n_classes = int(rng.integers(5, 10)), int(rng.integers(1, 4)), int(rng.integers(2, 4))
    x = rng.integers(0, 10, n)
    x_test = int(rng.integers(0, 10))
    # mostly one label, so that the bagged vote is often decided and the radius positive
    y = np.where(rng.random(n) < 0.85, 0, rng.integers(0, n_classes, n))
    return x, y, x_test, k, n_classes


def test_brute_force_no_poisoning_within_the_radius_changes_the_prediction():
    checked, positive, tight = 0, 0, 0
    for seed in range(30):
        x, y, x_test, k, n_classes = _random_case(seed)
        if _prediction(x, y, x_test, k, n_classes) < 0:
            continue
        radius = _exact_radius(x, y, x_test, k, n_classes)
        assert _brute_force(x, y, x_test, k, n_classes, radius), (seed, radius)
        checked += 1
        positive += radius > 0
        tight += not _brute_force(x, y, x_test, k, n_classes, radius + 1)
    # the cases are not vacuous: most certify something, and the pool often breaks r + 1
    assert checked >= 25 and positive >= 20 and tight >= 20, (checked, positive, tight)


def test_brute_force_k1_worst_case_is_n_prime_equal_n():
    # k = 1: each member learns one row and votes its label, so p_c is the share of label c.
    # 6 of 8 rows say 0: Delta = 4/8, r < 8 * 0.5 / 2 = 2, radius 1. Modifying two rows
    # (n' = n) ties the vote at 4 : 4, so 2 is not certified; checking the far end
    # n' = n + r alone (r/n - Delta < 0, i.e. r <= 3) would claim 3.
    x = np.arange(8)
    y = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    assert _exact_radius(x, y, 3, 1, 2) == 1
    assert _brute_force(x, y, 3, 1, 2, 1)
    assert not _brute_force(x, y, 3, 1, 2, 2)


def test_brute_force_larger_radius():
    # eight rows of label 0 around a test point at 4, one row of label 1 far away: k = 2.
    x = np.array([2, 3, 4, 4, 5, 6, 0, 9])
    y = np.array([0, 0, 0, 0, 0, 0, 0, 1])
    radius = _exact_radius(x, y, 4, 2, 2)
    assert radius >= 2
    assert _brute_force(x, y, 4, 2, 2, radius)
