"""Bagging certified against poisoning (Jia, Cao & Gong, AAAI 2021): a plan and a radius map."""

from __future__ import annotations

from numbers import Integral
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval, RealNotInt

from sklearn_certify import bounds
from sklearn_certify.ensemble import BaseVoteEnsemble, MemberPlan, member_seed

__all__ = ["CertifiedBaggingClassifier"]


class CertifiedBaggingClassifier(BaseVoteEnsemble):
    """Bagging whose vote certifies how many training rows may be poisoned.

    Each of ``n_estimators`` members is a clone of ``estimator`` trained on ``sample_size``
    rows drawn uniformly with replacement from the training set, member ``k``'s rows from
    ``member_seed(seed_, k, "bagging_rows")`` alone. The members' votes bound the
    probability of each class over such draws (the statistic ``bound``, jointly at level
    ``alpha``), and Jia, Cao & Gong's Theorem 1 turns the bounds into the number of training
    rows that may be inserted, deleted or modified without changing the bagged prediction
    (:func:`~sklearn_certify.bounds.bagging_radius`; certificate unit ``"rows"``). The
    certificate holds with probability at least ``1 - alpha`` over the members' draws.

    Parameters
    ----------
    estimator : estimator object
        Base classifier; one clone per member. Data-dependent preprocessing belongs inside it.
    n_estimators : int, default=100
        Number of members ``N`` (at least 2). More members tighten the bounds.
    sample_size : int or float, default=0.1
        Rows ``k`` each member draws: an int in ``[1, n_samples]``, or a fraction in
        ``(0, 1]`` of the training rows (``max(1, floor(sample_size * n_samples))``). The
        radius shrinks as ``k`` grows, roughly as ``n / k``.
    alpha : float, default=0.001
        The certificate fails with probability at most ``alpha``.
    bound : {"simultaneous", "clopper-pearson", "hoeffding"}, default="simultaneous"
        The vote statistic (:class:`~sklearn_certify.ensemble.BaseVoteEnsemble`); the
        paper's is ``"simultaneous"`` (Clopper-Pearson bounds on every class at once).
    n_select : int, default=None
        Selection members of ``"clopper-pearson"`` and ``"hoeffding"``.
    engine, random_state, n_jobs, verbose
        As for :class:`~sklearn_certify.ensemble.BaseCertifiedEnsemble`.

    Attributes
    ----------
    sample_size_ : int
        Rows each member drew.
    n_train_ : int
        Training rows the members were drawn from.

    Examples
    --------
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from sklearn_certify import CertifiedBaggingClassifier
    >>> from sklearn_certify.datasets import load_digits
    >>> X, y = load_digits(split="train")
    >>> X_test, _ = load_digits(split="test")
    >>> clf = CertifiedBaggingClassifier(DecisionTreeClassifier(), n_estimators=50,
    ...                                  sample_size=100, alpha=0.05, random_state=0)
    >>> cert = clf.fit(X, y).certify(X_test[:5])
    >>> cert.unit, clf.member_rows_[0].shape
    ('rows', (100,))
    """

    _parameter_constraints: ClassVar[dict] = {
        **BaseVoteEnsemble._parameter_constraints,
        "sample_size": [
            Interval(Integral, 1, None, closed="left"),
            Interval(RealNotInt, 0, 1, closed="right"),
        ],
    }
    _real_params: ClassVar[tuple] = ("alpha", "sample_size")
    _certificate_unit = "rows"
    _too_few_rows_hint = "use a larger sample_size"

    def __init__(
        self,
        estimator,
        *,
        n_estimators=100,
        sample_size=0.1,
        alpha=0.001,
        bound="simultaneous",
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
        self.sample_size = sample_size

    def _check_options(self, X, y_encoded) -> None:
        """Resolve ``sample_size_`` against the training rows (before anything is trained)."""
        super()._check_options(X, y_encoded)
        n = X.shape[0]
        if isinstance(self.sample_size, Integral) and self.sample_size > n:
            raise ValueError(
                f"sample_size={self.sample_size} is larger than the number of training rows "
                f"({n}); use sample_size <= {n}, or a fraction in (0, 1] such as 0.1."
            )
        size = self.sample_size
        self.sample_size_ = int(size) if isinstance(size, Integral) else max(1, int(size * n))
        self.n_train_ = n

    def _member_plan(self, X, y_encoded) -> MemberPlan:
        """Member ``k``: ``sample_size_`` rows drawn with replacement, keyed by ``(seed_, k)``."""
        rows = [
            np.random.default_rng(member_seed(self.seed_, k, "bagging_rows")).integers(
                0, self.n_train_, size=self.sample_size_
            )
            for k in range(self.n_estimators)
        ]
        return MemberPlan(rows, member_ids=np.arange(self.n_estimators))

    def _radius(self, vote_bounds: bounds.VoteBounds) -> np.ndarray:
        """Theorem 1's certified poisoning size at the fitted ``n_train_`` and ``sample_size_``."""
        return bounds.bagging_radius(
            vote_bounds.p_lower, vote_bounds.p_upper, self.n_train_, self.sample_size_
        )
