"""RandomizedSmoothingClassifier's certificate: hand vectors, draws, validity, invariance."""

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.tree import DecisionTreeClassifier

from sklearn_certify.bounds import clopper_pearson_lower, cohen_predict
from sklearn_certify.smoothing import RandomizedSmoothingClassifier, keyed_draws
from tests._cohen_helpers import FixedLinear, Intervals, Recording, scripted


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


X_FIT = np.random.default_rng(0).normal(size=(12, 3))
Y_FIT = np.arange(12) % 2

# CERTIFY (nA, n, alpha, sigma, pA_low, radius or None for abstain); pA_low computed
# independently of the code as scipy.stats.beta.ppf(alpha, nA, n - nA + 1) (alpha ** (1 / n)
# when nA == n), radius = sigma * norm.ppf(pA_low), abstain where pA_low <= 1/2.
CERTIFY_VECTORS = [
    (990, 1000, 0.001, 0.5, 0.9760361872, 0.989005),
    (1000, 1000, 0.001, 0.5, 0.9931160484, 1.231631),
    (100000, 100000, 0.001, 0.25, 0.9999309248, 0.952864),
    (99000, 100000, 0.001, 0.5, 0.9889893404, 1.145000),
    (9990, 10000, 0.001, 1.0, 0.9975883080, 2.818598),
    (550, 1000, 0.001, 0.5, 0.5006759601, 0.000847),
    (528, 1000, 0.001, 0.5, 0.4786576447, None),
    (510, 1000, 0.001, 0.5, 0.4607130330, None),
    (60, 100, 0.001, 0.25, 0.4409842652, None),
]


@pytest.mark.parametrize(("n_a", "n", "alpha", "sigma", "p_low", "radius"), CERTIFY_VECTORS)
def test_certify_hand_vectors_through_the_estimator(n_a, n, alpha, sigma, p_low, radius):
    n_select = 10
    base = scripted({n_select: [1, 9], n: [n - n_a, n_a]})  # selection picks class 1
    clf = RandomizedSmoothingClassifier(
        base,
        sigma=sigma,
        n_select=n_select,
        n_samples=n,
        alpha=alpha,
        batch_size=n,
        n_augment=1,
        random_state=0,
    ).fit(X_FIT, np.where(Y_FIT == 1, "yes", "no"))
    cert = clf.certify(X_FIT[:1])
    assert cert.unit == "input_l2"
    assert cert.prediction.tolist() == ["yes"]
    assert cert.votes.tolist() == [[n - n_a, n_a]]
    assert cert.p_lower[0] == pytest.approx(p_low, abs=1e-10)
    assert cert.p_upper[0] == pytest.approx(1 - p_low, abs=1e-10)
    assert bool(cert.abstain[0]) is (radius is None)
    assert cert.radius[0] == pytest.approx(0.0 if radius is None else radius, abs=1e-6)


def test_the_certified_class_comes_from_the_selection_draws():
    # selection votes class 0, estimation votes class 1: CERTIFY bounds class 0 with its
    # estimation count (5 of 100) and abstains; predict follows the estimation draws
    clf = RandomizedSmoothingClassifier(
        scripted({10: [8, 2], 100: [5, 95]}),
        n_select=10,
        n_samples=100,
        batch_size=100,
        n_augment=1,
    ).fit(X_FIT, Y_FIT)
    cert = clf.certify(X_FIT[:1])
    assert cert.prediction[0] == 0 and cert.abstain[0] and cert.radius[0] == 0.0
    assert cert.p_lower[0] == pytest.approx(stats.beta.ppf(0.001, 5, 96))
    assert clf.predict(X_FIT[:1])[0] == 1
    assert clf.predict_proba(X_FIT[:1]).tolist() == [[0.05, 0.95]]


def test_selection_ties_go_to_the_smaller_class_index():
    clf = RandomizedSmoothingClassifier(
        scripted({4: [0, 2, 2], 50: [0, 0, 50]}),
        n_select=4,
        n_samples=50,
        batch_size=50,
        n_augment=1,
    ).fit(X_FIT, np.arange(12) % 3)
    assert clf.certify(X_FIT[:1]).prediction[0] == 1
    assert clf.predict(X_FIT[:1])[0] == 2


# PREDICT (c1, c2, alpha, abstain): exact two-sided binomial test of c1 of c1 + c2 at 1/2
PREDICT_VECTORS = [
    (60, 40, 0.001, 0.0568879, True),
    (510, 490, 0.001, 0.547973, True),
    (700, 300, 0.001, 1.77e-37, False),
    (90, 10, 0.001, 3.06e-17, False),
    (55, 45, 0.05, 0.368202, True),
]


@pytest.mark.parametrize(("c1", "c2", "alpha", "p_value", "abstain"), PREDICT_VECTORS)
def test_predict_hand_vectors_from_the_certificate_votes(c1, c2, alpha, p_value, abstain):
    n = c1 + c2
    clf = RandomizedSmoothingClassifier(
        scripted({3: [0, 3], n: [c2, c1]}),
        n_select=3,
        n_samples=n,
        alpha=alpha,
        batch_size=n,
        n_augment=1,
    ).fit(X_FIT, Y_FIT)
    votes = clf.certify(X_FIT[:1]).votes
    assert votes.tolist() == [[c2, c1]]
    assert stats.binomtest(c1, n, 0.5).pvalue == pytest.approx(p_value, rel=1e-4)
    prediction, abstained = cohen_predict(votes, alpha)
    assert prediction.tolist() == [1] and abstained.tolist() == [abstain]
    assert clf.predict(X_FIT[:1]).tolist() == [1]  # predict always returns the top class


def test_draws_are_keyed_by_row_and_draw_number_and_selection_is_separate():
    clf = RandomizedSmoothingClassifier(
        Recording(),
        sigma=0.5,
        n_select=5,
        n_samples=7,
        batch_size=3,
        n_augment=1,
        random_state=3,
    ).fit(X_FIT, Y_FIT)
    x = X_FIT[4:5]
    clf.certify(x)
    seen = clf.estimator_.seen_
    assert [len(batch) for batch in seen] == [3, 2, 3, 3, 1]  # selection, then estimation
    noise = np.concatenate(seen) - x
    assert np.unique(noise, axis=0).shape[0] == 12  # twelve distinct draws
    (seed,) = clf._row_seeds(x)
    select = keyed_draws(seed, 2**31, 2**31 + 5, (3,), dtype=torch.float64)
    estimate = keyed_draws(seed, 0, 7, (3,), dtype=torch.float64)
    expected = 0.5 * torch.cat([select, estimate]).numpy()
    assert np.allclose(noise, expected, rtol=0, atol=1e-12)
    # predict scores the same estimation draws as certify, and they do not depend on
    # n_select or batch_size (a classifier fitted with other values draws the same noise)
    other = clf.set_params(n_select=2, batch_size=7).fit(X_FIT, Y_FIT)
    other.predict(x)
    seen = other.estimator_.seen_
    assert len(seen) == 1
    assert np.allclose(seen[0] - x, expected[5:], rtol=0, atol=1e-12)


# --- statistical validity ---------------------------------------------------------------------
#
# Bases whose smoothed class probabilities are known in closed form. Each test row is one
# trial with its own noise (rows differ, so their digests and noise keys differ). A trial fails
# when the certificate is not abstained and claims more than is true: the certified class has
# true probability below p_lower (for the linear base: the certified class is wrong or the
# certified radius exceeds the exact distance to the decision boundary). Each trial fails
# with probability at most alpha, so the number of failures is stochastically below
# Binomial(N, alpha). Three tests share a family-wise false-alarm rate of LEVEL (Bonferroni:
# each at LEVEL / 3). With alpha = 0.2 and N = 1200 the tolerance is 288 failures (24%);
# Clopper-Pearson is conservative, so about 14-17% is typical. The power check bounds the same
# counts at level 2 * alpha, which fails about 32% of the time here and must be rejected.

SIGMA, ALPHA, N_TRIALS, LEVEL, N_TESTS = 0.5, 0.2, 1200, 1e-3, 3


def _within_alpha(failures: int, n: int = N_TRIALS) -> bool:
    return stats.binom.sf(failures - 1, n, ALPHA) > LEVEL / N_TESTS


def _smoothing(base, **params):
    defaults = dict(
        sigma=SIGMA, n_select=20, n_samples=100, alpha=ALPHA, n_augment=1, random_state=0
    )
    return RandomizedSmoothingClassifier(base, **{**defaults, **params})


def test_linear_base_certificates_fail_at_most_alpha_of_the_time():
    base = FixedLinear()
    w = np.asarray(base.w)
    u = w / np.linalg.norm(w)
    rng = np.random.default_rng(1)
    p_top = rng.uniform(0.5, 0.999, N_TRIALS)  # includes near-ties, where selection errs
    margin = rng.choice([-1.0, 1.0], N_TRIALS) * SIGMA * stats.norm.ppf(p_top)
    jitter = rng.normal(size=(N_TRIALS, 3))
    jitter -= (jitter @ u)[:, None] * u  # parallel to the boundary: distinct rows
    X = (margin - base.b / np.linalg.norm(w))[:, None] * u + jitter
    assert np.allclose((X @ w + base.b) / np.linalg.norm(w), margin)

    clf = _smoothing(base).fit(X_FIT, Y_FIT)
    cert = clf.certify(X)
    truth = (margin > 0).astype(int)
    certified = ~cert.abstain
    wrong = certified & ((cert.prediction != truth) | (cert.radius > np.abs(margin)))
    assert _within_alpha(wrong.sum()), wrong.mean()
    assert certified.mean() > 0.5  # not vacuous: most rows are certified

    # the smoothed probabilities the votes estimate are the exact ones: the keyed noise is
    # Gaussian with standard deviation sigma
    p_one = base.proba_one(X, SIGMA)
    z = (cert.votes[:, 1] - 100 * p_one).sum() / np.sqrt((100 * p_one * (1 - p_one)).sum())
    assert abs(z) < stats.norm.isf(LEVEL / N_TESTS / 2), z

    # power: the same counts bounded at level 2 * alpha fail too often to pass
    top = cert.votes[np.arange(N_TRIALS), cert.prediction]
    loose = clopper_pearson_lower(top, 100, 2 * ALPHA)
    p_true = np.where(cert.prediction == 1, p_one, 1 - p_one)
    assert not _within_alpha(((loose > 0.5) & (loose > p_true)).sum())


def test_three_class_base_lower_bounds_fail_at_most_alpha_of_the_time():
    base = Intervals()
    u = np.asarray(base.u)
    rng = np.random.default_rng(2)
    t = rng.uniform(-1.5, 1.5, N_TRIALS)
    jitter = rng.normal(size=(N_TRIALS, 3))
    jitter -= (jitter @ u)[:, None] * u
    X = t[:, None] * u + jitter
    clf = _smoothing(base).fit(X_FIT, np.arange(12) % 3)
    cert = clf.certify(X)
    p_true = base.probabilities(X, SIGMA)[np.arange(N_TRIALS), cert.prediction]
    wrong = ~cert.abstain & (cert.p_lower > p_true)
    assert _within_alpha(wrong.sum()), wrong.mean()
    assert (~cert.abstain).mean() > 0.5


# --- invariance and reproducibility -----------------------------------------------------------


@pytest.fixture(scope="module")
def tree_clf():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    clf = RandomizedSmoothingClassifier(
        DecisionTreeClassifier(max_depth=4),
        sigma=0.3,
        n_select=10,
        n_samples=60,
        batch_size=25,
        n_augment=2,
        random_state=0,
    ).fit(X, y)
    return clf, rng.normal(size=(15, 4))


def _fields(cert, index=slice(None)):
    return (
        cert.prediction[index],
        cert.radius[index],
        cert.abstain[index],
        cert.p_lower[index],
        cert.votes[index],
    )


def _same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_a_row_is_certified_the_same_alone_in_any_position_and_in_any_batch(tree_clf):
    clf, X = tree_clf
    whole = clf.certify(X)
    for i in range(len(X)):
        assert _same(_fields(clf.certify(X[i : i + 1])), _fields(whole, [i]))
    order = np.random.default_rng(5).permutation(len(X))
    assert _same(_fields(clf.certify(X[order])), _fields(whole, order))
    doubled = clf.certify(np.vstack([X[:3], X[:3]]))
    assert _same(_fields(doubled, slice(0, 3)), _fields(doubled, slice(3, 6)))
    assert np.array_equal(clf.predict_proba(X[order]), clf.predict_proba(X)[order])
    # how many draws are scored at once changes nothing
    assert _same(_fields(clf.set_params(batch_size=7).certify(X)), _fields(whole))
    clf.set_params(batch_size=25)


def test_results_are_reproducible_from_random_state(tree_clf):
    clf, X = tree_clf
    params = clf.get_params(deep=False)
    again = RandomizedSmoothingClassifier(**params).fit(*_tree_data())
    assert _same(_fields(again.certify(X)), _fields(clf.certify(X)))
    other = RandomizedSmoothingClassifier(**{**params, "random_state": 1})
    assert not np.array_equal(other.fit(*_tree_data()).certify(X).votes, clf.certify(X).votes)


def _tree_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)


def test_noise_depends_on_the_row_content_not_its_dtype():
    clf = RandomizedSmoothingClassifier(
        Recording(), n_select=2, n_samples=4, n_augment=1, random_state=0
    ).fit(X_FIT, Y_FIT)
    x = np.array([[0.5, -1.25, 2.0]])
    clf.predict(x)
    clf.predict(x.astype(np.float32))
    clf.predict(x + 1e-9)
    assert clf.estimator_.seen_[1].dtype == np.float32
    first, single, moved = (batch - x for batch in clf.estimator_.seen_)
    assert np.allclose(first, single, atol=1e-6)
    assert not np.allclose(first, moved, atol=0.1)
