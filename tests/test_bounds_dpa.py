import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sklearn_certify.bounds import dpa_radius, fa_radius, plurality_vote

from ._reference import counts_of, plurality, smallest_attack

# (counts, prediction, certificate), hand-derived: the plurality class c (ties to the smaller
# index) survives r = min over c' != c of floor((n_c - n_c' - [c' < c]) / 2) poisoned rows,
# e.g. [5, 3, 2] -> c = 0, r = floor((5 - 3) / 2) = 1;
#      [3, 0, 4] -> c = 2, r = floor((4 - 3 - 1) / 2) = 0.
VECTORS = [
    ([5, 3, 2], 0, 1),
    ([3, 5, 2], 1, 0),
    ([4, 4, 2], 0, 0),
    ([2, 6, 6], 1, 0),
    ([0, 7, 0, 3], 1, 2),
    ([10, 0, 0], 0, 5),
    ([3, 0, 4], 2, 0),
    ([0, 0, 9, 0, 1], 2, 4),
    ([7, 2, 1], 0, 2),
    ([2, 7, 1], 1, 2),
    ([6, 0, 5], 0, 0),
]


@pytest.mark.parametrize(("votes", "prediction", "radius"), VECTORS)
def test_hand_derived_vectors(votes, prediction, radius):
    p, r = dpa_radius([votes])
    assert (p[0], r[0]) == (prediction, radius)


def test_vectorized_over_rows_and_float_counts():
    p, r = dpa_radius(np.array([[5, 3, 2], [3, 5, 2], [4, 4, 2]], dtype=np.float32))
    assert p.tolist() == [0, 1, 0] and r.tolist() == [1, 0, 0]
    assert r.dtype == np.int64


def _all_vote_vectors(k, n_classes, abstain=False):
    values = range(-1 if abstain else 0, n_classes)
    return itertools.product(values, repeat=k)


@pytest.mark.parametrize(("k", "n_classes"), [(3, 2), (4, 3), (5, 3), (6, 2), (5, 4)])
def test_brute_force_every_attack_within_radius(k, n_classes):
    """Enumerate every member-vote configuration (abstaining members included) and every
    rewrite of up to radius+1 partitions: the prediction holds up to the radius and the
    bound is exact, i.e. some rewrite of radius+1 partitions flips it."""
    groups = [[m] for m in range(k)]
    options = list(range(-1, n_classes))

    def predict(preds):
        return plurality(counts_of(preds, n_classes))

    for clean in _all_vote_vectors(k, n_classes, abstain=True):
        votes = counts_of(clean, n_classes)
        p, r = dpa_radius(votes[None])
        assert p[0] == predict(clean)
        needed = smallest_attack(list(clean), predict, groups, options, max_size=int(r[0]) + 1)
        assert needed == r[0] + 1


@given(
    arrays(np.int64, st.tuples(st.integers(1, 20), st.integers(2, 6)), elements=st.integers(0, 30))
)
def test_radius_monotone_in_winner_margin(votes):
    p, r = dpa_radius(votes)
    more = votes.copy()
    more[np.arange(len(votes)), p] += 1
    p2, r2 = dpa_radius(more)
    assert np.array_equal(p, p2)
    assert np.all(r2 >= r)
    assert np.all(r2 <= r + 1)


@given(
    arrays(np.int64, st.tuples(st.integers(1, 10), st.integers(2, 5)), elements=st.integers(0, 30)),
    st.integers(1, 3),
)
def test_invariant_to_order_preserving_relabelling(votes, n_empty):
    """Appending never-voted classes after the last index keeps prediction and radius
    except where an empty class beats the runner-up on tie order (it cannot: it has
    0 votes and a larger index than every real class)."""
    p, r = dpa_radius(votes)
    padded = np.hstack([votes, np.zeros((len(votes), n_empty), dtype=np.int64)])
    p2, r2 = dpa_radius(padded)
    assert np.array_equal(p, p2)
    assert np.array_equal(r, r2)


@given(
    st.integers(2, 5),
    st.integers(2, 12),
    st.integers(0, 2**31),
)
def test_fa_with_spread_one_equals_dpa(n_classes, k, seed):
    rng = np.random.default_rng(seed)
    preds = rng.integers(-1, n_classes, size=(7, k))
    votes = np.stack([counts_of(row, n_classes) for row in preds])
    shift = int(rng.integers(0, k))
    fa_prediction, fa_r = fa_radius(preds, n_classes, k, 1, shifts=[shift])
    dpa_prediction, dpa_r = dpa_radius(votes)
    assert np.array_equal(fa_prediction, dpa_prediction)
    assert np.array_equal(fa_r, dpa_r)


def test_radius_never_exceeds_half_the_members():
    rng = np.random.default_rng(0)
    votes = rng.multinomial(25, [0.7, 0.2, 0.1], size=200)
    _, r = dpa_radius(votes)
    assert r.max() <= 12 and r.min() >= 0


def test_plurality_vote_ties_to_smaller_index():
    assert plurality_vote([[3, 3, 1], [0, 2, 2]]).tolist() == [0, 1]


@pytest.mark.parametrize(
    ("votes", "message"),
    [
        ([[1.5, 2]], "integer counts"),
        ([[-1, 2]], "non-negative"),
        ([1, 2, 3], "2-dimensional"),
        ([[3]], "at least 2 class columns"),
        ([["a", "b"]], "non-negative integers"),
        ([[np.nan, 1]], "integer counts"),
    ],
)
def test_bad_votes_raise_naming_the_argument(votes, message):
    with pytest.raises(ValueError, match=message) as info:
        dpa_radius(votes)
    assert "votes" in str(info.value)
