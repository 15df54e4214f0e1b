"""Test-time randomized smoothing (Cohen, Rosenfeld & Kolter, 2019).

The smoothed classifier ``g(x) = argmax_c P(f(x + e) = c)``, ``e ~ N(0, sigma^2 I)``, is
constant on an l2 ball around ``x`` whose radius follows from a lower confidence bound on the
top class's probability. :class:`RandomizedSmoothingClassifier` trains one base model ``f``
on Gaussian-noised inputs and estimates those probabilities by Monte Carlo, with noise keyed
by the test row's content, so every result is a function of the fitted model and the row.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, _fit_context, clone
from sklearn.frozen import FrozenEstimator
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from sklearn_certify import bounds
from sklearn_certify._certificate import Certificate
from sklearn_certify._keyed import KeyedDraws
from sklearn_certify._validation import MIN_ALPHA, check_row_shape
from sklearn_certify.ensemble._base import DegenerateMemberWarning
from sklearn_certify.ensemble._seeding import (
    _seed63,
    member_seed,
    seed_random_state_params,
    sklearn_seed,
)
from sklearn_certify.ensemble._skorch import is_skorch_net, nested_nets, torch_seeded
from sklearn_certify.ensemble._stacked import check_input_dtype
from sklearn_certify.partition._hashing import row_digests
from sklearn_certify.smoothing._augment import GaussianAugmentation

__all__ = ["RandomizedSmoothingClassifier"]

_MAX_SEED = np.iinfo(np.int32).max
#: Draw numbers of :func:`keyed_draws`: estimation draws use ``0 .. n_samples-1`` and
#: selection draws ``2**31 .. 2**31 + n_select - 1``, so the two sets never share a draw.
_MAX_DRAWS = 2**31
_SELECT_OFFSET = 2**31
#: Entropy word of the per-row noise seeds (ASCII "RSmN").
_NOISE_WORD = 0x52536D4E
_AUGMENT_NAME = "gaussian_augmentation"


class RandomizedSmoothingClassifier(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """Randomized smoothing of the test input, certified against l2 perturbations of it.

    Cohen, Rosenfeld & Kolter (2019) turn any classifier ``f`` into the smoothed classifier
    ``g(x) = argmax_c P(f(x + e) = c)`` with ``e ~ N(0, sigma^2 I)``. If the top class ``c``
    has probability at least ``p_lower > 1/2``, then ``g(x + delta) = c`` for every
    perturbation of the **test input** with ``||delta||_2 < sigma * Phi^-1(p_lower)``. The
    training data are trusted here: this certificate is about evasion at test time, not
    poisoning (see :class:`~sklearn_certify.RABClassifier` and
    :class:`~sklearn_certify.DPAClassifier` for those).

    ``fit`` trains one clone of ``estimator`` on Gaussian-noised inputs, so that ``f`` is
    accurate under the noise ``g`` averages over. ``certify`` runs Cohen et al.'s CERTIFY on
    each row: ``n_select`` draws choose the class, ``n_samples`` other draws bound its
    probability with a one-sided Clopper-Pearson bound at level ``alpha``
    (:func:`~sklearn_certify.bounds.cohen_certify`). With probability at least
    ``1 - alpha`` over the draws, a row that is not abstained on is classified as ``g``
    does, with a radius no larger than ``g``'s true one.

    The noise added to a test row is a function of ``(seed_, the row's content)`` alone
    (:func:`~sklearn_certify.smoothing.keyed_draws` keyed by a digest of the row's bytes and
    the draw number): a row gets the same draws in any batch, in any position and whatever
    ``batch_size``, and ``certify(X)[i]`` equals ``certify(X[i:i + 1])``. The draws are
    made at ``torch.randn``'s speed by torch's generator on the scoring device, so a CPU and
    a GPU give different (equally valid) draws. A row's draws are scored in
    batches of at most ``batch_size`` inputs that never mix rows.

    Parameters
    ----------
    estimator : estimator object
        Base classifier ``f``. A skorch ``NeuralNet`` / ``NeuralNetClassifier`` is trained
        with :class:`~sklearn_certify.smoothing.GaussianAugmentation` (fresh noise on every
        training batch) and scored on its device; any other classifier (a Pipeline too, even
        one ending in a skorch net) is trained on ``n_augment`` noisy copies of ``X`` and
        scored with its ``predict``. Preprocessing that should happen before the noise
        belongs in front of this classifier; preprocessing inside ``estimator`` sees noisy
        inputs. A model that is already trained, wrapped in
        :class:`sklearn.frozen.FrozenEstimator` (a torch module through
        :func:`~sklearn_certify.smoothing.frozen_module`), is certified as it is: ``fit``
        trains nothing, and a skorch net is scored on its own device.
    sigma : float, default=0.25
        Standard deviation of the noise, in the units of ``X`` (pixel units for images scaled
        to [0, 1]). Radii scale with ``sigma``; clean accuracy falls as it grows.
    n_select : int, default=100
        Draws that choose the certified class (Cohen et al.'s ``n0``).
    n_samples : int, default=10000
        Draws that bound the chosen class's probability (Cohen et al.'s ``n``), also the
        draws :meth:`predict` and :meth:`predict_proba` count. Cost is linear in it. The
        largest radius it allows (every draw votes for the class) is
        ``sigma * Phi^-1(alpha ** (1 / n_samples))``: about ``2.5 sigma`` at 1,000 draws,
        ``3.2 sigma`` at 10,000 and ``3.8 sigma`` at 100,000 (``alpha=0.001``).
    alpha : float, default=0.001
        Probability that a row's certificate is wrong, in (0, 1).
    batch_size : int, default=1000
        Noisy copies of one row scored at once (memory: ``batch_size`` inputs).
    n_augment : int, default=10
        Noisy copies of the training set for a base that is not a skorch net: it is fitted on
        ``n_augment * n_samples`` rows ``x_i + sigma * z`` with an independent ``z`` for every
        copy of every row. Unused for skorch nets, which draw new noise every batch.
    random_state : int, RandomState instance or None, default=None
        Seeds the training noise, the base's own randomness (weights, batch order,
        ``random_state`` parameters) and the certification noise.

    Attributes
    ----------
    estimator_ : estimator object
        The fitted base classifier ``f``, trained on labels ``0 .. n_classes - 1`` (a frozen
        model: the model itself).
    classes_ : ndarray of shape (n_classes,)
        Class labels seen in ``fit``.
    seed_ : int
        Seed drawn from ``random_state`` in ``fit``; every draw derives from it.
    sigma_, n_select_, n_samples_, alpha_, batch_size_ : float, int, int, float, int
        These parameters as ``fit`` saw them; :meth:`certify`, :meth:`predict` and
        :meth:`predict_proba` use these, never a value set since (refit to certify with
        other settings).
    row_shape_ : tuple of int
        Shape of each row seen in ``fit`` (``X.shape[1:]``); scored rows must match it.
    prefit_ : bool
        Whether ``estimator`` was a :class:`~sklearn.frozen.FrozenEstimator`: then
        ``estimator_`` is the wrapped model itself, untrained by ``fit``, and ``classes_``
        are its own.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen in ``fit`` (only when ``X`` has string column names).

    See Also
    --------
    sklearn_certify.bounds.cohen_certify : The certificate from the counts.
    sklearn_certify.bounds.cohen_predict : Cohen et al.'s PREDICT test on counts.
    sklearn_certify.RABClassifier : Smoothing of the training set (poisoning).

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn_certify.datasets import load_digits
    >>> from sklearn_certify.smoothing import RandomizedSmoothingClassifier
    >>> X, y = load_digits(digits=(1, 7), split="train")
    >>> X_test, y_test = load_digits(digits=(1, 7), split="test")
    >>> clf = RandomizedSmoothingClassifier(LogisticRegression(), sigma=0.5, n_samples=500,
    ...                                     alpha=0.01, random_state=0).fit(X, y)
    >>> cert = clf.certify(X_test[:20])
    >>> cert.unit, bool((cert.prediction == y_test[:20]).mean() > 0.9)
    ('input_l2', True)
    >>> bool(cert.radius.max() > 0.5), cert.votes.sum(axis=1).max()
    (True, np.int64(500))
    """

    _parameter_constraints: ClassVar[dict] = {
        "estimator": [HasMethods(["fit", "predict"])],
        "sigma": [Interval(Real, 0, None, closed="neither")],
        "n_select": [Interval(Integral, 1, _MAX_DRAWS, closed="both")],
        "n_samples": [Interval(Integral, 1, _MAX_DRAWS, closed="both")],
        "alpha": [Interval(Real, MIN_ALPHA, 1, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "n_augment": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }
    _int_params: ClassVar[tuple] = ("n_select", "n_samples", "batch_size", "n_augment")
    _real_params: ClassVar[tuple] = ("sigma", "alpha")
    #: What certification uses, recorded in ``fit`` as ``<name>_``: ``certify`` and
    #: ``predict`` read those, never a parameter set since.
    _fitted_params: ClassVar[tuple] = ("sigma", "n_select", "n_samples", "alpha", "batch_size")

    def __init__(
        self,
        estimator,
        *,
        sigma: float = 0.25,
        n_select: int = 100,
        n_samples: int = 10000,
        alpha: float = 0.001,
        batch_size: int = 1000,
        n_augment: int = 10,
        random_state=None,
    ):
        self.estimator = estimator
        self.sigma = sigma
        self.n_select = n_select
        self.n_samples = n_samples
        self.alpha = alpha
        self.batch_size = batch_size
        self.n_augment = n_augment
        self.random_state = random_state

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        """No booleans where numbers are expected, no estimator class.

        sklearn's parameter constraints are checked once, by ``fit``'s ``_fit_context``.
        """
        for name in (*self._int_params, *self._real_params):
            value = getattr(self, name)
            if isinstance(value, (bool, np.bool_)):
                kind = "an int" if name in self._int_params else "a real number"
                raise TypeError(f"{name} must be {kind}, got the boolean {value!r}.")
        if isinstance(self.estimator, type):
            raise TypeError(
                f"estimator must be an estimator instance, e.g. {self.estimator.__name__}(), "
                "not the class itself."
            )

    _VALIDATION: ClassVar[dict] = dict(
        accept_sparse=False, dtype=[np.float64, np.float32], allow_nd=True, ensure_all_finite=True
    )

    # ------------------------------------------------------------------ fitting
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None) -> RandomizedSmoothingClassifier:
        """Train one copy of the base classifier on Gaussian-noised inputs.

        With a model that is already trained, wrapped in
        :class:`sklearn.frozen.FrozenEstimator`, nothing is trained: ``fit`` records the
        model (``estimator_`` is the wrapped model itself), its classes and the settings, and
        ``certify`` scores that model, a skorch net on its own device.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Training rows (dense, finite). Arrays of more dimensions, such as images
            ``(n, C, H, W)``, are passed to a skorch net as they are. For a frozen model,
            any rows of the shape it takes (only their shape and dtype are read).
        y : array-like of shape (n_samples,), default=None
            Labels of any type (strings too); at least two classes. Optional for a frozen
            model, whose classes are its own ``classes_``; if given, they must be among them.

        Returns
        -------
        self : object
            The fitted classifier.
        """
        self._check_params()
        if isinstance(self.estimator, FrozenEstimator):
            return self._fit_frozen(X, y)
        if y is None:
            raise ValueError(
                "RandomizedSmoothingClassifier requires y to be passed, but the target y is "
                "None: fit trains the base classifier on labelled rows. To certify a model "
                "that is already trained, wrap it in sklearn.frozen.FrozenEstimator."
            )
        X, y = validate_data(self, X, y, **self._VALIDATION)
        check_classification_targets(y)
        net = is_skorch_net(self.estimator)
        if X.ndim > 2 and not net and not nested_nets(self.estimator):
            raise ValueError(
                f"X has shape {X.shape}, but {type(self.estimator).__name__} is trained on 2-D "
                "rows. Pass X.reshape(len(X), -1), or a skorch net whose module takes these "
                "arrays."
            )
        classes, y_encoded = np.unique(y, return_inverse=True)
        if classes.shape[0] < 2:
            raise ValueError(
                "RandomizedSmoothingClassifier needs at least 2 classes in y; got 1 class "
                f"({classes[0]!r})."
            )
        seed = int(check_random_state(self.random_state).randint(_MAX_SEED))
        y_encoded = y_encoded.astype(np.int64)
        if net:
            self.estimator_ = self._fit_net(X, y_encoded, seed, classes.shape[0])
        else:
            self.estimator_ = self._fit_copies(X, y_encoded, seed)
        self.prefit_ = False
        self.classes_ = classes
        self.seed_ = seed
        self.row_shape_ = tuple(X.shape[1:])
        for name in self._fitted_params:
            setattr(self, f"{name}_", getattr(self, name))
        return self

    def _fit_frozen(self, X, y) -> RandomizedSmoothingClassifier:
        """Record a trained model (``FrozenEstimator``) and the settings; train nothing."""
        model = self.estimator.estimator
        check_is_fitted(model)
        classes = getattr(model, "classes_", None)
        if classes is None:
            raise ValueError(
                f"The frozen {type(model).__name__} has no classes_; give a skorch net its "
                "classes (NeuralNetClassifier(..., classes=[...])), e.g. through "
                "sklearn_certify.smoothing.frozen_module."
            )
        classes = np.asarray(classes)
        if classes.shape[0] < 2 or np.unique(classes).shape[0] != classes.shape[0]:
            raise ValueError(
                f"The frozen model's classes_ must be 2 or more distinct labels, got {classes!r}."
            )
        if y is None:
            X = validate_data(self, X, **self._VALIDATION)
        else:
            X, y = validate_data(self, X, y, **self._VALIDATION)
            unknown = np.setdiff1d(np.unique(y), classes)
            if unknown.size:
                raise ValueError(
                    f"y holds labels {unknown.tolist()} the frozen model does not predict "
                    f"(its classes_ are {classes.tolist()})."
                )
        if is_skorch_net(model):
            self._check_net_dtype(model, X)
        elif X.ndim > 2:
            raise ValueError(
                f"X has shape {X.shape}, but {type(model).__name__} takes 2-D rows; pass "
                "X.reshape(len(X), -1)."
            )
        self.estimator_ = model
        self.prefit_ = True
        self.classes_ = classes
        self.seed_ = int(check_random_state(self.random_state).randint(_MAX_SEED))
        self.row_shape_ = tuple(X.shape[1:])
        for name in self._fitted_params:
            setattr(self, f"{name}_", getattr(self, name))
        return self

    def _fit_net(self, X, y_encoded, seed: int, n_classes: int):
        """A clone of the skorch net trained with fresh Gaussian noise on every batch."""
        import torch
        from skorch import NeuralNetClassifier

        net = clone(self.estimator)
        params = net.get_params(deep=False)
        if isinstance(net, NeuralNetClassifier):
            params["classes"] = list(range(n_classes))
        if net.iterator_train is torch.utils.data.DataLoader:
            shuffle = torch.Generator().manual_seed(member_seed(seed, 0, "shuffle"))
            params["iterator_train__generator"] = shuffle
        callbacks = [] if net.callbacks == "disable" else list(net.callbacks or [])
        for item in callbacks:
            callback = item[1] if isinstance(item, tuple) else item
            if isinstance(callback, GaussianAugmentation) or callback is GaussianAugmentation:
                raise ValueError(
                    "estimator already has a GaussianAugmentation callback; "
                    "RandomizedSmoothingClassifier adds its own with its sigma and seed. Remove "
                    "it from the net."
                )
        if net.callbacks == "disable":
            # "disable" would drop the augmentation too: switch the default callbacks off
            params.update({f"callbacks__{name}": None for name, _ in net.get_default_callbacks()})
        augmentation = GaussianAugmentation(
            self.sigma, random_state=member_seed(seed, 0, _AUGMENT_NAME)
        )
        params["callbacks"] = [*callbacks, (_AUGMENT_NAME, augmentation)]
        # a new net from the clone's parameters (set_params cannot replace "disable")
        net = type(net)(**params)
        with torch_seeded(member_seed(seed, 0, "torch_init"), [net]):
            net.initialize()
            self._check_net_dtype(net, X)
            net.partial_fit(X, y_encoded)
        return net

    def _fit_copies(self, X, y_encoded, seed: int):
        """A clone of the base trained on ``n_augment`` independently noised copies of X."""
        estimator = clone(self.estimator)
        seed_random_state_params(estimator, sklearn_seed(seed, 0))
        rng = np.random.default_rng(member_seed(seed, 0, _AUGMENT_NAME))
        sigma = X.dtype.type(self.sigma)
        copies = [
            X + sigma * rng.standard_normal(X.shape, dtype=X.dtype) for _ in range(self.n_augment)
        ]
        return estimator.fit(np.concatenate(copies), np.tile(y_encoded, self.n_augment))

    @staticmethod
    def _check_net_dtype(net, X) -> None:
        first = next(net.module_.parameters(), None)
        if first is not None:
            check_input_dtype(X, first.dtype, "the net's")

    # ------------------------------------------------------------------ Monte Carlo counts
    def _row_seeds(self, X) -> list[int]:
        """One noise seed per row, from ``seed_`` and the SHA-256 digest of the row's bytes."""
        words = np.frombuffer(row_digests(X).tobytes(), dtype="<u4").reshape(-1, 8)
        return [
            _seed63(np.random.SeedSequence([self.seed_, _NOISE_WORD, *row.tolist()]))
            for row in words
        ]

    def _counts(self, X, *, select: bool) -> tuple[np.ndarray | None, np.ndarray]:
        """Class counts of the selection draws (``None`` unless ``select``) and estimation draws.

        Both are ``(n_rows, n_classes)`` int64 arrays.
        """
        check_is_fitted(self)
        check_row_shape(X, self.row_shape_)
        X = validate_data(self, X, reset=False, **self._VALIDATION)
        if is_skorch_net(self.estimator_):
            self._check_net_dtype(self.estimator_, X)
            scorer = _NetScorer(self.estimator_, self.classes_.shape[0])
        else:
            classes = self.classes_ if self.prefit_ else None  # it predicts labels, not indices
            scorer = _PredictScorer(self.estimator_, self.classes_.shape[0], classes)
        seeds = self._row_seeds(X)
        n_classes = self.classes_.shape[0]
        estimate = np.zeros((X.shape[0], n_classes), dtype=np.int64)
        selected = np.zeros_like(estimate) if select else None
        for i, seed in enumerate(seeds):
            row = scorer.row(X[i], seed)
            if selected is not None:
                selected[i] = self._draw_counts(scorer, row, _SELECT_OFFSET, self.n_select_)
            estimate[i] = self._draw_counts(scorer, row, 0, self.n_samples_)
        scorer.warn_if_degenerate()
        return selected, estimate

    def _draw_counts(self, scorer, row, first_id: int, n_draws: int) -> np.ndarray:
        """Votes of draws ``first_id .. first_id + n_draws - 1`` of one row.

        The draws are read in batches of ``batch_size`` from the row's
        :class:`~sklearn_certify._keyed.KeyedDraws`, which draws each of its blocks once.
        """
        draws = scorer.draws(row, first_id)
        total = scorer.zeros()
        for lo in range(0, n_draws, self.batch_size_):
            noise = draws.take(min(self.batch_size_, n_draws - lo))
            total = total + scorer.votes(row, scorer.scaled(noise, self.sigma_))
        return scorer.numpy(total)

    # ------------------------------------------------------------------ public API
    def certify(self, X) -> Certificate:
        """Cohen et al.'s CERTIFY on every row: class, radius in input l2, or abstain.

        For each row, ``n_select`` noisy copies choose the class ``c`` (most votes, ties to
        the smaller class index), ``n_samples`` other copies bound its probability from below
        (one-sided Clopper-Pearson at level ``alpha``), and the radius is
        ``sigma * Phi^-1(p_lower)``; the row is abstained on (radius 0) when
        ``p_lower <= 1/2``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Rows to certify.

        Returns
        -------
        certificate : Certificate
            ``prediction`` (labels; the selected class also where abstained), ``radius``
            (unit ``"input_l2"``: the l2 norm of a perturbation of the test input that
            provably leaves ``g``'s prediction unchanged), ``abstain``, ``p_lower``,
            ``p_upper`` (``1 - p_lower``, the bound on every other class) and ``votes``
            (the counts of the ``n_samples`` estimation draws).
        """
        selected, estimate = self._counts(X, select=True)
        # a draw whose output was NaN voted for no class but still counts as a draw
        result = bounds.cohen_certify(
            selected, estimate, self.alpha_, self.sigma_, n_estimate=self.n_samples_
        )
        return Certificate(
            prediction=self.classes_[result.prediction],
            radius=result.radius,
            abstain=result.abstain,
            unit="input_l2",
            p_lower=result.p_lower,
            p_upper=result.p_upper,
            votes=estimate,
        )

    def predict(self, X) -> np.ndarray:
        """The most frequent class among the ``n_samples`` noisy copies of each row.

        This is the class Cohen et al.'s PREDICT returns when it does not abstain (ties go
        to the smaller class index); it always returns a label.
        :meth:`predict_with_abstention` runs PREDICT's abstention test on the same draws.
        The certified class of :meth:`certify` comes from separate selection draws and can
        differ where two classes are close, where it abstains.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Rows to predict.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        votes = self._counts(X, select=False)[1]
        return self.classes_[np.argmax(votes, axis=1)]

    def predict_with_abstention(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Cohen et al.'s PREDICT at level ``alpha_``: the top class, and where it abstains.

        The ``n_samples`` estimation draws of each row (the ones :meth:`predict` counts) are
        tested: the most frequent class is kept where an exact two-sided binomial test of the
        top two counts rejects a tie at level ``alpha_``
        (:func:`~sklearn_certify.bounds.cohen_predict`), and the row is abstained on
        elsewhere. A class that is kept is, with probability at least ``1 - alpha_``, the
        smoothed classifier's. :meth:`predict` is unchanged: it always returns a label.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Rows to predict.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            The most frequent class (ties to the smaller class index), abstained rows too.
        abstain : ndarray of bool of shape (n_samples,)
            True where PREDICT abstains.
        """
        votes = self._counts(X, select=False)[1]
        prediction, abstain = bounds.cohen_predict(votes, self.alpha_)
        return self.classes_[prediction], abstain

    def predict_proba(self, X) -> np.ndarray:
        """Vote shares of the classes among the ``n_samples`` noisy copies of each row.

        Monte Carlo estimates of the smoothed class probabilities ``P(f(x + e) = c)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Rows to predict.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        return self._counts(X, select=False)[1] / self.n_samples_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        return tags


class _PredictScorer:
    """Votes of a fitted sklearn classifier on noisy copies of a row.

    Its ``predict`` returns the encoded classes ``0 .. n_classes - 1`` (a base we trained), or,
    with ``classes`` given (a frozen model), labels from ``classes``, encoded here.
    """

    def __init__(self, estimator, n_classes: int, classes=None):
        self.estimator = estimator
        self.n_classes = n_classes
        self.classes = classes

    def row(self, x: np.ndarray, seed: int):
        return x, seed

    def zeros(self) -> np.ndarray:
        return np.zeros(self.n_classes, dtype=np.int64)

    @staticmethod
    def draws(row, first_id: int):
        """The row's keyed standard normal draws from ``first_id`` on, on the CPU."""
        x, seed = row
        return KeyedDraws(seed, first_id, x.shape, dtype=_torch_dtype(x.dtype))

    @staticmethod
    def scaled(draws, sigma: float) -> np.ndarray:
        """``sigma`` times a batch of draws, as a numpy array."""
        noise = draws.numpy()
        noise *= noise.dtype.type(sigma)
        return noise

    def votes(self, row, noise: np.ndarray) -> np.ndarray:
        x, _ = row
        labels = np.asarray(self.estimator.predict(noise + x))
        n = len(noise)
        if self.classes is not None:
            labels = _encode(labels, self.classes, type(self.estimator).__name__)
        if (
            labels.shape != (n,)
            or labels.dtype.kind not in "iu"
            or (labels.size and (labels.min() < 0 or labels.max() >= self.n_classes))
        ):
            raise ValueError(
                f"{type(self.estimator).__name__}.predict returned {labels.dtype} labels of "
                f"shape {labels.shape} for {n} rows; expected the encoded classes "
                f"0..{self.n_classes - 1} it was fitted on, one per row."
            )
        return np.bincount(labels, minlength=self.n_classes)

    @staticmethod
    def numpy(counts) -> np.ndarray:
        return counts

    @staticmethod
    def warn_if_degenerate() -> None:
        """Labels from ``predict`` are never NaN: nothing to report."""


class _NetScorer:
    """Votes (argmax of the module's output) of a fitted skorch net, on its device."""

    def __init__(self, net, n_classes: int):
        import torch

        self.net = net
        self.n_classes = n_classes
        self.device = torch.device(net.device or "cpu")
        self.nan_draws = torch.zeros((), dtype=torch.int64, device=self.device)
        self.n_draws = 0
        # skorch's evaluation_step, with the modules put in eval mode once, not per batch
        net.check_is_fitted()
        net._set_training(False)

    def row(self, x: np.ndarray, seed: int):
        import torch

        return torch.as_tensor(x).to(self.device), seed

    def zeros(self):
        import torch

        return torch.zeros(self.n_classes, dtype=torch.int64, device=self.device)

    def draws(self, row, first_id: int):
        """The row's keyed standard normal draws from ``first_id`` on, on the net's device."""
        x, seed = row
        return KeyedDraws(seed, first_id, tuple(x.shape), dtype=x.dtype, device=self.device)

    @staticmethod
    def scaled(draws, sigma: float):
        """``sigma`` times a batch of draws (in place)."""
        return draws.mul_(sigma)

    def votes(self, row, noise):
        import torch

        x, _ = row
        n = noise.shape[0]
        with torch.no_grad():
            out = self.net.infer(noise + x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        if out.ndim != 2 or out.shape != (n, self.n_classes):
            raise ValueError(
                f"the net's module returned outputs of shape {tuple(out.shape)} for {n} "
                f"inputs; expected ({n}, {self.n_classes}): one score per class."
            )
        # a draw with a NaN output votes for no class: it goes to an extra bin, dropped;
        # torch.argmax takes the first maximum, so ties go to the smaller class index
        nan = torch.isnan(out).any(dim=1)
        self.nan_draws += nan.sum()
        self.n_draws += n
        label = torch.where(nan, self.n_classes, out.argmax(dim=1))
        return torch.bincount(label, minlength=self.n_classes + 1)[: self.n_classes]

    @staticmethod
    def numpy(counts) -> np.ndarray:
        return counts.cpu().numpy().astype(np.int64)

    def warn_if_degenerate(self) -> None:
        """Warn once if some draws' outputs were NaN (they voted for no class)."""
        nan_draws = int(self.nan_draws)
        if nan_draws:
            warnings.warn(
                f"{nan_draws} of {self.n_draws} noisy draws gave NaN outputs; they vote for no "
                "class but still count as draws, which lowers the bounds and radii. A "
                "diverged net (e.g. too high a learning rate) is the usual cause.",
                DegenerateMemberWarning,
                stacklevel=4,
            )


def _encode(labels: np.ndarray, classes: np.ndarray, owner: str) -> np.ndarray:
    """Indices of ``labels`` in ``classes``; a label outside them is an error."""
    order = np.argsort(classes, kind="stable")
    found = np.clip(np.searchsorted(classes, labels, sorter=order), 0, len(classes) - 1)
    index = order[found]
    if labels.shape != (len(labels),) or np.any(classes[index] != labels):
        raise ValueError(
            f"{owner}.predict returned labels outside its classes_ {classes.tolist()}."
        )
    return index.astype(np.int64)


def _torch_dtype(dtype: np.dtype):
    import torch

    return torch.float32 if dtype == np.float32 else torch.float64
