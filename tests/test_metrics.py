import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from sklearn_certify import Certificate, UnsoundPipelineWarning, certify
from sklearn_certify.datasets import load_digits
from sklearn_certify.metrics import (
    certified_accuracy,
    certified_accuracy_curve,
    make_certified_scorer,
    median_certified_radius,
)


def cert_of(pred, radius, abstain=None, unit="samples"):
    n = len(pred)
    abstain = np.zeros(n, bool) if abstain is None else np.asarray(abstain)
    return Certificate(np.asarray(pred), np.asarray(radius), abstain, unit)


def test_certified_accuracy_counts_correct_unabstained_and_covered():
    cert = cert_of([0, 1, 1, 0, 1], [3, 2, 0, 5, 0], abstain=[False, False, False, False, True])
    y = [0, 1, 0, 1, 1]
    assert certified_accuracy(y, cert, 0) == pytest.approx(2 / 5)
    assert certified_accuracy(y, cert, 3) == pytest.approx(1 / 5)
    assert certified_accuracy(y, cert, 3, strict=True) == 0.0


def test_curve_integer_units_and_dpa_print_convention():
    # Hand-derived: radii [0, 0, 1, 2] with the first point misclassified give certified accuracy
    # 3/4, 2/4, 1/4 at r = 0, 1, 2. The largest r with at least half certified is 1; the official
    # DPA scripts print the first r below one half, 2.
    cert = cert_of([1, 0, 0, 0], [0, 0, 1, 2])
    radii, acc = certified_accuracy_curve([0, 0, 0, 0], cert)
    assert radii.tolist() == [0, 1, 2] and acc.tolist() == [0.75, 0.5, 0.25]
    assert median_certified_radius([0, 0, 0, 0], cert) == 1.0
    assert median_certified_radius([0, 0, 0, 0], cert, convention="dpa_script") == 2.0


def test_median_when_clean_accuracy_below_half():
    cert = cert_of([1, 1, 0], [4, 4, 4])
    assert np.isnan(median_certified_radius([0, 0, 0], cert))
    assert median_certified_radius([0, 0, 0], cert, convention="dpa_script") == 0.0


def test_curve_l2_has_step_corners():
    cert = cert_of([0, 0, 1], [0.5, 0.25, 2.0], unit="l2")
    radii, acc = certified_accuracy_curve([0, 0, 0], cert)
    assert radii.tolist() == [0.0, 0.25, 0.5]
    assert acc.tolist() == pytest.approx([2 / 3, 2 / 3, 1 / 3])
    with pytest.raises(ValueError, match="dpa_script"):
        median_certified_radius([0, 0, 0], cert, convention="dpa_script")


def test_curve_is_non_increasing_on_custom_grid():
    rng = np.random.default_rng(0)
    cert = cert_of(rng.integers(0, 2, 50), rng.integers(0, 9, 50))
    radii, acc = certified_accuracy_curve(rng.integers(0, 2, 50), cert, radii=[7, 0, 3])
    assert radii.tolist() == [0, 3, 7] and np.all(np.diff(acc) <= 0)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda c: certified_accuracy([0, 1], c, 0), ValueError, "y_true"),
        (lambda c: certified_accuracy([0, 1, 1], c, -1), ValueError, "radius"),
        (
            lambda c: certified_accuracy([0, 1, 1], (c.prediction, c.radius), 0),
            TypeError,
            "Certificate",
        ),
        (lambda c: certified_accuracy_curve([0, 1, 1], c, radii=[-1]), ValueError, "radii"),
        (
            lambda c: median_certified_radius([0, 1, 1], c, convention="mean"),
            ValueError,
            "convention",
        ),
    ],
)
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call(cert_of([0, 1, 1], [1, 1, 1]))


class MarginCertified(ClassifierMixin, BaseEstimator):
    """A toy certified classifier: radius = floor(|decision| * scale)."""

    def __init__(self, scale=1.0, C=1.0):
        self.scale = scale
        self.C = C

    def fit(self, X, y):
        self.model_ = LogisticRegression(C=self.C, max_iter=500).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        return self.model_.predict(X)

    def certify(self, X):
        margin = np.abs(self.model_.decision_function(X))
        radius = np.floor(margin * self.scale).astype(int)
        return Certificate(self.predict(X), radius, np.zeros(len(X), bool), "samples")


def test_scorer_in_grid_search_prefers_the_more_robust_setting():
    X, y = load_digits(digits=(1, 7))
    search = GridSearchCV(
        MarginCertified(), {"scale": [0.01, 1.0]}, scoring=make_certified_scorer(2), cv=3
    )
    search.fit(X, y)
    assert search.best_params_ == {"scale": 1.0}
    assert search.cv_results_["mean_test_score"][0] == 0.0


def test_scorer_warns_on_fitted_unfrozen_pipeline_steps():
    X, y = load_digits(digits=(1, 7))
    scorer = make_certified_scorer(1)
    unsound = make_pipeline(StandardScaler(), MarginCertified()).fit(X, y)
    with pytest.warns(UnsoundPipelineWarning, match="standardscaler"):
        score = scorer(unsound, X, y)
    assert 0 < score <= 1
    frozen = make_pipeline(FrozenEstimator(StandardScaler().fit(X)), MarginCertified()).fit(X, y)
    stateless = make_pipeline(FunctionTransformer(np.sqrt), MarginCertified()).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsoundPipelineWarning)
        assert scorer(frozen, X, y) == pytest.approx(score)
        scorer(stateless, X, y)


def test_certify_passes_rows_through_earlier_steps():
    X, y = load_digits(digits=(1, 7))
    model = MarginCertified().fit(np.sqrt(X), y)
    pipe = make_pipeline(FunctionTransformer(np.sqrt), MarginCertified()).fit(X, y)
    assert np.array_equal(certify(pipe, X).radius, model.certify(np.sqrt(X)).radius)


def test_certify_refuses_estimators_without_certify():
    with pytest.raises(TypeError, match="no certify method"):
        certify(LogisticRegression(), np.zeros((2, 2)))


def test_certified_against_rows_converts_budgets_strictly():
    from sklearn_certify.metrics import certified_against_rows

    cert = Certificate(
        np.array([0, 1, 1, 0]),
        np.array([1.0, 0.4, 0.4, 0.0]),
        np.array([False, False, False, True]),
        "l2",
    )
    # 4 rows of l2 0.2: total 0.4, certified only where the radius is strictly larger
    assert certified_against_rows(cert, 4, 0.2).tolist() == [True, False, False, False]
    assert certified_against_rows(cert, 1, 0.39).tolist() == [True, True, True, False]
    # l-infinity 8/255 on 64 features is at most 8/255 * 8 = 0.251 in l2 per row
    linf = certified_against_rows(cert, 1, 8 / 255, norm="linf", n_features=64)
    assert linf.tolist() == [True, True, True, False]
    assert not certified_against_rows(cert, 3, 8 / 255, norm="linf", n_features=64)[1]
    with pytest.raises(ValueError, match="l2 certificate"):
        certified_against_rows(
            Certificate(np.array([0]), np.array([2]), np.array([False]), "samples"), 1, 0.1
        )
    with pytest.raises(ValueError, match="n_features"):
        certified_against_rows(cert, 1, 0.1, norm="linf")
    with pytest.raises(ValueError, match="epsilon"):
        certified_against_rows(cert, 1, -0.1)
