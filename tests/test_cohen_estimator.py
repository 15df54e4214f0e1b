"""RandomizedSmoothingClassifier as a scikit-learn estimator, with sklearn and skorch bases."""

import pickle
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch import NeuralNetClassifier
from threadpoolctl import threadpool_limits

import sklearn_certify
from sklearn_certify import Certificate, RandomizedSmoothingClassifier, certify
from sklearn_certify.datasets import load_digits
from sklearn_certify.metrics import (
    certified_accuracy,
    certified_accuracy_curve,
    make_certified_scorer,
    median_certified_radius,
)
from sklearn_certify.smoothing import GaussianAugmentation


@pytest.fixture(autouse=True)
def _one_thread():
    """Two cores are shared: one BLAS/OpenMP and one torch thread per test process."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(previous)


FAST = dict(n_select=5, n_samples=20, n_augment=2)


@parametrize_with_checks(
    [
        RandomizedSmoothingClassifier(DecisionTreeClassifier(), sigma=0.1, **FAST),
        RandomizedSmoothingClassifier(LogisticRegression(), **FAST),
    ]
)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)


def test_exported_from_the_package():
    assert sklearn_certify.RandomizedSmoothingClassifier is RandomizedSmoothingClassifier
    assert "RandomizedSmoothingClassifier" in sklearn_certify.__all__
    assert "GaussianAugmentation" in sklearn_certify.smoothing.__all__


@pytest.fixture(scope="module")
def one_vs_seven():
    X, y = load_digits(digits=(1, 7), split="train")
    X_test, y_test = load_digits(digits=(1, 7), split="test")
    return X, y, X_test, y_test


def smoothed(base=None, **params):
    defaults = dict(sigma=0.5, n_select=10, n_samples=200, alpha=0.01, n_augment=2, random_state=0)
    return RandomizedSmoothingClassifier(
        LogisticRegression() if base is None else base, **{**defaults, **params}
    )


def test_certificate_fields_and_metrics(one_vs_seven):
    X, y, X_test, y_test = one_vs_seven
    clf = smoothed().fit(X, y)
    cert = clf.certify(X_test)
    assert isinstance(cert, Certificate) and cert.unit == "input_l2"
    assert np.all(cert.votes.sum(axis=1) == 200)
    assert np.allclose(cert.p_upper, 1 - cert.p_lower)
    assert np.all(cert.radius[cert.abstain] == 0) and np.all(cert.radius[~cert.abstain] > 0)
    assert np.allclose(clf.predict_proba(X_test), cert.votes / 200)
    assert np.array_equal(clf.predict(X_test), clf.classes_[cert.votes.argmax(axis=1)])
    assert certified_accuracy(y_test, cert) > 0.9
    assert certified_accuracy(y_test, cert, 0.5) > 0.5
    radii, accuracy = certified_accuracy_curve(y_test, cert)
    assert radii[0] == 0 and len(radii) > 10 and np.all(np.diff(accuracy) <= 0)
    assert median_certified_radius(y_test, cert) > 0.5
    with pytest.raises(ValueError, match="input_l2"):
        median_certified_radius(y_test, cert, convention="dpa_script")


def test_pipelines(one_vs_seven):
    X, y, X_test, y_test = one_vs_seven
    # preprocessing inside the base sees the noisy inputs; the radius is in units of X
    inside = smoothed(make_pipeline(StandardScaler(), LogisticRegression())).fit(X, y)
    assert inside.score(X_test, y_test) > 0.9
    # a stateless step in front: the smoothed classifier certifies its output
    pipe = make_pipeline(FunctionTransformer(np.sqrt), smoothed()).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cert = certify(pipe, X_test)
    assert np.array_equal(cert.radius, pipe[-1].certify(np.sqrt(X_test)).radius)
    assert pipe.score(X_test, y_test) > 0.9


def test_grid_search_over_sigma_with_the_certified_scorer(one_vs_seven):
    X, y, _, _ = one_vs_seven
    search = GridSearchCV(
        smoothed(), {"sigma": [0.05, 0.5]}, scoring=make_certified_scorer(radius=0.3), cv=2
    ).fit(X, y)
    # sigma=0.05 cannot reach 0.3 with 200 draws: its largest radius is about 0.1
    assert search.cv_results_["mean_test_score"][0] == 0.0
    assert search.best_params_ == {"sigma": 0.5} and search.best_score_ > 0.5


def test_pickle_and_joblib_round_trips_keep_certificates(one_vs_seven, tmp_path):
    X, y, X_test, _ = one_vs_seven
    clf = smoothed(DecisionTreeClassifier(max_depth=5)).fit(X, y)
    cert = clf.certify(X_test[:40])
    joblib.dump(clf, tmp_path / "clf.joblib")
    for restored in (pickle.loads(pickle.dumps(clf)), joblib.load(tmp_path / "clf.joblib")):
        again = restored.certify(X_test[:40])
        for field in ("prediction", "radius", "abstain", "p_lower", "votes"):
            assert np.array_equal(getattr(again, field), getattr(cert, field))


def test_string_labels(one_vs_seven):
    X, y, X_test, y_test = one_vs_seven
    names = np.where(y == 1, "one", "seven")
    clf = smoothed().fit(X, names)
    cert = clf.certify(X_test)
    assert cert.prediction.dtype.kind == "U" and set(cert.prediction) <= {"one", "seven"}
    assert certified_accuracy(np.where(y_test == 1, "one", "seven"), cert) > 0.9
    assert set(clf.predict(X_test[:5])) <= {"one", "seven"}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_and_float64(one_vs_seven, dtype):
    X, y, X_test, y_test = one_vs_seven
    clf = smoothed().fit(X.astype(dtype), y)
    cert = clf.certify(X_test.astype(dtype))
    assert certified_accuracy(y_test, cert) > 0.9
    other = clf.certify(X_test.astype(np.float64 if dtype == np.float32 else np.float32))
    # the same noise (keyed by the row's value), added in the other precision
    assert np.mean(other.prediction == cert.prediction) > 0.95
    assert np.abs(other.votes - cert.votes).max() <= 2


# --- skorch nets ------------------------------------------------------------------------------


class MLP(torch.nn.Module):
    """Module-level (picklable) net; remembers its last training-mode input."""

    def __init__(self, hidden=32):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10)
        )

    def forward(self, X):
        if self.training:
            self.last_training_input = X.detach().clone()
        return self.net(X)


def digits_net(**params):
    defaults = dict(
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        lr=0.05,
        max_epochs=8,
        batch_size=64,
        train_split=None,
        verbose=0,
    )
    return NeuralNetClassifier(MLP, **{**defaults, **params})


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(split="train")
    X_test, y_test = load_digits(split="test")
    return X, y, X_test[:40], y_test[:40]


def test_skorch_net_trains_with_fresh_noise_and_certifies(digits, tmp_path):
    X, y, X_test, y_test = digits
    net = digits_net()
    clf = smoothed(net, sigma=0.25).fit(X, y)
    assert not hasattr(net, "module_")  # the base itself is left unfitted
    augmentation = dict(clf.estimator_.callbacks_)["gaussian_augmentation"]
    assert isinstance(augmentation, GaussianAugmentation) and augmentation.sigma == 0.25
    cert = clf.certify(X_test)
    assert cert.unit == "input_l2" and certified_accuracy(y_test, cert) > 0.7
    assert np.array_equal(clf.predict(X_test), clf.classes_[cert.votes.argmax(axis=1)])
    # reproducible from random_state, and through pickling
    again = smoothed(digits_net(), sigma=0.25).fit(X, y)
    for a, b in zip(
        again.estimator_.module_.parameters(), clf.estimator_.module_.parameters(), strict=True
    ):
        assert torch.equal(a, b)
    restored = pickle.loads(pickle.dumps(clf))
    for other in (again, restored):
        assert np.array_equal(other.certify(X_test).votes, cert.votes)
    # certify(X)[i] == certify(X[i:i+1]) for a net too
    assert np.array_equal(clf.certify(X_test[7:8]).votes, cert.votes[7:8])


def test_skorch_training_batches_are_noised(digits):
    X, y, _, _ = digits
    clf = smoothed(digits_net(batch_size=len(X), max_epochs=2), sigma=0.25).fit(X, y)
    noise = clf.estimator_.module_.last_training_input.numpy() - X  # one unshuffled batch
    assert abs(noise.std() - 0.25) < 0.01 and abs(noise.mean()) < 0.01


def test_skorch_net_with_callbacks_disabled_is_still_augmented(digits):
    X, y, X_test, _ = digits
    clf = smoothed(digits_net(callbacks="disable", max_epochs=1)).fit(X, y)
    assert [name for name, _ in clf.estimator_.callbacks_] == ["gaussian_augmentation"]
    assert clf.predict(X_test[:3]).shape == (3,)


def test_skorch_errors_before_training(digits):
    X, y, _, _ = digits
    own = digits_net(callbacks=[GaussianAugmentation(0.5)])
    with pytest.raises(ValueError, match="already has a GaussianAugmentation"):
        smoothed(own).fit(X, y)
    with pytest.raises(TypeError, match="float32"):
        smoothed(digits_net()).fit(X.astype(np.float64), y)


# --- bad input --------------------------------------------------------------------------------


class MustNotTrain(DecisionTreeClassifier):
    """A base whose training is a test failure: errors must come before it."""

    def fit(self, X, y):
        raise AssertionError("the base estimator was trained")


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        (dict(sigma=0), ValueError, "'sigma'"),
        (dict(sigma=-0.5), ValueError, "'sigma'"),
        (dict(sigma=float("inf")), ValueError, "'sigma'"),
        (dict(sigma=float("nan")), ValueError, "'sigma'"),
        (dict(sigma="0.5"), ValueError, "'sigma'"),
        (dict(sigma=True), TypeError, "sigma"),
        (dict(n_select=0), ValueError, "'n_select'"),
        (dict(n_select=True), TypeError, "n_select"),
        (dict(n_samples=0), ValueError, "'n_samples'"),
        (dict(n_samples=2**31 + 1), ValueError, "'n_samples'"),
        (dict(n_samples=100.0), ValueError, "'n_samples'"),
        (dict(n_samples=True), TypeError, "n_samples"),
        (dict(alpha=0), ValueError, "'alpha'"),
        (dict(alpha=1), ValueError, "'alpha'"),
        (dict(alpha=1.5), ValueError, "'alpha'"),
        (dict(alpha=False), TypeError, "alpha"),
        (dict(batch_size=0), ValueError, "'batch_size'"),
        (dict(n_augment=0), ValueError, "'n_augment'"),
        (dict(n_augment=True), TypeError, "n_augment"),
        (dict(estimator=DecisionTreeClassifier), TypeError, "instance"),
    ],
)
def test_bad_parameters_are_errors_before_training(params, error, match):
    clf = RandomizedSmoothingClassifier(MustNotTrain(), **FAST).set_params(**params)
    X, y = load_digits(digits=(1, 7), split="test")
    with pytest.raises(error, match=match):
        clf.fit(X, y)


def _nan_rows(X):
    X = X.copy()
    X[3, 5] = np.nan
    return X


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (lambda X, y: (_nan_rows(X), y), ValueError, "NaN"),
        (lambda X, y: (np.where(X > 0.5, np.inf, X), y), ValueError, "infinity"),
        (lambda X, y: (sp.csr_matrix(X), y), TypeError, "(?i)sparse"),
        (lambda X, y: (X, np.full(len(y), 7)), ValueError, "at least 2 classes"),
        (lambda X, y: (X, y + 0.5), ValueError, "(?i)unknown label type"),
        (lambda X, y: (X.reshape(len(X), 1, 8, 8), y), ValueError, "2-D rows"),
        (lambda X, y: (X[:0], y[:0]), ValueError, "0 sample"),
    ],
)
def test_bad_data_are_errors_before_training(data, error, match):
    X, y = load_digits(digits=(1, 7), split="test")
    with pytest.raises(error, match=match):
        RandomizedSmoothingClassifier(MustNotTrain(), **FAST).fit(*data(X, y))


def test_bad_input_at_certify_time(one_vs_seven):
    X, y, X_test, _ = one_vs_seven
    clf = smoothed(DecisionTreeClassifier()).fit(X, y)
    with pytest.raises(ValueError, match="NaN"):
        clf.certify(_nan_rows(X_test))
    with pytest.raises(ValueError, match="features"):
        clf.certify(X_test[:, :10])
    with pytest.raises(TypeError, match=r"(?i)sparse"):
        clf.predict(sp.csr_matrix(X_test))
    # certify reads what fit recorded: a parameter set since (even an invalid one) is unused
    before = clf.certify(X_test[:3]).radius
    np.testing.assert_array_equal(clf.set_params(n_samples=0).certify(X_test[:3]).radius, before)


def test_parameters_are_validated_once_per_fit(one_vs_seven, monkeypatch):
    """``fit``'s ``_fit_context`` validates the parameters; nothing validates them again."""
    X, y, _, _ = one_vs_seven
    calls = []
    original = RandomizedSmoothingClassifier._validate_params
    monkeypatch.setattr(
        RandomizedSmoothingClassifier,
        "_validate_params",
        lambda self: calls.append(1) or original(self),
    )
    smoothed().fit(X[:100], y[:100])
    assert calls == [1]
