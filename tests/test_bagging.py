"""CertifiedBaggingClassifier: its plan, its certificate, its statistics and real attacks."""

import warnings

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch import NeuralNetClassifier

from sklearn_certify import CertifiedBaggingClassifier, bounds
from sklearn_certify.attacks import BackdoorAttack, LabelFlipAttack, evaluate_under_attack
from sklearn_certify.datasets import load_digits
from sklearn_certify.ensemble import member_seed
from sklearn_certify.ensemble._seeding import seed_random_state_params, sklearn_seed
from tests._bagging_helpers import NearestLabel, bagged_counts
from tests._ensemble_helpers import TinyMLP


@pytest.fixture(scope="module")
def ones_sevens():
    X, y = load_digits(digits=(1, 7), split="train")
    X_test, y_test = load_digits(digits=(1, 7), split="test")
    return X, y, X_test, y_test


def _bagging(estimator=None, **params):
    options = dict(n_estimators=30, sample_size=20, alpha=0.05, random_state=0)
    base = DecisionTreeClassifier() if estimator is None else estimator
    return CertifiedBaggingClassifier(base, **{**options, **params})


class FitFails(ClassifierMixin, BaseEstimator):
    """Raises if anything is ever trained: checks must come first."""

    def fit(self, X, y):
        raise AssertionError("fit was called")

    def predict(self, X):
        raise AssertionError("predict was called")


# ------------------------------------------------------------------ sklearn contract
@parametrize_with_checks(
    [
        CertifiedBaggingClassifier(DecisionTreeClassifier(), n_estimators=4, sample_size=0.8),
        CertifiedBaggingClassifier(
            DecisionTreeClassifier(), n_estimators=4, sample_size=0.8, bound="hoeffding"
        ),
    ]
)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)


# ------------------------------------------------------------------ the plan
def test_member_rows_are_keyed_draws_with_replacement(ones_sevens):
    X, y, _, _ = ones_sevens
    clf = _bagging(n_estimators=5, sample_size=100).fit(X, y)
    for k, rows in enumerate(clf.member_rows_):
        rng = np.random.default_rng(member_seed(clf.seed_, k, "bagging_rows"))
        np.testing.assert_array_equal(rows, rng.integers(0, len(X), size=100))
    # with replacement: 100 draws from ~360 rows repeat rows (birthday paradox)
    assert all(np.unique(rows).size < rows.size for rows in clf.member_rows_)
    # keyed by (seed_, k) alone: more members leave the first ones' rows as they were
    more = _bagging(n_estimators=8, sample_size=100).fit(X, y)
    for a, b in zip(clf.member_rows_, more.member_rows_[:5], strict=True):
        np.testing.assert_array_equal(a, b)


def test_member_k_is_a_clone_fitted_on_its_rows(ones_sevens):
    X, y, X_test, _ = ones_sevens
    base = DecisionTreeClassifier(max_features=0.3)  # randomized: its seed must match too
    clf = _bagging(estimator=base, n_estimators=6).fit(X, y)
    votes = clf.predict_members(X_test)
    for k, rows in enumerate(clf.member_rows_):
        member = clone(base)
        seed_random_state_params(member, sklearn_seed(clf.seed_, k))
        member.fit(X[rows], y[rows])
        np.testing.assert_array_equal(votes[:, k], member.predict(X_test))


def test_vectorized_engine_trains_repeated_rows_like_the_loop(ones_sevens):
    X, y, X_test, _ = ones_sevens
    net = NeuralNetClassifier(
        TinyMLP,
        module__n_out=2,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=2,
        batch_size=8,
        lr=0.1,
        iterator_train__shuffle=True,
        train_split=None,
        verbose=0,
    )
    fits = {
        engine: _bagging(estimator=net, n_estimators=3, engine=engine).fit(X, y)
        for engine in ("loop", "vectorized")
    }
    np.testing.assert_allclose(
        fits["loop"].member_scores(X_test), fits["vectorized"].member_scores(X_test), atol=1e-4
    )


def test_sample_size_fraction_resolves_against_the_training_rows(ones_sevens):
    X, y, _, _ = ones_sevens
    clf = _bagging(sample_size=0.1, n_estimators=3).fit(X, y)
    assert clf.sample_size_ == int(0.1 * len(X)) and clf.n_train_ == len(X)
    assert {rows.size for rows in clf.member_rows_} == {clf.sample_size_}
    tiny = _bagging(sample_size=1e-6, n_estimators=3).fit(X, y)
    assert tiny.sample_size_ == 1  # at least one row


@pytest.mark.parametrize(
    "params, error, match",
    [
        (dict(sample_size=10_000), ValueError, r"sample_size=10000 is larger .* sample_size <= "),
        (dict(sample_size=0), ValueError, "sample_size"),
        (dict(sample_size=1.5), ValueError, "sample_size"),
        (dict(sample_size=True), TypeError, "sample_size"),
        (dict(n_estimators=1), ValueError, "n_estimators"),
        (dict(alpha=0.0), ValueError, "alpha"),
        (dict(bound="wilson"), ValueError, "bound"),
    ],
)
def test_bad_parameters_are_refused_before_training(ones_sevens, params, error, match):
    X, y, _, _ = ones_sevens
    with pytest.raises(error, match=match):
        _bagging(estimator=FitFails(), **params).fit(X, y)


# ------------------------------------------------------------------ the certificate
@pytest.mark.parametrize("bound", ["simultaneous", "clopper-pearson", "hoeffding"])
def test_certificate_is_the_bagging_radius_of_the_vote_bounds(ones_sevens, bound):
    X, y, X_test, _ = ones_sevens
    clf = _bagging(n_estimators=40, bound=bound).fit(X, y)
    cert = clf.certify(X_test)
    assert cert.unit == "rows" and cert.radius.dtype.kind == "i"
    expected = bounds.bagging_radius(cert.p_lower, cert.p_upper, len(X), 20)
    np.testing.assert_array_equal(cert.radius, np.where(cert.abstain, 0, expected))
    assert cert.radius.max() > 0 and not cert.abstain.all()
    if bound == "simultaneous":  # every member votes, the paper's statistic
        votes = clf.predict_members(X_test)
        counts = np.stack([(votes == c).sum(axis=1) for c in clf.classes_], axis=1)
        ref = bounds.simultaneous_vote_bounds(counts, 0.05)
        np.testing.assert_array_equal(cert.p_lower, ref.p_lower)


def test_default_statistic_is_the_papers(ones_sevens):
    assert CertifiedBaggingClassifier(DecisionTreeClassifier()).bound == "simultaneous"


@pytest.mark.parametrize("bound", ["simultaneous", "clopper-pearson"])
def test_bounds_fail_at_most_alpha_of_the_time(bound):
    """Monte Carlo: 150 independent ensembles on a problem whose bagged probabilities are exact.

    The base learner is 1-NN on one integer feature (``NearestLabel``), so the probability of
    each class over the ``12^3`` equally likely subsamples is computed exactly. A trial fails
    at a test point where ``p_lower`` exceeds the true probability of the predicted class or
    ``p_upper`` falls below another class's. Each point's failures are Binomial(150, <=
    alpha) across trials (independent seeds); with three points, each count is compared with
    the binomial quantile at ``1 - 0.001 / 3`` (Bonferroni over the points), so a sound
    statistic fails this test with probability below 0.001. (Measured: about 4% of trials
    fail with ``"simultaneous"``, Bonferroni's slack; up to 19% with ``"clopper-pearson"``.)
    """
    x = np.arange(12)
    y = np.array([0, 0, 0, 1, 0, 1, 1, 2, 1, 2, 2, 2])
    points = np.array([2, 5, 9])
    truth = np.stack([bagged_counts(x, y, t, 3, 3) / 12**3 for t in points])
    alpha, trials = 0.2, 150
    failures = np.zeros(len(points), dtype=int)
    for seed in range(trials):
        clf = CertifiedBaggingClassifier(
            NearestLabel(),
            n_estimators=60,
            sample_size=3,
            alpha=alpha,
            bound=bound,
            random_state=seed,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cert = clf.fit(x[:, None].astype(float), y).certify(points[:, None].astype(float))
        top = truth[np.arange(len(points)), cert.prediction]
        others = np.where(np.eye(3, dtype=bool)[cert.prediction], 0.0, truth).max(axis=1)
        failures += (cert.p_lower > top) | (cert.p_upper < others)
    limit = stats.binom.ppf(1 - 0.001 / len(points), trials, alpha)
    assert np.all(failures <= limit), (failures, limit)


# ------------------------------------------------------------------ real attacks
def test_label_flips_within_the_radius_move_no_certified_prediction(ones_sevens):
    X, y, X_test, y_test = ones_sevens
    clf = _bagging(n_estimators=100, sample_size=10, alpha=0.01)  # radii up to 13 of 270 rows
    rows = evaluate_under_attack(
        clf, LabelFlipAttack(random_state=0), X, y, X_test, y_test, [0, 3, 8, 20]
    )
    assert [r["radius_unit"] for r in rows] == ["rows"] * 4
    assert [r["cost"] for r in rows] == [0, 3, 8, 20]  # a flipped label is one changed row
    assert not any(r["violation"] for r in rows)
    assert rows[2]["n_certified"] > 0 and rows[3]["n_certified"] == 0
    assert all(r["failure_bound"] >= 0.01 for r in rows[:3])


def test_a_dirty_label_backdoor_inserting_rows_is_held_to_the_radius(ones_sevens):
    X, y, X_test, y_test = ones_sevens
    attack = BackdoorAttack(target_label=1, mode="insert", random_state=0)
    rows = evaluate_under_attack(
        _bagging(n_estimators=100, sample_size=10, alpha=0.01),
        attack,
        X,
        y,
        X_test,
        y_test,
        [0, 5, 60],
    )
    assert [r["cost"] for r in rows] == [0, 5, 60]  # one per inserted row
    assert not any(r["violation"] for r in rows)
    assert rows[1]["n_certified"] > 0


def test_a_finite_vote_near_the_radius_is_allowed_to_miss():
    """The harness's failure bound for bagging: alpha plus a Binomial miss at the kept p_A."""
    from sklearn_certify import Certificate
    from sklearn_certify.attacks._evaluate import _failure_bound, _Smoothing

    class Fitted:
        n_train_, sample_size_ = 100, 10

    p_lower = np.array([0.95, 0.8])
    cert = Certificate(
        np.zeros(2), np.array([3, 1]), np.zeros(2, bool), "rows", p_lower, 1 - p_lower
    )
    cost = np.array([2, 1])
    out = _failure_bound(_Smoothing(0.01, None, 50, "votes"), cert, cost, Fitted())
    q = bounds.bagging_kept_probability(p_lower, 100, 10, cost)
    np.testing.assert_allclose(out, 0.01 + stats.binom.cdf(25, 50, q))
