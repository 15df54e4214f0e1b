"""Bound on the poisoned training loss, candidate attack and its scores over poison fractions."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field

import numpy as np
from sklearn.utils import check_random_state

from sklearn_certify._validation import check_real_array, check_scalar_int
from sklearn_certify.convex._checks import check_data, check_epsilon
from sklearn_certify.convex._evaluate import AttackEvaluation, check_learner, evaluate_attack
from sklearn_certify.convex._losses import check_loss
from sklearn_certify.convex._upper_bound import (
    UpperBoundResult,
    _resolve_defense,
    n_poison_points,
    upper_bound,
)

__all__ = ["BoundCurve", "bound_curve"]

_COLUMNS = (
    "epsilon",
    "epsilon_effective",
    "n_poison",
    "upper_bound",
    "upper_bound_single_run",
    "attack_total_train_loss",
    "attack_clean_train_loss",
    "attack_test_loss",
    "attack_test_error",
)


@dataclass(frozen=True)
class BoundCurve:
    """Result of :func:`bound_curve`: one entry per epsilon.

    Attributes
    ----------
    epsilons, epsilons_effective : ndarray
        Requested and effective (``round(eps * n) / n``) poison fractions.
    n_poison : ndarray of int
    upper_bounds : ndarray
        U* per epsilon, pooled over the runs: the best ``theta`` of any run is a
        valid certificate at every epsilon, so each entry is the smallest bound
        any of them certifies there (this also makes the curve non-decreasing).
    upper_bounds_single_run : ndarray
        U* of each epsilon's own run.
    attack_total_train_loss, attack_clean_train_loss, attack_test_loss, attack_test_error : ndarray
        Scores of the defender's model trained on clean data plus the candidate
        attack (NaN when no test set or ``evaluate=False``; the train losses
        are still computed when only the test set is missing).
    results : list of UpperBoundResult
    evaluations : list of AttackEvaluation or None
    """

    epsilons: np.ndarray
    epsilons_effective: np.ndarray
    n_poison: np.ndarray
    upper_bounds: np.ndarray
    upper_bounds_single_run: np.ndarray
    attack_total_train_loss: np.ndarray
    attack_clean_train_loss: np.ndarray
    attack_test_loss: np.ndarray
    attack_test_error: np.ndarray
    results: list = field(repr=False)
    evaluations: list = field(repr=False)

    def as_dict(self) -> dict:
        """The curve's columns as a dict of arrays (e.g. for ``pandas.DataFrame``)."""
        return {name: np.asarray(getattr(self, _attr(name))) for name in _COLUMNS}

    def to_csv(self, path) -> None:
        """Write the curve's columns to ``path`` as CSV (one row per epsilon)."""
        columns = self.as_dict()
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(_COLUMNS)
            for i in range(len(self.epsilons)):
                writer.writerow([_fmt(columns[name][i]) for name in _COLUMNS])


def _attr(column: str) -> str:
    return {
        "epsilon": "epsilons",
        "epsilon_effective": "epsilons_effective",
        "upper_bound": "upper_bounds",
        "upper_bound_single_run": "upper_bounds_single_run",
    }.get(column, column)


def _fmt(value) -> str:
    if isinstance(value, (np.integer, int)):
        return str(int(value))
    return repr(float(value))


def _check_poison_counts(eps: np.ndarray, n: int, max_iter) -> None:
    """Refuse, before any bound is computed, every epsilon that asks for more than ``max_iter``.

    The online learner yields one candidate poison point per iteration, so ``max_iter`` must
    reach ``round(epsilon * n)`` for every epsilon (as :func:`upper_bound` requires of one).
    """
    max_iter = check_scalar_int("max_iter", max_iter, min_value=1)
    needed = {float(e): n_poison_points(float(e), n) for e in eps}
    too_many = {e: k for e, k in needed.items() if k > max_iter}
    if too_many:
        shown = ", ".join(f"{e:g}" for e in too_many)
        most = max(too_many.values())
        raise ValueError(
            f"max_iter={max_iter} is smaller than the poison points that epsilons {shown} "
            f"request (round(epsilon * n) with n={n}: up to {most}); raise max_iter to at "
            f"least {most} or use smaller epsilons."
        )


def bound_curve(
    X,
    y,
    epsilons,
    *,
    rho_sq: float,
    X_test=None,
    y_test=None,
    defense=None,
    lr: float = 0.1,
    max_iter: int = 2000,
    oracle="closed_form",
    loss: str = "hinge",
    attack: str = "iterates",
    learner: str = "constrained",
    evaluate: bool = True,
    random_state=None,
    verbose: bool = False,
) -> BoundCurve:
    """Bound U* on the poisoned training loss, attack losses and test error against epsilon.

    The paper's Figure 2. U* bounds the training loss under the oracle defence;
    the attack's test loss is reported next to it and is not bounded by it.

    Fits the oracle ``defense`` once on the clean data, runs :func:`upper_bound`
    for every epsilon and, if ``evaluate``, trains the defender's constrained
    model on clean data plus each candidate attack (:func:`evaluate_attack`).

    Parameters
    ----------
    X, y : clean training data, labels in {-1, +1}.
    epsilons : array-like of float
        Poison fractions in [0, 1).
    rho_sq : float
        Squared radius of the ball on ``(w, b)``.
    X_test, y_test : array-like, default=None
        Held-out data for the attack's test loss and error.
    defense, lr, max_iter, oracle, loss, attack :
        As in :func:`upper_bound`.
    learner : {"constrained", "linear_svc"}, default="constrained"
        As in :func:`evaluate_attack`.
    evaluate : bool, default=True
        Train on each candidate attack and score it.
    random_state : int, RandomState instance or None, default=None
        Seeds the sampled attacks (one draw per epsilon).
    verbose : bool, default=False
        Print one line per epsilon.

    Returns
    -------
    curve : BoundCurve

    Examples
    --------
    >>> from sklearn_certify.convex import bound_curve
    >>> from sklearn_certify.datasets import load_digits_1v7
    >>> X, y = load_digits_1v7(split="train")
    >>> X_test, y_test = load_digits_1v7(split="test")
    >>> curve = bound_curve(X, y, [0.0, 0.1], rho_sq=0.8, X_test=X_test, y_test=y_test,
    ...                     max_iter=300)
    >>> bool(curve.upper_bounds[0] <= curve.upper_bounds[1])
    True
    >>> bool(curve.attack_total_train_loss[1] <= curve.upper_bounds[1] + 1e-6)
    True
    """
    X, y = check_data(X, y, min_per_class=2)
    eps = np.atleast_1d(check_real_array("epsilons", epsilons))
    if eps.ndim != 1 or eps.size == 0:
        raise ValueError("epsilons must be a non-empty 1-D list of poison fractions.")
    for value in eps:
        check_epsilon(float(value), "each entry of epsilons")
    has_test = X_test is not None or y_test is not None
    if has_test and (X_test is None or y_test is None):
        raise ValueError("Pass both X_test and y_test, or neither.")
    if has_test:
        X_test, y_test = check_data(
            X_test, y_test, names=("X_test", "y_test"), n_features=X.shape[1]
        )
    _check_poison_counts(eps, X.shape[0], max_iter)
    if evaluate:
        check_learner(learner, check_loss(loss))
    defense = _resolve_defense(defense, X, y)
    rng = check_random_state(random_state)
    results: list[UpperBoundResult] = []
    evaluations: list[AttackEvaluation | None] = []
    nan = float("nan")
    rows = {key: [] for key in ("total", "clean", "test_loss", "test_error")}
    for value in eps:
        seed = rng.randint(np.iinfo(np.int32).max)
        res = upper_bound(
            X,
            y,
            float(value),
            rho_sq=rho_sq,
            defense=defense,
            lr=lr,
            max_iter=max_iter,
            oracle=oracle,
            loss=loss,
            attack=attack,
            random_state=seed,
        )
        results.append(res)
        ev = None
        if evaluate:
            ev = evaluate_attack(
                X,
                y,
                res.poison_X,
                res.poison_y,
                X_test if has_test else X,
                y_test if has_test else y,
                rho_sq=rho_sq,
                loss=loss,
                learner=learner,
            )
        evaluations.append(ev)
        rows["total"].append(ev.total_train_loss if ev else nan)
        rows["clean"].append(ev.clean_train_loss if ev else nan)
        rows["test_loss"].append(ev.test_loss if (ev and has_test) else nan)
        rows["test_error"].append(ev.test_error if (ev and has_test) else nan)
        if verbose:
            print(
                f"epsilon={value:.4f}  U*={res.upper_bound:.5f}  "
                f"attack total train loss={rows['total'][-1]:.5f}"
            )
    eps_eff = np.array([r.epsilon_effective for r in results])
    single = np.array([r.upper_bound for r in results])
    pooled = np.array([min(r.bound_at(e) for r in results) for e in eps_eff])
    pooled = np.minimum(pooled, single)
    return BoundCurve(
        epsilons=eps,
        epsilons_effective=eps_eff,
        n_poison=np.array([r.n_poison for r in results]),
        upper_bounds=pooled,
        upper_bounds_single_run=single,
        attack_total_train_loss=np.array(rows["total"]),
        attack_clean_train_loss=np.array(rows["clean"]),
        attack_test_loss=np.array(rows["test_loss"]),
        attack_test_error=np.array(rows["test_error"]),
        results=results,
        evaluations=evaluations,
    )
