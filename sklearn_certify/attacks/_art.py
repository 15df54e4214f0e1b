"""An adapter for the poisoning attacks of IBM's Adversarial Robustness Toolbox (ART)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import HasMethods, StrOptions

from sklearn_certify.attacks._base import PoisoningAttack, PoisonResult, assemble, label_index

__all__ = ["ARTPoisoningAttack"]


class ARTPoisoningAttack(PoisoningAttack):
    """Any ART poisoning attack as a :class:`PoisoningAttack` with an exact budget of rows.

    The Adversarial Robustness Toolbox (``pip install adversarial-robustness-toolbox``,
    an optional dependency: this adapter never imports it) implements poisoning attacks
    as objects with ``poison(x, y) -> (x_poison, y_poison)``, labels one-hot.
    The adapter draws ``budget`` training rows at random (of ``source_label`` only, when
    given), hands them to ``attack.poison`` with their labels (or ``target_label``) one-hot
    over the sorted training labels, and puts the rows it returns in place of the originals
    (``mode="modify"``) or next to them (``mode="insert"``). The result is measured by
    :class:`PoisonResult` like any other attack, so a certificate is held to what the ART
    attack actually did, whatever its own parameters say.

    Parameters
    ----------
    attack : object with a ``poison`` method
        An ART poisoning attack, e.g.
        ``art.attacks.poisoning.PoisoningAttackBackdoor(perturbation)``; it must return as
        many rows as it is given, of the same shape.
    source_label : label, default=None
        Draw the poisoned rows from this class only; ``None``: from every row not labelled
        ``target_label`` (every row without one).
    target_label : label, default=None
        The label handed to the ART attack for every row (a dirty-label backdoor's target),
        also the label the attack is evaluated against; ``None`` hands the rows' own
        labels.
    mode : {"modify", "insert"}, default="modify"
        Replace the drawn rows by their poisoned versions, or insert those as new rows.
    trigger : callable or None, default=None
        Applied to the test inputs the attacked model is evaluated on (a backdoor's
        perturbation, e.g. the function given to ``PoisoningAttackBackdoor``); ``None``
        leaves them unchanged.
    random_state : int, RandomState instance or None, default=None
        Which rows are poisoned (a random permutation; a larger budget extends a smaller
        one).

    Attributes
    ----------
    unit : str
        ``"rows"``: the budget counts poisoned rows.

    Examples
    --------
    Any object with ART's ``poison`` signature works; here a stand-in that brightens rows:

    >>> import numpy as np
    >>> from sklearn_certify.attacks import ARTPoisoningAttack
    >>> class Brighten:
    ...     def poison(self, x, y=None):
    ...         return np.clip(x + 0.25, 0, 1), y
    >>> X, y = np.zeros((6, 4)), np.array([0, 0, 0, 1, 1, 1])
    >>> res = ARTPoisoningAttack(Brighten(), source_label=1, random_state=0).poison(X, y, 2)
    >>> res.changed.tolist(), res.relabeled.size, res.cost("l2")
    ([4, 5], 0, 0.7071067811865476)
    """

    _parameter_constraints: ClassVar[dict] = {
        "attack": [HasMethods(["poison"])],
        "source_label": "no_validation",
        "target_label": "no_validation",
        "mode": [StrOptions({"modify", "insert"})],
        "trigger": [callable, None],
        "random_state": ["random_state"],
    }
    unit = "rows"

    def __init__(
        self,
        attack,
        *,
        source_label=None,
        target_label=None,
        mode: str = "modify",
        trigger=None,
        random_state=None,
    ):
        self.attack = attack
        self.source_label = source_label
        self.target_label = target_label
        self.mode = mode
        self.trigger = trigger
        self.random_state = random_state

    @property
    def reads_model(self) -> bool:
        """False: an ART attack that needs a classifier holds its own."""
        return False

    def _poison(self, X, y, budget, *, model, target, rng) -> PoisonResult:
        classes = np.unique(y)
        for name in ("source_label", "target_label"):
            if getattr(self, name) is not None:
                label_index(name, getattr(self, name), classes)
        if self.source_label is not None:
            pool = np.flatnonzero(y == self.source_label)
        elif self.target_label is not None:
            pool = np.flatnonzero(y != self.target_label)
        else:
            pool = np.arange(y.shape[0])
        if budget > pool.size:
            raise ValueError(
                f"budget={budget} is more than the {pool.size} training rows this attack can "
                "draw from (see source_label and target_label)."
            )
        rows = pool[rng.permutation(pool.size)[:budget]]
        info = {"art_attack": type(self.attack).__name__, "poisoned_from": rows}
        if budget == 0:  # ART attacks refuse empty inputs
            return PoisonResult.from_poisoned(
                X, y, X, y, np.arange(y.shape[0]), budget=0, unit=self.unit, info=info
            )
        labels = y[rows] if self.target_label is None else np.full(budget, self.target_label)
        one_hot = (labels[:, None] == classes[None, :]).astype(np.float64)
        X_art, y_art = self.attack.poison(X[rows], one_hot)
        X_art = np.asarray(X_art)
        y_art = one_hot if y_art is None else np.asarray(y_art)
        if X_art.shape != X[rows].shape or y_art.shape[0] != budget:
            raise ValueError(
                f"{type(self.attack).__name__}.poison returned rows of shape {X_art.shape} and "
                f"{y_art.shape[0]} labels for {budget} rows of shape {X.shape[1:]}; the adapter "
                "needs one poisoned row of the same shape per row."
            )
        y_new = classes[np.argmax(y_art, axis=1)] if y_art.ndim == 2 else y_art
        if self.mode == "modify":
            X_out, y_out, source = assemble(X, y, rows=rows, X_rows=X_art, y_rows=y_new)
        else:
            X_out, y_out, source = assemble(X, y, X_added=X_art, y_added=y_new)
        return PoisonResult.from_poisoned(
            X, y, X_out, y_out, source, budget=budget, unit=self.unit, info=info
        )

    def test_inputs(self, X_test) -> np.ndarray:
        """Test inputs with ``trigger`` applied (unchanged without one).

        Parameters
        ----------
        X_test : array-like of shape (n_test, ...)

        Returns
        -------
        ndarray of shape (n_test, ...)
        """
        X_test = np.asarray(X_test)
        return X_test if self.trigger is None else np.asarray(self.trigger(X_test))
