import itertools

import numpy as np
import pytest

from sklearn_certify.bounds import (
    dpa_radius,
    fa_bucket_learners,
    fa_runoff_radius,
    runoff_predict,
    runoff_radius,
)

from ._reference import runoff_prediction, smallest_attack


def scores_from_rankings(rankings):
    """Member rankings (best class first) as score arrays of shape (1, n_members, n_classes)."""
    n_classes = len(rankings[0])
    return np.array([[[n_classes - list(r).index(c) for c in range(n_classes)] for r in rankings]])


def ranks(*codes):
    return [[int(ch) for ch in code] for code in codes]


def test_runoff_changes_the_prediction():
    scores = scores_from_rankings(ranks("012", "021", "120", "120", "210"))
    assert dpa_radius([[2, 2, 1]])[0].tolist() == [0]
    assert runoff_radius(scores) == (np.array([1]), np.array([0]))


def test_runoff_raises_the_certificate():
    scores = scores_from_rankings(ranks(*3 * ["012"], *2 * ["102"], *2 * ["201"]))
    assert dpa_radius([[3, 2, 2]])[1].tolist() == [0]
    p, r = runoff_radius(scores)
    assert (p.tolist(), r.tolist()) == ([0], [1])
    p_fa, r_fa = fa_runoff_radius(scores, n_partitions=7, spread=1)
    assert (p_fa.tolist(), r_fa.tolist()) == ([0], [1])


def test_fa_runoff_vectors():
    p, r = fa_runoff_radius(
        scores_from_rankings(ranks("210", "021", "012", "021", "021", "021")), 3, 2
    )
    assert (p.tolist(), r.tolist()) == ([0], [1])
    p, r = fa_runoff_radius(
        scores_from_rankings(ranks("021", "102", "210", "210", "012", "210")), 3, 2
    )
    assert (p.tolist(), r.tolist()) == ([0], [0])


def test_tied_logits_count_against_the_first_finalist():
    # Two members prefer 0 over 1 strictly, two tie: e = 2*2 - 4 = 0 -> smaller index wins.
    scores = np.array([[[2, 1], [2, 1], [1, 1], [1, 1]]], dtype=float)
    assert runoff_predict(scores).tolist() == [0]
    scores = np.array([[[2, 1], [1, 1], [1, 1], [1, 2]]], dtype=float)
    assert runoff_predict(scores).tolist() == [1]


# Every member score vector with values in {0, 1, 2}: all rankings, ties included.
SCORE_OPTIONS = [tuple(v) for v in itertools.product(range(3), repeat=3)]


def clean_election(rng, n_members):
    """Members that mostly share a favourite ranking, so radii above 0 occur."""
    favourite = SCORE_OPTIONS[rng.integers(len(SCORE_OPTIONS))]
    return [
        favourite if rng.random() < 0.6 else SCORE_OPTIONS[rng.integers(len(SCORE_OPTIONS))]
        for _ in range(n_members)
    ]


@pytest.mark.parametrize("n_members", [3, 5, 6])
def test_brute_force_every_member_rewrite_within_radius(n_members):
    """Random clean elections; every rewrite of up to radius+1 members to any scores
    (ties included) is tried: the run-off winner holds within the radius."""
    rng = np.random.default_rng(n_members)
    groups = [[m] for m in range(n_members)]

    def predict(members):
        return runoff_prediction(np.array(members, dtype=float))

    tight, certified = 0, 0
    for _ in range(25):
        clean = clean_election(rng, n_members)
        p, r = runoff_radius(np.array([clean], dtype=float))
        assert p[0] == predict(clean)
        needed = smallest_attack(clean, predict, groups, SCORE_OPTIONS, max_size=int(r[0]) + 1)
        assert needed > r[0]
        tight += needed == r[0] + 1
        certified += r[0] > 0
    assert tight >= 20
    assert certified >= 5


def test_brute_force_fa_runoff_bucket_rewrites():
    k, d = 3, 2
    rng = np.random.default_rng(3)
    groups = fa_bucket_learners(k, d).tolist()
    options = [*SCORE_OPTIONS[::2], (0, 1, 2), (2, 1, 0), (1, 2, 0)]

    def predict(members):
        return runoff_prediction(np.array(members, dtype=float))

    certified = 0
    for _ in range(40):
        clean = clean_election(rng, k * d)
        p, r = fa_runoff_radius(np.array([clean], dtype=float), k, d)
        assert p[0] == predict(clean)
        if r[0] == 0:
            continue
        certified += 1
        needed = smallest_attack(clean, predict, groups, options, max_size=int(r[0]))
        assert needed > r[0]
    assert certified >= 3


def test_fa_runoff_with_spread_one_equals_dpa_runoff():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(300, 7, 4)).astype(float)
    for shifts in ([0], [3]):
        # learner order is permuted by the shift; DPA run-off does not depend on order.
        assert np.array_equal(
            fa_runoff_radius(scores, 7, 1, shifts=shifts)[1], runoff_radius(scores)[1]
        )


def test_two_classes_only_round_two_counts():
    scores = np.array([[[1.0, 0.0]] * 5 + [[0.0, 1.0]] * 2])
    p, r = runoff_radius(scores)
    assert (p.tolist(), r.tolist()) == ([0], [1])  # e = 3: two rewrites flip it


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        (np.zeros((2, 3)), "shape"),
        (np.zeros((1, 3, 1)), "at least"),
        (np.full((1, 2, 2), np.nan), "NaN"),
    ],
)
def test_bad_scores(scores, message):
    with pytest.raises(ValueError, match=message):
        runoff_radius(scores)


def test_fa_runoff_needs_every_learner():
    with pytest.raises(ValueError, match="learner-id order"):
        fa_runoff_radius(np.zeros((1, 5, 3)), 3, 2)
