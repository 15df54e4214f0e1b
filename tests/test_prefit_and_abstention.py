"""Certifying a model that is already trained, and Cohen et al.'s PREDICT with abstention."""

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from skorch import NeuralNetClassifier

from sklearn_certify import RABClassifier, bounds
from sklearn_certify.datasets import load_digits
from sklearn_certify.smoothing import RandomizedSmoothingClassifier, frozen_module, keyed_draws

SETTINGS = dict(sigma=0.5, n_select=20, n_samples=300, alpha=0.01, batch_size=128)


class Sign(ClassifierMixin, BaseEstimator):
    """Class 1 where the first feature is positive: its smoothed probabilities are known."""

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        return self

    def predict(self, X):
        return (np.asarray(X)[:, 0] > 0).astype(np.int64)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(digits=(1, 7, 9), split="train")
    X_test, y_test = load_digits(digits=(1, 7, 9), split="test")
    return X, y, X_test[:25], y_test[:25]


def _expected_votes(clf, X, predict, n_classes):
    """Votes by hand: the row's keyed draws, scored by ``predict`` (labels as indices)."""
    votes = np.zeros((len(X), n_classes), dtype=np.int64)
    for i, seed in enumerate(clf._row_seeds(X)):
        noise = keyed_draws(seed, 0, clf.n_samples_, X.shape[1:], dtype=torch.float32).numpy()
        labels = predict(X[i] + clf.sigma_ * noise)
        votes[i] = np.bincount(labels, minlength=n_classes)
    return votes


def test_a_frozen_skorch_net_certifies_exactly_as_the_net_we_trained(digits):
    X, y, X_test, _ = digits
    net = NeuralNetClassifier(
        torch.nn.Linear,
        module__in_features=64,
        module__out_features=3,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=3,
        lr=0.05,
        train_split=None,
        verbose=0,
    )
    ours = RandomizedSmoothingClassifier(net, random_state=4, **SETTINGS).fit(X, y)
    trained = ours.estimator_
    before = {k: v.clone() for k, v in trained.module_.state_dict().items()}
    frozen = RandomizedSmoothingClassifier(FrozenEstimator(trained), random_state=4, **SETTINGS)
    frozen.fit(X_test)  # any rows of the model's shape; no labels, no training
    assert frozen.estimator_ is trained
    assert all(torch.equal(v, trained.module_.state_dict()[k]) for k, v in before.items())
    a, b = ours.certify(X_test), frozen.certify(X_test)
    # the net we trained predicts encoded classes 0..2; frozen, its classes_ are those indices
    np.testing.assert_array_equal(a.votes, b.votes)
    np.testing.assert_array_equal(a.radius, b.radius)
    np.testing.assert_array_equal(ours.classes_[b.prediction], a.prediction)


def test_a_frozen_sklearn_classifier_scores_its_own_labels(digits):
    X, y, X_test, _ = digits
    labels = np.array(["one", "seven", "nine"])[np.searchsorted([1, 7, 9], y)]
    model = LogisticRegression(max_iter=500).fit(X, labels)
    clf = RandomizedSmoothingClassifier(FrozenEstimator(model), random_state=1, **SETTINGS)
    cert = clf.fit(X, labels).certify(X_test)
    assert list(clf.classes_) == list(model.classes_)
    expected = _expected_votes(
        clf, X_test, lambda rows: np.searchsorted(model.classes_, model.predict(rows)), 3
    )
    np.testing.assert_array_equal(cert.votes, expected)
    assert set(cert.prediction) <= set(labels)


def test_a_plain_torch_module_certifies_on_its_device(digits):
    X, _, X_test, _ = digits
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    clf = RandomizedSmoothingClassifier(
        frozen_module(module, [1, 7, 9]), random_state=2, **SETTINGS
    ).fit(X)
    assert clf.estimator_.module_ is module
    cert = clf.certify(X_test)

    def argmax(rows):
        with torch.no_grad():
            return module(torch.as_tensor(rows)).argmax(1).numpy()

    np.testing.assert_array_equal(cert.votes, _expected_votes(clf, X_test, argmax, 3))
    assert set(cert.prediction) <= {1, 7, 9}


def test_frozen_models_are_checked_before_certifying(digits):
    X, y, _, _ = digits
    with pytest.raises(NotFittedError):
        RandomizedSmoothingClassifier(FrozenEstimator(LogisticRegression())).fit(X, y)
    model = LogisticRegression(max_iter=200).fit(X, y)
    with pytest.raises(ValueError, match=r"labels \[3\] the frozen model does not predict"):
        RandomizedSmoothingClassifier(FrozenEstimator(model)).fit(X, np.where(y == 1, 3, y))
    with pytest.raises(ValueError, match=r"wrap it in sklearn\.frozen\.FrozenEstimator"):
        RandomizedSmoothingClassifier(LogisticRegression()).fit(X)
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        frozen_module(model, [1, 7, 9])


def test_predict_with_abstention_is_predicts_test_on_the_certified_draws(digits):
    X, y, X_test, _ = digits
    clf = RandomizedSmoothingClassifier(
        LogisticRegression(max_iter=300), random_state=0, **SETTINGS
    )
    clf.fit(X, y)
    labels, abstain = clf.predict_with_abstention(X_test)
    votes = clf.certify(X_test).votes
    index, expected = bounds.cohen_predict(votes, clf.alpha_)
    np.testing.assert_array_equal(labels, clf.classes_[index])
    np.testing.assert_array_equal(abstain, expected)
    np.testing.assert_array_equal(labels, clf.predict(X_test))  # predict: same class, no abstaining


def test_predict_with_abstention_on_a_tie_keeps_a_class_at_most_alpha_of_the_time():
    """Validity: rows on Sign's boundary have smoothed probabilities exactly 1/2 and 1/2.

    Keeping a class there is an error; each of the N rows (own noise: rows differ) errs with
    probability at most alpha. The test fails when the errors exceed the binomial(N, alpha)
    quantile at 1 - 1e-4 (one test, no correction needed).
    """
    n, alpha = 400, 0.05
    rows = np.column_stack([np.zeros(n), np.linspace(-1, 1, n)]).astype(np.float32)
    clf = RandomizedSmoothingClassifier(
        FrozenEstimator(Sign().fit(rows, None)),
        sigma=1.0,
        n_samples=200,
        alpha=alpha,
        random_state=0,
    ).fit(rows)
    _, abstain = clf.predict_with_abstention(rows)
    kept = int((~abstain).sum())
    assert kept <= stats.binom.ppf(1 - 1e-4, n, alpha)
    # power: a row far from the boundary is never abstained on
    far = np.array([[3.0, 0.0], [-3.0, 0.0]], dtype=np.float32)
    labels, abstain = clf.predict_with_abstention(far)
    assert labels.tolist() == [1, 0] and not abstain.any()


def test_vote_ensembles_predict_with_abstention(digits):
    X, y, X_test, _ = digits
    rab = RABClassifier(
        LogisticRegression(max_iter=200), n_estimators=30, sigma=0.5, alpha=0.05, random_state=0
    ).fit(X, y)
    labels, abstain = rab.predict_with_abstention(X_test)
    index, expected = bounds.cohen_predict(rab.certify(X_test).votes, 0.05)
    np.testing.assert_array_equal(labels, rab.classes_[index])
    np.testing.assert_array_equal(abstain, expected)
    np.testing.assert_array_equal(labels, rab.predict(X_test))
