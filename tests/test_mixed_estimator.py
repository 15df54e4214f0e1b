"""PartitionedRABClassifier: DPA partitions by a trusted key, RAB inside each, one frontier.

What is checked: the member plan (k * N members, partition j's rows in key order, noise keyed
by the row's rank in its partition); that feature perturbations leave the partitions (and
the other partitions' members) where they are, while content hashing moves them; the
partition certificates are the members' vote bounds at alpha / k; the frontier is
``bounds.mixed_radius_frontier`` of those; with one partition it is RAB's radius, with no
l2 budget DPA's radius; validity at level alpha where the truth is known. The mixed attack
through the harness is in test_mixed_under_attack.py.
"""

import pickle
import warnings

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch import NeuralNetClassifier

from sklearn_certify import RABClassifier, bounds
from sklearn_certify.attacks import BackdoorAttack
from sklearn_certify.datasets import load_digits
from sklearn_certify.ensemble import member_seed
from sklearn_certify.partition import (
    PartitionedRABClassifier,
    PartitionFrontier,
    bucket_of_rows,
    partition_of_keys,
)
from sklearn_certify.smoothing import keyed_normal
from tests._ensemble_helpers import TinyMLP


@pytest.fixture(scope="module")
def digits17():
    X, y = load_digits(digits=(1, 7), split="train")
    X_test, y_test = load_digits(digits=(1, 7), split="test")
    return X, y, X_test, y_test


def _ids(n, seed=0):
    """Unique, unordered row ids (an id column that has nothing to do with the row order)."""
    return np.random.default_rng(seed).permutation(10**6)[:n]


class Recorder(ClassifierMixin, BaseEstimator):
    """Keeps the rows it was trained on."""

    def fit(self, X, y):
        self.X_ = np.array(X, copy=True)
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


def _class_indices(clf, X):
    """Every member's vote on X as class indices, -1 where it abstains."""
    labels = clf.predict_members(X)
    index = np.searchsorted(clf.classes_, labels.data)
    return np.where(np.ma.getmaskarray(labels), -1, index)


# ------------------------------------------------------------------ the member plan
def test_k_times_n_members_each_on_its_partition_in_key_order_with_rank_keyed_noise(digits17):
    X, y, _, _ = digits17
    keys, k, N, sigma = _ids(len(X)), 4, 3, 0.3
    clf = PartitionedRABClassifier(
        Recorder(), n_partitions=k, n_estimators=N, sigma=sigma, engine="loop", random_state=0
    ).fit(X, y, row_key=keys)
    assert len(clf.estimators_) == k * N
    parts = partition_of_keys(keys, k, clf.seed_)
    np.testing.assert_array_equal(clf.partition_of_row_, parts)
    np.testing.assert_array_equal(clf.assign_partitions(keys), parts)
    np.testing.assert_array_equal(clf.partition_sizes_, np.bincount(parts, minlength=k))
    for j in range(k):
        rows = np.flatnonzero(parts == j)
        rows = rows[np.argsort(keys[rows])]
        ranks = torch.arange(rows.size)[None]
        for m in range(N):
            member = j * N + m
            np.testing.assert_array_equal(clf.member_rows_[member], rows)
            seed = torch.tensor([member_seed(clf.seed_, member, "view")])
            noise = keyed_normal(seed, ranks, (X.shape[1],), dtype=torch.float32)[0].numpy()
            np.testing.assert_array_equal(clf.estimators_[member].X_, X[rows] + sigma * noise)
    assert sorted(np.concatenate(clf.member_rows_[::N]).tolist()) == list(range(len(X)))


def test_the_partition_hash_is_keyed_by_the_seed_and_spreads_the_keys():
    keys = np.arange(5000)
    a, b = partition_of_keys(keys, 10, 0), partition_of_keys(keys, 10, 1)
    assert np.mean(a != b) > 0.8  # another seed, another partition (10% agree by chance)
    counts = np.bincount(a, minlength=10)
    assert stats.chisquare(counts).pvalue > 1e-6
    np.testing.assert_array_equal(partition_of_keys(keys[::-1], 10, 0), a[::-1])


# ------------------------------------------------------------------ why the key must be trusted
def test_feature_perturbations_move_no_partition_but_content_hashing_moves_them(digits17):
    """A faint trigger on every row of class 7: keyed partitions stay, and every member of a
    partition without triggered rows is bit for bit the same; DPA's content hash sends most
    triggered rows to another partition, so a trigger spread thinly over many rows would
    touch many partitions at once."""
    X, y, _, _ = digits17
    keys, k = _ids(len(X)), 6
    triggered = BackdoorAttack("one_pixel", strength=0.02, target_label=7).apply_trigger(X)
    X_poison = np.where((y == 7)[:, None], triggered, X)
    kw = dict(n_partitions=k, n_estimators=3, sigma=0.5, engine="loop", random_state=0)
    clean = PartitionedRABClassifier(LogisticRegression(), **kw).fit(X, y, row_key=keys)
    only = np.flatnonzero((y == 7) & (clean.partition_of_row_ == 0))
    X_part0 = X.copy()
    X_part0[only] = X_poison[only]  # the trigger on partition 0's sevens only
    poisoned = PartitionedRABClassifier(LogisticRegression(), **kw).fit(X_part0, y, row_key=keys)
    np.testing.assert_array_equal(poisoned.partition_of_row_, clean.partition_of_row_)
    for member, (a, b) in enumerate(zip(clean.estimators_, poisoned.estimators_, strict=True)):
        same = np.array_equal(a.coef_, b.coef_)
        assert same == (member >= 3), member  # members 0..2 are partition 0's
    moved = bucket_of_rows(X, k) != bucket_of_rows(X_poison, k)
    assert moved[y == 7].mean() > 0.7 and not moved[y != 7].any()


def test_inserted_and_deleted_rows_change_only_their_own_partition(digits17):
    """With ids, a row inserted at the front (every position shifts) or deleted changes the
    members of its own partition only; keyed by position (no row_key), the same insertion
    moves rows of every partition."""
    X, y, _, _ = digits17
    keys, k, N = _ids(len(X)), 5, 2
    kw = dict(n_partitions=k, n_estimators=N, sigma=0.5, engine="loop", random_state=0)
    clean = PartitionedRABClassifier(LogisticRegression(), **kw).fit(X, y, row_key=keys)
    new_key = np.array([10**6 + 1])
    target = int(clean.assign_partitions(new_key)[0])
    X_in, y_in = np.concatenate([X[:1] * 0.5, X]), np.concatenate([y[:1], y])
    inserted = PartitionedRABClassifier(LogisticRegression(), **kw).fit(
        X_in, y_in, row_key=np.concatenate([new_key, keys])
    )
    gone = int(np.flatnonzero(clean.partition_of_row_ == (target + 1) % k)[0])
    keep = np.arange(len(X)) != gone
    deleted = PartitionedRABClassifier(LogisticRegression(), **kw).fit(
        X[keep], y[keep], row_key=keys[keep]
    )
    for other, touched in ((inserted, target), (deleted, (target + 1) % k)):
        for member, (a, b) in enumerate(zip(clean.estimators_, other.estimators_, strict=True)):
            assert np.array_equal(a.coef_, b.coef_) == (member // N != touched), member
    by_position = PartitionedRABClassifier(LogisticRegression(), **kw)
    before = by_position.fit(X, y).partition_of_row_
    after = by_position.fit(X_in, y_in).partition_of_row_[1:]
    assert np.mean(before != after) > 0.5


# ------------------------------------------------------------------ the certificate
@pytest.mark.parametrize("bound", ["clopper-pearson", "simultaneous", "hoeffding"])
def test_partition_certificates_are_member_vote_bounds_at_alpha_over_k(digits17, bound):
    X, y, X_test, _ = digits17
    k, alpha, sigma = 4, 0.05, 0.5
    N = 60 if bound == "hoeffding" else 10  # Hoeffding needs more members to separate
    clf = PartitionedRABClassifier(
        LogisticRegression(),
        n_partitions=k,
        n_estimators=N,
        sigma=sigma,
        alpha=alpha,
        bound=bound,
        n_select=1,
        rows=(0, 1, 2),
        random_state=0,
    ).fit(X, y)
    votes = _class_indices(clf, X_test).reshape(len(X_test) * k, N)
    proba = clf.member_scores(X_test).reshape(len(X_test) * k, N, 2)  # LR: predict_proba
    if bound == "simultaneous":
        vote_bounds = bounds.simultaneous_vote_bounds(
            bounds.fa_vote_counts(votes, 2), alpha / k, n_draws=N
        )
    elif bound == "hoeffding":  # mean probabilities of the selection and estimation members
        vote_bounds = bounds.hoeffding_vote_bounds(
            proba[:, :1].mean(axis=1), proba[:, 1:].mean(axis=1), N - 1, alpha / k
        )
    else:  # the first member of each partition selects, the others estimate
        vote_bounds = bounds.cohen_vote_bounds(
            bounds.fa_vote_counts(votes[:, :1], 2),
            bounds.fa_vote_counts(votes[:, 1:], 2),
            alpha / k,
        )
    expected = bounds.gaussian_certify(vote_bounds, sigma)
    front = clf.frontier(X_test)
    part_votes = np.where(expected.abstain, -1, expected.prediction).reshape(-1, k)
    np.testing.assert_array_equal(front.partition_votes, part_votes)
    np.testing.assert_allclose(front.partition_radius, expected.radius.reshape(-1, k))
    prediction, eps = bounds.mixed_radius_frontier(
        part_votes, expected.radius.reshape(-1, k), 2, [0, 1, 2]
    )
    np.testing.assert_array_equal(front.prediction, clf.classes_[prediction])
    np.testing.assert_allclose(front.eps, eps)
    assert (front.eps[:, 0] > 0).mean() > 0.5
    cert = clf.certify(X_test)
    assert cert.unit == "l2"
    np.testing.assert_array_equal(cert.radius, front.eps[:, 0])
    np.testing.assert_array_equal(cert.abstain, front.eps[:, 0] == 0)
    np.testing.assert_array_equal(cert.votes, bounds.fa_vote_counts(part_votes, 2))
    np.testing.assert_array_equal(clf.predict_with_abstention(X_test)[1], cert.abstain)


def test_one_partition_is_rab_at_level_alpha(digits17):
    """k = 1: the same members as RAB without test noise (noise keyed by the row's rank in
    key order, which is its position), so the frontier at no row is RAB's radius exactly."""
    X, y, X_test, _ = digits17
    kw = dict(n_estimators=12, sigma=0.4, alpha=0.01, engine="loop", random_state=3)
    mixed = PartitionedRABClassifier(LogisticRegression(), n_partitions=1, rows=(0, 1), **kw)
    rab = RABClassifier(LogisticRegression(), test_noise=False, **kw)
    front = mixed.fit(X, y).frontier(X_test)
    cert = rab.fit(X, y).certify(X_test)
    np.testing.assert_array_equal(front.eps[:, 0], cert.radius)
    assert (cert.radius > 0).mean() > 0.9
    kept = ~cert.abstain
    np.testing.assert_array_equal(front.prediction[kept], cert.prediction[kept])
    assert (front.eps[:, 1] == 0).all()  # one row changes the only partition


def test_without_an_l2_budget_the_rows_certified_are_dpa_radius_of_the_partition_votes():
    """Where every partition certifies its vote, eps*(r) > 0 exactly for r up to DPA's radius
    of the partition votes (flipping a vote costs a positive l2 budget, or a row)."""
    X, y = load_digits(split="train")
    X_test, _ = load_digits(split="test")
    k = 25
    clf = PartitionedRABClassifier(
        LogisticRegression(max_iter=30),
        n_partitions=k,
        n_estimators=8,
        sigma=0.05,
        alpha=0.5,
        rows=range(k // 2 + 1),
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs stops at max_iter
        front = clf.fit(X, y).frontier(X_test)
    full = (front.partition_votes >= 0).all(axis=1)
    _, dpa = bounds.dpa_radius(bounds.fa_vote_counts(front.partition_votes[full], 10))
    assert full.sum() > 50 and np.unique(dpa).size >= 4
    rows_certified = (front.eps[full] > 0).sum(axis=1) - 1
    np.testing.assert_array_equal(rows_certified, dpa)
    assert np.all(np.diff(front.eps, axis=1) <= 0)


# ------------------------------------------------------------------ validity at level alpha
class RandomVoter(ClassifierMixin, BaseEstimator):
    """Votes class c with probability p[c], independently per member and test row.

    Row ``r`` (its first feature) gets the ``r``-th uniform of a stream seeded by the member's
    own random_state: every partition's smoothed classifier has class probabilities ``p``.
    """

    def __init__(self, p=(0.5, 0.5), random_state=None):
        self.p = p
        self.random_state = random_state

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        rows = np.round(X[:, 0]).astype(np.int64)
        uniform = np.random.default_rng(self.random_state).random(rows.max() + 1)[rows]
        votes = np.minimum(np.searchsorted(np.cumsum(self.p), uniform, side="right"), 2)
        out = np.zeros((len(X), len(self.p)))
        out[np.arange(len(X)), votes] = 1.0
        return out

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(1)]


@pytest.mark.parametrize("bound", ["clopper-pearson", "simultaneous"])
def test_frontier_fails_at_most_alpha_where_the_truth_is_known(bound):
    """2000 test rows, each an independent run of the k * N members, whose partitions vote
    class 0 with known probability 0.7 (two classes, so the radius map is exact): partition
    j's certificate is wrong (another class, or a radius above the true sigma/2
    (Phi^-1(0.7) - Phi^-1(0.3))) only where its bounds fail. Each partition is certified at
    alpha / k (Bonferroni), so each fails at most at rate alpha / k and some partition at
    rate alpha; the frontier (mixed_radius_frontier, monotone in the radii) can exceed the
    true one, or certify another class, only then. Counts stay below binomial 1 - 1e-6
    quantiles (k + 1 counts in two parametrizations: all together below 1e-5); a partition
    certified at alpha itself (no correction), failing at that rate, would exceed its own."""
    p, k, N, alpha, sigma, n_rows = (0.7, 0.3), 3, 60, 0.1, 1.0, 2000
    y = np.arange(60) % 2
    clf = PartitionedRABClassifier(
        RandomVoter(p),
        n_partitions=k,
        n_estimators=N,
        sigma=sigma,
        alpha=alpha,
        bound=bound,
        rows=(0, 1),
        engine="loop",
        random_state=0,
    ).fit(np.zeros((60, 1)), y)
    assert (clf.member_status_ == "trained").all()
    front = clf.frontier(np.arange(n_rows, dtype=float)[:, None])
    true_radius = sigma / 2 * (stats.norm.ppf(p[0]) - stats.norm.ppf(p[1]))
    wrong = (front.partition_votes > 0) | (front.partition_radius > true_radius + 1e-12)
    per_partition = stats.binom.ppf(1 - 1e-6, n_rows, alpha / k)
    assert stats.binom.cdf(per_partition, n_rows, alpha) < 1e-6  # uncorrected: exceeds
    assert (wrong.sum(axis=0) <= per_partition).all()
    assert wrong.any(axis=1).sum() <= stats.binom.ppf(1 - 1e-6, n_rows, alpha)
    _, true_eps = bounds.mixed_radius_frontier(
        np.zeros((1, k), np.int64), np.full((1, k), true_radius), 2, [0, 1]
    )
    certified = front.eps[:, 0] > 0
    assert certified.mean() > 0.8
    exceeded = (front.eps > true_eps + 1e-12).any(axis=1) | (certified & (front.prediction != 0))
    assert not (exceeded & ~wrong.any(axis=1)).any()


# ------------------------------------------------------------------ engines
def _net(**kw):
    params = dict(
        module__n_out=2,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=2,
        batch_size=16,
        lr=0.1,
        train_split=None,
        iterator_train__shuffle=True,
        verbose=0,
    )
    params.update(kw)
    return NeuralNetClassifier(TinyMLP, **params)


def test_vectorized_skorch_members_equal_loop_members(digits17):
    X, y, X_test, _ = digits17
    kw = dict(n_partitions=3, n_estimators=4, sigma=0.4, rows=(0, 1), random_state=1)
    vec = PartitionedRABClassifier(_net(), engine="vectorized", **kw).fit(X, y)
    loop = PartitionedRABClassifier(_net(), engine="loop", **kw).fit(X, y)
    assert len(vec.estimators_) == 12
    np.testing.assert_allclose(vec.member_scores(X_test), loop.member_scores(X_test), atol=1e-4)
    front = vec.frontier(X_test)
    assert front.eps.shape == (len(X_test), 2)


# ------------------------------------------------------------------ predictions
def test_predict_is_the_plurality_of_partition_votes(digits17):
    X, y, X_test, _ = digits17
    k, N = 5, 4
    clf = PartitionedRABClassifier(
        LogisticRegression(), n_partitions=k, n_estimators=N, sigma=1.5, random_state=0
    ).fit(X, y)
    votes = _class_indices(clf, X_test).reshape(len(X_test) * k, N)
    top = np.argmax(bounds.fa_vote_counts(votes, 2), axis=1).reshape(-1, k)
    shares = bounds.fa_vote_counts(top, 2) / k
    np.testing.assert_allclose(clf.predict_proba(X_test), shares)
    np.testing.assert_array_equal(clf.predict(X_test), clf.classes_[np.argmax(shares, axis=1)])


def test_hoeffding_partitions_vote_by_their_mean_probability(digits17):
    X, y, X_test, _ = digits17
    k, N = 3, 4
    clf = PartitionedRABClassifier(
        LogisticRegression(), n_partitions=k, n_estimators=N, bound="hoeffding", random_state=0
    ).fit(X, y)
    proba = clf.member_scores(X_test).reshape(len(X_test), k, N, 2).mean(axis=2)
    shares = bounds.fa_vote_counts(np.argmax(proba, axis=2), 2) / k
    np.testing.assert_allclose(clf.predict_proba(X_test), shares)


def test_pickle_round_trip_keeps_the_frontier(digits17):
    X, y, X_test, _ = digits17
    clf = PartitionedRABClassifier(
        LogisticRegression(), n_partitions=3, n_estimators=4, rows=(0, 1), random_state=0
    ).fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.frontier(X_test).eps, clf.frontier(X_test).eps)
    np.testing.assert_array_equal(again.member_rows_[5], clf.member_rows_[5])


# ------------------------------------------------------------------ fitted state and bad input
def test_parameters_changed_after_fit_change_nothing(digits17):
    X, y, X_test, _ = digits17
    clf = PartitionedRABClassifier(
        LogisticRegression(), n_partitions=3, n_estimators=6, sigma=0.5, alpha=0.05, random_state=0
    ).fit(X, y)
    front, proba = clf.frontier(X_test), clf.predict_proba(X_test)
    clf.set_params(
        n_partitions=4,
        n_estimators=8,
        sigma=1.0,
        alpha=0.2,
        bound="simultaneous",
        n_select=2,
        rows=(0, 3),
    )
    again = clf.frontier(X_test)
    np.testing.assert_array_equal(again.eps, front.eps)
    np.testing.assert_array_equal(again.rows, front.rows)
    np.testing.assert_array_equal(clf.predict_proba(X_test), proba)


@pytest.mark.parametrize(
    "fit_kw, params, error, match",
    [
        (dict(row_key=np.arange(5)), {}, ValueError, "one key per row"),
        (dict(row_key="ids"), {}, TypeError, "row_key"),
        (dict(row_key=np.zeros(270, dtype=np.int64)), {}, ValueError, "unique"),
        (dict(row_key=np.arange(270.0)), {}, TypeError, "integers"),
        ({}, dict(rows=(0, -1)), ValueError, "non-negative"),
        ({}, dict(rows=(0.5,)), TypeError, "rows"),
        ({}, dict(n_partitions=1000), ValueError, "n_partitions"),
    ],
)
def test_bad_input_is_refused_before_training(digits17, fit_kw, params, error, match):
    X, y, _, _ = digits17
    clf = PartitionedRABClassifier(LogisticRegression(), n_estimators=2, **params)
    with pytest.raises(error, match=match):
        clf.fit(X, y, **fit_kw)


def test_frontier_refuses_a_row_count_it_did_not_compute():
    front = PartitionFrontier(
        np.array([0]),
        np.array([0, 2]),
        np.array([[0.3, 0.1]]),
        np.zeros((1, 3), np.int64),
        np.full((1, 3), 0.2),
        np.full((1, 3), 0.8),
    )
    assert front.certified(2, 0.05).tolist() == [True]
    with pytest.raises(ValueError, match="rows=1"):
        front.certified(1, 0.0)


@parametrize_with_checks(
    [PartitionedRABClassifier(DecisionTreeClassifier(), n_partitions=2, n_estimators=3, sigma=0.1)]
)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)
