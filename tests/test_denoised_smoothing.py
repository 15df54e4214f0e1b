"""DenoisedSmoothingClassifier: RAB without test noise, plus a trusted denoiser applied once."""

import warnings

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch import NeuralNetClassifier

from sklearn_certify import DenoisedSmoothingClassifier, RABClassifier
from sklearn_certify.datasets import load_digits, load_digits_for_denoising
from sklearn_certify.denoisers import load_bundled
from sklearn_certify.ensemble import member_seed
from sklearn_certify.metrics import certified_accuracy
from sklearn_certify.smoothing import keyed_normal
from tests._ensemble_helpers import TinyMLP
from tests.test_rab import RandomVoter, Recorder


@pytest.fixture(scope="module")
def bundled():
    return load_bundled("digits")


@pytest.fixture(scope="module")
def digits17():
    X, y = load_digits_for_denoising(split="train", digits=(1, 7))
    X_test, y_test = load_digits_for_denoising(split="test", digits=(1, 7))
    return X, y, X_test, y_test


class Counting:
    """Wraps a denoiser and counts the images it is asked to denoise."""

    def __init__(self, denoiser):
        self.denoiser = denoiser
        self.images = 0

    def denoise(self, X_noisy, sigma):
        self.images += X_noisy.shape[0]
        return self.denoiser.denoise(X_noisy, sigma)


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


def test_the_denoiser_is_the_only_difference_from_rab(digits17):
    X, y, X_test, _ = digits17
    kw = dict(n_estimators=12, sigma=0.3, random_state=4)
    plain = DenoisedSmoothingClassifier(LogisticRegression(), None, **kw).fit(X, y)
    rab = RABClassifier(LogisticRegression(), test_noise=False, **kw).fit(X, y)
    assert np.array_equal(plain.member_scores(X_test), rab.member_scores(X_test))
    a, b = plain.certify(X_test), rab.certify(X_test)
    assert np.array_equal(a.radius, b.radius) and np.array_equal(a.prediction, b.prediction)


def test_member_k_trains_on_the_denoised_noisy_copy(digits17, bundled):
    X, y, _, _ = digits17
    clf = DenoisedSmoothingClassifier(
        Recorder(), bundled, n_estimators=3, sigma=0.25, random_state=0
    ).fit(X, y)
    for k, member in enumerate(clf.estimators_):
        seed = torch.tensor([member_seed(clf.seed_, k, "view")])
        noise = keyed_normal(seed, torch.arange(len(X))[None], (64,), dtype=torch.float32)[0]
        expected = bundled.denoise(X + 0.25 * noise.numpy(), 0.25)
        np.testing.assert_array_equal(member.X_, expected)
        assert member.X_.min() >= 0 and member.X_.max() <= 1  # denoised back into [0, 1]


@pytest.mark.parametrize("engine", ["loop", "vectorized"])
def test_each_member_is_denoised_once_whatever_the_epochs(digits17, bundled, engine):
    X, y, _, _ = digits17
    counts = []
    for epochs in (1, 4):
        denoiser = Counting(bundled)
        DenoisedSmoothingClassifier(
            _net(max_epochs=epochs),
            denoiser,
            n_estimators=4,
            sigma=0.25,
            engine=engine,
            random_state=0,
        ).fit(X, y)
        counts.append(denoiser.images)
    # every member's rows once (the vectorized engine also denoises its placeholder slots)
    assert counts[0] == counts[1] and counts[0] >= 4 * len(X)


def test_refuses_a_denoiser_trained_on_the_data(bundled):
    X, y = load_digits()  # holds the bundled denoiser's training rows
    with pytest.raises(ValueError, match="trained on"):
        DenoisedSmoothingClassifier(LogisticRegression(), bundled, n_estimators=3).fit(X, y)


@pytest.mark.parametrize("engine", ["loop", "vectorized"])
def test_init_warm_starts_every_member_from_the_given_weights(digits17, engine):
    X, y, _, _ = digits17
    # the members' outputs follow the encoded classes (0 for digit 1, 1 for digit 7)
    pretrained = _net(train_split=None).fit(X, (y == 7).astype(np.int64))
    clf = DenoisedSmoothingClassifier(
        _net(max_epochs=0), None, n_estimators=3, init=pretrained, engine=engine, random_state=0
    ).fit(X, y)
    for member in clf.estimators_:  # no epoch: every member is the pretrained model
        for p, q in zip(member.module_.parameters(), pretrained.module_.parameters(), strict=True):
            assert torch.equal(p.cpu(), q.cpu())
    trained = DenoisedSmoothingClassifier(
        _net(),
        None,
        n_estimators=3,
        init=pretrained.module_.state_dict(),
        engine=engine,
        random_state=0,
    ).fit(X, y)
    first = next(trained.estimators_[0].module_.parameters())
    assert not torch.equal(first, next(pretrained.module_.parameters()))


def test_init_needs_a_net_and_raw_pretraining_cannot_certify(digits17):
    X, y, X_test, y_test = digits17
    with pytest.raises(TypeError, match="init sets the starting weights"):
        DenoisedSmoothingClassifier(LogisticRegression(), init={}, n_estimators=3).fit(X, y)
    clf = DenoisedSmoothingClassifier(
        _net(), None, n_estimators=3, init="heuristic-raw-pretrain", random_state=0
    ).fit(X, y)
    assert np.mean(clf.predict(X_test) == y_test) > 0.9
    with pytest.raises(ValueError, match="certificate does not hold"):
        clf.certify(X_test)


def test_bundled_denoiser_certifies_digits(bundled):
    """Certified accuracy at l2 0.1 with sigma 0.25 is far from trivial (20 members cannot
    certify beyond 0.25 * Phi^-1(0.01 ** (1 / 18)) = 0.19 at all)."""
    X, y = load_digits_for_denoising(split="train")
    X_test, y_test = load_digits_for_denoising(split="test")
    kw = dict(n_estimators=20, sigma=0.25, alpha=0.01, random_state=0)
    clf = DenoisedSmoothingClassifier(LogisticRegression(max_iter=300), bundled, **kw)
    cert = clf.fit(X, y).certify(X_test)
    assert certified_accuracy(y_test, cert, 0.1) > 0.8


def test_clean_label_perturbation_inside_the_radius_changes_no_certified_prediction(bundled):
    X, y = load_digits_for_denoising(split="train", digits=(1, 7))
    X_test, _ = load_digits_for_denoising(split="test", digits=(1, 7))
    kw = dict(n_estimators=20, sigma=0.25, alpha=0.01, random_state=0)
    clean = DenoisedSmoothingClassifier(LogisticRegression(), bundled, **kw).fit(X, y)
    cert = clean.certify(X_test)
    rows = np.flatnonzero(y == 7)[:10]
    delta = np.zeros(64, dtype=X.dtype)
    delta[[0, 7, 56, 63]] = 0.02  # the four corners, l2 0.04 per row, 0.126 in all
    X_poison = X.copy()
    X_poison[rows] = np.clip(X_poison[rows] + delta, 0, 1)
    total = np.linalg.norm(X_poison - X)
    covered = cert.radius > total
    assert covered.sum() > 10
    changed = DenoisedSmoothingClassifier(LogisticRegression(), bundled, **kw).fit(X_poison, y)
    flipped = changed.predict(X_test)[covered] != cert.prediction[covered]
    assert flipped.sum() <= stats.binom.ppf(1 - 1e-6, covered.sum(), 0.01)


def test_certified_bounds_fail_at_most_alpha_through_the_shared_core():
    """The RAB validity test of tests/test_rab.py, through DenoisedSmoothingClassifier with a
    callable denoiser (rows identified by their first feature, which the denoiser keeps)."""
    alpha, n_rows, p = 0.1, 3000, (0.55, 0.45)
    X = np.zeros((6, 1))
    y = np.arange(6) % 2
    clf = DenoisedSmoothingClassifier(
        RandomVoter(p),
        lambda Z, sigma: Z,
        n_estimators=60,
        sigma=1.0,
        alpha=alpha,
        random_state=1,
    ).fit(X, y)
    cert = clf.certify(np.arange(n_rows, dtype=float)[:, None])
    top = np.asarray(p)[cert.prediction]
    runner_up = np.asarray(p)[1 - cert.prediction]
    failed = (top < cert.p_lower) | (runner_up > cert.p_upper)
    assert failed.sum() <= stats.binom.ppf(1 - 1e-6, n_rows, alpha)


@parametrize_with_checks(
    [DenoisedSmoothingClassifier(DecisionTreeClassifier(), None, n_estimators=4, sigma=0.1)]
)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        (dict(denoiser="ddpm"), ValueError, "denoiser"),
        (dict(sigma=0.0), ValueError, "sigma"),
        (dict(n_estimators=1), ValueError, "n_estimators"),
        (dict(init="pretrain"), ValueError, "init"),
    ],
)
def test_bad_parameters(digits17, params, error, match):
    X, y, _, _ = digits17
    kwargs = dict(estimator=LogisticRegression(), n_estimators=3)
    kwargs.update(params)
    with pytest.raises(error, match=match):
        DenoisedSmoothingClassifier(**kwargs).fit(X, y)


# --- what the denoiser sees and returns ----------------------------------------------------


class RangeCounting(Counting):
    """Counting, declaring the wrapped denoiser's data range."""

    data_range = (0.0, 1.0)


def test_refuses_data_outside_the_denoisers_range_before_training(bundled):
    """sklearn's raw digits (0..16) were denoised into garbage (score 0.0) without a word."""
    from sklearn.datasets import load_digits as sklearn_digits

    X, y = sklearn_digits(return_X_y=True)
    X, y = X[:200].astype(np.float32), y[:200]
    assert bundled.data_range == (0.0, 1.0)
    with pytest.raises(ValueError, match=r"X has values in \[0, 16\], outside \[0, 1\].*by 16"):
        DenoisedSmoothingClassifier(LogisticRegression(), bundled, n_estimators=3).fit(X, y)
    denoiser = RangeCounting(bundled)
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        DenoisedSmoothingClassifier(LogisticRegression(), denoiser, n_estimators=3).fit(X, y)
    assert denoiser.images == 0  # refused before any member's copy was denoised
    # the same digits on the denoiser's scale are accepted
    DenoisedSmoothingClassifier(LogisticRegression(), denoiser, n_estimators=3).fit(X / 16, y)
    assert denoiser.images == 3 * len(X)


def test_denoisers_declaring_no_range_accept_any_scale(digits17):
    X, y, _, _ = digits17
    for denoiser in (None, lambda Z, sigma: Z):
        clf = DenoisedSmoothingClassifier(
            LogisticRegression(), denoiser, n_estimators=3, random_state=0
        ).fit(16 * X, y)
        assert clf.score(16 * X, y) > 0.9


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_callable_may_return_a_numpy_array(digits17, dtype):
    """The docs say a denoiser returns an array: numpy output is converted, not refused."""
    X, y, X_test, _ = digits17
    kw = dict(n_estimators=4, sigma=0.3, random_state=2)
    as_numpy = DenoisedSmoothingClassifier(
        LogisticRegression(), lambda Z, sigma: Z.numpy().astype(dtype), **kw
    ).fit(X, y)
    identity = DenoisedSmoothingClassifier(LogisticRegression(), None, **kw).fit(X, y)
    np.testing.assert_array_equal(as_numpy.member_scores(X_test), identity.member_scores(X_test))


@pytest.mark.parametrize(
    ("denoiser", "error", "match"),
    [
        (lambda Z, sigma: Z * np.nan, ValueError, r"denoiser .* returned NaN or infinite"),
        (lambda Z, sigma: Z.numpy() + np.inf, ValueError, r"denoiser .* returned NaN"),
        (lambda Z, sigma: Z.tolist(), TypeError, r"denoiser .* returned list"),
        (lambda Z, sigma: (Z > 0.5).numpy(), TypeError, r"returned dtype bool"),
    ],
)
def test_bad_denoiser_output_is_blamed_on_the_denoiser(digits17, denoiser, error, match):
    X, y, _, _ = digits17
    with pytest.raises(error, match=match):
        DenoisedSmoothingClassifier(LogisticRegression(), denoiser, n_estimators=3).fit(X, y)


def test_an_object_denoiser_returning_another_shape_is_named(digits17):
    class Cropping:
        def denoise(self, X_noisy, sigma):
            return X_noisy[:, :10]

    X, y, _, _ = digits17
    with pytest.raises(ValueError, match=r"returned shape \(\d+, 10\).*keep the input's shape"):
        DenoisedSmoothingClassifier(LogisticRegression(), Cropping(), n_estimators=3).fit(X, y)


@pytest.mark.parametrize(
    ("init", "match"),
    [
        (lambda: TinyMLP(n_out=10).state_dict(), r"l2\.weight \(10, 16\) instead of \(2, 16\)"),
        (lambda: TinyMLP(hidden=8, n_out=2), r"init's weights .*l1\.weight \(8, 64\)"),
        (lambda: {"l1.weight": torch.zeros(16, 64)}, r"missing: l1\.bias, l2\.weight, l2\.bias"),
        (lambda: {**TinyMLP(n_out=2).state_dict(), "extra": torch.zeros(1)}, "unexpected: extra"),
    ],
)
def test_init_that_does_not_fit_the_module_is_refused_before_training(digits17, init, match):
    """A mismatched state dict gave a raw load_state_dict error that never named init."""
    X, y, _, _ = digits17
    clf = DenoisedSmoothingClassifier(_net(), None, n_estimators=3, init=init())
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)


def test_init_values_must_be_tensors(digits17):
    X, y, _, _ = digits17
    state = {k: v.numpy() for k, v in TinyMLP(n_out=2).state_dict().items()}
    with pytest.raises(TypeError, match=r"init\['l1\.weight'\] is ndarray"):
        DenoisedSmoothingClassifier(_net(), None, n_estimators=3, init=state).fit(X, y)
