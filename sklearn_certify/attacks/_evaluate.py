"""Poison, refit and compare with the certificate: the attack harness."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import clone

from sklearn_certify.attacks._base import PoisoningAttack, check_budget, check_training_set

__all__ = [
    "CertificateViolationError",
    "CertificateViolationWarning",
    "evaluate_under_attack",
]


class CertificateViolationWarning(UserWarning):
    """An attack changed a prediction certified against an attack of its size."""


class CertificateViolationError(RuntimeError):
    """Raised instead of :class:`CertificateViolationWarning` with ``on_violation="raise"``."""


def _check_estimator(estimator) -> None:
    if not (hasattr(estimator, "fit") and hasattr(estimator, "certify")):
        raise TypeError(
            "estimator must be an unfitted certified classifier with fit and certify (e.g. "
            f"DPAClassifier), got {type(estimator).__name__}."
        )
    params = estimator.get_params(deep=False)
    seed = params.get("random_state")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise ValueError(
            f"estimator.random_state must be an int, got {seed!r}: the poisoned set is refit "
            "with the same seed as the clean one, as the certificate assumes."
        )
    if "alpha" in params:
        raise ValueError(
            f"{type(estimator).__name__} certificates hold with probability 1 - alpha, and "
            "evaluate_under_attack checks deterministic certificates only (DPAClassifier in "
            "all its variants)."
        )


def _check_test_set(X, X_test, y_test) -> tuple[np.ndarray, np.ndarray]:
    X_test, y_test = np.asarray(X_test), np.asarray(y_test)
    if X_test.shape[1:] != X.shape[1:]:
        raise ValueError(
            f"X_test rows must have the shape of the rows of X {X.shape[1:]}, got "
            f"{X_test.shape[1:]}."
        )
    if y_test.ndim != 1 or y_test.shape[0] != X_test.shape[0]:
        raise ValueError(
            f"y_test must be 1-d with one label per row of X_test ({X_test.shape[0]}), got "
            f"shape {y_test.shape}."
        )
    return X_test, y_test


def _check_budgets(budgets, unit: str) -> list:
    values = np.asarray(budgets, dtype=object).reshape(-1) if np.ndim(budgets) else [budgets]
    if len(values) == 0:
        raise ValueError("budgets must hold at least one budget.")
    try:
        return [check_budget(b.item() if hasattr(b, "item") else b, unit) for b in values]
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"budgets: {exc}") from exc


def _fraction(count: int, total: int) -> float:
    return count / total if total else float("nan")


def _refit(estimator, clean_model, result):
    """The model on the poisoned set (the clean model itself when nothing changed)."""
    if result.is_clean:
        return clean_model
    return clone(estimator).fit(result.X, result.y)


def _checked_cost(result, budget, attack, unit: str) -> float:
    spent = result.spent
    if spent is None or spent > budget:
        raise RuntimeError(
            f"{type(attack).__name__} spent {spent} {attack.unit} with a budget of {budget}."
        )
    cost = result.cost(unit)
    if cost is None:
        raise ValueError(
            f"{type(attack).__name__} {result.describe()}, which a certificate counting "
            f"{unit} does not measure: the attack is outside the certificate's threat model."
        )
    return cost


def evaluate_under_attack(
    estimator,
    attack: PoisoningAttack,
    X,
    y,
    X_test,
    y_test,
    budgets,
    *,
    on_violation: str = "warn",
) -> list[dict]:
    """Poison the training set at each budget, refit, and hold the result to the certificate.

    The estimator is fitted on the clean set and certifies the evaluation inputs (the test
    points the attack targets, with its test-time trigger if it has one). For each budget
    the attack poisons the training set (once for a global attack, once per test point for
    a per-target attack, which is then handed the clean model and that point), a clone of
    the estimator with the same parameters, ``random_state`` included, is fitted on the
    poisoned set, and its predictions are compared with the clean ones. The poisoning's
    cost is measured in the certificate's unit (:meth:`PoisonResult.cost`); a prediction
    is *certified at that cost* when it is not an abstention and its radius is at least the
    cost. A certified prediction that the attack changed contradicts the certificate: the
    harness warns (:class:`CertificateViolationWarning`) or raises
    (:class:`CertificateViolationError`).

    Parameters
    ----------
    estimator : estimator
        Unfitted certified classifier with an integer ``random_state`` (a
        :class:`~sklearn_certify.DPAClassifier` in any variant).
    attack : PoisoningAttack
        The attack; its budgets are in ``attack.unit``.
    X, y : array-like
        Clean training set.
    X_test, y_test : array-like
        Test set: the attack is evaluated on ``attack.evaluation_rows(y_test)`` (all rows,
        or for a backdoor those of the other classes) with ``attack.test_inputs`` applied;
        clean accuracy is measured on all of ``X_test`` as given.
    budgets : sequence of int or float
        Attack sizes in ``attack.unit``, each evaluated in turn.
    on_violation : {"warn", "raise"}, default="warn"
        What a certified prediction changed by the attack triggers.

    Returns
    -------
    list of dict
        One row per budget (``pandas.DataFrame(rows)`` makes a table) with: ``attack``,
        ``estimator``, ``budget``, ``budget_unit``, ``cost`` (the largest cost of the
        poisonings in ``radius_unit``), ``radius_unit``, ``n_points`` (evaluated test
        points), ``clean_accuracy`` (of the poisoned model(s) on the clean test set),
        ``attack_success`` (fraction of evaluated points where the attack reached its
        goal, :meth:`PoisoningAttack.succeeded`), ``certified_accuracy`` (clean model's
        certified predictions that are correct, certified at the cost), ``n_certified``,
        ``certified_changed`` (fraction of the certified predictions the attack changed: 0
        for a sound deterministic certificate; NaN when none is certified),
        ``n_certified_changed``, ``uncertified_changed`` (the same among the other points:
        near 1 when the certificate is tight against this attack) and ``violation``.

    Raises
    ------
    CertificateViolationError
        With ``on_violation="raise"``, at the first budget where the attack changed a
        certified prediction.
    ValueError
        When ``estimator.random_state`` is not an int, when its certificates are
        probabilistic (a smoothing classifier with ``alpha``: not supported yet), or when the
        attack changes what the certificate does not count (rows or features against a
        label-flip certificate).

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn_certify import DPAClassifier
    >>> from sklearn_certify.attacks import PartitionInsertionAttack, evaluate_under_attack
    >>> from sklearn_certify.datasets import load_digits
    >>> X, y = load_digits(split="train")
    >>> X_test, y_test = load_digits(split="test")
    >>> clf = DPAClassifier(KNeighborsClassifier(1), n_partitions=11, random_state=0)
    >>> rows = evaluate_under_attack(clf, PartitionInsertionAttack(random_state=0), X, y,
    ...                              X_test[:5], y_test[:5], budgets=[0, 4])
    >>> [(r["budget"], r["certified_changed"], r["uncertified_changed"]) for r in rows]
    [(0, 0.0, nan), (4, 0.0, 1.0)]
    """
    if not isinstance(attack, PoisoningAttack):
        raise TypeError(f"attack must be a PoisoningAttack, got {type(attack).__name__}.")
    if on_violation not in ("warn", "raise"):
        raise ValueError(f"on_violation must be 'warn' or 'raise', got {on_violation!r}.")
    _check_estimator(estimator)
    X, y = check_training_set(X, y)
    X_test, y_test = _check_test_set(X, X_test, y_test)
    budgets = _check_budgets(budgets, attack.unit)
    rows = attack.evaluation_rows(y_test)
    if rows.size == 0:
        raise ValueError(
            f"{type(attack).__name__} is evaluated on no row of y_test (a backdoor needs test "
            "points of classes other than its target_label)."
        )
    X_eval, y_eval = attack.test_inputs(X_test[rows]), y_test[rows]
    clean_model = clone(estimator).fit(X, y)
    cert = clean_model.certify(X_eval)
    clean_prediction = cert.prediction
    correct = (clean_prediction == y_eval) & ~cert.abstain
    table = []
    for budget in budgets:
        if attack.per_target:
            costs, predictions, accuracies = [], [], []
            for i in range(X_eval.shape[0]):
                result = attack.poison(X, y, budget, model=clean_model, target=X_eval[i])
                costs.append(_checked_cost(result, budget, attack, cert.unit))
                model = _refit(estimator, clean_model, result)
                predictions.append(model.predict(X_eval[i : i + 1])[0])
                accuracies.append(model.score(X_test, y_test))
            cost, prediction = np.asarray(costs), np.asarray(predictions)
            accuracy = float(np.mean(accuracies))
        else:
            result = attack.poison(X, y, budget, model=clean_model)
            cost = np.full(X_eval.shape[0], _checked_cost(result, budget, attack, cert.unit))
            model = _refit(estimator, clean_model, result)
            prediction = model.predict(X_eval)
            accuracy = float(model.score(X_test, y_test))
        certified = ~cert.abstain & (cert.radius >= cost)
        changed = prediction != clean_prediction
        success = attack.succeeded(clean_prediction, prediction, y_eval)
        n_certified_changed = int(np.sum(changed & certified))
        row = {
            "attack": type(attack).__name__,
            "estimator": type(estimator).__name__,
            "budget": budget,
            "budget_unit": attack.unit,
            "cost": cost.max().item(),
            "radius_unit": cert.unit,
            "n_points": int(X_eval.shape[0]),
            "clean_accuracy": accuracy,
            "attack_success": float(np.mean(success)),
            "certified_accuracy": float(np.mean(correct & certified)),
            "n_certified": int(certified.sum()),
            "certified_changed": _fraction(n_certified_changed, int(certified.sum())),
            "n_certified_changed": n_certified_changed,
            "uncertified_changed": _fraction(
                int(np.sum(changed & ~certified)), int(np.sum(~certified))
            ),
            "violation": n_certified_changed > 0,
        }
        table.append(row)
        if row["violation"]:
            message = (
                f"{row['attack']} at budget {budget} {attack.unit} (cost {row['cost']} "
                f"{cert.unit}) changed {n_certified_changed} of the {row['n_certified']} "
                f"predictions {row['estimator']} certified against it."
            )
            if on_violation == "raise":
                raise CertificateViolationError(message)
            warnings.warn(message, CertificateViolationWarning, stacklevel=2)
    return table
