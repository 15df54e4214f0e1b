"""Bad or unusual input to DPAClassifier and the bounds: clear errors before training, no silent
wrong results (NaN members, label-only members, tied run-off scores, overflow, coercion)."""

import warnings

import numpy as np
import pytest
import torch
from joblib import parallel_config
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier
from skorch import NeuralNetClassifier

from sklearn_certify import Certificate, DPAClassifier
from sklearn_certify.bounds import cohen_radius, dpa_radius
from sklearn_certify.convex import bound_curve
from sklearn_certify.datasets import load_digits, load_digits_1v7
from sklearn_certify.ensemble import DegenerateMemberWarning, MemberPlan, fit_members
from tests._ensemble_helpers import TinyMLP, first_digits


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(split="train")
    X_test, y_test = load_digits(split="test")
    return X[:600], y[:600], X_test[:150], y_test[:150]


class SometimesNaN(ClassifierMixin, BaseEstimator):
    """A logistic regression whose probabilities are NaN on rows with a bright first pixel
    when it was trained on an odd number of rows (so only some members are broken)."""

    def fit(self, X, y):
        self.model_ = LogisticRegression(max_iter=200).fit(X, y)
        self.classes_ = self.model_.classes_
        self.broken_ = len(X) % 2 == 1
        return self

    def predict_proba(self, X):
        proba = self.model_.predict_proba(X)
        if self.broken_:
            proba[X[:, 20] > 0.5] = np.nan
        return proba

    def predict(self, X):
        return self.classes_[np.nanargmax(np.nan_to_num(self.predict_proba(X), nan=-1), axis=1)]


class LabelsOnly(ClassifierMixin, BaseEstimator):
    """Nearest class centroid with only fit and predict."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.centroids_ = np.stack([X[y == c].mean(axis=0) for c in self.classes_])
        return self

    def predict(self, X):
        d = ((X[:, None, :] - self.centroids_[None]) ** 2).sum(axis=2)
        return self.classes_[d.argmin(axis=1)]


# ------------------------------------------------------------------ silent wrong results
@pytest.mark.parametrize(
    "params",
    [dict(), dict(spread=2), dict(election="runoff"), dict(spread=2, election="runoff")],
    ids=["dpa", "fa", "runoff", "fa-runoff"],
)
def test_nan_member_scores_abstain_in_every_election(digits, params):
    X, y, X_test, _ = digits
    clf = DPAClassifier(SometimesNaN(), n_partitions=8, random_state=0, **params).fit(X, y)
    scores = clf.member_scores(X_test)
    nan_cells = np.isnan(scores).any(axis=2)
    assert nan_cells.any() and not nan_cells.all()  # the fixture breaks some members on some rows
    with pytest.warns(DegenerateMemberWarning, match="NaN scores"):
        cert = clf.certify(X_test)
    with pytest.warns(DegenerateMemberWarning):
        members = clf.predict_members(X_test)
    assert np.array_equal(members.mask, nan_cells)
    # round-one votes count only the members whose scores are usable
    assert np.array_equal(cert.votes.sum(axis=1), (~nan_cells).sum(axis=1))
    # the same certificate as when those members are told to abstain explicitly
    from sklearn_certify import bounds

    k, d = clf.n_partitions, clf.spread
    flat = np.where(nan_cells[:, :, None], 1.0 / 10, scores)
    if params.get("election") == "runoff":
        if d == 1:
            _, radius = bounds.runoff_radius(flat, abstain=nan_cells)
        else:
            _, radius = bounds.fa_runoff_radius(flat, k, d, clf.shifts_, abstain=nan_cells)
    else:
        preds = np.where(nan_cells, bounds.ABSTAIN, flat.argmax(axis=2))
        _, radius = bounds.fa_radius(preds, 10, k, d, shifts=clf.shifts_)
    assert np.array_equal(cert.radius, radius)


def test_score_validates_y_like_sklearn(digits):
    X, y, X_test, y_test = digits
    clf = DPAClassifier(DecisionTreeClassifier(), n_partitions=5, random_state=0).fit(X, y)
    assert clf.score(X_test, y_test) == np.mean(clf.predict(X_test) == y_test)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clf.score(X_test, y_test[:1])
    with pytest.raises(ValueError, match=r"Mix of label input types|same type"):
        clf.score(X_test, y_test.astype(str))


def test_runoff_with_tied_scores_warns_at_fit(digits):
    X, y, _, _ = digits
    with pytest.warns(UserWarning, match="tie the scores of the classes below their vote"):
        DPAClassifier(DecisionTreeClassifier(), n_partitions=5, election="runoff").fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DPAClassifier(LogisticRegression(max_iter=200), n_partitions=5, election="runoff").fit(X, y)


def test_label_only_members_vote_and_runoff_refuses_them(digits):
    X, y, X_test, _ = digits
    clf = DPAClassifier(LabelsOnly(), n_partitions=5, spread=2, random_state=0).fit(X, y)
    votes = clf.predict_members(X_test)
    own = np.stack([m.predict(X_test) for m in clf.estimators_], axis=1)
    assert np.array_equal(votes.data, clf.classes_[own])
    assert clf.certify(X_test).radius.max() > 0
    with pytest.raises(TypeError, match="neither predict_proba nor decision_function"):
        DPAClassifier(LabelsOnly(), n_partitions=5, election="runoff").fit(X, y)


def test_certificate_arrays_are_read_only():
    radius = np.array([3, 0])
    cert = Certificate(np.array([1, 2]), radius, np.array([False, False]), "samples")
    with pytest.raises(ValueError, match="read-only"):
        cert.radius[0] = -5
    radius[0] = 99  # the caller's array stays theirs
    assert cert.radius[0] == 3


def test_huge_counts_and_strings_are_refused():
    with pytest.raises(ValueError, match="2\\*\\*53"):
        dpa_radius([[2**62, 0]])
    with pytest.raises(ValueError, match="2\\*\\*53"):
        dpa_radius(np.array([[0, 2**63 + 5]], dtype=np.uint64))
    with pytest.raises(TypeError, match="strings"):
        cohen_radius(p_lower="0.9", sigma=0.5)
    X, y = load_digits_1v7()
    with pytest.raises(TypeError, match="epsilons"):
        bound_curve(X, y, epsilons="0.1", rho_sq=1.0)


# ------------------------------------------------------------------ errors before training
class _NeverFit(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):  # pragma: no cover - the checks run before any member is fitted
        raise AssertionError("a member was fitted before the input was checked")

    def predict_proba(self, X):  # pragma: no cover
        raise AssertionError

    def predict(self, X):  # pragma: no cover
        raise AssertionError


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        (dict(engine="bogus"), ValueError, "engine"),
        (dict(n_jobs=0), ValueError, "n_jobs=0"),
        (dict(n_jobs=True), TypeError, "n_jobs must be an int"),
        (dict(n_partitions=True), TypeError, "n_partitions must be an int"),
        (dict(spread=True), TypeError, "spread must be an int"),
        (dict(estimator=DecisionTreeClassifier), TypeError, "not the class"),
        (dict(estimator=KNeighborsClassifier(40)), ValueError, "n_neighbors=40"),
        (
            dict(threat_model="label_flip", hash="pixel_sum"),
            ValueError,
            "hash='pixel_sum' is unused under threat_model='label_flip'.*drop hash",
        ),
    ],
)
def test_errors_come_before_any_member_is_trained(digits, params, error, match):
    X, y, _, _ = digits
    kwargs = dict(estimator=_NeverFit(), n_partitions=20)
    kwargs.update(params)
    with pytest.raises(error, match=match):
        DPAClassifier(**kwargs).fit(X, y)


def test_n_neighbors_error_names_the_fix(digits):
    X, y, _, _ = digits
    with pytest.raises(ValueError, match="fewer partitions"):
        DPAClassifier(KNeighborsClassifier(40), n_partitions=20).fit(X, y)


def test_image_arrays_need_a_base_that_takes_them():
    X, y = load_digits(shape="image")
    with pytest.raises(ValueError, match="2-D rows"):
        DPAClassifier(_NeverFit(), n_partitions=5).fit(X[:200], y[:200])


def test_module_classes_from_main_work_with_n_jobs(monkeypatch):
    """Process workers cannot send back nets whose module lives in __main__: threads are used,
    and a forced process backend gets a clear error instead of a PicklingError."""
    X, y = first_digits(200)
    Main = type("MainMLP", (TinyMLP,), {"__module__": "__main__"})
    net = NeuralNetClassifier(Main, criterion=torch.nn.CrossEntropyLoss, max_epochs=1)
    rows = [np.arange(0, 100), np.arange(100, 200)]
    kw = dict(n_classes=10, seed=0, engine="loop", n_jobs=2)
    members = fit_members(net, X, y, MemberPlan(rows), **kw)
    assert len(members) == 2
    with parallel_config(backend="loky"):
        with pytest.raises(TypeError, match="MainMLP is defined in __main__"):
            fit_members(net, X, y, MemberPlan(rows), **kw)
