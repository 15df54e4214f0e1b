"""Train the defender's norm-constrained linear model on clean + poison data and score it."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from sklearn_certify.convex._checks import (
    check_data,
    check_features,
    check_labels,
    check_rho_sq,
)
from sklearn_certify.convex._losses import check_loss, loss_value, margins

__all__ = ["AttackEvaluation", "constrained_linear_fit", "evaluate_attack"]


def _stack(X, P):
    if sp.issparse(X) or sp.issparse(P):
        return sp.vstack([sp.csr_matrix(X), sp.csr_matrix(P)], format="csr")
    return np.vstack([X, P])


def constrained_linear_fit(
    X, y, *, rho_sq: float, loss: str = "hinge", solver=None, return_status: bool = False
):
    """Exactly minimise the mean margin loss subject to ``||w||^2 + b^2 <= rho_sq``.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        Labels in {-1, +1}.
    rho_sq : float
        Squared radius of the ball on ``(w, b)``.
    loss : {"hinge", "logistic", "squared_hinge"}, default="hinge"
    solver : str, default=None
        cvxpy solver (``None``: Clarabel).
    return_status : bool, default=False
        Also return cvxpy's status (``"optimal"`` or ``"optimal_inaccurate"``).

    Returns
    -------
    w : ndarray of shape (n_features,)
    b : float
    status : str
        Only when ``return_status=True``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[2., 0], [3, 1], [3, -1], [4, 0], [-2, 0], [-3, 1], [-3, -1], [-4, 0]])
    >>> y = np.array([1, 1, 1, 1, -1, -1, -1, -1])
    >>> w, b = constrained_linear_fit(X, y, rho_sq=0.04)
    >>> round(float(w[0]), 4), round(abs(float(w[1])), 4), round(abs(b), 4)
    (0.2, 0.0, 0.0)
    """
    X, y = check_data(X, y)
    rho_sq = check_rho_sq(rho_sq)
    loss = check_loss(loss)
    n, d = X.shape
    w = cp.Variable(d)
    b = cp.Variable()
    margins = cp.multiply(y.astype(np.float64), X @ w + b)
    if loss == "hinge":
        terms = cp.pos(1 - margins)
    elif loss == "squared_hinge":
        terms = cp.square(cp.pos(1 - margins))
    else:
        terms = cp.logistic(-margins)
    theta = cp.hstack([w, cp.reshape(b, (1,), order="C")])
    problem = cp.Problem(cp.Minimize(cp.sum(terms) / n), [cp.norm(theta, 2) <= np.sqrt(rho_sq)])
    with warnings.catch_warnings():
        # Clarabel sometimes flags a solution as inaccurate only because its strict
        # stopping test failed; the status is kept in AttackEvaluation.solver_status.
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        if solver is None:
            problem.solve(solver=cp.CLARABEL, max_iter=1000)
        else:
            problem.solve(solver=solver)
    if problem.status not in ("optimal", "optimal_inaccurate"):
        raise RuntimeError(f"The constrained fit ended with cvxpy status {problem.status!r}.")
    w_value, b_value = np.asarray(w.value, dtype=np.float64), float(b.value)
    if return_status:
        return w_value, b_value, problem.status
    return w_value, b_value


def _linear_svc_bisection(X, y, rho_sq, loss, *, wd_low=0.001, wd_high=256.0, max_steps=60):
    """The released code's learner: LinearSVC whose weight decay is bisected so that
    ``||w||^2 + b^2`` lands in ``[rho_sq, rho_sq + 0.01]``."""
    n = X.shape[0]
    n_warn = 0

    def fit(wd):
        nonlocal n_warn
        clf = LinearSVC(
            C=1.0 / (n * wd),
            loss=loss,
            tol=1e-6,
            fit_intercept=True,
            max_iter=100000,
            random_state=24,
            dual=True,
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            clf.fit(X, y)
        n_warn += sum(issubclass(c.category, ConvergenceWarning) for c in caught)
        w, b = clf.coef_.ravel().astype(np.float64), float(clf.intercept_[0])
        return w, b, float(w @ w + b * b)

    lo, hi = wd_low, wd_high
    wd = 0.5 * (lo + hi)
    w, b, nsq = fit(wd)
    for _ in range(max_steps):
        if rho_sq <= nsq <= rho_sq + 0.01:
            break
        if nsq < rho_sq:  # too much decay: lower it
            hi = wd
            if wd <= wd_low * (1 + 1e-9):
                break
        else:  # norm too big: raise decay
            lo = wd
            if wd >= hi * (1 - 1e-9):
                hi *= 2
        wd = 0.5 * (lo + hi)
        w, b, nsq = fit(wd)
    return w, b, wd, n_warn


@dataclass(frozen=True)
class AttackEvaluation:
    """Scores of the defender's model trained on clean + poison data.

    Attributes
    ----------
    total_train_loss : float
        ``(1/n) L(theta; D_c u D_p)``, normalised by the clean size ``n``: the
        quantity U* bounds (the attack's lower bound on the max-min).
    clean_train_loss : float
        Mean loss on the clean training points.
    poison_train_loss : float
        Mean loss on the poison points (``nan`` when there are none).
    test_loss : float
        Mean loss on the test set.
    test_error : float
        Fraction of test points misclassified (``sign(w . x + b) != y``; 0 counts as +1).
    norm_sq : float
        ``||w||^2 + b^2`` of the trained model.
    coef : ndarray
    intercept : float
    learner : str
    weight_decay : float or None
        Weight decay reached by the bisection (``learner="linear_svc"`` only).
    n_convergence_warnings : int
        LinearSVC convergence warnings seen during the bisection.
    solver_status : str or None
        cvxpy status of the exact constrained fit (``learner="constrained"``).
    """

    total_train_loss: float
    clean_train_loss: float
    poison_train_loss: float
    test_loss: float
    test_error: float
    norm_sq: float
    coef: np.ndarray
    intercept: float
    learner: str
    weight_decay: float | None = None
    n_convergence_warnings: int = 0
    solver_status: str | None = None


def check_learner(learner: str, loss: str) -> None:
    """Refuse a learner that does not exist or cannot train with ``loss``."""
    if learner not in ("constrained", "linear_svc"):
        raise ValueError(f"learner must be 'constrained' or 'linear_svc', got {learner!r}.")
    if learner == "linear_svc" and loss == "logistic":
        raise ValueError(
            "learner='linear_svc' supports loss='hinge' or 'squared_hinge'; use one of those, "
            "or learner='constrained' (any loss)."
        )


def evaluate_attack(
    X,
    y,
    poison_X,
    poison_y,
    X_test,
    y_test,
    *,
    rho_sq: float,
    loss: str = "hinge",
    learner: str = "constrained",
) -> AttackEvaluation:
    """Train on clean + poison data (no filtering) and report train and test losses.

    The defender's model is the norm-constrained linear classifier
    ``argmin_{||w||^2 + b^2 <= rho_sq} mean loss`` on ``D_c u D_p``. Its total
    train loss (normalised by the clean size) is a *lower* bound, achieved by this
    attack, on the quantity that :func:`upper_bound` bounds from above.

    Parameters
    ----------
    X, y : clean training data (labels in {-1, +1}).
    poison_X : {array-like, sparse matrix} of shape (n_poison, n_features)
        Poison points (may have zero rows).
    poison_y : array-like of shape (n_poison,)
    X_test, y_test : held-out data.
    rho_sq : float
        Squared radius of the ball on ``(w, b)``.
    loss : {"hinge", "logistic", "squared_hinge"}, default="hinge"
    learner : {"constrained", "linear_svc"}, default="constrained"
        ``"constrained"`` solves the constrained problem exactly with cvxpy;
        ``"linear_svc"`` is the released code's variant, LinearSVC (intercept
        penalised) with its weight decay bisected until ``||w||^2 + b^2`` lies in
        ``[rho_sq, rho_sq + 0.01]`` (hinge and squared hinge only).

    Returns
    -------
    evaluation : AttackEvaluation

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[2., 0], [3, 1], [3, -1], [4, 0], [-2, 0], [-3, 1], [-3, -1], [-4, 0]])
    >>> y = np.array([1, 1, 1, 1, -1, -1, -1, -1])
    >>> ev = evaluate_attack(X, y, np.array([[2.5, 0], [-2.5, 0]]), np.array([1, -1]),
    ...                      X, y, rho_sq=0.04)
    >>> round(ev.total_train_loss, 4), ev.test_error
    (0.525, 0.0)
    """
    X, y = check_data(X, y)
    d = X.shape[1]
    if _is_empty(poison_X):
        poison_X = np.empty((0, d))
    poison_X = check_features(poison_X, "poison_X", n_features=d, allow_empty=True)
    poison_y = check_labels(np.asarray(poison_y).reshape(-1), poison_X.shape[0], "poison_y")
    X_test, y_test = check_data(X_test, y_test, names=("X_test", "y_test"), n_features=d)
    rho_sq = check_rho_sq(rho_sq)
    loss = check_loss(loss)
    X_all = _stack(X, poison_X)
    y_all = np.concatenate([y, poison_y])
    weight_decay, n_warn, status = None, 0, None
    check_learner(learner, loss)
    if learner == "constrained":
        w, b, status = constrained_linear_fit(
            X_all, y_all, rho_sq=rho_sq, loss=loss, return_status=True
        )
    else:
        w, b, weight_decay, n_warn = _linear_svc_bisection(X_all, y_all, rho_sq, loss)

    n = X.shape[0]
    clean = loss_value(loss, margins(X, y, w, b))
    poison = loss_value(loss, margins(poison_X, poison_y, w, b))
    test_scores = np.asarray(X_test @ w).ravel() + b
    test_pred = np.where(test_scores >= 0, 1, -1)
    return AttackEvaluation(
        total_train_loss=float((clean.sum() + poison.sum()) / n),
        clean_train_loss=float(clean.mean()),
        poison_train_loss=float(poison.mean()) if poison.size else float("nan"),
        test_loss=float(loss_value(loss, y_test * test_scores).mean()),
        test_error=float(np.mean(test_pred != y_test)),
        norm_sq=float(w @ w + b * b),
        coef=w,
        intercept=b,
        learner=learner,
        weight_decay=weight_decay,
        n_convergence_warnings=n_warn,
        solver_status=status,
    )


def _is_empty(A) -> bool:
    shape = getattr(A, "shape", None)
    if shape is None:
        A = np.asarray(A)
        shape = A.shape
    return len(shape) >= 1 and shape[0] == 0
