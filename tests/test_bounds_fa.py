import numpy as np
import pytest

from sklearn_certify.bounds import (
    fa_bucket_learners,
    fa_learner_buckets,
    fa_radius,
    fa_shifts,
    fa_vote_counts,
)

from ._reference import counts_of, fa_certificate_loop, plurality, smallest_attack

SHIFT_TABLE = {
    (3, 2): [2, 0],
    (4, 2): [5, 0],
    (5, 3): [5, 1, 7],
    (10, 2): [11, 2],
    (50, 1): [22],
    (1200, 1): [727],
    (50, 3): [90, 22, 123],
    (50, 8): [181, 45, 246, 18, 78, 103, 152, 142],
    (100, 8): [363, 90, 492, 37, 157, 206, 304, 284],
    (250, 8): [727, 180, 985, 1941, 75, 315, 412, 609],
    (1200, 16): [
        11644,
        2883,
        15765,
        1201,
        5044,
        6601,
        9751,
        9107,
        8975,
        10350,
        10602,
        16289,
        17176,
        3286,
        3546,
        16008,
    ],
}


@pytest.mark.parametrize(("kd", "shifts"), SHIFT_TABLE.items())
def test_official_shifts(kd, shifts):
    assert fa_shifts(*kd).tolist() == shifts


def test_bucket_learners_for_k3_d2():
    # Buckets {2,0}, {3,1}, {4,2}, {5,3}, {0,4}, {1,5} (reference §8.2).
    expected = [[2, 0], [3, 1], [4, 2], [5, 3], [0, 4], [1, 5]]
    assert fa_bucket_learners(3, 2).tolist() == expected


@pytest.mark.parametrize(
    ("preds", "n_classes", "k", "d", "shifts", "radius"),
    [
        ("000011", 2, 3, 2, None, 0),
        ("000001", 2, 3, 2, None, 1),
        ("111000", 2, 3, 2, None, 0),
        ("000000", 2, 3, 2, None, 1),
        ("01020304010203040102", 5, 10, 2, None, 2),  # beats the naive bound (1)
        ("01020304010203040102", 5, 10, 2, [0, 2], 1),  # same votes, other shifts
    ],
)
def test_hand_derived_vectors(preds, n_classes, k, d, shifts, radius):
    p, r = fa_radius([[int(c) for c in preds]], n_classes, k, d, shifts=shifts)
    assert p.tolist() == [0] and r.tolist() == [radius]


@pytest.mark.parametrize(
    ("k", "d", "n_classes"),
    [(3, 2, 2), (3, 2, 3), (5, 3, 4), (8, 4, 3), (10, 2, 5), (7, 5, 10), (20, 4, 13), (4, 16, 3)],
)
def test_matches_official_greedy_loop(k, d, n_classes):
    """Vectorized histogram greedy equals the literal sort-and-loop, abstentions included."""
    rng = np.random.default_rng(k * 100 + d * 10 + n_classes)
    n_learners = k * d
    shifts = fa_shifts(k, d)
    # A mix of confident and contested samples, some learners abstaining.
    favourite = rng.integers(0, n_classes, size=(60, 1))
    preds = np.where(
        rng.random((60, n_learners)) < 0.6,
        favourite,
        rng.integers(-1, n_classes, size=(60, n_learners)),
    )
    p, r = fa_radius(preds, n_classes, k, d)
    for i in range(len(preds)):
        assert (p[i], r[i]) == fa_certificate_loop(preds[i].tolist(), n_classes, n_learners, shifts)


def test_chunked_rows_match_loop_on_many_learners():
    k, d, n_classes = 200, 8, 10
    rng = np.random.default_rng(1)
    preds = np.where(rng.random((1000, k * d)) < 0.5, 3, rng.integers(0, n_classes, (1000, k * d)))
    p, r = fa_radius(preds, n_classes, k, d)
    shifts = fa_shifts(k, d)
    for i in [0, 1, 500, 655, 656, 999]:  # rows in different internal chunks
        assert (p[i], r[i]) == fa_certificate_loop(preds[i].tolist(), n_classes, k * d, shifts)


@pytest.mark.parametrize(("k", "d", "n_classes"), [(2, 2, 3), (3, 2, 2), (3, 2, 3), (2, 3, 2)])
def test_brute_force_every_bucket_attack_within_radius(k, d, n_classes):
    """Rewrite every set of up to radius+1 buckets (all their learners to any class or
    abstain): the prediction holds within the radius, and the bound is tight here."""
    rng = np.random.default_rng(7 + k + d + n_classes)
    n_learners = k * d
    groups = fa_bucket_learners(k, d).tolist()
    options = list(range(-1, n_classes))

    def predict(preds):
        return plurality(counts_of(preds, n_classes))

    tight = 0
    cases = 60
    for _ in range(cases):
        clean = rng.integers(-1, n_classes, size=n_learners).tolist()
        p, r = fa_radius([clean], n_classes, k, d)
        assert p[0] == predict(clean)
        needed = smallest_attack(clean, predict, groups, options, max_size=int(r[0]) + 1)
        assert needed > r[0], f"attack on {needed} buckets flips a radius-{r[0]} prediction"
        tight += needed == r[0] + 1
    assert tight >= 0.9 * cases


def test_vote_counts_ignore_abstentions():
    assert fa_vote_counts([[0, -1, 1, 1]], 3).tolist() == [[1, 2, 0]]
    assert fa_vote_counts([[0, -1, 0]], 1).tolist() == [[2]]
    assert fa_vote_counts(np.zeros((0, 600), dtype=int), 4).shape == (0, 4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            dict(learner_predictions=[[0, 1, 0]], n_classes=2, n_partitions=2, spread=2),
            r"\(n_samples, 4\)",
        ),
        (dict(learner_predictions=[[0, 2, 0, 0]], n_classes=2, n_partitions=2, spread=2), "lie in"),
        (
            dict(learner_predictions=[[0.0, 1, 0, 0]], n_classes=2, n_partitions=2, spread=2),
            "integer",
        ),
        (
            dict(
                learner_predictions=[[0, 1, 0, 0]],
                n_classes=2,
                n_partitions=2,
                spread=2,
                shifts=[1, 1],
            ),
            "distinct",
        ),
        (
            dict(
                learner_predictions=[[0, 1, 0, 0]],
                n_classes=2,
                n_partitions=2,
                spread=2,
                shifts=[0, 4],
            ),
            r"0 \.\. n_partitions\*spread-1 = 3",
        ),
        (
            dict(learner_predictions=[[0, 1, 0, 0]], n_classes=1, n_partitions=2, spread=2),
            "n_classes",
        ),
        (
            dict(learner_predictions=[[0, 1, 0, 0]], n_classes=2, n_partitions=0, spread=2),
            "n_partitions",
        ),
    ],
)
def test_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fa_radius(**kwargs)


def test_spread_must_be_integer():
    with pytest.raises(TypeError, match="spread"):
        fa_shifts(3, 2.0)


@pytest.mark.parametrize(("k", "d"), [(1, 1), (3, 2), (10, 2), (7, 5)])
def test_learner_buckets_invert_bucket_learners(k, d):
    """Learner j trains on bucket b exactly when bucket b feeds learner j: (j - s) mod kd."""
    shifts = fa_shifts(k, d)
    learners = fa_bucket_learners(k, d)
    buckets = fa_learner_buckets(k, d)
    n = k * d
    assert np.array_equal(buckets, (np.arange(n)[:, None] - shifts[None, :]) % n)
    for j in range(n):
        feeding = {b for b in range(n) if j in learners[b]}
        assert feeding == set(buckets[j].tolist())


@pytest.mark.parametrize(
    ("shifts", "error", "message"),
    [
        ([0.0, 1.0], TypeError, "integers"),
        ([[0, 1]], ValueError, "1-d"),
        ([True, False], TypeError, "integers"),
    ],
)
def test_shifts_validated_once_for_bounds_and_estimator(shifts, error, message):
    """fa_radius and DPAClassifier raise the same error type for the same bad shifts."""
    from sklearn.tree import DecisionTreeClassifier

    from sklearn_certify import DPAClassifier

    with pytest.raises(error, match=message):
        fa_radius([[0, 1, 0, 0]], n_classes=2, n_partitions=2, spread=2, shifts=shifts)
    X = np.arange(40, dtype=float).reshape(20, 2)
    y = np.arange(20) % 2
    with pytest.raises(error, match=message):
        DPAClassifier(DecisionTreeClassifier(), n_partitions=2, spread=2, shifts=shifts).fit(X, y)
