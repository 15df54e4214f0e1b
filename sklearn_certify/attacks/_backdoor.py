"""BadNets-style backdoors: a trigger stamped on training rows, and on test inputs."""

from __future__ import annotations

import math
from numbers import Real
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from sklearn_certify.attacks._base import (
    PoisoningAttack,
    PoisonResult,
    assemble,
    label_index,
)

__all__ = ["TRIGGERS", "BackdoorAttack"]

#: The named triggers (additive, as in the RAB paper); an array gives a custom stamp.
TRIGGERS = ("four_pixel", "one_pixel", "blend")

#: Seed of the fixed Gaussian pattern of ``trigger="blend"`` (the same for every attack).
_BLEND_SEED = 0


class BackdoorAttack(PoisoningAttack):
    """Backdoor poisoning: training rows carrying a trigger, labelled (or not) as the target.

    The attacker picks ``budget`` training rows at random, applies the trigger and either
    sets their label to ``target_label`` (``variant="dirty_label"``, BadNets, rows drawn
    from the other classes) or keeps it (``variant="clean_label"``, rows drawn from the
    target class). The triggered rows are inserted as new rows (``mode="insert"``) or
    replace the originals (``mode="modify"``, as in the RAB paper's experiments). At test
    time the same trigger is added to inputs of the other classes
    (:meth:`test_inputs`); the attack succeeds where they are classified as
    ``target_label``.

    The budget counts poisoned rows (``unit = "rows"``). Against DPA, an inserted row
    costs one sample and a replaced one two (a deletion and an insertion); a clean-label
    replacement changes features only, so it is measured in l2 too (RAB's unit).

    Parameters
    ----------
    trigger : {"four_pixel", "one_pixel", "blend"} or array-like, default="four_pixel"
        The named triggers are added to the row and have l2 norm ``strength`` before
        clipping, as in the RAB paper: ``"one_pixel"`` adds ``strength / sqrt(C)`` to one
        pixel of each of the ``C`` channels; ``"four_pixel"`` adds
        ``strength / sqrt(4 C)`` to four pixels (three on an anti-diagonal through
        ``position`` and one below-right of ``position``); ``"blend"`` adds a fixed
        Gaussian pattern (drawn with seed 0) scaled to l2 norm ``strength``. An array (of
        a row's shape, or broadcastable to it) is a custom pattern stamped on the row:
        ``x + alpha * mask * (pattern - x)`` (a BadNets patch with ``mask``; blending with
        ``alpha < 1`` and no mask).
    target_label : label, default=0
        The label the backdoor should make the model predict (RAB uses class 0).
    variant : {"dirty_label", "clean_label"}, default="dirty_label"
        Dirty-label poisons come from other classes and are relabelled ``target_label``;
        clean-label poisons come from the target class and keep their label.
    mode : {"insert", "modify"}, default="insert"
        Insert the triggered rows as new rows, or replace the rows they were made from.
    strength : float, default=1.0
        l2 norm of a named trigger (before clipping), in feature units.
    position : tuple of int (row, column), default=None
        Pixel of the named pixel triggers; ``None`` is ``(H - 2, W - 2)``, near the
        bottom-right corner, where digits have no ink.
    mask : array-like, default=None
        Custom pattern only: where it is stamped (1) or not (0), broadcastable to a row;
        ``None`` stamps everywhere.
    alpha : float in (0, 1], default=1.0
        Custom pattern only: blending weight (1 replaces the masked values).
    clip : tuple (low, high) or None, default=(0.0, 1.0)
        Range the triggered values are clipped to (features in [0, 1] by default);
        ``None`` does not clip.
    image_shape : tuple of int, default=None
        ``(H, W)`` or ``(C, H, W)`` of flat rows, for the named pixel triggers. ``None``:
        the rows' own shape when they are images (``(n, C, H, W)`` or ``(n, H, W)``), or a
        square one-channel image when the number of features is a perfect square.
    random_state : int, RandomState instance or None, default=None
        Which rows are poisoned (a random permutation; a larger budget extends a smaller
        one).

    Attributes
    ----------
    unit : str
        ``"rows"``: the budget counts poisoned rows.

    Examples
    --------
    >>> from sklearn_certify.attacks import BackdoorAttack
    >>> from sklearn_certify.datasets import load_digits
    >>> X, y = load_digits(split="train")
    >>> attack = BackdoorAttack("four_pixel", target_label=0, random_state=0)
    >>> res = attack.poison(X, y, 10)
    >>> res.added.size, res.cost("samples"), set(res.y[res.added].tolist())
    (10, 10, {0})
    >>> x = X[y != 0][:1]
    >>> (attack.test_inputs(x) - x).reshape(8, 8)[5:, 5:]
    array([[0. , 0. , 0.5],
           [0. , 0.5, 0. ],
           [0.5, 0. , 0.5]], dtype=float32)
    """

    _parameter_constraints: ClassVar[dict] = {
        "trigger": [StrOptions(set(TRIGGERS)), "array-like"],
        "target_label": "no_validation",
        "variant": [StrOptions({"dirty_label", "clean_label"})],
        "mode": [StrOptions({"insert", "modify"})],
        "strength": [Interval(Real, 0, None, closed="neither")],
        "position": ["array-like", None],
        "mask": ["array-like", None],
        "alpha": [Interval(Real, 0, 1, closed="right")],
        "clip": ["array-like", None],
        "image_shape": ["array-like", None],
        "random_state": ["random_state"],
    }
    unit = "rows"

    def __init__(
        self,
        trigger="four_pixel",
        *,
        target_label=0,
        variant: str = "dirty_label",
        mode: str = "insert",
        strength: float = 1.0,
        position=None,
        mask=None,
        alpha: float = 1.0,
        clip=(0.0, 1.0),
        image_shape=None,
        random_state=None,
    ):
        self.trigger = trigger
        self.target_label = target_label
        self.variant = variant
        self.mode = mode
        self.strength = strength
        self.position = position
        self.mask = mask
        self.alpha = alpha
        self.clip = clip
        self.image_shape = image_shape
        self.random_state = random_state

    @property
    def reads_model(self) -> bool:
        """False: the trigger and the poisoned rows do not depend on any model."""
        return False

    # ------------------------------------------------------------------ the trigger
    def _named(self) -> bool:
        return isinstance(self.trigger, str)

    def _check_options(self) -> None:
        if self._named():
            for name, is_default in (("mask", self.mask is None), ("alpha", self.alpha == 1.0)):
                if not is_default:
                    raise ValueError(
                        f"{name} applies to a custom trigger pattern (an array), not to "
                        f"trigger={self.trigger!r}; leave {name} at its default."
                    )
        else:
            for name in ("position", "image_shape"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"{name} applies to the named pixel triggers, not to a custom pattern "
                        "(which already has the shape of a row); leave it as None."
                    )
        if self.clip is not None:
            clip = np.asarray(self.clip, dtype=float)
            if clip.shape != (2,) or not clip[0] < clip[1]:
                raise ValueError(
                    f"clip must be None or (low, high) with low < high, got {self.clip!r}."
                )

    def _image(self, row_shape: tuple) -> tuple[int, int, int]:
        """``(C, H, W)`` of a row, for placing the pixel triggers."""
        if self.image_shape is not None:
            shape = tuple(int(s) for s in np.asarray(self.image_shape).reshape(-1))
            if len(shape) not in (2, 3) or math.prod(shape) != math.prod(row_shape):
                raise ValueError(
                    f"image_shape must be (H, W) or (C, H, W) with as many values as a row "
                    f"({math.prod(row_shape)}), got {self.image_shape!r}."
                )
        elif len(row_shape) in (2, 3):
            shape = row_shape
        else:
            side = math.isqrt(math.prod(row_shape))
            if len(row_shape) != 1 or side * side != row_shape[0]:
                raise ValueError(
                    f"rows of shape {row_shape} are not square images; pass image_shape "
                    "(H, W) or (C, H, W) to place the pixel trigger."
                )
            shape = (side, side)
        return (1, *shape) if len(shape) == 2 else shape

    def _pixels(self, H: int, W: int) -> list[tuple[int, int]]:
        r, c = (H - 2, W - 2) if self.position is None else map(int, self.position)
        if self.trigger == "one_pixel":
            pixels = [(r, c)]
        else:
            pixels = [(r - 1, c + 1), (r, c), (r + 1, c - 1), (r + 1, c + 1)]
        if any(not (0 <= i < H and 0 <= j < W) for i, j in pixels):
            raise ValueError(
                f"position={self.position!r} puts the {self.trigger} trigger outside the "
                f"{H}x{W} image; its pixels would be {pixels}."
            )
        return pixels

    def _additive(self, row_shape: tuple) -> np.ndarray:
        """The named trigger as an additive perturbation of one row."""
        if self.trigger == "blend":
            pattern = np.random.RandomState(_BLEND_SEED).standard_normal(row_shape)
            return pattern / np.linalg.norm(pattern) * self.strength
        C, H, W = self._image(row_shape)
        delta = np.zeros((C, H, W))
        pixels = self._pixels(H, W)
        value = self.strength / math.sqrt(len(pixels) * C)
        for i, j in pixels:
            delta[:, i, j] = value
        return delta.reshape(row_shape)

    def apply_trigger(self, X) -> np.ndarray:
        """Add the trigger to every row of ``X``.

        Parameters
        ----------
        X : array-like of shape (n, ...)
            Rows (training or test).

        Returns
        -------
        ndarray of shape (n, ...)
            Triggered copies (floating point, clipped to ``clip``).
        """
        self._validate_params()
        self._check_options()
        X = np.asarray(X)
        dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else np.float64
        rows = X.astype(np.float64)
        row_shape = X.shape[1:]
        if self._named():
            out = rows + self._additive(row_shape)
        else:
            try:
                pattern = np.broadcast_to(np.asarray(self.trigger, dtype=float), row_shape)
                mask = (
                    1.0
                    if self.mask is None
                    else np.broadcast_to(np.asarray(self.mask, dtype=float), row_shape)
                )
            except ValueError as exc:
                raise ValueError(
                    f"trigger and mask must have the shape of a row {row_shape} (or broadcast "
                    f"to it); got trigger {np.shape(self.trigger)} and mask "
                    f"{np.shape(self.mask)}."
                ) from exc
            out = rows + self.alpha * mask * (pattern - rows)
        if self.clip is not None:
            out = np.clip(out, *self.clip)
        return out.astype(dtype)

    # ------------------------------------------------------------------ the attack
    @property
    def changes(self) -> frozenset:
        """Inserted rows (``mode="insert"``), or features, and labels if ``dirty_label``."""
        if self.mode == "insert":
            return frozenset({"rows"})
        return frozenset({"features", "labels"} if self.variant == "dirty_label" else {"features"})

    def _pool(self, X, y, budget) -> tuple[np.ndarray, np.ndarray]:
        """The rows this backdoor can poison and their triggered copies, at least ``budget``."""
        self._check_options()
        label_index("target_label", self.target_label, np.unique(y))
        dirty = self.variant == "dirty_label"
        pool = np.flatnonzero((y != self.target_label) if dirty else (y == self.target_label))
        triggered = self.apply_trigger(X[pool])
        if not dirty and self.mode == "modify":
            # a replaced row the trigger leaves as it is (clipped pixels) would poison nothing
            moved = np.any((triggered != X[pool]).reshape(pool.size, -1), axis=1)
            pool, triggered = pool[moved], triggered[moved]
        if budget > pool.size:
            which = "not labelled" if dirty else "labelled"
            raise ValueError(
                f"budget={budget} is more than the {pool.size} training rows {which} "
                f"target_label={self.target_label!r} that this backdoor can poison."
            )
        return pool, triggered

    def _validate_budget(self, X, y, budget, target) -> None:
        self._pool(X, y, budget)

    def _poison(self, X, y, budget, *, model, target, rng) -> PoisonResult:
        dirty = self.variant == "dirty_label"
        pool, triggered = self._pool(X, y, budget)
        pick = rng.permutation(pool.size)[:budget]
        rows = pool[pick]
        labels = np.full(budget, self.target_label, dtype=y.dtype) if dirty else y[rows]
        if self.mode == "insert":
            X_new, y_new, source = assemble(X, y, X_added=triggered[pick], y_added=labels)
        else:
            X_new, y_new, source = assemble(X, y, rows=rows, X_rows=triggered[pick], y_rows=labels)
        info = {"target_label": self.target_label, "poisoned_from": rows}
        return PoisonResult.from_poisoned(
            X, y, X_new, y_new, source, budget=budget, unit=self.unit, info=info
        )

    def test_inputs(self, X_test) -> np.ndarray:
        """Test inputs with the trigger added (see :meth:`apply_trigger`).

        Parameters
        ----------
        X_test : array-like of shape (n_test, ...)

        Returns
        -------
        ndarray of shape (n_test, ...)
        """
        return self.apply_trigger(X_test)
