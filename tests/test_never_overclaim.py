"""Settings that used to bend a certificate, and bad inputs refused before any training."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from skorch import NeuralNetClassifier

import sklearn_certify.ensemble._base
from sklearn_certify import (
    Certificate,
    DenoisedSmoothingClassifier,
    DPAClassifier,
    RABClassifier,
    bounds,
)
from sklearn_certify.datasets import load_digits
from sklearn_certify.ensemble import DegenerateMemberWarning
from sklearn_certify.ensemble._net_config import unsupported_reason
from sklearn_certify.metrics import certified_accuracy, certified_accuracy_curve
from sklearn_certify.smoothing import RandomizedSmoothingClassifier
from tests._ensemble_helpers import TinyMLP


def _net(module=TinyMLP, criterion=torch.nn.CrossEntropyLoss, **kwargs):
    return NeuralNetClassifier(
        module,
        criterion=criterion,
        max_epochs=kwargs.pop("max_epochs", 3),
        lr=0.1,
        batch_size=32,
        train_split=None,
        verbose=0,
        **kwargs,
    )


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(split="train")
    X_test, y_test = load_digits(split="test")
    return X[:400], y[:400], X_test[:30], y_test[:30]


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if any member is trained."""

    def refuse(*args, **kwargs):
        raise AssertionError("members were trained before the input was refused")

    monkeypatch.setattr(sklearn_certify.ensemble._base, "train_members", refuse)


# ------------------------------------------------------------------ hoeffding reads probabilities
def test_hoeffding_softmaxes_logits_of_a_criterion_instance(digits):
    """``criterion=CrossEntropyLoss()`` (an instance) means logits, as the class does."""
    X, y, X_test, _ = digits
    clf = RABClassifier(
        _net(criterion=torch.nn.CrossEntropyLoss()),
        n_estimators=8,
        sigma=0.25,
        alpha=0.05,
        bound="hoeffding",
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the engine falls back to the loop for an instance
        clf.fit(X, y)
    logits = clf.member_scores(X_test)
    proba = np.exp(logits - logits.max(axis=2, keepdims=True))
    proba /= proba.sum(axis=2, keepdims=True)
    n_select = clf.n_select_
    expected = bounds.hoeffding_certify(
        proba[:, :n_select].mean(axis=1), proba[:, n_select:].mean(axis=1), 8 - n_select,
        0.05, 0.25,
    )
    cert = clf.certify(X_test)
    np.testing.assert_allclose(cert.p_lower, expected.p_lower, rtol=1e-12)
    np.testing.assert_allclose(cert.radius, expected.radius, rtol=1e-12)
    np.testing.assert_allclose(clf.predict_proba(X_test), proba.mean(axis=1), rtol=1e-12)


def test_hoeffding_refuses_a_criterion_that_does_not_say_what_the_outputs_are(
    digits, no_training
):
    X, y, _, _ = digits
    clf = RABClassifier(
        _net(criterion=torch.nn.MultiMarginLoss), n_estimators=4, bound="hoeffding"
    )
    with pytest.raises(TypeError, match=r"bound='hoeffding'.*MultiMarginLoss"):
        clf.fit(X, y)


def test_hoeffding_refuses_scores_outside_the_unit_interval(digits):
    """A NeuralNetClassifier with NLLLoss must output probabilities; logits are refused."""
    X, y, X_test, _ = digits
    clf = RABClassifier(
        _net(criterion=torch.nn.NLLLoss, max_epochs=1),
        n_estimators=4,
        bound="hoeffding",
        alpha=0.1,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # log of negative outputs: NaN losses
        clf.fit(X, y)
        with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
            clf.certify(X_test)


# ------------------------------------------------------------------ NaN draws vote for no class
class NaNInEval(torch.nn.Module):
    """A linear module whose outputs are NaN in eval mode where ``x[:, 0] > cutoff``."""

    def __init__(self, cutoff=-np.inf):
        super().__init__()
        self.linear = torch.nn.Linear(64, 10)
        self.cutoff = cutoff

    def forward(self, x):
        out = self.linear(x)
        if self.training:
            return out
        return torch.where(x[:, :1] > self.cutoff, torch.full_like(out, float("nan")), out)


def test_cohen_nan_draws_vote_for_no_class(digits):
    X, y, X_test, _ = digits
    clf = RandomizedSmoothingClassifier(
        _net(NaNInEval, max_epochs=1), sigma=0.25, n_select=10, n_samples=50, alpha=0.01,
        random_state=0,
    ).fit(X, y)
    with pytest.warns(DegenerateMemberWarning, match="NaN"):
        cert = clf.certify(X_test[:5])
    # every draw is NaN: no votes, nothing certified (it used to be class 0 at the top radius)
    assert cert.votes.sum() == 0
    assert cert.abstain.all() and (cert.radius == 0).all()


def test_cohen_partly_nan_draws_count_as_draws(digits):
    X, y, X_test, _ = digits
    clf = RandomizedSmoothingClassifier(
        _net(NaNInEval, module__cutoff=0.1, max_epochs=3), sigma=0.25, n_select=10,
        n_samples=60, alpha=0.01, random_state=0,
    ).fit(X, y)
    with pytest.warns(DegenerateMemberWarning):
        cert = clf.certify(X_test)
    counted = cert.votes.sum(axis=1)
    assert (counted < 60).any() and (counted > 0).any()
    top = cert.votes[np.arange(len(cert)), np.searchsorted(clf.classes_, cert.prediction)]
    expected = bounds.clopper_pearson_lower(top, 60, 0.01)
    np.testing.assert_allclose(cert.p_lower, expected, rtol=1e-12)


# ------------------------------------------------------------------ label types in metrics
def test_certified_accuracy_refuses_labels_of_another_type():
    cert = Certificate(np.array(["one", "seven"]), np.array([2, 1]), np.zeros(2, bool), "samples")
    for metric in (certified_accuracy, certified_accuracy_curve):
        with pytest.raises(ValueError, match="label values the estimator was fitted on"):
            metric(np.array([1, 7]), cert)
    assert certified_accuracy(np.array(["one", "one"]), cert) == 0.5


# ------------------------------------------------------------------ the whole row shape
def test_image_rows_must_match_the_fitted_shape():
    X, y = load_digits(shape="image", digits=(1, 7), split="train")
    flatten = FunctionTransformer(lambda Z: Z.reshape(len(Z), -1))
    clf = DPAClassifier(
        make_pipeline(flatten, LogisticRegression()), n_partitions=3, random_state=0
    ).fit(X, y)
    assert clf.row_shape_ == (1, 8, 8) and clf.n_features_in_ == 1
    with pytest.raises(ValueError, match=r"rows of shape \(1, 16, 4\).*\(1, 8, 8\)"):
        clf.certify(X.reshape(len(X), 1, 16, 4))
    with pytest.raises(ValueError, match=r"X.reshape\(len\(X\), 1, 8, 8\)"):
        clf.predict(X.reshape(len(X), 64))
    with pytest.raises(ValueError, match=r"rows of shape"):
        clf.assign_partitions(X.reshape(len(X), 1, 64))
    assert clf.certify(X[:4]).prediction.shape == (4,)


# ------------------------------------------------------------------ refused before training
@pytest.mark.parametrize(
    "make",
    [
        lambda est: RABClassifier(est, n_estimators=4),
        lambda est: DenoisedSmoothingClassifier(est, None, n_estimators=4),
    ],
)
def test_smoothing_refuses_one_class_before_training(make, no_training):
    X, _ = load_digits(digits=(1, 7), split="train")
    with pytest.raises(ValueError, match="at least 2 classes"):
        make(LogisticRegression()).fit(X, np.full(len(X), 7))


@pytest.mark.parametrize("engine", ["auto", "loop"])
@pytest.mark.parametrize(
    "make",
    [
        lambda net, engine: DPAClassifier(net, n_partitions=4, engine=engine),
        lambda net, engine: RABClassifier(net, n_estimators=4, engine=engine),
    ],
)
def test_module_with_wrong_outputs_or_inputs_is_refused_before_training(
    digits, make, engine, no_training
):
    X, y, _, _ = digits
    with pytest.raises(ValueError, match=r"returns outputs of shape \(2, 7\).*10 classes"):
        make(_net(module__n_out=7), engine).fit(X, y)
    with pytest.raises(ValueError, match=r"outputs of shape \(2, 12\)"):
        make(_net(module__n_out=12), engine).fit(X, y)
    with pytest.raises(ValueError, match=r"cannot take rows of shape \(64,\).*input layer"):
        make(_net(module__n_in=32), engine).fit(X, y)


def test_engine_fallback_names_a_criterion_instance_for_what_it_is(digits):
    X, _, _, _ = digits
    reason, _, _ = unsupported_reason(_net(criterion=torch.nn.CrossEntropyLoss()), X, 10)
    assert "needs the class" in reason and "criterion=torch.nn.CrossEntropyLoss" in reason
    assert "is not supported (CrossEntropyLoss" not in reason


# ------------------------------------------------------------------ tiny alpha
def test_alpha_below_the_floor_is_refused_clearly(no_training):
    X, y = load_digits(digits=(1, 7), split="train")
    with pytest.raises(ValueError, match="alpha"):
        RABClassifier(LogisticRegression(), n_estimators=4, alpha=1e-300).fit(X, y)
    with pytest.raises(ValueError, match="alpha"):
        RandomizedSmoothingClassifier(LogisticRegression(), alpha=1e-300).fit(X, y)
    with pytest.raises(ValueError, match=r"below 1e-60"):
        bounds.clopper_pearson_lower(3, 10, 1e-300)
    with pytest.raises(ValueError, match=r"below 1e-60"):
        bounds.cohen_certify([[1, 9]], [[2, 98]], 1e-300, 0.5)


def test_alpha_at_the_floor_gives_finite_bounds_without_warnings():
    k = np.arange(0, 101)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lower = bounds.clopper_pearson_lower(k, 100, 1e-60)
        upper = bounds.clopper_pearson_upper(k, 100, 1e-60)
    assert np.isfinite(lower).all() and np.isfinite(upper).all()
    assert (lower <= k / 100).all() and (upper >= k / 100).all()
