"""Ensembles certified from vote bounds: N random members, a statistic, and a radius map.

:class:`BaseVoteEnsemble` is the part every randomized certified ensemble shares: its members
are ``n_estimators`` independent draws of a randomized learner (trained on noisy copies of the
data, on subsamples, ...), so their votes on a test row bound the probability of each class
(:class:`~sklearn_certify.bounds.VoteBounds`, by the statistic ``bound``), and a radius map
turns those bounds into how much poisoning the prediction survives. A subclass supplies the
member plan (which rows, which view) and the radius map; nothing else.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from sklearn_certify import bounds
from sklearn_certify._validation import MIN_ALPHA
from sklearn_certify.ensemble._base import BaseCertifiedEnsemble
from sklearn_certify.ensemble._outputs import scoring_method
from sklearn_certify.ensemble._skorch import is_skorch_net

__all__ = ["BOUNDS", "BaseVoteEnsemble", "score_transform"]

#: The ``bound`` options (vote statistics) of the vote-certified ensembles.
BOUNDS = ("clopper-pearson", "simultaneous", "hoeffding")

#: Float round-off tolerated in member probabilities (a softmax can exceed 1 by an ulp).
_ROUND_OFF = 1e-6


class BaseVoteEnsemble(BaseCertifiedEnsemble):
    """Members that are independent draws of a randomized learner, certified from their votes.

    The members' votes on a test row are ``n_estimators`` independent draws of the randomized
    classifier; the statistic ``bound`` turns them into a prediction with confidence bounds
    ``p_lower`` (its probability) and ``p_upper`` (every other class's) that hold together
    with probability at least ``1 - alpha``:

    * ``"clopper-pearson"``: the first ``n_select`` members choose the class, the others
      bound it (:func:`~sklearn_certify.bounds.cohen_vote_bounds`);
    * ``"simultaneous"``: every member chooses and bounds, with bounds that hold for every
      class at once (:func:`~sklearn_certify.bounds.simultaneous_vote_bounds`);
    * ``"hoeffding"``: averaged member probabilities
      (:func:`~sklearn_certify.bounds.hoeffding_vote_bounds`).

    A subclass supplies ``_member_plan(X, y_encoded)`` (the members' rows and views; member
    ``k``'s randomness derives from ``(seed_, k)``, and ``seed_`` is drawn before planning),
    ``_radius(vote_bounds)`` (the radius map: what the bounds buy, 0 where they do not
    separate) and ``_certificate_unit``. The certificate abstains where the bounds do not
    separate.

    Parameters
    ----------
    estimator : estimator object
        Base classifier; one clone per member.
    n_estimators : int, default=100
        Number of members (at least 2).
    alpha : float, default=0.001
        The certificate fails with probability at most ``alpha``.
    bound : {"clopper-pearson", "simultaneous", "hoeffding"}, default="clopper-pearson"
        The vote statistic (see above).
    n_select : int, default=None
        Members that choose the class for ``"clopper-pearson"`` and ``"hoeffding"``;
        ``None`` is ``ceil(n_estimators / 10)``.
    engine, random_state, n_jobs, verbose
        As for :class:`~sklearn_certify.ensemble.BaseCertifiedEnsemble`.

    Examples
    --------
    A family is a plan and a radius map. Here each member trains on a half of the rows drawn
    from its own seed, and the radius map claims nothing beyond the clean training set:

    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn_certify.datasets import load_digits
    >>> from sklearn_certify.ensemble import BaseVoteEnsemble, MemberPlan, member_seed
    >>> class Halves(BaseVoteEnsemble):
    ...     _certificate_unit = "rows"
    ...     def __init__(self, estimator, *, n_estimators=20, alpha=0.05,
    ...                  bound="simultaneous", n_select=None, engine="auto",
    ...                  random_state=None, n_jobs=None, verbose=0):
    ...         super().__init__(estimator, n_estimators=n_estimators, alpha=alpha,
    ...                          bound=bound, n_select=n_select, engine=engine,
    ...                          random_state=random_state, n_jobs=n_jobs, verbose=verbose)
    ...     def _member_plan(self, X, y_encoded):
    ...         draw = [np.random.default_rng(member_seed(self.seed_, k, "halves"))
    ...                 for k in range(self.n_estimators)]
    ...         return MemberPlan([g.permutation(len(X))[: len(X) // 2] for g in draw])
    ...     def _radius(self, vote_bounds):
    ...         return np.zeros(len(vote_bounds.prediction), dtype=np.int64)
    >>> X, y = load_digits(digits=(1, 7), split="train")
    >>> clf = Halves(LogisticRegression(), random_state=0).fit(X, y)
    >>> cert = clf.certify(X[:5])
    >>> cert.unit, len(clf.member_rows_[0]) == len(X) // 2, bool((cert.radius == 0).all())
    ('rows', True, True)
    """

    _parameter_constraints: ClassVar[dict] = {
        **BaseCertifiedEnsemble._parameter_constraints,
        "n_estimators": [Interval(Integral, 2, None, closed="left")],
        "alpha": [Interval(Real, MIN_ALPHA, 1, closed="neither")],
        "bound": [StrOptions(set(BOUNDS))],
        "n_select": [Interval(Integral, 1, None, closed="left"), None],
    }
    _int_params: ClassVar[tuple] = ("n_jobs", "n_estimators", "n_select")
    _real_params: ClassVar[tuple] = ("alpha",)
    _fitted_params: ClassVar[tuple] = ("alpha", "bound")

    @abstractmethod
    def __init__(
        self,
        estimator,
        *,
        n_estimators=100,
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
        self.alpha = alpha
        self.bound = bound
        self.n_select = n_select

    # ------------------------------------------------------------------ what subclasses supply
    @abstractmethod
    def _radius(self, vote_bounds: bounds.VoteBounds) -> np.ndarray:
        """The radius map: what the vote bounds buy, per row (0 where they do not separate)."""

    # ------------------------------------------------------------------ fitting
    def _record_fitted_params(self) -> None:
        """``alpha_``, ``bound_``, ``n_select_`` and how the scores become probabilities."""
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
                f"({self.classes_[0]!r}). A vote over one class certifies nothing."
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

    def _vote_bounds(self, scores, abstain, votes) -> bounds.VoteBounds:
        """The statistic ``bound_`` on one batch of rows.

        An abstaining member (NaN outputs) is a draw that voted for no class: it counts among
        the draws, never as the top class's vote.
        """
        n_select, n_members = self.n_select_, scores.shape[1]
        if self.bound_ == "simultaneous":
            return bounds.simultaneous_vote_bounds(votes, self.alpha_, n_draws=n_members)
        if self.bound_ == "clopper-pearson":
            select = self._counts(scores[:, :n_select], abstain[:, :n_select])
            return bounds.cohen_vote_bounds(
                select, votes - select, self.alpha_, n_estimate=n_members - n_select
            )
        proba = self._probabilities(scores, abstain)
        return bounds.hoeffding_vote_bounds(
            _clipped(proba[:, :n_select].mean(axis=1)),
            _clipped(proba[:, n_select:].mean(axis=1)),
            n_members - n_select,
            self.alpha_,
        )

    def _aggregate(self, scores, abstain) -> dict:
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
        vote_bounds = self._vote_bounds(scores, abstain, votes)
        abstained = ~vote_bounds.separated
        return dict(
            prediction=vote_bounds.prediction,
            radius=np.where(abstained, 0, self._radius(vote_bounds)),
            abstain=abstained,
            p_lower=vote_bounds.p_lower,
            p_upper=vote_bounds.p_upper,
            votes=votes,
        )

    def _predict_scores(self, scores, abstain) -> dict:
        """The voted prediction: the most voted class (the mean probability for hoeffding)."""
        if self.bound_ == "hoeffding":
            proba = self._probabilities(scores, abstain)
            return {"prediction": np.argmax(proba.mean(axis=1), axis=1)}
        return {"prediction": np.argmax(self._counts(scores, abstain), axis=1)}

    def predict(self, X) -> np.ndarray:
        """The voted prediction.

        The most voted class over all members (ties to the smaller class index), i.e. the
        class Cohen et al.'s PREDICT returns when it does not abstain; for
        ``bound="hoeffding"`` the class with the largest average member probability. Where
        the vote is too close to call, :meth:`certify` abstains, and
        :meth:`predict_with_abstention` runs PREDICT's own test.

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

    def predict_with_abstention(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Cohen et al.'s PREDICT at level ``alpha_``: the voted class, and where it abstains.

        The members' votes on a row are independent draws of the ensemble's smoothed
        classifier; PREDICT keeps the most voted class where an exact two-sided binomial
        test of the top two counts rejects a tie at level ``alpha_``
        (:func:`~sklearn_certify.bounds.cohen_predict`), and abstains elsewhere. A class it
        keeps is, with probability at least ``1 - alpha_``, the one the smoothed classifier
        predicts. :meth:`predict` is unchanged: it always returns a label.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Rows to predict.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            The most voted class (ties to the smaller class index), abstained rows too.
        abstain : ndarray of bool of shape (n_samples,)
            True where PREDICT abstains.
        """
        check_is_fitted(self)

        def tested(scores, abstain):
            prediction, abstained = bounds.cohen_predict(self._counts(scores, abstain), self.alpha_)
            return {"prediction": prediction, "abstain": abstained}

        result = self._in_batches(self._validate_X(X), tested)
        return self.classes_[result["prediction"]], result["abstain"]

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
