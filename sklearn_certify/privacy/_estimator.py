"""Differentially private members certified by group privacy: a plan and a radius map."""

from __future__ import annotations

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.base import clone
from sklearn.utils._param_validation import Interval, StrOptions

from sklearn_certify import bounds
from sklearn_certify.ensemble import (
    ALL_ROWS,
    BaseVoteEnsemble,
    CertifiedNeuralNetClassifier,
    DPSGDStep,
    MemberPlan,
)
from sklearn_certify.ensemble._skorch import is_skorch_net
from sklearn_certify.privacy._accounting import ACCOUNTANTS, dp_sgd_epsilon
from sklearn_certify.privacy._opacus_net import OpacusNeuralNetClassifier

__all__ = ["DPVoteClassifier"]


class DPVoteClassifier(BaseVoteEnsemble):
    """Votes of DP-SGD members, certified against inserted and deleted rows by group privacy.

    Each of ``n_estimators`` members is the skorch net ``estimator`` trained on all training
    rows with DP-SGD (by Opacus itself with ``engine="loop"``, else by the vectorized engine
    with :class:`~sklearn_certify.ensemble.DPSGDStep`, the same algorithm): every step uses
    every row (no subsampling), clips each row's gradient to ``max_grad_norm``, adds Gaussian
    noise of standard deviation ``noise_multiplier * max_grad_norm`` drawn for the member
    alone, and divides by the fixed ``expected_batch_size``. The net's ``max_epochs`` is the number
    of steps. Opacus's accountant turns ``(noise_multiplier, steps)`` into the members'
    ``(epsilon_, delta_)``: each member's training is an ``(epsilon, delta)``-DP function of
    the training set, for datasets that differ by one inserted or deleted row.

    The members' votes on a test row are independent draws of the randomised learner's
    prediction; their vote bounds (at level ``alpha``) give ``p_lower`` for the top class and
    ``p_upper`` for every other. By group privacy the prediction survives ``k`` inserted or
    deleted rows while
    ``exp(-k eps) (p_lower - k exp((k-1) eps) delta) > exp(k eps) p_upper + k exp((k-1) eps)
    delta`` (Ma, Zhu & Hsu 2019; :func:`~sklearn_certify.bounds.dp_group_radius`); the
    certificate's unit is ``"samples"``, as DPA's (a modified row counts two). It holds
    with probability at least ``1 - alpha`` over the members' training.

    Parameters
    ----------
    estimator : skorch.NeuralNetClassifier
        The member net (a module class without BatchNorm; ``criterion`` the class
        ``torch.nn.CrossEntropyLoss`` or ``torch.nn.NLLLoss``). Its ``max_epochs`` is the
        number of DP-SGD steps, its ``lr`` and ``optimizer`` apply to the privatised
        gradient; its ``batch_size`` is replaced by the number of training rows.
    n_estimators : int, default=100
        Number of members (at least 2).
    noise_multiplier : float, default=10.0
        DP-SGD's noise over the clipping norm (> 0).
    max_grad_norm : float, default=1.0
        DP-SGD's clipping norm.
    expected_batch_size : int, default=1000
        The fixed divisor of the noisy gradient sum (a constant, as DP-SGD's analysis
        needs; about the number of training rows keeps the usual learning rates).
    delta : float, default=1e-5
        The ``delta`` of the members' guarantee, in (0, 1).
    accountant : {"rdp", "prv"}, default="rdp"
        Opacus's accountant for ``epsilon_``.
    alpha, bound, n_select, engine, random_state, n_jobs, verbose
        As for :class:`~sklearn_certify.ensemble.BaseVoteEnsemble`.

    Attributes
    ----------
    epsilon_, delta_ : float
        Every member's differential privacy guarantee.
    steps_ : int
        DP-SGD steps each member took.

    See Also
    --------
    sklearn_certify.DPAClassifier : Partition aggregation, which certifies far more rows at
        a similar cost.

    Examples
    --------
    >>> import torch
    >>> from skorch import NeuralNetClassifier
    >>> from sklearn_certify.datasets import load_digits
    >>> from sklearn_certify.privacy import DPVoteClassifier
    >>> X, y = load_digits(digits=(0, 1), split="train")
    >>> net = NeuralNetClassifier(torch.nn.Linear, module__in_features=64,
    ...                           module__out_features=2, criterion=torch.nn.CrossEntropyLoss,
    ...                           max_epochs=10, lr=1.0)
    >>> clf = DPVoteClassifier(net, n_estimators=20, noise_multiplier=20.0,
    ...                        expected_batch_size=300, alpha=0.05, random_state=0).fit(X, y)
    >>> round(clf.epsilon_, 2), clf.steps_
    (0.62, 10)
    >>> cert = clf.certify(X[:4])
    >>> cert.unit, cert.radius.tolist()
    ('samples', [1, 1, 1, 1])
    """

    _parameter_constraints: ClassVar[dict] = {
        **BaseVoteEnsemble._parameter_constraints,
        "noise_multiplier": [Interval(Real, 0, None, closed="neither")],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither")],
        "expected_batch_size": [Interval(Integral, 1, None, closed="left")],
        "delta": [Interval(Real, 0, 1, closed="neither")],
        "accountant": [StrOptions(set(ACCOUNTANTS))],
    }
    _int_params: ClassVar[tuple] = (*BaseVoteEnsemble._int_params, "expected_batch_size")
    _real_params: ClassVar[tuple] = ("alpha", "noise_multiplier", "max_grad_norm", "delta")
    _fitted_params: ClassVar[tuple] = (
        *BaseVoteEnsemble._fitted_params,
        "noise_multiplier",
        "max_grad_norm",
        "expected_batch_size",
        "delta",
        "accountant",
    )
    _certificate_unit = "samples"

    def __init__(
        self,
        estimator,
        *,
        n_estimators=100,
        noise_multiplier=10.0,
        max_grad_norm=1.0,
        expected_batch_size=1000,
        delta=1e-5,
        accountant="rdp",
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
        self.noise_multiplier = noise_multiplier
        self.max_grad_norm = max_grad_norm
        self.expected_batch_size = expected_batch_size
        self.delta = delta
        self.accountant = accountant

    def _check_estimator(self) -> None:
        super()._check_estimator()
        if not is_skorch_net(self.estimator):
            raise TypeError(
                "DPVoteClassifier trains its members with DP-SGD, which needs a skorch net "
                f"(NeuralNetClassifier); got {type(self.estimator).__name__}."
            )
        if getattr(self.estimator, "training_step", None) is not None:
            raise ValueError(
                "DPVoteClassifier sets the members' training step (DP-SGD) itself; remove the "
                "estimator's training_step."
            )
        if getattr(self.estimator, "augment", None) is not None:
            raise ValueError(
                "DPVoteClassifier's privacy accounting covers DP-SGD on the rows as given; "
                "remove the estimator's augment."
            )

    def _check_options(self, X, y_encoded) -> None:
        """The members' privacy guarantee, from the settings alone (before training)."""
        super()._check_options(X, y_encoded)
        self.steps_ = int(self.estimator.max_epochs)
        self.epsilon_ = dp_sgd_epsilon(
            self.noise_multiplier_, 1.0, self.steps_, self.delta_, accountant=self.accountant_
        )

    def _member_estimator(self, X, y_encoded):
        """The estimator as a DP-SGD member: every row in every step, the fixed divisor.

        With ``engine="loop"`` each member is trained by Opacus itself
        (:class:`OpacusNeuralNetClassifier`); otherwise the vectorized engine runs
        :class:`~sklearn_certify.ensemble.DPSGDStep` (the same algorithm, its noise keyed
        by the member).
        """
        params = self.estimator.get_params(deep=False)
        for name in ("training_step", "augment", "member_key"):
            params.pop(name, None)
        params.update(batch_size=X.shape[0], iterator_train__shuffle=False)
        if self.engine == "loop":
            return clone(
                OpacusNeuralNetClassifier(
                    **params,
                    noise_multiplier=self.noise_multiplier_,
                    max_grad_norm=self.max_grad_norm_,
                    expected_batch_size=self.expected_batch_size_,
                )
            )
        step = DPSGDStep(self.max_grad_norm_, self.noise_multiplier_, self.expected_batch_size_)
        return clone(CertifiedNeuralNetClassifier(**params, training_step=step))

    def _member_plan(self, X, y_encoded) -> MemberPlan:
        return MemberPlan(ALL_ROWS, member_ids=np.arange(self.n_estimators))

    def _kept_probability(self, p_lower, cost) -> np.ndarray:
        """The top class's probability that ``cost`` inserted or deleted rows cannot undercut.

        Group privacy: ``exp(-c eps) (p_lower - c exp((c - 1) eps) delta)``, at least 0
        (used by :func:`~sklearn_certify.attacks.evaluate_under_attack`).
        """
        c = np.asarray(cost, dtype=np.float64)
        eps, delta = self.epsilon_, self.delta_
        with np.errstate(over="ignore"):
            slack = c * np.exp(np.maximum(c - 1, 0) * eps) * delta
            kept = np.exp(-c * eps) * (np.asarray(p_lower, dtype=np.float64) - slack)
        return np.clip(np.nan_to_num(kept, nan=0.0), 0.0, 1.0)

    def _radius(self, vote_bounds: bounds.VoteBounds) -> np.ndarray:
        """Group privacy at the members' ``(epsilon_, delta_)``."""
        return bounds.dp_group_radius(
            vote_bounds.p_lower, vote_bounds.p_upper, self.epsilon_, self.delta_
        )
