"""The shared core of training-set smoothing: N members on noisy copies, and a vote certificate.

:class:`BaseSmoothingEnsemble` trains ``n_estimators`` members on all training rows, member
``k`` through its own view of them (``X + d_k``, plus whatever a subclass adds, such as a
denoiser), and certifies the smoothed classifier from the members' votes (or averaged
probabilities). Everything but the view lives here, so a subclass is its view.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from sklearn_certify import bounds
from sklearn_certify._validation import MIN_ALPHA
from sklearn_certify.ensemble import ALL_ROWS, BaseCertifiedEnsemble, MemberPlan
from sklearn_certify.ensemble._outputs import scoring_method
from sklearn_certify.ensemble._skorch import is_skorch_net
from sklearn_certify.smoothing._noise import GaussianNoiseView

__all__ = ["BOUNDS", "BaseSmoothingEnsemble"]

#: The ``bound`` options of the smoothing classifiers.
BOUNDS = ("clopper-pearson", "simultaneous", "hoeffding")


class BaseSmoothingEnsemble(BaseCertifiedEnsemble):
    """Members on independently noised copies of the whole training set, certified by vote.

    Member ``k`` trains on ``X + d_k`` (through ``_member_view()``), where ``d_k[i]`` is
    Gaussian noise of standard deviation ``sigma`` that depends only on ``(seed_, k, i)``:
    the same noisy copy in every epoch, on both engines, whatever the ensemble size. The
    members' votes on a test row are ``n_estimators`` independent draws of the smoothed
    classifier, which :func:`~sklearn_certify.bounds.cohen_certify` (and kin) turn into a
    certified l2 radius at level ``alpha``.

    Subclasses supply ``_member_view()`` (default: Gaussian noise) and, optionally,
    ``_test_view()`` (a test-time view, default none).
    """

    _parameter_constraints: ClassVar[dict] = {
        **BaseCertifiedEnsemble._parameter_constraints,
        "n_estimators": [Interval(Integral, 2, None, closed="left")],
        "sigma": [Interval(Real, 0, None, closed="neither")],
        "alpha": [Interval(Real, MIN_ALPHA, 1, closed="neither")],
        "bound": [StrOptions(set(BOUNDS))],
        "n_select": [Interval(Integral, 1, None, closed="left"), None],
    }
    _int_params: ClassVar[tuple] = ("n_jobs", "n_estimators", "n_select")
    _real_params: ClassVar[tuple] = ("sigma", "alpha")
    _fitted_params: ClassVar[tuple] = ("sigma", "alpha", "bound")
    _certificate_unit = "l2"
    #: Noise alone is cheap to recompute: once per member while the copies fit, else per step.
    _view_once: ClassVar = "auto"

    def __init__(
        self,
        estimator,
        *,
        n_estimators=100,
        sigma=0.5,
        alpha=0.001,
        bound="clopper-pearson",
        n_select=None,
        engine="auto",
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        super().__init__(
            estimator, engine=engine, random_state=random_state, n_jobs=n_jobs, verbose=verbose
        )
        self.n_estimators = n_estimators
        self.sigma = sigma
        self.alpha = alpha
        self.bound = bound
        self.n_select = n_select

    # ------------------------------------------------------------------ what subclasses vary
    def _member_view(self):
        """The view through which member ``k`` sees the training rows: ``X + d_k``."""
        return GaussianNoiseView(self.sigma_)

    # ------------------------------------------------------------------ planning
    def _record_fitted_params(self) -> None:
        """``sigma_``, ``alpha_``, ``bound_``, ``n_select_`` and how scores become probabilities."""
        super()._record_fitted_params()
        if self.bound == "simultaneous":
            self.n_select_ = 0
        elif self.n_select is not None:
            self.n_select_ = int(self.n_select)
        else:
            self.n_select_ = max(1, math.ceil(self.n_estimators / 10))
        self._score_transform = score_transform(self.estimator)

    def _check_options(self, X, y_encoded) -> None:
        if self.classes_.shape[0] < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 classes in y; got 1 class "
                f"({self.classes_[0]!r}). A smoothed vote over one class certifies nothing."
            )
        if self.n_select_ >= self.n_estimators:
            raise ValueError(
                f"n_select={self.n_select_} leaves no member to estimate the class probability "
                f"with (n_estimators={self.n_estimators}); use n_select < n_estimators, e.g. "
                "n_estimators // 10."
            )

    def _check_estimator(self) -> None:
        super()._check_estimator()
        if self.bound != "hoeffding":
            return
        if not is_skorch_net(self.estimator):
            if scoring_method(self.estimator) != "predict_proba":
                raise TypeError(
                    "bound='hoeffding' averages the members' class probabilities, but "
                    f"{type(self.estimator).__name__} has no predict_proba. Use "
                    "bound='clopper-pearson' or 'simultaneous' (votes), or a base estimator "
                    "with predict_proba."
                )
        elif score_transform(self.estimator) is None:
            raise TypeError(
                "bound='hoeffding' averages the members' class probabilities, but the net's "
                f"criterion {self.estimator.criterion!r} does not say whether its module "
                "returns logits or probabilities. Use criterion=torch.nn.CrossEntropyLoss "
                "(logits, turned into probabilities by a softmax) or torch.nn.NLLLoss, or "
                "bound='clopper-pearson' or 'simultaneous' (votes)."
            )

    def _member_plan(self, X, y_encoded) -> MemberPlan:
        return MemberPlan(
            ALL_ROWS,
            member_ids=np.arange(self.n_estimators),
            view=self._member_view(),
            view_once=self._view_once,
        )

    # ------------------------------------------------------------------ certificate
    def _probabilities(self, scores: np.ndarray, abstain: np.ndarray) -> np.ndarray:
        """Member class probabilities from their scores, 0 where a member abstains.

        A net's logits go through a softmax and its log-probabilities through ``exp``, as
        recorded in ``fit``. Anything outside [0, 1] is refused: Hoeffding's bound holds only
        for values in [0, 1].
        """
        if self._score_transform == "softmax":
            shifted = scores - scores.max(axis=2, keepdims=True)
            exp = np.exp(shifted)
            scores = exp / exp.sum(axis=2, keepdims=True)
        elif self._score_transform == "exp":
            scores = np.exp(scores)
        proba = np.where(abstain[:, :, None], 0.0, scores)
        if np.any(proba < -_ROUND_OFF) or np.any(proba > 1 + _ROUND_OFF):
            raise ValueError(
                "bound='hoeffding' needs member class probabilities in [0, 1], but the "
                f"members' outputs range over [{proba.min():.4g}, {proba.max():.4g}]. Give the "
                "base estimator a predict_proba (or a net criterion that matches its module's "
                "outputs), or use bound='clopper-pearson' or 'simultaneous' (votes)."
            )
        return proba

    def _counts(self, scores, abstain) -> np.ndarray:
        """Per-row vote counts ``(n, n_classes)`` of the given members (abstentions: none)."""
        return bounds.fa_vote_counts(self._learner_votes(scores, abstain), scores.shape[2])

    def _aggregate(self, scores, abstain) -> dict:
        n_select = self.n_select_
        votes = self._counts(scores, abstain)
        if scores.shape[0] == 0:
            empty = np.zeros(0)
            return dict(
                prediction=np.zeros(0, np.int64),
                radius=empty,
                abstain=np.zeros(0, bool),
                p_lower=empty,
                p_upper=empty,
                votes=votes,
            )
        # an abstaining member (NaN outputs) is a draw that voted for no class: it counts
        # among the draws, never as the top class's vote
        if self.bound_ == "simultaneous":
            result = bounds.simultaneous_certify(
                votes, self.alpha_, self.sigma_, n_draws=scores.shape[1]
            )
        elif self.bound_ == "clopper-pearson":
            select = self._counts(scores[:, :n_select], abstain[:, :n_select])
            result = bounds.cohen_certify(
                select,
                votes - select,
                self.alpha_,
                self.sigma_,
                n_estimate=scores.shape[1] - n_select,
            )
        else:
            proba = self._probabilities(scores, abstain)
            n_estimate = scores.shape[1] - n_select
            result = bounds.hoeffding_certify(
                _clipped(proba[:, :n_select].mean(axis=1)),
                _clipped(proba[:, n_select:].mean(axis=1)),
                n_estimate,
                self.alpha_,
                self.sigma_,
            )
        return dict(
            prediction=result.prediction,
            radius=result.radius,
            abstain=result.abstain,
            p_lower=result.p_lower,
            p_upper=result.p_upper,
            votes=votes,
        )

    def _predict_scores(self, scores, abstain) -> dict:
        """The smoothed prediction: the most voted class (the mean probability for hoeffding)."""
        if self.bound_ == "hoeffding":
            proba = self._probabilities(scores, abstain)
            return {"prediction": np.argmax(proba.mean(axis=1), axis=1)}
        return {"prediction": np.argmax(self._counts(scores, abstain), axis=1)}

    def predict(self, X) -> np.ndarray:
        """The smoothed classifier's prediction.

        The most voted class over all members (ties to the smaller class index), i.e. the
        class Cohen et al.'s PREDICT returns when it does not abstain; for
        ``bound="hoeffding"`` the class with the largest average member probability. Where
        the vote is too close to call, :meth:`certify` abstains;
        :func:`sklearn_certify.bounds.cohen_predict` applied to ``certify(X).votes`` gives
        PREDICT's own test.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Rows to predict.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        return super().predict(X)

    def predict_proba(self, X) -> np.ndarray:
        """Vote shares of the members (average member probabilities for ``bound="hoeffding"``).

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Rows to predict.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        if self.bound_ != "hoeffding":
            return super().predict_proba(X)

        def mean_proba(scores, abstain):
            return {"proba": self._probabilities(scores, abstain).mean(axis=1)}

        return self._in_batches(self._validate_X(X), mean_proba)["proba"]


#: Float round-off tolerated in member probabilities (a softmax can exceed 1 by an ulp).
_ROUND_OFF = 1e-6


def _clipped(mean: np.ndarray) -> np.ndarray:
    """Averages of probabilities, clipped into [0, 1] against float round-off."""
    return np.clip(mean, 0.0, 1.0)


def score_transform(estimator) -> str | None:
    """How the members' scores become class probabilities, or ``None`` if that is unknown.

    ``"identity"``: the scores are probabilities (``predict_proba`` of an sklearn estimator or
    a Pipeline; a skorch ``NeuralNetClassifier`` trained with ``NLLLoss``, whose module
    returns probabilities). ``"softmax"``: the module returns logits (``CrossEntropyLoss``,
    given as a class or an instance). ``"exp"``: a plain ``NeuralNet`` with ``NLLLoss``,
    whose module returns log-probabilities. Members that are skorch nets are scored by their
    module's forward, so the criterion decides.
    """
    import torch
    from skorch import NeuralNetClassifier

    if not is_skorch_net(estimator):
        return "identity"
    criterion = estimator.criterion
    kind = criterion if isinstance(criterion, type) else type(criterion)
    if issubclass(kind, torch.nn.CrossEntropyLoss):
        return "softmax"
    if issubclass(kind, torch.nn.NLLLoss):
        return "identity" if isinstance(estimator, NeuralNetClassifier) else "exp"
    return None
