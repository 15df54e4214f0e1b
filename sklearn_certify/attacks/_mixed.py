"""A mixed poisoning: many faint feature changes and a few arbitrary rows, one budget."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import StrOptions

from sklearn_certify.attacks._base import (
    INTEGER_UNITS,
    PAIR_UNIT,
    PoisoningAttack,
    PoisonResult,
)

__all__ = ["MixedAttack"]


def _compose(X, y, first: PoisonResult, second: PoisonResult, budget, info) -> PoisonResult:
    """The poisoning ``second`` applied on top of ``first``, described against ``(X, y)``.

    ``first`` keeps every row in place (it changes features only), so a row of ``second``
    comes from the clean row its ``first`` row came from.
    """
    source = np.where(second.source >= 0, first.source[np.maximum(second.source, 0)], -1)
    return PoisonResult.from_poisoned(
        X, y, second.X, second.y, source, budget=budget, unit=PAIR_UNIT, info=info
    )


class MixedAttack(PoisoningAttack):
    """Two attacks as one: feature changes spread over many rows, then a few arbitrary rows.

    A real poisoning campaign often mixes both threats that the certificates of this package
    count separately: a faint trigger stamped on many existing rows (a clean-label
    backdoor: small l2 each, which training-set smoothing counts) and a few rows inserted,
    deleted or relabeled with anything in them (which partition aggregation counts). The
    budget is a pair ``(rows, l2)`` in the unit ``"rows+l2"`` of
    :class:`~sklearn_certify.PartitionedRABClassifier`'s frontier:

    1. ``feature_attack`` poisons the clean set within l2 norm ``l2``. An attack whose unit
       is ``"l2"`` gets ``l2`` as its budget; one that counts rows (a clean-label
       ``BackdoorAttack`` with ``mode="modify"``) gets the largest count whose total l2
       norm stays within ``l2`` (found by bisection: a larger budget extends a smaller
       one), i.e. the trigger goes on as many rows as the norm allows. It must change
       features only.
    2. ``row_attack`` poisons the result with budget ``rows`` in its own unit (``"rows"``,
       ``"samples"`` or ``"label_flips"``); it must cost at most ``rows`` rows in
       ``"rows+l2"`` (inserted, deleted or relabeled rows).

    The result is described against the clean set, so its cost in ``"rows+l2"``
    (:meth:`PoisonResult.cost`) is measured from the data, not from the stages'
    bookkeeping, and is checked against the budget.

    Parameters
    ----------
    row_attack : PoisoningAttack
        The few arbitrary rows (e.g. a dirty-label ``BackdoorAttack`` with
        ``mode="insert"``); its unit must count rows.
    feature_attack : PoisoningAttack
        The faint feature changes (e.g. a clean-label ``BackdoorAttack`` with
        ``mode="modify"`` and a small ``strength``); its unit must be ``"l2"`` or count rows.
    test_trigger : {"row_attack", "feature_attack"}, default="row_attack"
        Whose test-time trigger (:meth:`test_inputs`), evaluated rows and success are used.

    Attributes
    ----------
    unit : str
        ``"rows+l2"``: a budget is a pair ``(rows, l2)``.

    Examples
    --------
    A four-pixel trigger of l2 norm 0.05 goes on as many sevens as a total norm of 0.33
    allows (43: ``sqrt(43) * 0.05 = 0.328``, and 44 would cost 0.332), then two triggered
    ones are inserted labelled 7:

    >>> from sklearn_certify.attacks import BackdoorAttack, MixedAttack
    >>> from sklearn_certify.datasets import load_digits
    >>> X, y = load_digits(digits=(1, 7), split="train")
    >>> faint = BackdoorAttack(target_label=7, variant="clean_label", mode="modify",
    ...                        strength=0.05, random_state=0)
    >>> strong = BackdoorAttack(target_label=7, mode="insert", random_state=1)
    >>> res = MixedAttack(strong, faint).poison(X, y, (2, 0.33))
    >>> rows, l2 = res.cost("rows+l2")
    >>> rows, round(l2, 3), res.changed.size, res.added.size
    (2, 0.328, 43, 2)
    """

    _parameter_constraints: ClassVar[dict] = {
        "row_attack": [PoisoningAttack],
        "feature_attack": [PoisoningAttack],
        "test_trigger": [StrOptions({"row_attack", "feature_attack"})],
    }
    unit = PAIR_UNIT

    def __init__(self, row_attack, feature_attack, *, test_trigger: str = "row_attack"):
        self.row_attack = row_attack
        self.feature_attack = feature_attack
        self.test_trigger = test_trigger

    # ------------------------------------------------------------------ what it declares
    @property
    def per_target(self) -> bool:
        """True when either stage is crafted against one test point."""
        return self.row_attack.per_target or self.feature_attack.per_target

    @property
    def reads_model(self) -> bool:
        """True when either stage reads the clean model (both are handed it)."""
        return self.row_attack.reads_model or self.feature_attack.reads_model

    @property
    def changes(self) -> frozenset:
        """Both stages' changes (empty, i.e. not declared, when a stage does not say)."""
        row, feature = self.row_attack.changes, self.feature_attack.changes
        return row | feature if row and feature else frozenset()

    def validate_estimator(self, estimator) -> None:
        """Refuse a classifier either stage refuses.

        Parameters
        ----------
        estimator : estimator
            The unfitted certified classifier.
        """
        self._validate_params()
        self.row_attack.validate_estimator(estimator)
        self.feature_attack.validate_estimator(estimator)

    # ------------------------------------------------------------------ checks
    def _check_stages(self) -> None:
        for name in ("row_attack", "feature_attack"):
            if isinstance(getattr(self, name), MixedAttack):
                raise TypeError(f"{name} must be a single attack, not a MixedAttack.")
        if self.row_attack.unit not in INTEGER_UNITS:
            raise ValueError(
                f"row_attack must count rows (unit in {INTEGER_UNITS}), got "
                f"{type(self.row_attack).__name__} with unit {self.row_attack.unit!r}."
            )
        if self.feature_attack.unit not in (*INTEGER_UNITS, "l2"):
            raise ValueError(
                f"feature_attack must have an l2 budget or count rows, got "
                f"{type(self.feature_attack).__name__} with unit {self.feature_attack.unit!r}."
            )

    def _stage_target(self, attack: PoisoningAttack, target):
        return target if attack.per_target else None

    def _validate_budget(self, X, y, budget, target) -> None:
        self._check_stages()
        rows, l2 = budget
        self.row_attack.validate_budget(
            X, y, rows, target=self._stage_target(self.row_attack, target)
        )
        if self.feature_attack.unit == "l2":
            self.feature_attack.validate_budget(
                X, y, l2, target=self._stage_target(self.feature_attack, target)
            )

    # ------------------------------------------------------------------ poisoning
    def _feature_stage(self, X, y, l2: float, *, model, target) -> PoisonResult:
        """The feature attack's poisoning of the clean set within l2 norm ``l2``."""
        attack = self.feature_attack
        target = self._stage_target(attack, target)

        def poison(budget):
            result = attack.poison(X, y, budget, model=model, target=target)
            if result.changes - {"features"}:
                raise ValueError(
                    f"feature_attack {type(attack).__name__} {result.describe()}: it must "
                    "change features only (the rows and labels are row_attack's part)."
                )
            return result

        if attack.unit == "l2":
            return poison(l2)
        # the largest row count whose l2 norm fits: costs grow with the budget
        low, high = 0, self._largest_valid(X, y, target)
        best = poison(0)
        while low < high:
            middle = (low + high + 1) // 2
            result = poison(middle)
            if result.cost("l2") <= l2:
                low, best = middle, result
            else:
                high = middle - 1
        return best

    def _largest_valid(self, X, y, target) -> int:
        """The largest row budget the feature attack accepts on ``(X, y)`` (at most n)."""
        low, high = 0, X.shape[0]
        while low < high:
            middle = (low + high + 1) // 2
            try:
                self.feature_attack.validate_budget(X, y, middle, target=target)
            except ValueError:
                high = middle - 1
            else:
                low = middle
        return low

    def _poison(self, X, y, budget, *, model, target, rng) -> PoisonResult:
        self._check_stages()
        rows, l2 = budget
        first = self._feature_stage(X, y, l2, model=model, target=target)
        second = self.row_attack.poison(
            np.array(first.X),
            np.array(first.y),
            rows,
            model=model,
            target=self._stage_target(self.row_attack, target),
        )
        info = {"feature_stage": first.info, "row_stage": second.info}
        result = _compose(X, y, first, second, budget, info)
        spent_rows, spent_l2 = result.cost(PAIR_UNIT)
        if spent_rows > rows or spent_l2 > l2:
            raise ValueError(
                f"MixedAttack spent ({spent_rows}, {spent_l2:.6g}) in rows+l2 with a budget of "
                f"({rows}, {l2:.6g}): row_attack {type(self.row_attack).__name__} must insert, "
                "delete or relabel rows (a feature change it makes without relabeling counts "
                "in l2)."
            )
        return result

    # ------------------------------------------------------------------ test time
    def _trigger_attack(self) -> PoisoningAttack:
        return getattr(self, self.test_trigger)

    def test_inputs(self, X_test) -> np.ndarray:
        """Test inputs with the test-time trigger of the ``test_trigger`` stage.

        Parameters
        ----------
        X_test : array-like of shape (n_test, ...)

        Returns
        -------
        ndarray of shape (n_test, ...)
        """
        return self._trigger_attack().test_inputs(X_test)

    def evaluation_rows(self, y_test) -> np.ndarray:
        """The test points the ``test_trigger`` stage is evaluated on.

        Parameters
        ----------
        y_test : array-like of shape (n_test,)

        Returns
        -------
        ndarray of int64
        """
        return self._trigger_attack().evaluation_rows(y_test)

    def succeeded(self, clean_prediction, poisoned_prediction, y_true) -> np.ndarray:
        """Whether the ``test_trigger`` stage reached its goal on each evaluated point.

        Parameters
        ----------
        clean_prediction, poisoned_prediction, y_true : ndarray of shape (n,)
            As in :meth:`PoisoningAttack.succeeded`.

        Returns
        -------
        ndarray of bool of shape (n,)
        """
        return self._trigger_attack().succeeded(clean_prediction, poisoned_prediction, y_true)
