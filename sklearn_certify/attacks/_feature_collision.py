"""Clean-label feature collision (Shafahi et al., 2018): poisons that sit on the target."""

from __future__ import annotations

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from sklearn_certify.attacks._base import (
    PoisoningAttack,
    PoisonResult,
    assemble,
    label_index,
    one_torch_thread,
)

__all__ = ["FeatureCollisionAttack", "project_rows"]


def _bound(center: np.ndarray, eps: float, side: float, dtype) -> np.ndarray:
    """``center + side * eps`` in ``dtype``, moved towards ``center`` until it is within eps.

    Distances are measured as :class:`PoisonResult` measures them: float64 differences.
    """
    bound = (center + side * eps).astype(dtype)
    for _ in range(8):
        over = np.abs(bound.astype(np.float64) - center) > eps
        if not over.any():
            return bound
        bound = np.where(over, np.nextafter(bound, center.astype(dtype)), bound)
    raise RuntimeError("could not round the l_inf bound within eps.")  # pragma: no cover


def project_rows(
    X,
    base,
    *,
    eps_linf: float | None = None,
    eps_l2: float | None = None,
    clip: tuple[float, float] | None = None,
) -> np.ndarray:
    """Each row of ``X`` moved into the budget around its base row, exactly in ``base``'s dtype.

    Coordinates are first clipped into the box ``clip`` and within ``eps_linf`` of the
    base; the change is then scaled down to l2 norm ``eps_l2`` (which keeps it in the box,
    as the box holds the base). The result is cast to ``base``'s dtype with the rounding
    checked, so its distance to the base, measured in float64, never exceeds a budget.

    Parameters
    ----------
    X : ndarray of shape (n, ...)
        Candidate rows.
    base : ndarray of shape (n, ...)
        The rows they must stay close to (inside ``clip``).
    eps_linf, eps_l2 : float or None
        Largest l_inf and l2 change of one row; None leaves that norm free.
    clip : tuple (low, high) or None
        Range of every coordinate.

    Returns
    -------
    ndarray of the shape and dtype of ``base``

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify.attacks import project_rows
    >>> base = np.full((1, 3), 0.5, dtype=np.float32)
    >>> out = project_rows(np.array([[0.9, 0.5, -1.0]]), base, eps_linf=0.1, clip=(0, 1))
    >>> np.abs(out.astype(float) - base).max() <= 0.1, out.dtype
    (np.True_, dtype('float32'))
    """
    base = np.asarray(base)
    dtype = base.dtype
    center = base.astype(np.float64)
    low = np.full_like(center, -np.inf)
    high = np.full_like(center, np.inf)
    if clip is not None:
        low, high = np.maximum(low, float(clip[0])), np.minimum(high, float(clip[1]))
    if eps_linf is not None:
        low = np.maximum(low, _bound(center, eps_linf, -1.0, dtype))
        high = np.minimum(high, _bound(center, eps_linf, 1.0, dtype))
    out = np.clip(np.asarray(X, dtype=np.float64), low, high).astype(dtype)
    if eps_l2 is None:
        return out
    n = center.shape[0]
    shape = (n,) + (1,) * (center.ndim - 1)
    # scale offending rows to eps_l2 with a safety margin that doubles while the cast to
    # dtype undoes it; a margin of 1 returns the base row itself, always within budget
    for margin in 2.0 ** np.arange(-40, 1):
        delta = out.astype(np.float64) - center
        norm = np.sqrt(np.sum(delta.reshape(n, -1) ** 2, axis=1))
        over = norm > eps_l2
        if not over.any():
            return out
        scale = np.where(over, eps_l2 / np.maximum(norm, np.finfo(float).tiny) * (1 - margin), 1)
        out = np.clip(center + delta * scale.reshape(shape), low, high).astype(dtype)
    return out


class FeatureCollisionAttack(PoisoningAttack):
    """Clean-label feature collision: base-class rows nudged onto the target in feature space.

    Shafahi et al. (2018) poison a model through rows that look like (and are labelled
    as) their *base* class but whose features, under a fixed feature extractor, collide
    with one *target* test point: a classifier retrained on those features (transfer
    learning, the last layer on top of a frozen network) then puts the target on the base
    class's side. Each of the ``budget`` poisons starts from a training row of
    ``base_label`` and is moved by projected gradient descent on
    ``||f(x) - f(target)||^2`` within ``eps_linf`` in l_inf and ``eps_l2`` in l2 of its
    base row (and inside ``clip``); it replaces its base row, keeping its label.

    The budget counts poisoned rows (``unit = "rows"``); the per-row norms are the
    parameters. The result's :meth:`PoisonResult.cost` in ``"l2"`` is the l2 norm of the
    whole training perturbation (at most ``sqrt(budget) * eps_l2``, or
    ``sqrt(budget * d) * eps_linf`` with ``d`` features), RAB's unit, and
    ``feature_linf`` holds each poisoned row's l_inf change. The descent runs torch on one
    thread (the caller's setting is restored afterwards).

    Parameters
    ----------
    feature_extractor : callable or None, default=None
        Maps a float torch tensor of rows ``(n, ...)`` (the dtype of the training rows) to
        features ``(n, k)``, differentiably: a frozen network's hidden layers, say
        ``lambda x: torch.relu(net.module_.hidden(x))``. ``None`` collides in input space.
    base_label : label, default=None
        The class of the poisons, which the target should be classified as. ``None``: the
        nearest other class, i.e. the label of the training row nearest to the target (in
        features) among those labelled differently from its nearest row.
    eps_linf : float or None, default=0.1
        Largest l_inf change of a poisoned row, in feature units.
    eps_l2 : float or None, default=None
        Largest l2 change of a poisoned row. At least one of the two must be given; with
        ``eps_l2`` the steps follow the normalised gradient, otherwise its sign.
    selection : {"nearest", "random"}, default="nearest"
        Base rows: those of ``base_label`` nearest to the target in features, or a random
        order of them; either way a larger budget extends a smaller one.
    n_steps : int, default=100
        Projected gradient steps.
    step_size : float, default=None
        Length of a step (l_inf for sign steps, l2 otherwise); ``None`` is
        ``2.5 * eps / n_steps`` of the norm that sets the steps.
    clip : tuple (low, high) or None, default=(0.0, 1.0)
        Range of every feature (pixels in [0, 1] by default); ``None`` does not clip.
    random_state : int, RandomState instance or None, default=None
        The order of ``selection="random"``.

    Attributes
    ----------
    unit : str
        ``"rows"``: the budget counts poisoned rows.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify.attacks import FeatureCollisionAttack
    >>> from sklearn_certify.datasets import load_digits
    >>> X, y = load_digits(digits=(1, 7), split="train")
    >>> X_test, _ = load_digits(digits=(1, 7), split="test")
    >>> attack = FeatureCollisionAttack(eps_linf=0.1, eps_l2=0.5, n_steps=20)
    >>> res = attack.poison(X, y, 8, target=X_test[0])
    >>> res.changed.size, res.relabeled.size, res.info["base_label"]
    (8, 0, np.int64(1))
    >>> bool(res.feature_linf.max() <= 0.1), bool(res.feature_l2.max() <= 0.5)
    (True, True)
    >>> bool(res.cost("l2") <= np.sqrt(8) * 0.5)  # the whole training perturbation
    True
    """

    _parameter_constraints: ClassVar[dict] = {
        "feature_extractor": [callable, None],
        "base_label": "no_validation",
        "eps_linf": [Interval(Real, 0, None, closed="neither"), None],
        "eps_l2": [Interval(Real, 0, None, closed="neither"), None],
        "selection": [StrOptions({"nearest", "random"})],
        "n_steps": [Interval(Integral, 1, None, closed="left")],
        "step_size": [Interval(Real, 0, None, closed="neither"), None],
        "clip": ["array-like", None],
        "random_state": ["random_state"],
    }
    unit = "rows"

    def __init__(
        self,
        feature_extractor=None,
        *,
        base_label=None,
        eps_linf: float | None = 0.1,
        eps_l2: float | None = None,
        selection: str = "nearest",
        n_steps: int = 100,
        step_size: float | None = None,
        clip=(0.0, 1.0),
        random_state=None,
    ):
        self.feature_extractor = feature_extractor
        self.base_label = base_label
        self.eps_linf = eps_linf
        self.eps_l2 = eps_l2
        self.selection = selection
        self.n_steps = n_steps
        self.step_size = step_size
        self.clip = clip
        self.random_state = random_state

    @property
    def per_target(self) -> bool:
        """Always True: the poisons collide with one test point."""
        return True

    @property
    def reads_model(self) -> bool:
        """False: the features come from ``feature_extractor``, not from the model."""
        return False

    def _check_options(self) -> tuple | None:
        if self.eps_linf is None and self.eps_l2 is None:
            raise ValueError("eps_linf and eps_l2 are both None; give at least one per-row budget.")
        if self.clip is None:
            return None
        clip = np.asarray(self.clip, dtype=float)
        if clip.shape != (2,) or not clip[0] < clip[1]:
            raise ValueError(
                f"clip must be None or (low, high) with low < high, got {self.clip!r}."
            )
        return float(clip[0]), float(clip[1])

    def _features(self, rows):
        import torch

        x = rows if torch.is_tensor(rows) else torch.as_tensor(np.ascontiguousarray(rows))
        out = (
            x.reshape(x.shape[0], -1)
            if self.feature_extractor is None
            else self.feature_extractor(x)
        )
        return out.reshape(out.shape[0], -1)

    def _distances(self, X, target) -> np.ndarray:
        """Squared feature distance of every training row to the target."""
        import torch

        with torch.no_grad():
            feats = self._features(X).double()
            goal = self._features(target[None]).double()
            return ((feats - goal) ** 2).sum(dim=1).numpy()

    def _base(self, y, distance):
        if self.base_label is not None:
            label_index("base_label", self.base_label, np.unique(y))
            return self.base_label
        order = np.argsort(distance, kind="stable")
        others = order[y[order] != y[order[0]]]
        if others.size == 0:
            raise ValueError("y has a single class; there is no base class to poison from.")
        return y[others[0]]

    def _first_step(self, base, target, clip) -> np.ndarray:
        """Every base row moved by the full budget straight towards the target."""
        direction = target[None].astype(np.float64) - base.astype(np.float64)
        if self.eps_l2 is None:
            step = self.eps_linf * np.sign(direction)
        else:
            flat = direction.reshape(direction.shape[0], -1)
            norm = np.linalg.norm(flat, axis=1).reshape((-1,) + (1,) * (base.ndim - 1))
            step = self.eps_l2 * direction / np.maximum(norm, np.finfo(float).tiny)
        return self._project(base + step, base, clip)

    def _project(self, X, base, clip) -> np.ndarray:
        return project_rows(X, base, eps_linf=self.eps_linf, eps_l2=self.eps_l2, clip=clip)

    def _step(self) -> float:
        if self.step_size is not None:
            return float(self.step_size)
        eps = self.eps_linf if self.eps_l2 is None else self.eps_l2
        return 2.5 * float(eps) / self.n_steps

    @property
    def changes(self) -> frozenset:
        """Features only (labels kept)."""
        return frozenset({"features"})

    def _pool(self, X, y, budget, target, clip):
        """Distances, base label, the rows it can move (at least ``budget``), first steps."""
        distance = self._distances(X, target)
        base_label = self._base(y, distance)
        pool = np.flatnonzero(y == base_label)
        start = self._first_step(X[pool], target, clip)
        # a row the budget cannot move (the target itself, clipped pixels) poisons nothing
        movable = np.any((start != X[pool]).reshape(pool.size, -1), axis=1)
        pool, start = pool[movable], start[movable]
        if budget > pool.size:
            raise ValueError(
                f"budget={budget} is more than the {pool.size} training rows labelled "
                f"base_label={np.asarray(base_label).item()!r} that this attack can move."
            )
        return distance, base_label, pool, start

    def _validate_budget(self, X, y, budget, target) -> None:
        self._pool(X, y, budget, target, self._check_options())

    def _poison(self, X, y, budget, *, model, target, rng) -> PoisonResult:
        import torch

        clip = self._check_options()
        distance, base_label, pool, start = self._pool(X, y, budget, target, clip)
        if self.selection == "nearest":
            order = np.argsort(distance[pool], kind="stable")
        else:
            order = rng.permutation(pool.size)
        rows, poisons = pool[order[:budget]], start[order[:budget]]
        base = X[rows]
        if budget:
            with one_torch_thread():
                poisons = self._descend(poisons, base, target, clip, torch)
        X_new, y_new, source = assemble(X, y, rows=rows, X_rows=poisons)
        info = {"base_label": base_label, "poisoned_from": rows}
        return PoisonResult.from_poisoned(
            X, y, X_new, y_new, source, budget=budget, unit=self.unit, info=info
        )

    def _descend(self, poisons, base, target, clip, torch):
        """Projected gradient descent on the feature distance; each row keeps its best iterate."""
        with torch.no_grad():
            goal = self._features(target[None]).detach()
        step = self._step()
        flat = (poisons.shape[0], -1)
        best = poisons.copy()
        best_loss = np.full(poisons.shape[0], np.inf)
        current = poisons
        for iteration in range(self.n_steps + 1):
            x = torch.tensor(np.ascontiguousarray(current), requires_grad=True)
            loss = ((self._features(x) - goal) ** 2).sum(dim=1)
            values = loss.detach().double().numpy()
            moved = np.any((current != base).reshape(flat), axis=1)
            better = moved & (values < best_loss)
            best[better], best_loss[better] = current[better], values[better]
            if iteration == self.n_steps:
                break
            loss.sum().backward()
            grad = x.grad.double().numpy()
            if self.eps_l2 is None:
                update = np.sign(grad)
            else:
                norm = np.linalg.norm(grad.reshape(flat), axis=1)
                update = grad / np.maximum(norm, np.finfo(float).tiny).reshape(
                    (-1,) + (1,) * (grad.ndim - 1)
                )
            current = self._project(current.astype(np.float64) - step * update, base, clip)
        return best
