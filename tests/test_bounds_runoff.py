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


# ---------------------------------------------------------------- abstaining members
def _with_abstainers(members):
    """Scores array (abstainers get arbitrary scores, which must be ignored) and the mask."""
    rng = np.random.default_rng(len(members))
    mask = np.array([m is None for m in members])
    scores = np.array([rng.integers(0, 3, 3) if m is None else m for m in members], dtype=float)[
        None
    ]
    return scores, mask


def test_abstainers_take_part_in_neither_round():
    # Voting members: 0>1>2, 0>1>2, 1>0>2; two empty partitions.
    # Round 1 counts [2, 1, 0]; run-off 0 vs 1: E = 2*2 - 3 = 1 -> class 0.
    members = [(3, 2, 1), (3, 2, 1), (2, 3, 1), None, None]
    scores, mask = _with_abstainers(members)
    assert runoff_predict(scores, abstain=mask).tolist() == [0]
    assert runoff_radius(scores, abstain=mask)[0].tolist() == [0]
    # Flat scores in their place would vote 0 in round one and, tied in the run-off, count
    # against class 0, electing class 1: abstaining is not the same as voting "flat".
    flat = scores.copy()
    flat[0, mask] = 1.0
    assert runoff_predict(flat).tolist() == [1]
    # per-sample masks broadcast the same way
    assert runoff_predict(np.repeat(scores, 2, 0), abstain=np.stack([mask, mask])).tolist() == [
        0,
        0,
    ]


def test_everyone_abstaining_elects_class_zero_with_radius_zero():
    scores = np.zeros((1, 4, 3))
    mask = np.ones(4, dtype=bool)
    assert runoff_radius(scores, abstain=mask) == (np.array([0]), np.array([0]))
    p, r = fa_runoff_radius(scores, 2, 2, abstain=mask)
    assert (p.tolist(), r.tolist()) == ([0], [0])


ABSTAIN_OPTIONS = [*SCORE_OPTIONS, None]


def clean_election_with_abstainers(rng, n_members, most=2):
    """1..``most`` abstainers among members that mostly agree (so radii above 0 occur)."""
    favourite = SCORE_OPTIONS[rng.integers(len(SCORE_OPTIONS))]
    members = [
        favourite if rng.random() < 0.8 else SCORE_OPTIONS[rng.integers(len(SCORE_OPTIONS))]
        for _ in range(n_members)
    ]
    for j in rng.choice(n_members, size=rng.integers(1, most + 1), replace=False):
        members[j] = None
    return members


@pytest.mark.parametrize(
    "n_members, abstainers", [(3, False), (5, False), (6, False), (4, True), (5, True)]
)
def test_brute_force_every_member_rewrite_within_radius(n_members, abstainers):
    """Random clean elections (with one or two abstaining members when ``abstainers``);
    every rewrite of up to radius+1 members to any scores, ties included (or to abstaining),
    is tried: the run-off winner holds within the radius, and the radius is mostly tight."""
    rng = np.random.default_rng(n_members + 10 * abstainers)
    groups = [[m] for m in range(n_members)]
    options = ABSTAIN_OPTIONS if abstainers else SCORE_OPTIONS
    trials, min_tight, min_certified = (20, 14, 3) if abstainers else (25, 20, 5)

    def predict(members):
        return runoff_prediction(members, n_classes=3)

    tight, certified = 0, 0
    for _ in range(trials):
        if abstainers:
            clean = clean_election_with_abstainers(rng, n_members)
        else:
            clean = clean_election(rng, n_members)
        scores, mask = _with_abstainers(clean)
        p, r = runoff_radius(scores, abstain=mask if abstainers else None)
        assert p[0] == predict(clean)
        needed = smallest_attack(clean, predict, groups, options, max_size=int(r[0]) + 1)
        assert needed > r[0]
        tight += needed == r[0] + 1
        certified += r[0] > 0
    assert tight >= min_tight
    assert certified >= min_certified


@pytest.mark.parametrize("abstainers", [False, True])
def test_brute_force_fa_runoff_bucket_rewrites(abstainers):
    """Every rewrite of up to ``radius`` buckets (each controls ``d`` learners) to the listed
    scores (or to abstaining) keeps the FA run-off winner; with up to four abstainers."""
    k, d = 3, 2
    rng = np.random.default_rng(4 if abstainers else 3)
    groups = fa_bucket_learners(k, d).tolist()
    options = [*SCORE_OPTIONS[::2], (0, 1, 2), (2, 1, 0), (1, 2, 0)] + [None] * abstainers

    def predict(members):
        return runoff_prediction(members, n_classes=3)

    certified = 0
    for _ in range(150 if abstainers else 40):
        if abstainers:
            clean = clean_election_with_abstainers(rng, k * d, most=4)
        else:
            clean = clean_election(rng, k * d)
        scores, mask = _with_abstainers(clean)
        p, r = fa_runoff_radius(scores, k, d, abstain=mask if abstainers else None)
        assert p[0] == predict(clean)
        if r[0] == 0:
            continue
        certified += 1
        needed = smallest_attack(clean, predict, groups, options, max_size=int(r[0]))
        assert needed > r[0]
    assert certified >= 3


def test_fa_runoff_abstaining_learner_moves_the_margin():
    # Four abstainers. One poisoned bucket feeds learner 2 (prefers 0) and learner 0
    # (abstains): rewritten to tied scores, both vote 0 in round one but count against class 0
    # in the run-off, which moves the margin of 3 by 2 + 1 and elects class 1. An abstaining
    # learner must count as able to move the margin by 1, or FA would claim radius 1.
    k, d = 3, 2
    clean = [None, None, (2, 1, 0), (2, 1, 0), None, None]
    scores, mask = _with_abstainers(clean)
    assert fa_runoff_radius(scores, k, d, abstain=mask)[1].tolist() == [0]
    attacked = list(clean)
    attacked[0] = attacked[2] = (0, 0, 0)  # the learners of one bucket
    assert [2, 0] in fa_bucket_learners(k, d).tolist()
    assert runoff_prediction(clean, n_classes=3) == 0
    assert runoff_prediction(attacked, n_classes=3) == 1


@pytest.mark.parametrize(
    "abstain, error, match",
    [
        ([0, 1, 0], TypeError, "boolean"),
        ([True, False], ValueError, "shape"),
    ],
)
def test_bad_abstain(abstain, error, match):
    with pytest.raises(error, match=match):
        runoff_radius(np.zeros((1, 3, 2)), abstain=np.asarray(abstain))
