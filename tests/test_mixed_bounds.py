"""The mixed certificate: r poisoned rows and an l2 budget of feature perturbations together."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_certify.bounds import dpa_radius, mixed_radius_frontier, mixed_rows_frontier

from ._reference import counts_of, plurality

INF = math.inf

# (votes, radii, n_classes, prediction, eps*(0), eps*(1), eps*(2)), derived by hand. A is the
# prediction; to make c win the attacker must close gap_c = n_A - n_c + [c > A] votes: a
# partition voting A turned to c gains 2, one voting neither A nor c (or abstaining) gains 1.
VECTORS = [
    # A = 0 (2 votes), c = 1: gap 2 - 1 + 1 = 2, so one 0-voter must flip: the cheaper costs
    # l2 0.5; one row on a 0-voter does it for free.
    ([0, 0, 1], [0.5, 1.0, 0.3], 2, 0, 0.5, 0.0, 0.0),
    # A = 0 (3 votes). c = 1: gap 3 = a 0-voter (radius 2, gain 2) + the 2-voter (0.2, gain
    # 1): 4.04; c = 2: gap 3 = a 0-voter + the 1-voter (0.1): 4.01, the cheapest. One row
    # takes the 0-voter, l2 pays 0.1; two rows pay everything.
    ([0, 0, 0, 1, 2], [2.0, 3.0, 4.0, 0.1, 0.2], 3, 0, math.sqrt(4.01), 0.1, 0.0),
    # A = 1 (2 votes). c = 0 < A wins a tie: gap 2 - 1 + 0 = 1, the 2-voter (0.2) turned to 0
    # suffices (0.2), cheaper than any 1-voter (0.4). One row does it.
    ([1, 1, 0, 2], [0.4, 0.6, 0.3, 0.2], 3, 1, 0.2, 0.0, 0.0),
    # The same radii with the classes renamed so that A = 0 is the smallest: every rival
    # needs gap 2 - 1 + 1 = 2, one 0-voter (0.4) or two others, but each rival has only one
    # other (the 2-voter for c = 1, the 1-voter for c = 2): 0.4.
    ([0, 0, 1, 2], [0.4, 0.6, 0.3, 0.2], 3, 0, 0.4, 0.0, 0.0),
    # A = 0 (3 votes), c = 1: gap 3 = two 0-voters (0.25 + 0.49) with no row; one row on a
    # 0-voter leaves gain 1, which only another 0-voter (0.5) can give: no other partition
    # voting neither 0 nor 1 exists.
    ([0, 0, 0, 1], [0.5, 0.7, 0.8, 0.9], 2, 0, math.sqrt(0.74), 0.5, 0.0),
    # The same with an abstained partition (radius 0): gap 3 = a 0-voter (0.5) + the
    # abstained one set to 1 for free; one row on the 0-voter leaves nothing to pay.
    ([0, 0, 0, -1, 1], [0.5, 0.7, 0.8, 0.0, 0.9], 2, 0, 0.5, 0.0, 0.0),
    # Nothing votes: the prediction is 0 and the abstained partitions change it for free.
    ([-1, -1], [0.0, 0.0], 2, 0, 0.0, 0.0, 0.0),
    # 0-voters no perturbation can change (radius inf): gap 3 needs two of them, one row gives
    # gain 2 and the rest must come from another 0-voter (no other partition): only two rows
    # change the prediction.
    ([0, 0, 0, 1], [INF, INF, INF, 0.3], 2, 0, INF, INF, 0.0),
]


@pytest.mark.parametrize(("votes", "radii", "n_classes", "prediction", *"eps"), VECTORS)
def test_hand_derived_vectors(votes, radii, n_classes, prediction, e, p, s):
    pred, eps = mixed_radius_frontier([votes], [radii], n_classes, [0, 1, 2])
    assert pred.tolist() == [prediction]
    np.testing.assert_allclose(eps[0], [e, p, s], rtol=1e-12)


def test_rows_frontier_reads_the_frontier_the_other_way():
    # eps* = [sqrt(4.01), 0.1, 0, 0, 0] (second vector): a budget strictly below eps*(r)
    # certifies r rows; 2.1 > eps*(0) certifies nothing (-1).
    votes, radii = [[0, 0, 0, 1, 2]], [[2.0, 3.0, 4.0, 0.1, 0.2]]
    pred, rows = mixed_rows_frontier(votes, radii, 3, [0.0, 0.05, 0.1, 1.0, 2.1, INF])
    assert pred.tolist() == [0]
    assert rows.tolist() == [[1, 1, 0, 0, -1, -1]]


def test_points_are_certified_independently():
    votes = [[0, 0, 1, 1], [1, 1, 0, 2], [0, 0, 1, 2], [2, 2, 2, 0], [-1, 1, 1, 0]]
    radii = [
        [0.5, 1.0, 0.3, 0.2],
        [0.4, 0.6, 0.3, 0.2],
        [0.4, 0.6, 0.3, 0.2],
        [1, 2, 3, 4],
        [0, 0.5, INF, 0.1],
    ]
    pred, eps = mixed_radius_frontier(votes, radii, 3, [0, 1, 3])
    for i, (v, r) in enumerate(zip(votes, radii, strict=True)):
        one_pred, one_eps = mixed_radius_frontier([v], [r], 3, [0, 1, 3])
        assert pred[i] == one_pred[0]
        np.testing.assert_array_equal(eps[i], one_eps[0])


# --- brute force: every attack on small cases ----------------------------------------------

KEEP, ROW, L2 = range(3)


def successful_attacks(votes, radii, n_classes):
    """(rows, squared l2 cost) of every attack that changes the plurality, by enumeration.

    Each partition is kept, changed by a row (an insertion into it or a deletion from it) or
    changed by l2 budget (at least its radius, so its squared radius; impossible at radius
    inf); a changed partition may then vote for any class or for none. Rows beyond one per
    changed partition change nothing more, so an attack with fewer rows is one with more.
    """
    k = len(votes)
    clean = plurality(counts_of(votes, n_classes))
    breaks = {}
    for changed in itertools.product((False, True), repeat=k):
        moved = [j for j in range(k) if changed[j]]
        breaks[changed] = any(
            plurality(counts_of(_rewrite(votes, moved, new), n_classes)) != clean
            for new in itertools.product(range(-1, n_classes), repeat=len(moved))
        )
    for status in itertools.product((KEEP, ROW, L2), repeat=k):
        if any(s == L2 and radii[j] == INF for j, s in enumerate(status)):
            continue
        if breaks[tuple(s != KEEP for s in status)]:
            cost = sum(radii[j] ** 2 for j, s in enumerate(status) if s == L2)
            yield status.count(ROW), cost


def _rewrite(votes, moved, new):
    out = list(votes)
    for j, v in zip(moved, new, strict=True):
        out[j] = v
    return out


def random_case(rng):
    k = int(rng.integers(1, 6))
    n_classes = int(rng.integers(2, 4))
    votes = rng.integers(-1, n_classes, size=k)
    radii = rng.choice([0.0, 0.3, 0.5, 1.0, INF], size=k) * rng.uniform(0.5, 1.5, size=k)
    radii[votes == -1] = 0.0
    return votes.tolist(), radii.tolist(), n_classes


@pytest.mark.parametrize("seed", range(4))
def test_brute_force_every_attack(seed):
    """No attack with r rows and l2 cost below eps*(r) changes the prediction, and (tightness)
    one with r rows and l2 cost eps*(r) does whenever eps*(r) is finite."""
    rng = np.random.default_rng(seed)
    for _ in range(60):
        votes, radii, n_classes = random_case(rng)
        rows = np.arange(len(votes) + 2)
        pred, eps = mixed_radius_frontier([votes], [radii], n_classes, rows)
        assert pred[0] == plurality(counts_of(votes, n_classes))
        attacks = list(successful_attacks(votes, radii, n_classes))
        for r, bound in zip(rows, eps[0] ** 2, strict=True):
            costs = [cost for used, cost in attacks if used <= r]
            assert all(cost >= bound * (1 - 1e-12) for cost in costs), (votes, radii, r)
            if bound < INF:
                assert min(costs) <= bound * (1 + 1e-12), (votes, radii, r)
            else:
                assert not costs


# --- the theorem as the user guide states it, computed literally ---------------------------


def theorem_frontier(votes, radii, n_classes, r):
    """min over rivals c and (a, b) with 2a + b >= gap_c of the squares of the a cheapest
    A-voters and b cheapest others, except the r largest of them (bought with rows)."""
    counts = counts_of(votes, n_classes)
    top = plurality(counts)
    best = INF
    for c in range(n_classes):
        if c == top:
            continue
        gap = counts[top] - counts[c] + (c > top)
        a_radii = sorted(x for v, x in zip(votes, radii, strict=True) if v == top)
        o_radii = sorted(x for v, x in zip(votes, radii, strict=True) if v not in (top, c))
        for a in range(len(a_radii) + 1):
            for b in range(len(o_radii) + 1):
                if 2 * a + b >= gap:
                    chosen = sorted(a_radii[:a] + o_radii[:b])
                    paid = chosen[: max(len(chosen) - r, 0)]
                    best = min(best, sum(x * x for x in paid))
    return math.sqrt(best)


@st.composite
def cases(draw, max_partitions=14, max_classes=5):
    k = draw(st.integers(1, max_partitions))
    n_classes = draw(st.integers(2, max_classes))
    votes = draw(st.lists(st.integers(-1, n_classes - 1), min_size=k, max_size=k))
    radius = st.one_of(st.just(0.0), st.just(INF), st.floats(0.0, 5.0))
    radii = [0.0 if v == -1 else draw(radius) for v in votes]
    return votes, radii, n_classes


@settings(max_examples=60, deadline=None)
@given(cases())
def test_equals_the_theorem_computed_literally(case):
    votes, radii, n_classes = case
    rows = list(range(len(votes) + 1))
    _, eps = mixed_radius_frontier([votes], [radii], n_classes, rows)
    expected = [theorem_frontier(votes, radii, n_classes, r) for r in rows]
    np.testing.assert_allclose(eps[0], expected, rtol=1e-12)


# --- reductions ----------------------------------------------------------------------------


def test_reduces_to_dpa_when_only_rows_are_spent():
    """With no abstention and every radius positive, eps*(r) > 0 exactly for the rows DPA
    certifies (zero perturbation has norm 0 < eps*); with radii inf, eps* is inf there."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        k, n_classes = int(rng.integers(1, 30)), int(rng.integers(2, 6))
        votes = rng.integers(0, n_classes, size=(1, k))
        counts = (votes[0][:, None] == np.arange(n_classes)).sum(axis=0)
        dpa_pred, rho = dpa_radius(counts[None])
        rows = np.arange(k + 1)
        radii = rng.uniform(0.01, 3.0, size=(1, k))
        pred, eps = mixed_radius_frontier(votes, radii, n_classes, rows)
        assert pred[0] == dpa_pred[0]
        assert np.array_equal(eps[0] > 0, rows <= rho[0])
        _, certified = mixed_rows_frontier(votes, radii, n_classes, [0.0])
        assert certified[0, 0] == rho[0]
        _, eps_inf = mixed_radius_frontier(votes, np.full((1, k), INF), n_classes, rows)
        assert np.array_equal(eps_inf[0], np.where(rows <= rho[0], INF, 0.0))


@pytest.mark.parametrize("n_classes", [2, 3, 10])
def test_reduces_to_rab_with_one_partition(n_classes):
    votes = np.arange(n_classes)[:, None]
    radii = np.linspace(0.1, 2.0, n_classes)[:, None]
    pred, eps = mixed_radius_frontier(votes, radii, n_classes, [0, 1, 5])
    assert pred.tolist() == list(range(n_classes))
    np.testing.assert_allclose(eps[:, 0], radii[:, 0], rtol=1e-15)
    assert np.all(eps[:, 1:] == 0)
    _, rows = mixed_rows_frontier(votes, radii, n_classes, [0.0, 0.1, 2.0])
    assert rows.tolist() == [[0, -1, -1]] + [[0, 0, -1]] * (n_classes - 1)


# --- laws ----------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(cases(max_partitions=30))
def test_eps_is_non_increasing_in_rows(case):
    votes, radii, n_classes = case
    _, eps = mixed_radius_frontier([votes], [radii], n_classes, np.arange(len(votes) + 2))
    assert np.all(eps[0, 1:] <= eps[0, :-1])
    assert eps[0, -1] == 0


@settings(max_examples=80, deadline=None)
@given(cases(max_partitions=30), st.data())
def test_larger_radii_never_lower_eps(case, data):
    votes, radii, n_classes = case
    voting = [j for j, v in enumerate(votes) if v != -1]
    if not voting:
        return
    j = data.draw(st.sampled_from(voting))
    larger = list(radii)
    larger[j] += data.draw(st.one_of(st.just(INF), st.floats(0.0, 5.0)))
    rows = np.arange(len(votes) + 1)
    _, eps = mixed_radius_frontier([votes], [radii], n_classes, rows)
    _, eps_larger = mixed_radius_frontier([votes], [larger], n_classes, rows)
    assert np.all(eps_larger >= eps * (1 - 1e-12))


# --- inputs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("votes", "radii", "n_classes", "rows", "error", "match"),
    [
        ([0, 1], [1.0, 1.0], 2, [0], ValueError, "shape"),
        ([[]], np.zeros((1, 0)), 2, [0], ValueError, "n_partitions >= 1"),
        ([[0, 2]], [[1.0, 1.0]], 2, [0], ValueError, r"\[-1, 1\]"),
        ([[0, -2]], [[1.0, 0.0]], 2, [0], ValueError, r"\[-1, 1\]"),
        ([[0, 0.5]], [[1.0, 1.0]], 2, [0], ValueError, "integer class"),
        ([["a", "b"]], [[1.0, 1.0]], 2, [0], TypeError, "strings"),
        ([[0, 1]], [[1.0]], 2, [0], ValueError, "shape of votes"),
        ([[0, 1]], [[1.0, np.nan]], 2, [0], ValueError, "NaN"),
        ([[0, 1]], [[1.0, -0.1]], 2, [0], ValueError, ">= 0"),
        ([[0, -1]], [[1.0, 0.5]], 2, [0], ValueError, "0 where votes is -1"),
        ([[0, 1]], [[1.0, 1.0]], 1, [0], ValueError, "n_classes must be >= 2"),
        ([[0, 1]], [[1.0, 1.0]], 2.0, [0], TypeError, "n_classes must be an integer"),
        ([[0, 1]], [[1.0, 1.0]], 2, [-1], ValueError, "rows must be non-negative"),
        ([[0, 1]], [[1.0, 1.0]], 2, 3, ValueError, "rows must be 1-dimensional"),
    ],
)
def test_bad_inputs_are_refused_with_a_clear_message(votes, radii, n_classes, rows, error, match):
    with pytest.raises(error, match=match):
        mixed_radius_frontier(votes, radii, n_classes, rows)


@pytest.mark.parametrize(("eps", "match"), [([-0.1], ">= 0"), ([np.nan], "NaN"), (0.5, "1-dim")])
def test_bad_budgets_are_refused(eps, match):
    with pytest.raises(ValueError, match=match):
        mixed_rows_frontier([[0, 1]], [[1.0, 1.0]], 2, eps)


def test_no_points_give_empty_results():
    pred, eps = mixed_radius_frontier(np.zeros((0, 3), dtype=int), np.zeros((0, 3)), 2, [0, 1])
    assert pred.shape == (0,) and eps.shape == (0, 2)
    pred, rows = mixed_rows_frontier(np.zeros((0, 3), dtype=int), np.zeros((0, 3)), 2, [0.0])
    assert pred.shape == (0,) and rows.shape == (0, 1)
