"""RABClassifier: noise semantics, certificates, statistical validity, sklearn contract, attacks."""

import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch import NeuralNetClassifier

from sklearn_certify import RABClassifier, bounds
from sklearn_certify.datasets import load_digits
from sklearn_certify.ensemble import member_outputs, member_seed
from sklearn_certify.metrics import certified_accuracy, make_certified_scorer
from sklearn_certify.smoothing import keyed_normal
from tests._ensemble_helpers import TinyMLP


@pytest.fixture(scope="module")
def digits17():
    X, y = load_digits(digits=(1, 7), split="train")
    X_test, y_test = load_digits(digits=(1, 7), split="test")
    return X, y, X_test, y_test


def _net(**kw):
    params = dict(
        module__n_out=2,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=3,
        batch_size=16,
        lr=0.1,
        optimizer__momentum=0.9,
        iterator_train__shuffle=True,
    )
    params.update(kw)
    return NeuralNetClassifier(TinyMLP, **params)


class Recorder(ClassifierMixin, BaseEstimator):
    """Keeps the rows it was trained on; predicts like a nearest-centroid classifier."""

    def fit(self, X, y):
        self.X_ = np.array(X, copy=True)
        self.classes_ = np.unique(y)
        self.centroids_ = np.stack([X[y == c].mean(axis=0) for c in self.classes_])
        return self

    def predict_proba(self, X):
        d = ((X[:, None, :] - self.centroids_[None]) ** 2).sum(axis=2)
        out = np.zeros((len(X), len(self.classes_)))
        out[np.arange(len(X)), d.argmin(axis=1)] = 1.0
        return out

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


# ------------------------------------------------------------------ noise semantics
def test_member_k_trains_on_x_plus_its_keyed_noise(digits17):
    X, y, _, _ = digits17
    clf = RABClassifier(Recorder(), n_estimators=4, sigma=0.3, random_state=0).fit(X, y)
    for k, member in enumerate(clf.estimators_):
        seed = torch.tensor([member_seed(clf.seed_, k, "view")])
        rows = torch.arange(len(X))[None]
        noise = keyed_normal(seed, rows, (X.shape[1],), dtype=torch.float32)[0].numpy()
        np.testing.assert_array_equal(member.X_, X + 0.3 * noise)
    assert not np.array_equal(clf.estimators_[0].X_, clf.estimators_[1].X_)


@pytest.mark.parametrize("engine", ["loop", "vectorized"])
def test_member_m_is_the_same_whatever_the_ensemble_size(digits17, engine):
    X, y, _, _ = digits17
    X, y = X[:120], y[:120]
    base = DecisionTreeClassifier() if engine == "loop" else _net(max_epochs=1)
    big_n = 1000 if engine == "loop" else 300
    kw = dict(sigma=0.5, random_state=3, engine=engine, n_select=1)
    small = RABClassifier(base, n_estimators=10, **kw).fit(X, y)
    big = RABClassifier(base, n_estimators=big_n, **kw).fit(X, y)
    assert small.seed_ == big.seed_
    for m in (0, 7):
        if engine == "loop":
            a, b = small.estimators_[m].tree_, big.estimators_[m].tree_
            assert np.array_equal(a.threshold, b.threshold) and np.array_equal(a.value, b.value)
        else:
            for p, q in zip(
                small.estimators_[m].module_.parameters(),
                big.estimators_[m].module_.parameters(),
                strict=True,
            ):
                assert torch.equal(p, q)


def test_vectorized_members_agree_with_loop_members(digits17):
    X, y, X_test, _ = digits17
    kw = dict(n_estimators=6, sigma=0.4, random_state=1)
    vec = RABClassifier(_net(), engine="vectorized", **kw).fit(X, y)
    loop = RABClassifier(_net(), engine="loop", **kw).fit(X, y)
    np.testing.assert_allclose(vec.member_scores(X_test), loop.member_scores(X_test), atol=1e-4)


def test_reproducible_from_random_state(digits17):
    X, y, X_test, _ = digits17
    a = RABClassifier(LogisticRegression(), n_estimators=8, random_state=5).fit(X, y)
    b = RABClassifier(LogisticRegression(), n_estimators=8, random_state=5).fit(X, y)
    c = RABClassifier(LogisticRegression(), n_estimators=8, random_state=6).fit(X, y)
    assert np.array_equal(a.member_scores(X_test), b.member_scores(X_test))
    assert not np.array_equal(a.member_scores(X_test), c.member_scores(X_test))


def test_test_noise_is_a_fixed_vector_per_member(digits17):
    X, y, X_test, _ = digits17
    clf = RABClassifier(LogisticRegression(), n_estimators=5, sigma=0.5, random_state=2)
    clf.fit(X, y)
    assert clf.test_noise_.shape == (5, X.shape[1])
    scores = clf.member_scores(X_test)
    for k, member in enumerate(clf.estimators_):
        np.testing.assert_allclose(
            scores[:, k], member.predict_proba(X_test + clf.test_noise_[k]), atol=1e-6
        )
    quiet = RABClassifier(LogisticRegression(), n_estimators=5, test_noise=False, random_state=2)
    quiet.fit(X, y)
    assert quiet.test_noise_ is None
    own = np.stack([m.predict_proba(X_test) for m in quiet.estimators_], axis=1)
    np.testing.assert_allclose(quiet.member_scores(X_test), own)
    # one row at a time gives the same scores (the noise does not depend on the row; the
    # member's own float32 arithmetic differs in the last bits between one row and many)
    np.testing.assert_allclose(clf.member_scores(X_test[3:4]), scores[3:4], rtol=1e-6)


# ------------------------------------------------------------------ certificates
@pytest.mark.parametrize("bound", ["clopper-pearson", "simultaneous", "hoeffding"])
def test_certificate_is_the_bound_of_the_member_votes(digits17, bound):
    X, y, X_test, y_test = digits17
    clf = RABClassifier(
        LogisticRegression(), n_estimators=30, sigma=0.5, bound=bound, random_state=0
    ).fit(X, y)
    cert = clf.certify(X_test)
    scores = clf.member_scores(X_test)
    votes = np.stack([(scores.argmax(2) == c).sum(1) for c in range(2)], axis=1)
    assert cert.unit == "l2" and np.array_equal(cert.votes, votes)
    if bound == "clopper-pearson":
        select = np.stack([(scores[:, :3].argmax(2) == c).sum(1) for c in range(2)], axis=1)
        expected = bounds.cohen_certify(select, votes - select, 0.001, 0.5)
    elif bound == "simultaneous":
        expected = bounds.simultaneous_certify(votes, 0.001, 0.5)
    else:
        expected = bounds.hoeffding_certify(
            scores[:, :3].mean(1), scores[:, 3:].mean(1), 27, 0.001, 0.5
        )
    np.testing.assert_allclose(cert.radius, expected.radius)
    np.testing.assert_allclose(cert.p_lower, expected.p_lower)
    assert np.array_equal(cert.prediction, clf.classes_[expected.prediction])
    certified = ~cert.abstain
    # 1 vs 7 is easy: many test points are certified (Hoeffding's bounds are the loosest at
    # 27 estimation members), and nearly all of those correctly
    assert certified.mean() > (0.3 if bound == "hoeffding" else 0.6)
    assert np.mean(cert.prediction[certified] == y_test[certified]) > 0.95
    np.testing.assert_allclose(
        cert.radius[certified],
        bounds.rab_radius(cert.p_lower[certified], cert.p_upper[certified], 0.5),
    )


def test_predict_is_the_majority_vote_and_proba_the_vote_shares(digits17):
    X, y, X_test, _ = digits17
    clf = RABClassifier(LogisticRegression(), n_estimators=11, random_state=0).fit(X, y)
    members = clf.predict_members(X_test)
    shares = np.stack([(members == c).sum(1) for c in clf.classes_], axis=1) / 11
    np.testing.assert_allclose(clf.predict_proba(X_test), shares)
    assert np.array_equal(clf.predict(X_test), clf.classes_[shares.argmax(1)])


def test_hoeffding_needs_probabilities_and_uses_softmax_of_net_logits(digits17):
    X, y, X_test, _ = digits17

    class LabelsOnly(Recorder):
        predict_proba = property()  # no predict_proba

    with pytest.raises(TypeError, match="no predict_proba"):
        RABClassifier(LabelsOnly(), n_estimators=3, bound="hoeffding").fit(X, y)
    clf = RABClassifier(_net(), n_estimators=4, bound="hoeffding", random_state=0).fit(X, y)
    proba = clf.predict_proba(X_test)
    logits = clf.member_scores(X_test)
    expected = torch.softmax(torch.as_tensor(logits), dim=2).numpy().mean(axis=1)
    np.testing.assert_allclose(proba, expected, atol=1e-6)


# ------------------------------------------------------------------ statistical validity
class RandomVoter(ClassifierMixin, BaseEstimator):
    """Votes class c with probability p[c], independently per member and test row.

    Row ``r`` (its first feature) gets the ``r``-th uniform of a stream seeded by the member's
    own random_state (which the ensemble seeds per member), so members and rows are
    independent draws with known class probabilities: the smoothed classifier's
    probabilities are exactly ``p``.
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
        votes = np.searchsorted(np.cumsum(self.p), uniform, side="right")
        out = np.zeros((len(X), len(self.p)))
        out[np.arange(len(X)), np.minimum(votes, len(self.p) - 1)] = 1.0
        return out

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(1)]


@pytest.mark.parametrize("bound", ["clopper-pearson", "simultaneous"])
@pytest.mark.parametrize("p", [(0.55, 0.45), (0.4, 0.35, 0.25)], ids=str)
def test_certified_bounds_fail_at_most_alpha_end_to_end(bound, p):
    """3000 test rows, each an independent run of the N members: the bounds on the known class
    probabilities fail at most at rate alpha=0.1 (binomial tolerance at 1e-6; 4 configurations,
    so all four together below 4e-6). A bound failing at 2 alpha would exceed it."""
    alpha, n_rows = 0.1, 3000
    n_classes = len(p)
    X = np.zeros((3 * n_classes, 1))
    y = np.arange(3 * n_classes) % n_classes
    X_test = np.arange(n_rows, dtype=float)[:, None]
    clf = RABClassifier(
        RandomVoter(p),
        n_estimators=60,
        sigma=1.0,
        alpha=alpha,
        bound=bound,
        test_noise=False,
        random_state=0,
    ).fit(X, y)
    cert = clf.certify(X_test)
    top = np.asarray(p)[cert.prediction]
    runner_up = np.array([np.delete(p, c).max() for c in cert.prediction])
    failed = (top < cert.p_lower) | (runner_up > cert.p_upper)
    tolerance = stats.binom.ppf(1 - 1e-6, n_rows, alpha)
    assert stats.binom.cdf(tolerance, n_rows, 2 * alpha) < 1e-6
    assert failed.sum() <= tolerance


# ------------------------------------------------------------------ attacks within the radius
def test_backdoor_inside_the_radius_changes_no_certified_prediction():
    """A clean-label pixel pattern on training rows (labels kept), total l2 norm below the
    certified radius of some test points: refit with the same random_state, and the
    certified predictions there do not change (a failure has probability <= alpha each)."""
    X, y = load_digits(digits=(1, 7), split="train")
    X_test, _ = load_digits(digits=(1, 7), split="test")
    kw = dict(n_estimators=40, sigma=0.5, alpha=0.01, random_state=0)
    clean = RABClassifier(LogisticRegression(), **kw).fit(X, y)
    cert = clean.certify(X_test)
    poisoned_rows = np.flatnonzero(y == 1)[:20]
    pattern = np.zeros(X.shape[1], dtype=X.dtype)
    pattern[[55, 62, 63]] = 0.02  # three pixels in the corner, 0.035 per row in l2
    X_poison = X.copy()
    X_poison[poisoned_rows] += pattern
    total = np.sqrt(len(poisoned_rows)) * np.linalg.norm(pattern)  # 0.155
    covered = cert.radius > total
    assert covered.sum() > 30
    poisoned = RABClassifier(LogisticRegression(), **kw).fit(X_poison, y)
    changed = poisoned.predict(X_test)[covered] != cert.prediction[covered]
    assert changed.sum() <= stats.binom.ppf(1 - 1e-6, covered.sum(), 0.01)


# ------------------------------------------------------------------ sklearn contract
@parametrize_with_checks(
    [
        RABClassifier(DecisionTreeClassifier(), n_estimators=4, sigma=0.1),
        RABClassifier(LogisticRegression(), n_estimators=4, sigma=0.1, bound="hoeffding"),
    ]
)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)


def test_pipeline_grid_search_and_string_labels(digits17):
    X, y, X_test, y_test = digits17
    names = np.where(y == 1, "one", "seven")
    # a stateless step before the certified estimator is sound (nothing fit on the data)
    pipe = make_pipeline(
        FunctionTransformer(lambda Z: Z * 1.0),
        RABClassifier(LogisticRegression(), n_estimators=10, random_state=0),
    )
    pipe.fit(X, names)
    assert set(pipe.predict(X_test)) <= {"one", "seven"}
    search = GridSearchCV(
        RABClassifier(LogisticRegression(), n_estimators=30, alpha=0.05, random_state=0),
        {"sigma": [0.1, 0.5, 2.0]},
        scoring=make_certified_scorer(0.2),
        cv=2,
    ).fit(X, y)
    # sigma 0.1 cannot certify 0.2: 27 unanimous votes give p_lower = 0.05 ** (1 / 27) = 0.895,
    # radius 0.1 * Phi^-1(0.895) = 0.125
    assert search.best_params_["sigma"] in (0.5, 2.0)
    cert = search.best_estimator_.certify(X_test)
    assert certified_accuracy(y_test, cert, 0.2) > 0.5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes(digits17, dtype):
    X, y, X_test, _ = digits17
    clf = RABClassifier(LogisticRegression(), n_estimators=5, random_state=0)
    clf.fit(X.astype(dtype), y)
    assert clf.test_noise_.dtype == dtype
    assert clf.certify(X_test.astype(dtype)).radius.dtype == np.float64


def test_pickle_round_trip_in_a_new_process(digits17, tmp_path):
    X, y, X_test, _ = digits17
    clf = RABClassifier(_net(), n_estimators=6, random_state=0).fit(X, y)
    cert = clf.certify(X_test)
    path = tmp_path / "rab.pkl"
    path.write_bytes(pickle.dumps(clf))
    np.save(tmp_path / "X.npy", X_test)
    code = (
        "import pickle, sys, numpy as np; "
        f"clf = pickle.loads(open({str(path)!r}, 'rb').read()); "
        f"c = clf.certify(np.load({str(tmp_path / 'X.npy')!r})); "
        f"np.save({str(tmp_path / 'r.npy')!r}, c.radius)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
    np.testing.assert_array_equal(np.load(tmp_path / "r.npy"), cert.radius)


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        (dict(sigma=0.0), ValueError, "sigma"),
        (dict(sigma=-1.0), ValueError, "sigma"),
        (dict(sigma=True), TypeError, "sigma must be a real number"),
        (dict(n_estimators=1), ValueError, "n_estimators"),
        (dict(n_select=5), ValueError, "n_select=5 leaves no member"),
        (dict(alpha=0.0), ValueError, "alpha"),
        (dict(alpha=1.0), ValueError, "alpha"),
        (dict(bound="exact"), ValueError, "bound"),
        (dict(test_noise="yes"), ValueError, "test_noise"),
    ],
)
def test_bad_parameters_before_training(digits17, params, error, match):
    X, y, _, _ = digits17
    kwargs = dict(estimator=LogisticRegression(), n_estimators=5)
    kwargs.update(params)
    with pytest.raises(error, match=match):
        RABClassifier(**kwargs).fit(X, y)


def test_bad_data(digits17):
    X, y, _, _ = digits17
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        RABClassifier(LogisticRegression(), n_estimators=3).fit(bad, y)
    with pytest.raises(TypeError, match=r"[Ss]parse"):
        RABClassifier(LogisticRegression(), n_estimators=3).fit(sp.csr_matrix(X), y)


def test_member_outputs_on_fitted_rab_match_member_scores(digits17):
    X, y, X_test, _ = digits17
    clf = RABClassifier(_net(), n_estimators=5, test_noise=False, random_state=0).fit(X, y)
    direct = member_outputs(clf.trained_members_, X_test, n_classes=2)
    np.testing.assert_allclose(clf.member_scores(X_test), direct)


def test_member_rows_are_every_row_for_every_member(digits17):
    X, y, _, _ = digits17
    clf = RABClassifier(LogisticRegression(), n_estimators=3, random_state=0)
    with pytest.raises(AttributeError, match="not fitted"):
        _ = clf.member_rows_
    rows = clf.fit(X, y).member_rows_
    assert len(rows) == 3
    for r in rows:
        np.testing.assert_array_equal(r, np.arange(len(X)))
