"""The candidate attack of the sphere/slab bound (Steinhardt et al. 2017) as poisoned data."""

from __future__ import annotations

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from sklearn_certify.attacks._base import PoisoningAttack, PoisonResult, assemble
from sklearn_certify.convex import SphereSlabDefense, upper_bound

__all__ = ["SphereSlabAttack"]


class SphereSlabAttack(PoisoningAttack):
    """Insert the worst-case points that pass the oracle sphere and slab defence.

    :func:`sklearn_certify.convex.upper_bound` searches for the defender's best linear
    model against an attacker who adds ``epsilon * n`` points inside the sphere and slab
    around each class centroid; the points it visits are a candidate attack (the paper's
    lower bound on the max-min). This attack runs it with ``epsilon = budget / n`` and
    inserts its ``budget`` points, so that any classifier, a certified one included, can be
    trained on them. The two classes of ``y`` are mapped to -1 and +1 (in sorted order)
    for the bound and back afterwards; rows are flattened to features.

    The budget counts inserted rows (``unit = "samples"``): DPA certifies against exactly
    this kind of attack.

    Parameters
    ----------
    rho_sq : float, default=0.8
        Squared radius of the defender's parameter ball ``||w||^2 + b^2 <= rho_sq``.
    percentile : float, default=70
        The sphere and slab keep this percentile of the clean rows' distances
        (:class:`~sklearn_certify.convex.SphereSlabDefense`).
    max_iter : int, default=500
        Iterations of the bound's dual averaging (raised to ``budget`` when smaller).
    lr : float, default=0.1
        Step size of the dual averaging.
    loss : {"hinge", "logistic", "squared_hinge"}, default="hinge"
        The defender's convex margin loss.
    selection : {"iterates", "sampled"}, default="iterates"
        Which visited points form the attack (``attack`` of
        :func:`~sklearn_certify.convex.upper_bound`): the last ``budget`` iterates, or a
        sample of all of them drawn from ``random_state``.
    random_state : int, RandomState instance or None, default=None
        Seeds ``selection="sampled"``.

    Attributes
    ----------
    unit : str
        ``"samples"``.

    Examples
    --------
    >>> from sklearn_certify.attacks import SphereSlabAttack
    >>> from sklearn_certify.datasets import load_digits
    >>> X, y = load_digits(digits=(1, 7), split="train")
    >>> res = SphereSlabAttack(max_iter=200).poison(X, y, 12)
    >>> res.added.size, sorted(set(res.y[res.added].tolist())) <= [1, 7]
    (12, True)
    """

    _parameter_constraints: ClassVar[dict] = {
        "rho_sq": [Interval(Real, 0, None, closed="neither")],
        "percentile": [Interval(Real, 0, 100, closed="right")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "loss": [StrOptions({"hinge", "logistic", "squared_hinge"})],
        "selection": [StrOptions({"iterates", "sampled"})],
        "random_state": ["random_state"],
    }
    unit = "samples"

    def __init__(
        self,
        *,
        rho_sq: float = 0.8,
        percentile: float = 70,
        max_iter: int = 500,
        lr: float = 0.1,
        loss: str = "hinge",
        selection: str = "iterates",
        random_state=None,
    ):
        self.rho_sq = rho_sq
        self.percentile = percentile
        self.max_iter = max_iter
        self.lr = lr
        self.loss = loss
        self.selection = selection
        self.random_state = random_state

    @property
    def reads_model(self) -> bool:
        """False: the attack comes from the bound's own linear model, not from ``model``."""
        return False

    @property
    def changes(self) -> frozenset:
        """Inserted rows only."""
        return frozenset({"rows"})

    def _validate_budget(self, X, y, budget, target) -> np.ndarray:
        """The two classes, once the budget is known to fit (also checked by ``_poison``)."""
        classes = np.unique(y)
        if classes.size != 2:
            raise ValueError(
                f"SphereSlabAttack needs two classes (the bound is for binary linear models), "
                f"got {classes.size}: {classes.tolist()[:10]}."
            )
        if budget >= X.shape[0]:
            raise ValueError(
                f"budget={budget} must be below the {X.shape[0]} clean rows (the bound takes a "
                "poison fraction epsilon = budget / n < 1)."
            )
        return classes

    def _poison(self, X, y, budget, *, model, target, rng) -> PoisonResult:
        classes = self._validate_budget(X, y, budget, target)
        n = X.shape[0]
        signs = np.where(y == classes[1], 1, -1)
        flat = X.reshape(n, -1).astype(np.float64)
        result = upper_bound(
            flat,
            signs,
            budget / n,
            rho_sq=self.rho_sq,
            defense=SphereSlabDefense(percentile=self.percentile),
            lr=self.lr,
            max_iter=max(self.max_iter, budget),
            loss=self.loss,
            attack=self.selection,
            random_state=rng,
        )
        added = result.poison_X.reshape(-1, *X.shape[1:])
        labels = np.where(result.poison_y == 1, classes[1], classes[0])
        X_new, y_new, source = assemble(X, y, X_added=added, y_added=labels)
        info = {"upper_bound": result.upper_bound, "theta": result.theta}
        return PoisonResult.from_poisoned(
            X, y, X_new, y_new, source, budget=budget, unit=self.unit, info=info
        )
