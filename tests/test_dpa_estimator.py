"""DPAClassifier as a scikit-learn estimator: checks, pipelines, grid search, pickling, errors."""

import pickle
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from sklearn_certify import DPAClassifier
from sklearn_certify.bounds import dpa_radius
from sklearn_certify.datasets import load_digits
from sklearn_certify.metrics import certified_accuracy, make_certified_scorer
from sklearn_certify.partition import bucket_of_rows


@pytest.fixture(autouse=True)
def _one_thread():
    """OpenMP/BLAS threads oversubscribe the cores under ``pytest -n 2``; one per worker."""
    with threadpool_limits(1):
        yield


def _expected_failures(estimator):
    if estimator.threat_model == "label_flip":
        return {
            "check_positive_only_tag_during_fit": "iris has duplicate rows, which SS-DPA refuses",
        }
    return {}


@parametrize_with_checks(
    [
        DPAClassifier(DecisionTreeClassifier(), n_partitions=3),
        DPAClassifier(DecisionTreeClassifier(), n_partitions=2, spread=2),
        DPAClassifier(LogisticRegression(), n_partitions=3, election="runoff"),
        DPAClassifier(DecisionTreeClassifier(), n_partitions=3, threat_model="label_flip"),
    ],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(split="train")
    X_test, y_test = load_digits(split="test")
    return X, y, X_test, y_test


def test_predict_proba_certify_and_members_agree(digits):
    X, y, X_test, _ = digits
    clf = DPAClassifier(DecisionTreeClassifier(), n_partitions=9, random_state=0).fit(X, y)
    members = clf.predict_members(X_test)
    assert members.shape == (X_test.shape[0], 9) and not members.mask.any()
    votes = np.stack([(members.data == c).sum(axis=1) for c in clf.classes_], axis=1)
    cert = clf.certify(X_test)
    assert np.array_equal(cert.votes, votes)
    pred, radius = dpa_radius(votes)
    assert np.array_equal(clf.predict(X_test), clf.classes_[pred])
    assert np.array_equal(cert.radius, radius)
    assert np.allclose(clf.predict_proba(X_test), votes / 9)
    scores = clf.member_scores(X_test)
    assert scores.shape == (X_test.shape[0], 9, 10)
    assert np.array_equal(clf.classes_[scores.argmax(axis=2)], members.data)


def test_string_labels(digits):
    X, y, X_test, _ = digits
    names = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )
    clf = DPAClassifier(DecisionTreeClassifier(), n_partitions=7, random_state=0).fit(X, names[y])
    numeric = DPAClassifier(DecisionTreeClassifier(), n_partitions=7, random_state=0).fit(X, y)
    assert set(clf.classes_) == set(names)
    cert = clf.certify(X_test)
    assert cert.prediction.dtype.kind == "U"
    # Same members up to relabelling: the class order differs (alphabetical), so compare labels.
    assert np.mean(cert.prediction == names[numeric.predict(X_test)]) > 0.9
    assert set(clf.predict_members(X_test[:3]).compressed()) <= set(names)


def test_pickle_and_joblib_round_trip(digits, tmp_path):
    X, y, X_test, _ = digits
    for params in [
        dict(),
        dict(spread=2),
        dict(election="runoff"),
        dict(threat_model="label_flip"),
    ]:
        clf = DPAClassifier(
            DecisionTreeClassifier(max_features=0.5), n_partitions=6, random_state=0, **params
        ).fit(X, y)
        cert = clf.certify(X_test)
        path = tmp_path / "clf.joblib"
        joblib.dump(clf, path)
        for restored in (pickle.loads(pickle.dumps(clf)), joblib.load(path)):
            again = restored.certify(X_test)
            assert np.array_equal(again.prediction, cert.prediction)
            assert np.array_equal(again.radius, cert.radius)
            assert np.array_equal(again.votes, cert.votes)
            assert np.array_equal(restored.assign_partitions(X), clf.assign_partitions(X))


def test_grid_search_over_n_partitions_with_certified_scorer(digits):
    X, y, _, _ = digits
    search = GridSearchCV(
        DPAClassifier(DecisionTreeClassifier(), random_state=0),
        {"n_partitions": [3, 21]},
        scoring=make_certified_scorer(radius=4),
        cv=2,
    ).fit(X, y)
    # With 3 partitions no radius can reach 4 (the maximum is 3 // 2 = 1).
    assert search.cv_results_["mean_test_score"][0] == 0.0
    assert search.best_params_ == {"n_partitions": 21}
    assert search.best_score_ > 0.1


def test_inside_pipeline_with_stateless_step(digits):
    X, y, X_test, _ = digits
    pipe = make_pipeline(
        FunctionTransformer(np.sqrt),
        DPAClassifier(DecisionTreeClassifier(), n_partitions=5, random_state=0),
    )
    pipe.fit(X, y)
    assert pipe.score(X_test, _digits_labels()) > 0.5
    scorer = make_certified_scorer(radius=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        score = scorer(pipe, X_test, _digits_labels())
    assert 0 < score <= 1


def _digits_labels():
    return load_digits(split="test")[1]


def test_pipeline_shapes_sound_inside_unsound_outside(digits):
    """Trusted preprocessing (user guide, rule-trusted-preprocessing).

    A scaler inside each member is sound; a scaler before DPA is not."""
    X, y, X_test, y_test = digits
    X_test, y_test = X_test[:100], y_test[:100]
    poison = np.full((1, X.shape[1]), 40.0, dtype=X.dtype)  # one extreme row
    X_p, y_p = np.vstack([X, poison]), np.append(y, 0)
    k = 15

    # Sound: DPAClassifier(make_pipeline(StandardScaler(), base)). The poison lands in one
    # partition; every clean row keeps its partition and every other member is unchanged.
    sound = DPAClassifier(
        make_pipeline(StandardScaler(), KNeighborsClassifier(1)), n_partitions=k, random_state=0
    )
    clean = sound.fit(X, y).predict_members(X_test)
    poisoned_sound = DPAClassifier(**sound.get_params(deep=False)).fit(X_p, y_p)
    assert np.array_equal(poisoned_sound.assign_partitions(X), sound.assign_partitions(X))
    hit = bucket_of_rows(poison, k)[0]
    others = np.arange(k) != hit
    assert np.array_equal(
        poisoned_sound.predict_members(X_test).data[:, others], clean.data[:, others]
    )

    # Unsound: make_pipeline(StandardScaler(), DPAClassifier(base)). The scaler is refit on the
    # poisoned data, which moves every row to a new hash partition.
    def unsound():
        return make_pipeline(
            StandardScaler(), DPAClassifier(KNeighborsClassifier(1), n_partitions=k, random_state=0)
        )

    before, after = unsound().fit(X, y), unsound().fit(X_p, y_p)
    parts_before = before[-1].assign_partitions(before[0].transform(X))
    parts_after = after[-1].assign_partitions(after[0].transform(X))
    moved = np.mean(parts_before != parts_after)
    assert moved > 0.8, moved
    members_before = before[-1].predict_members(before[0].transform(X_test)).data
    members_after = after[-1].predict_members(after[0].transform(X_test)).data
    # One poisoned row changed (nearly) every member, far beyond the one a certificate allows.
    assert np.mean(np.any(members_before != members_after, axis=0)) > 0.5
    # The certified scorer warns about this shape.
    with pytest.warns(UserWarning, match="(?i)standardscaler"):
        make_certified_scorer(radius=1)(before, X_test, y_test)


def test_label_flip_mode_partitions_and_feature_extractor(digits):
    X, y, X_test, y_test = digits
    clf = DPAClassifier(
        LogisticRegression(max_iter=500),
        n_partitions=10,
        threat_model="label_flip",
        feature_extractor=PCA(n_components=16, random_state=0),
        random_state=0,
    )
    clf.fit(X, y)
    sizes = clf.member_sizes_
    assert sizes.max() - sizes.min() <= 1 and sizes.sum() == X.shape[0]
    # Partitions do not depend on labels: flipping labels keeps every row's partition.
    flipped = DPAClassifier(**clf.get_params(deep=False)).fit(X, (y + 1) % 10)
    assert np.array_equal(flipped.assign_partitions(X), clf.assign_partitions(X))
    # Unseen rows have no partition.
    assert np.all(clf.assign_partitions(X_test + 0.5) == -1)
    assert clf.feature_extractor_.n_components_ == 16
    cert = clf.certify(X_test)
    assert cert.unit == "label_flips"
    assert certified_accuracy(y_test, cert, 0) > 0.8


@pytest.mark.parametrize(
    ("params", "fit_args", "error", "match"),
    [
        (dict(n_partitions=50), "tiny", ValueError, "n_samples=10"),
        (dict(feature_extractor=PCA()), "digits", ValueError, "label_flip"),
        (dict(threat_model="label_flip", spread=2), "digits", ValueError, "spread=1"),
        (dict(threat_model="label_flip"), "dup", ValueError, "duplicate"),
        (dict(hash="pixel_sum"), "digits", ValueError, "0..255"),
        (dict(election="borda"), "digits", ValueError, "election"),
        (dict(), "nan", ValueError, "NaN"),
        (dict(), "sparse", TypeError, "(?i)sparse"),
    ],
)
def test_clear_errors(digits, params, fit_args, error, match):
    X, y, _, _ = digits
    data = {
        "tiny": (X[:10], y[:10]),
        "digits": (X[:300], y[:300]),
        "dup": (np.vstack([X[:300], X[:5]]), np.append(y[:300], y[:5])),
        "nan": (np.where(np.arange(X[:300].size).reshape(300, -1) == 7, np.nan, X[:300]), y[:300]),
        "sparse": (sp.csr_matrix(X[:300]), y[:300]),
    }[fit_args]
    kw = dict(n_partitions=5, **params) if "n_partitions" not in params else params
    with pytest.raises(error, match=match):
        DPAClassifier(DecisionTreeClassifier(), **kw).fit(*data)


def test_small_partitions_warn(digits):
    X, y, _, _ = digits
    with pytest.warns(UserWarning, match="rows on average"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*partitions are empty")
        DPAClassifier(DecisionTreeClassifier(), n_partitions=100).fit(X[:300], y[:300])


def test_pixel_sum_on_raw_digits_and_image_inputs():
    X_raw, y = load_digits(raw=True, split="train")
    clf = DPAClassifier(
        DecisionTreeClassifier(), n_partitions=8, hash="pixel_sum", random_state=0
    ).fit(X_raw, y)
    expected = X_raw.reshape(len(X_raw), -1).astype(int).sum(axis=1) % 8
    assert np.array_equal(clf.assign_partitions(X_raw), expected)
    assert clf.n_features_in_ == 64


class MLP(torch.nn.Module):
    """Module-level (picklable) network for the skorch member tests."""

    def __init__(self, hidden=16):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10)
        )

    def forward(self, X):
        return self.net(X)


def test_skorch_member_smoke():
    from skorch import NeuralNetClassifier

    X, y = load_digits(split="train")
    X_test, y_test = load_digits(split="test")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    net = NeuralNetClassifier(
        MLP, criterion=torch.nn.CrossEntropyLoss, max_epochs=8, lr=0.2, batch_size=32, verbose=0
    )
    clf = DPAClassifier(net, n_partitions=5, random_state=0).fit(X, y)
    cert = clf.certify(X_test)
    assert np.mean(cert.prediction == y_test) > 0.7
    again = DPAClassifier(net, n_partitions=5, random_state=0).fit(X, y).certify(X_test)
    restored = pickle.loads(pickle.dumps(clf)).certify(X_test)
    assert np.array_equal(restored.radius, cert.radius)
    assert np.array_equal(restored.votes, cert.votes)
    torch.set_num_threads(previous)
    assert np.array_equal(again.radius, cert.radius)


def test_row_batches_give_identical_results(digits, monkeypatch):
    import sklearn_certify.ensemble._base as base_module

    X, y, X_test, _ = digits
    clf = DPAClassifier(DecisionTreeClassifier(), n_partitions=7, spread=2, random_state=0)
    clf.fit(X, y)
    whole, proba = clf.certify(X_test), clf.predict_proba(X_test)
    monkeypatch.setattr(base_module, "_SCORE_BUDGET", 14 * 10 * 3)  # three rows per batch
    assert len(list(clf._batches(X_test))) == 150
    batched = clf.certify(X_test)
    assert np.array_equal(batched.radius, whole.radius)
    assert np.array_equal(batched.prediction, whole.prediction)
    assert np.array_equal(batched.votes, whole.votes)
    assert np.array_equal(clf.predict_proba(X_test), proba)
