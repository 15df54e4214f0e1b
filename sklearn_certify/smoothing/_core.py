"""The shared core of training-set smoothing: N members on noisy copies, the Gaussian radius.

:class:`BaseSmoothingEnsemble` is a vote-certified ensemble
(:class:`~sklearn_certify.ensemble.BaseVoteEnsemble`) whose plan trains ``n_estimators``
members on all training rows, member ``k`` through its own view of them (``X + d_k``, plus
whatever a subclass adds, such as a denoiser), and whose radius map is the Gaussian l2 one.
A subclass is its view.
"""

from __future__ import annotations

from numbers import Real
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval

from sklearn_certify import bounds
from sklearn_certify.ensemble._plan import ALL_ROWS, MemberPlan
from sklearn_certify.ensemble._vote import BOUNDS, BaseVoteEnsemble
from sklearn_certify.smoothing._noise import GaussianNoiseView

__all__ = ["BOUNDS", "BaseSmoothingEnsemble"]


class BaseSmoothingEnsemble(BaseVoteEnsemble):
    """Members on independently noised copies of the whole training set, certified by vote.

    Member ``k`` trains on ``X + d_k`` (through ``_member_view()``), where ``d_k[i]`` is
    Gaussian noise of standard deviation ``sigma`` that depends only on ``(seed_, k, i)``:
    the same noisy copy in every epoch, on both engines, whatever the ensemble size. The
    members' votes on a test row are ``n_estimators`` independent draws of the smoothed
    classifier; their vote bounds (:class:`~sklearn_certify.ensemble.BaseVoteEnsemble`) give
    the certified l2 radius ``sigma/2 (Phi^-1(p_lower) - Phi^-1(p_upper))``
    (:func:`~sklearn_certify.bounds.gaussian_certify`) at level ``alpha``.

    Subclasses supply ``_member_view()`` (default: Gaussian noise) and, optionally,
    ``_test_view()`` (a test-time view, default none).
    """

    _parameter_constraints: ClassVar[dict] = {
        **BaseVoteEnsemble._parameter_constraints,
        "sigma": [Interval(Real, 0, None, closed="neither")],
    }
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
            estimator,
            n_estimators=n_estimators,
            alpha=alpha,
            bound=bound,
            n_select=n_select,
            engine=engine,
            random_state=random_state,
            n_jobs=n_jobs,
            verbose=verbose,
        )
        self.sigma = sigma

    def _member_view(self):
        """The view through which member ``k`` sees the training rows: ``X + d_k``."""
        return GaussianNoiseView(self.sigma_)

    def _member_plan(self, X, y_encoded) -> MemberPlan:
        return MemberPlan(
            ALL_ROWS,
            member_ids=np.arange(self.n_estimators),
            view=self._member_view(),
            view_once=self._view_once,
        )

    def _radius(self, vote_bounds: bounds.VoteBounds) -> np.ndarray:
        """The Gaussian l2 radius map at the fitted ``sigma_``."""
        return bounds.gaussian_certify(vote_bounds, self.sigma_).radius
