"""Algorithm 1 of Steinhardt, Koh & Liang (2017): bound on the poisoned training loss, attack."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.utils import check_random_state
from tqdm.auto import tqdm

from sklearn_certify.convex._checks import check_run_inputs
from sklearn_certify.convex._defense import CLASSES, SphereSlabDefense
from sklearn_certify.convex._dual_averaging import DualAveraging, poison_gradient
from sklearn_certify.convex._losses import (
    check_loss,
    loss_value,
    margins,
    mean_loss_and_gradient,
)
from sklearn_certify.convex._oracle import make_oracle

__all__ = ["UpperBoundResult", "n_poison_points", "upper_bound", "worst_case_point"]

#: Margins closer than this count as a tie between the classes (resolved to +1), so
#: that oracles differing by solver round-off pick the same class.
_TIE_TOL = 1e-9


def n_poison_points(epsilon: float, n: int) -> int:
    """Number of poison points ``round(epsilon * n)`` added to ``n`` clean points."""
    return int(np.round(epsilon * n))


@dataclass(frozen=True)
class UpperBoundResult:
    """Outcome of :func:`upper_bound`.

    Attributes
    ----------
    upper_bound : float
        U*: the smallest ``clean_loss(theta) + epsilon_effective * worst_loss(theta)``
        over the recorded iterates. Under the oracle defence it bounds
        ``min_theta (1/n) L(theta; D_c u D_p)`` for every feasible poison set of
        ``n_poison`` points (the paper's M).
    epsilon : float
        The requested poison fraction.
    epsilon_effective : float
        ``n_poison / n``, the fraction actually used in the bound.
    n_poison : int
        ``round(epsilon * n)``.
    clean_loss : float
        Mean clean loss at the best iterate.
    poison_loss : float
        Worst feasible single-point loss at the best iterate.
    theta : ndarray of shape (n_features + 1,)
        Best iterate ``(w, b)`` (bias last), with ``||theta||^2 <= rho_sq``.
    poison_X : ndarray of shape (n_poison, n_features)
        The candidate attack: worst-case points of the trajectory.
    poison_y : ndarray of shape (n_poison,)
        Their labels.
    best_iteration : int
        Index (0-based) of the iteration whose recorded bound is U*.
    trace : dict of ndarray
        Per iteration: ``"upper_bound"``, ``"clean_loss"``, ``"poison_loss"``,
        ``"norm_sq"`` (of the iterate evaluated) and ``"lambda"``.
    iterates_X, iterates_y : ndarray
        All worst-case points of the run (``max_iter`` rows).
    """

    upper_bound: float
    epsilon: float
    epsilon_effective: float
    n_poison: int
    clean_loss: float
    poison_loss: float
    theta: np.ndarray
    poison_X: np.ndarray
    poison_y: np.ndarray
    best_iteration: int
    loss: str
    rho_sq: float
    trace: dict = field(repr=False)
    iterates_X: np.ndarray = field(repr=False)
    iterates_y: np.ndarray = field(repr=False)

    @property
    def coef_(self) -> np.ndarray:
        """Weights ``w`` of the best iterate."""
        return self.theta[:-1]

    @property
    def intercept_(self) -> float:
        """Bias ``b`` of the best iterate."""
        return float(self.theta[-1])

    def bound_at(self, epsilon: float) -> float:
        """The bound this run's best ``theta`` certifies at another ``epsilon`` (same ``n``)."""
        return self.clean_loss + epsilon * self.poison_loss


def worst_case_point(oracle, w: np.ndarray, b: float):
    """The feasible labelled point with the smallest margin at ``theta = (w, b)``.

    Parameters
    ----------
    oracle : ClosedFormOracle or CvxpyOracle
        A fitted oracle.
    w : ndarray of shape (n_features,)
    b : float

    Returns
    -------
    x : ndarray of shape (n_features,)
    y : int
        Its label; margins within ``1e-9`` count as a tie, resolved to +1 as
        in the released code.
    margin : float
        ``y (w . x + b)`` of the returned point.
    min_margin : float
        The exact smallest margin over both classes (what the bound uses).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify.convex import ClosedFormOracle, SphereSlabDefense
    >>> X = np.array([[2., 0], [3, 1], [3, -1], [4, 0], [-2, 0], [-3, 1], [-3, -1], [-4, 0]])
    >>> y = np.array([1, 1, 1, 1, -1, -1, -1, -1])
    >>> oracle = ClosedFormOracle().fit(SphereSlabDefense(percentile=50).fit(X, y))
    >>> x, label, margin, _ = worst_case_point(oracle, np.array([0.2, 0.0]), 0.05)
    >>> x, label, round(margin, 6)
    (array([-2.5,  0. ]), -1, 0.45)
    """
    candidates = oracle.worst_points(w)
    m = margins(candidates, CLASSES, w, b)
    j = 1 if m[1] <= m[0] + _TIE_TOL else 0
    return candidates[j], int(CLASSES[j]), float(m[j]), float(m.min())


def _resolve_defense(defense, X, y) -> SphereSlabDefense:
    if defense is None:
        return SphereSlabDefense().fit(X, y)
    if not isinstance(defense, SphereSlabDefense):
        raise TypeError(
            f"defense must be a SphereSlabDefense or None, got {type(defense).__name__}."
        )
    fitted = hasattr(defense, "centroids_")
    if defense.data_dependent_ if fitted else defense.data_dependent:
        raise ValueError(
            "upper_bound certifies the oracle defence (centroids from the clean data). For "
            "data_dependent=True use data_dependent_estimate, which is an estimate, not a "
            "certificate."
        )
    if not fitted:
        return SphereSlabDefense(**defense.get_params()).fit(X, y)
    if defense.n_features_in_ != X.shape[1]:
        raise ValueError(
            f"defense was fitted on {defense.n_features_in_} features but X has {X.shape[1]}."
        )
    return defense


def upper_bound(
    X,
    y,
    epsilon: float,
    *,
    rho_sq: float,
    defense: SphereSlabDefense | None = None,
    lr: float = 0.1,
    max_iter: int = 2000,
    oracle="closed_form",
    loss: str = "hinge",
    attack: str = "iterates",
    random_state=None,
    verbose: bool = False,
) -> UpperBoundResult:
    """Certified upper bound U* on the poisoned training loss, and a candidate attack.

    Runs Algorithm 1 of Steinhardt, Koh & Liang (2017): dual averaging on
    ``U(theta) = (1/n) L(theta; D_c) + eps * max_{(x, y) in F} loss(theta; x, y)``
    over the ball ``||w||^2 + b^2 <= rho_sq`` (bias included), with the
    regulariser ``lambda`` starting at ``1/lr`` and only growing. ``U`` is
    recorded at each iterate *before* its update; U* is the smallest value.
    Every ``theta`` in the ball gives a valid bound because the inner maximum is
    solved exactly; the online learner only searches for a good ``theta``.

    What it certifies: for every set of ``round(epsilon * n)`` poison points in
    the feasible set ``F`` of the oracle ``defense`` (fit on clean data),
    ``min_theta (1/n) L(theta; D_c u D_p) <= U*``: a bound on the *training*
    loss. It approximates a bound on the test loss only under the paper's
    assumptions (the defence removes no or few clean points, and the training
    set is large enough that train and test loss are close); on small data
    sets the test loss can exceed U*. See the user guide.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Clean training features.
    y : array-like of shape (n_samples,)
        Labels in {-1, +1}.
    epsilon : float
        Poison points relative to ``n`` (in [0, 1)); the bound uses the
        effective ``round(epsilon * n) / n``.
    rho_sq : float
        Squared radius of the parameter ball ``||w||^2 + b^2 <= rho_sq``.
    defense : SphereSlabDefense, default=None
        Oracle defence; fitted on ``(X, y)`` if unfitted, default
        ``SphereSlabDefense()`` (70th percentile sphere and slab).
    lr : float, default=0.1
        Step size ``eta``; ``lambda`` starts at ``1/lr``.
    max_iter : int, default=2000
        Number of iterations ``T`` (at least ``round(epsilon * n)``).
    oracle : {"closed_form", "cvxpy"} or oracle instance, default="closed_form"
        How to find the worst feasible point; pass ``CvxpyOracle(box=(0, 1))``
        for box constraints or extra cvxpy constraints.
    loss : {"hinge", "logistic", "squared_hinge"}, default="hinge"
        Convex margin loss. All three decrease in the margin, so the oracle is
        the same minimum-margin point.
    attack : {"iterates", "sampled"}, default="iterates"
        Candidate attack. ``"iterates"``: the paper's iterates (all of them when
        ``max_iter == round(epsilon * n)``, the paper's setting; otherwise the
        last ``round(epsilon * n)`` iterates, once the run has settled). ``"sampled"``: the released
        code's uniform sample without replacement, seeded by ``random_state``.
    random_state : int, RandomState instance or None, default=None
        Seed for ``attack="sampled"``.
    verbose : bool, default=False
        Show a progress bar.

    Returns
    -------
    result : UpperBoundResult

    Examples
    --------
    Toy data with centroids (+-3, 0). The best ``theta`` in the ball is ``w = (0.2, 0)``,
    ``b = 0``: mean clean hinge 0.4, and the worst feasible point (``x_1 = 2.5`` on the slab
    boundary of class +1) has hinge 0.5, so U* = 0.4 + 0.25 * 0.5 = 0.525:

    >>> import numpy as np
    >>> from sklearn_certify.convex import SphereSlabDefense, upper_bound
    >>> X = np.array([[2., 0], [3, 1], [3, -1], [4, 0], [-2, 0], [-3, 1], [-3, -1], [-4, 0]])
    >>> y = np.array([1, 1, 1, 1, -1, -1, -1, -1])
    >>> res = upper_bound(X, y, 0.25, rho_sq=0.04, defense=SphereSlabDefense(percentile=50),
    ...                   max_iter=100)
    >>> round(res.upper_bound, 6), res.poison_X.shape
    (0.525, (2, 2))
    """
    X, y, epsilon, rho_sq, lr, max_iter = check_run_inputs(X, y, epsilon, rho_sq, lr, max_iter)
    loss = check_loss(loss)
    if attack not in ("iterates", "sampled"):
        raise ValueError(f"attack must be 'iterates' or 'sampled', got {attack!r}.")
    n = X.shape[0]
    k = n_poison_points(epsilon, n)
    if k > max_iter:
        raise ValueError(
            f"max_iter={max_iter} is smaller than the {k} poison points requested "
            f"(round(epsilon * n)); raise max_iter to at least {k}."
        )
    oracle = make_oracle(oracle, _resolve_defense(defense, X, y))
    trace, iter_X, iter_y, (bound, t_best, theta) = _algorithm1(
        X, y, k / n, oracle, loss=loss, lr=lr, rho_sq=rho_sq, max_iter=max_iter, verbose=verbose
    )
    idx = _attack_indices(attack, k, max_iter, random_state)
    return UpperBoundResult(
        upper_bound=float(bound),
        epsilon=epsilon,
        epsilon_effective=k / n,
        n_poison=k,
        clean_loss=float(trace["clean_loss"][t_best]),
        poison_loss=float(trace["poison_loss"][t_best]),
        theta=theta,
        poison_X=iter_X[idx].copy(),
        poison_y=iter_y[idx].copy(),
        best_iteration=int(t_best),
        loss=loss,
        rho_sq=rho_sq,
        trace=trace,
        iterates_X=iter_X,
        iterates_y=iter_y,
    )


def _algorithm1(X, y, eps_eff, oracle, *, loss, lr, rho_sq, max_iter, verbose):
    """Run the dual-averaging loop of Algorithm 1.

    Returns
    -------
    trace : dict of ndarray
        As :attr:`UpperBoundResult.trace`.
    iter_X : ndarray of shape (max_iter, n_features)
        The worst-case point of each iterate.
    iter_y : ndarray of shape (max_iter,)
        Its label.
    best : tuple of (float, int, ndarray)
        The smallest recorded bound, the first iteration recording it and that
        iterate ``(w, b)``.
    """
    n_features = X.shape[1]
    optimizer = DualAveraging(n_features, lr=lr, rho_sq=rho_sq)
    trace = {
        key: np.empty(max_iter)
        for key in ("upper_bound", "clean_loss", "poison_loss", "norm_sq", "lambda")
    }
    iter_X = np.empty((max_iter, n_features))
    iter_y = np.empty(max_iter, dtype=np.int64)
    best = (np.inf, -1, None)
    for t in tqdm(range(max_iter), disable=not verbose, desc="upper bound"):
        w, b = optimizer.w, optimizer.b
        clean_loss, g_w, g_b = mean_loss_and_gradient(loss, X, y, w, b)
        x_t, y_t, m_t, m_min = worst_case_point(oracle, w, b)
        poison_loss = float(loss_value(loss, m_min))
        bound = clean_loss + eps_eff * poison_loss
        trace["upper_bound"][t] = bound
        trace["clean_loss"][t] = clean_loss
        trace["poison_loss"][t] = poison_loss
        trace["norm_sq"][t] = float(w @ w + b * b)
        iter_X[t] = x_t
        iter_y[t] = y_t
        if bound < best[0]:
            best = (bound, t, np.append(w, b))
        p_w, p_b = poison_gradient(loss, x_t, y_t, m_t, eps_eff)
        optimizer.step(g_w + p_w, g_b + p_b)
        trace["lambda"][t] = optimizer.lam
    return trace, iter_X, iter_y, best


def _attack_indices(attack: str, k: int, max_iter: int, random_state) -> np.ndarray:
    """Which ``k`` of the ``max_iter`` worst-case points form the candidate attack."""
    if attack == "sampled":
        rng = check_random_state(random_state)
        return np.sort(rng.choice(max_iter, size=k, replace=False))
    if k == 0:
        return np.empty(0, dtype=int)
    return np.arange(max_iter - k, max_iter)  # the last k iterates (all if T == k)
