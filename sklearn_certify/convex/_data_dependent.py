"""Data-dependent sphere/slab defence: the released code's SDP *estimate* (not a certificate).

When the defender computes the centroids on the poisoned data ``D_c u D_p``
the attacker can move them, and the inner maximisation of Algorithm 1 is no
longer a convex problem. Following the released MATLAB code of Steinhardt, Koh
& Liang (2017) this module

* restricts the poison to four locations per step: ``x_a+``, ``x_b+``,
  ``x_a-``, ``x_b-`` (the ``a`` points incur loss, with the hinge kept linear by
  requiring their margin to be at most 1, or, when a class cannot reach
  margin 1, giving it zero loss; the ``b`` points only drag the centroids),
  with masses that sum to ``epsilon``;
* relaxes the choice of locations to a semidefinite programme over the 7x7
  Gram matrix of ``[x_a+, x_b+, x_a-, x_b-, mu_+, mu_-, w]``, whose lower-right
  3x3 block is fixed to the true Gram matrix of the clean centroids and ``w``;
* tries the class-proportional mass split and random Dirichlet splits, keeping
  the best.

Because of the 4-point restriction, the relaxation, the random (not
exhaustive) mass splits and the finite run, the resulting number is an
**estimate** of the worst case, not an upper bound.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.extmath import randomized_svd
from tqdm.auto import tqdm

from sklearn_certify._validation import check_scalar_int
from sklearn_certify.convex._checks import check_run_inputs
from sklearn_certify.convex._defense import SphereSlabDefense
from sklearn_certify.convex._dual_averaging import DualAveraging, poison_gradient
from sklearn_certify.convex._losses import margins, mean_loss_and_gradient
from sklearn_certify.convex._upper_bound import n_poison_points

__all__ = ["DataDependentEstimate", "data_dependent_estimate"]

#: Index of each vector in the Gram matrix.
_XA_POS, _XB_POS, _XA_NEG, _XB_NEG, _MU_POS, _MU_NEG, _W = range(7)
_POINT_LABELS = np.array([1, 1, -1, -1])
_FIXED_BLOCK_TOL = 1e-4


@dataclass(frozen=True)
class DataDependentEstimate:
    """Outcome of :func:`data_dependent_estimate` -- an estimate, NOT a certificate.

    Attributes
    ----------
    estimate : float
        Smallest checkpoint value of ``clean_loss(theta) + max over tried mass
        splits of the SDP value``. Not a certified upper bound.
    epsilon, epsilon_effective : float
    n_poison : int
    theta : ndarray of shape (n_features + 1,)
        ``(w, b)`` of the best checkpoint.
    poison_X, poison_y : ndarray
        Candidate attack: ``n_poison`` copies of the four locations realised
        from the best checkpoint's Gram matrix, in proportion to their masses.
    locations : ndarray of shape (4, n_features)
        ``x_a+, x_b+, x_a-, x_b-`` at the best checkpoint.
    masses : ndarray of shape (4,)
        Their masses (fractions of ``n``; they sum to ``epsilon_effective``).
    n_failed_solves : int
        SDP solves that failed or broke the fixed Gram block (their split was
        scored as ``inf``, which makes a checkpoint vacuous, never optimistic).
    trace : dict of ndarray
        ``"checkpoint_iteration"``, ``"checkpoint_estimate"`` and per iteration
        ``"step_value"`` (clean loss + best of the step's splits).
    """

    estimate: float
    epsilon: float
    epsilon_effective: float
    n_poison: int
    theta: np.ndarray
    poison_X: np.ndarray
    poison_y: np.ndarray
    locations: np.ndarray
    masses: np.ndarray
    n_failed_solves: int
    trace: dict = field(repr=False)
    is_certificate: bool = False


class _GramSDP:
    """DPP-compiled SDPs reused for every mass split and every theta.

    The main problem imposes margin <= 1 on both loss-bearing points (so their
    hinge is linear), as the released code does. When that is infeasible (a
    class cannot reach margin 1 inside its moved sphere and slab), the variants
    that drop one or both of those requirements, together with that point's
    (then zero) loss, are solved instead and the best is kept.
    """

    def __init__(self, r_sq, s_sq, sphere: bool, slab: bool, solver, solver_options):
        self.fixed = cp.Parameter((3, 3), symmetric=True)
        self.obj_matrix = cp.Parameter((7, 7), symmetric=True)
        self.obj_const = cp.Parameter()
        self.bias = cp.Parameter()
        self.sphere_mats = [cp.Parameter((7, 7), symmetric=True) for _ in range(4)]
        self.slab_mats = [cp.Parameter((7, 7)) for _ in range(4)]
        self.gap_mat = cp.Parameter((7, 7), symmetric=True)
        self.r_sq, self.s_sq, self.sphere, self.slab = r_sq, s_sq, sphere, slab
        self.solver = solver or cp.CLARABEL
        self.solver_options = solver_options or {}
        self.variants = {}

    def _variant(self, sv_pos: bool, sv_neg: bool):
        key = (sv_pos, sv_neg)
        if key not in self.variants:
            G = cp.Variable((7, 7), PSD=True)
            cons = [G[4:7, 4:7] == self.fixed]
            if sv_pos:
                cons.append(G[_XA_POS, _W] + self.bias <= 1)
            if sv_neg:
                cons.append(-G[_XA_NEG, _W] - self.bias <= 1)
            for i in range(4):
                k = 1 if _POINT_LABELS[i] == 1 else 0
                if self.sphere:
                    cons.append(cp.sum(cp.multiply(self.sphere_mats[i], G)) <= self.r_sq[k])
                if self.slab:
                    offset = cp.sum(cp.multiply(self.slab_mats[i], G))
                    gap = cp.sum(cp.multiply(self.gap_mat, G))
                    cons.append(cp.square(offset) <= self.s_sq[k] * gap)
            objective = self.obj_const + cp.sum(cp.multiply(self.obj_matrix, G))
            self.variants[key] = (cp.Problem(cp.Maximize(objective), cons), G)
        return self.variants[key]

    def _solve_variant(self, sv_pos, sv_neg, masses, b, fixed):
        e_ap, _, e_an, _ = masses
        e_ap, e_an = (e_ap if sv_pos else 0.0), (e_an if sv_neg else 0.0)
        C = np.zeros((7, 7))
        C[_XA_POS, _W] = C[_W, _XA_POS] = -e_ap / 2
        C[_XA_NEG, _W] = C[_W, _XA_NEG] = e_an / 2
        self.obj_matrix.value = C
        self.obj_const.value = e_ap * (1 - b) + e_an * (1 + b)
        problem, G = self._variant(sv_pos, sv_neg)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                problem.solve(solver=self.solver, **self.solver_options)
        except cp.error.SolverError:
            return None, math.inf, None
        status = problem.status
        if status not in ("optimal", "optimal_inaccurate") or G.value is None:
            return status, math.inf, None
        scale = max(1.0, float(np.abs(fixed).max()))
        if np.abs(G.value[4:7, 4:7] - fixed).max() > _FIXED_BLOCK_TOL * scale:
            return "fixed block violated", math.inf, None
        return status, float(problem.value), G.value.copy()

    def solve(self, masses, p, fixed, b):
        """Return (value, G) for one mass split, or (inf, None) on failure."""
        e_ap, e_bp, e_an, e_bn = masses
        beta_pos = np.zeros(7)
        beta_neg = np.zeros(7)
        tot_pos = p[1] + e_ap + e_bp
        tot_neg = p[0] + e_an + e_bn
        beta_pos[[_XA_POS, _XB_POS, _MU_POS]] = np.array([e_ap, e_bp, p[1]]) / tot_pos
        beta_neg[[_XA_NEG, _XB_NEG, _MU_NEG]] = np.array([e_an, e_bn, p[0]]) / tot_neg
        delta = beta_pos - beta_neg
        for i in range(4):
            diff = -(beta_pos if _POINT_LABELS[i] == 1 else beta_neg).copy()
            diff[i] += 1.0
            self.sphere_mats[i].value = np.outer(diff, diff)
            self.slab_mats[i].value = np.outer(diff, delta)
        self.gap_mat.value = np.outer(delta, delta)
        self.fixed.value = fixed
        self.bias.value = b
        status, val, G = self._solve_variant(True, True, masses, b, fixed)
        if status in ("infeasible", "infeasible_inaccurate"):
            best = (-math.inf, None)
            for key in ((True, False), (False, True)):
                _, v, g = self._solve_variant(*key, masses, b, fixed)
                if g is not None and v > best[0]:
                    best = (v, g)
            if best[1] is None:
                _, v, g = self._solve_variant(False, False, masses, b, fixed)
                best = (v, g)
            val, G = best
        if G is None:
            return math.inf, None
        return val, G


def _realise(G, basis, coords, extra):
    """Vectors in R^d whose Gram matrix with (mu_+, mu_-, w) is G (up to round-off)."""
    A = np.linalg.lstsq(coords, G[:4, 4:7].T, rcond=None)[0].T  # (4, k)
    residual = G[:4, :4] - A @ A.T
    vals, vecs = np.linalg.eigh((residual + residual.T) / 2)
    factor = vecs * np.sqrt(np.maximum(vals, 0.0))  # (4, 4)
    m = extra.shape[1]
    return A @ basis.T + factor[:, :m] @ extra.T if m else A @ basis.T


def _basis(vectors, rng_dirs):
    """Orthonormal basis of span(vectors) and up to 4 orthonormal extra directions."""
    Q, R = np.linalg.qr(vectors)
    keep = np.abs(np.diag(R)) > 1e-10 * max(1.0, float(np.abs(R).max()))
    B = Q[:, keep]
    coords = vectors.T @ B  # (3, k)
    extra = rng_dirs - B @ (B.T @ rng_dirs)
    Qe, Re = np.linalg.qr(extra)
    keep_e = np.abs(np.diag(Re)) > 1e-8
    return B, coords, Qe[:, keep_e][:, :4]


def _split_counts(masses, k, n):
    """Integer copies of the four locations, summing to k (largest remainder)."""
    raw = np.asarray(masses) * n
    counts = np.floor(raw).astype(int)
    order = np.argsort(-(raw - counts))
    counts[order[: k - counts.sum()]] += 1
    return counts


class _InnerMax:
    """The attacker's side of one step: the best of several mass splits of the SDP.

    Holds what a run does not change (class proportions, centroids, the compiled
    SDPs, the random directions used to realise the vectors) and counts the
    failed solves.
    """

    def __init__(self, X, y, eps_eff, defense, solver, solver_options, rng):
        self.p = np.array([np.mean(y == -1), np.mean(y == 1)])
        self.mu_neg, self.mu_pos = defense.centroids_
        r_sq = np.where(np.isfinite(defense.radii_), defense.radii_, 0.0) ** 2
        s_sq = np.where(np.isfinite(defense.slab_widths_), defense.slab_widths_, 0.0) ** 2
        self.sdp = _GramSDP(r_sq, s_sq, defense.sphere_, defense.slab_, solver, solver_options)
        n_dirs = min(X.shape[1], 8)
        seed = rng.randint(2**31 - 1)
        self.dirs = randomized_svd(X, n_components=n_dirs, random_state=seed)[2].T
        self.eps_eff = eps_eff
        self.heuristic = eps_eff * np.array([self.p[1], 0.0, self.p[0], 0.0])
        self.rng = rng
        self.n_failed = 0

    def splits(self, count):
        """The class-proportional mass split followed by ``count`` random ones."""
        p = self.p
        gam = self.rng.gamma(np.array([p[1], p[1], p[0], p[0]]), size=(count, 4))
        random = self.eps_eff * gam / gam.sum(axis=1, keepdims=True)
        return np.vstack([self.heuristic[None, :], random])

    def maximise(self, w, b, n_random):
        """Best split at ``(w, b)`` among :meth:`splits` (``n_random`` random ones).

        Returns
        -------
        value : float
            Best SDP value (``-inf`` if every solve failed).
        G : ndarray of shape (7, 7) or None
            Its Gram matrix.
        masses : ndarray of shape (4,) or None
            Its split.
        n_failed : int
            Failed solves among the splits (also added to ``self.n_failed``).
        vectors : ndarray of shape (n_features, 3)
            ``[mu_+, mu_-, w]``, the vectors of the fixed Gram block.
        """
        vectors = np.column_stack([self.mu_pos, self.mu_neg, w])
        fixed = vectors.T @ vectors
        best_val, best_G, best_masses, failed = -math.inf, None, None, 0
        for masses in self.splits(n_random):
            val, G = self.sdp.solve(masses, self.p, fixed, b)
            if G is None:
                failed += 1
            elif val > best_val:
                best_val, best_G, best_masses = val, G, masses
        self.n_failed += failed
        return best_val, best_G, best_masses, failed, vectors

    def realise(self, G, vectors):
        """The four locations (rows) whose Gram matrix with ``vectors`` is ``G``."""
        B, coords, extra = _basis(vectors, self.dirs)
        return _realise(G, B, coords, extra)


class _CheckpointLog:
    """Scores of the checkpointed iterates and the best of them."""

    def __init__(self):
        self.iterations, self.scores = [], []
        self.best_score, self.best = math.inf, None

    def score(self, t, w, b, X, y, inner, n_splits):
        """Score ``(w, b)``: clean loss plus the best of the proportional and ``n_splits`` splits.

        A split whose solve failed makes the score ``inf`` (vacuous, never optimistic).
        """
        clean, _, _ = mean_loss_and_gradient("hinge", X, y, w, b)
        val, G, masses, failed, vectors = inner.maximise(w, b, n_splits)
        score = clean + val if failed == 0 else math.inf
        self.iterations.append(t)
        self.scores.append(score)
        if G is not None and (score < self.best_score or self.best is None):
            self.best_score, self.best = score, (np.append(w, b), G, masses, vectors)


def _data_dependent_defense(defense, X, y) -> SphereSlabDefense:
    """``defense`` (default ``SphereSlabDefense()``) refitted with ``data_dependent=True``."""
    if defense is None:
        defense = SphereSlabDefense(data_dependent=True)
    if not isinstance(defense, SphereSlabDefense):
        raise TypeError(f"defense must be a SphereSlabDefense, got {type(defense).__name__}.")
    if not (defense.sphere or defense.slab):
        raise ValueError("defense needs the sphere or the slab constraint.")
    return SphereSlabDefense(**{**defense.get_params(), "data_dependent": True}).fit(X, y)


def _run(X, y, inner, *, lr, rho_sq, max_iter, n_splits, n_check_splits, check_every, verbose):
    """Dual averaging with the SDP inner maximisation; returns the log and the step values."""
    optimizer = DualAveraging(X.shape[1], lr=lr, rho_sq=rho_sq)
    log = _CheckpointLog()
    step_values = np.empty(max_iter)
    for t in tqdm(range(max_iter), disable=not verbose, desc="data-dependent estimate"):
        w, b = optimizer.w, optimizer.b
        if t > 0 and t % check_every == 0:
            log.score(t, w, b, X, y, inner, n_check_splits)
        clean, g_w, g_b = mean_loss_and_gradient("hinge", X, y, w, b)
        val, G, masses, _, vectors = inner.maximise(w, b, n_splits)
        if G is None:
            raise RuntimeError(
                "Every SDP solve of this step failed; try another solver (solver='SCS') or "
                "check the data for extreme scales."
            )
        step_values[t] = clean + val
        points = inner.realise(G, vectors)
        point_margins = margins(points, _POINT_LABELS, w, b)
        p_w, p_b = poison_gradient("hinge", points, _POINT_LABELS, point_margins, masses)
        optimizer.step(g_w + p_w, g_b + p_b)
    log.score(max_iter, optimizer.w, optimizer.b, X, y, inner, n_check_splits)
    return log, step_values


def _whole_point_attack(inner, best, k, n):
    """Locations, masses and copies of the best checkpoint's attack with whole points.

    The SDP is re-solved with masses that are whole numbers of points, so that
    the realised attack is exactly feasible for the data-dependent defence.
    """
    theta, G, masses, vectors = best
    counts = _split_counts(masses, k, n)
    if k:
        _, G_int = inner.sdp.solve(counts / n, inner.p, vectors.T @ vectors, float(theta[-1]))
        if G_int is not None:
            G, masses = G_int, counts / n
    return inner.realise(G, vectors), np.asarray(masses), counts


def data_dependent_estimate(
    X,
    y,
    epsilon: float,
    *,
    rho_sq: float,
    defense: SphereSlabDefense | None = None,
    lr: float = 0.005,
    max_iter: int = 200,
    n_splits: int = 10,
    n_check_splits: int = 200,
    check_every: int | None = None,
    solver: str | None = None,
    solver_options: dict | None = None,
    random_state=None,
    verbose: bool = False,
) -> DataDependentEstimate:
    """Estimate (NOT certify) the worst hinge loss under the data-dependent defence.

    The defender recomputes the class centroids on clean + poison data, so the
    attacker can drag them. This runs the released code's heuristic (see the
    module docstring): dual averaging on ``theta`` as in :func:`upper_bound`,
    where each step's inner maximisation is the SDP relaxation over four poison
    locations, tried for the class-proportional mass split and ``n_splits``
    random ones. Every ``check_every`` steps and at the end, the current
    ``theta`` is scored with ``n_check_splits`` random splits; the estimate is
    the smallest such score. The radii and slab widths stay those of the clean
    data (``defense`` fitted on ``(X, y)``).

    This is an **estimate**: the four-location restriction, the relaxation,
    the random mass splits and the non-convexity of the problem mean the true
    worst case may be higher. Use it to see how much weaker the realistic
    defence is than the oracle one, not as a guarantee.

    Parameters
    ----------
    X, y : clean training data, labels in {-1, +1} (dense or sparse X).
    epsilon : float
        Poison fraction in [0, 1) (effective ``round(epsilon * n) / n``).
    rho_sq : float
        Squared radius of the ball on ``(w, b)``.
    defense : SphereSlabDefense, default=None
        Supplies the percentile and the enabled constraints; default
        ``SphereSlabDefense(data_dependent=True)``.
    lr : float, default=0.005
        Step size (the released code's value).
    max_iter : int, default=200
        Number of dual-averaging steps.
    n_splits : int, default=10
        Random mass splits tried at each step (plus the proportional one).
    n_check_splits : int, default=200
        Random mass splits used to score a checkpoint.
    check_every : int, default=None
        Checkpoint period; default ``min(round(0.126 * max_iter), 200)`` as in
        the released code (at least 1). The last iterate is always scored.
    solver : str, default=None
        cvxpy SDP solver (``None``: Clarabel).
    solver_options : dict, default=None
        Extra keyword arguments for :meth:`cvxpy.Problem.solve`.
    random_state : int, RandomState instance or None, default=None
        Seeds the mass splits and the extra directions of the realised vectors.
    verbose : bool, default=False
        Show a progress bar.

    Returns
    -------
    result : DataDependentEstimate
        With ``is_certificate=False``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify.convex import data_dependent_estimate
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(1, 1, (30, 5)), rng.normal(-1, 1, (30, 5))])
    >>> y = np.repeat([1, -1], 30)
    >>> est = data_dependent_estimate(X, y, 0.1, rho_sq=1.0, max_iter=5, n_splits=2,
    ...                               n_check_splits=4, random_state=0)
    >>> est.is_certificate, est.poison_X.shape
    (False, (6, 5))
    """
    X, y, epsilon, rho_sq, lr, max_iter = check_run_inputs(X, y, epsilon, rho_sq, lr, max_iter)
    n_splits = check_scalar_int("n_splits", n_splits, min_value=0)
    n_check_splits = check_scalar_int("n_check_splits", n_check_splits, min_value=0)
    if check_every is None:
        check_every = max(1, min(round(0.126 * max_iter), 200))
    check_every = check_scalar_int("check_every", check_every, min_value=1)
    defense = _data_dependent_defense(defense, X, y)
    rng = check_random_state(random_state)
    n = X.shape[0]
    k = n_poison_points(epsilon, n)
    inner = _InnerMax(X, y, k / n, defense, solver, solver_options, rng)
    log, step_values = _run(
        X,
        y,
        inner,
        lr=lr,
        rho_sq=rho_sq,
        max_iter=max_iter,
        n_splits=n_splits,
        n_check_splits=n_check_splits,
        check_every=check_every,
        verbose=verbose,
    )
    if log.best is None:
        raise RuntimeError(
            "Every SDP solve at the checkpoints failed; try another solver (solver='SCS')."
        )
    locations, masses, counts = _whole_point_attack(inner, log.best, k, n)
    return DataDependentEstimate(
        estimate=float(log.best_score),
        epsilon=epsilon,
        epsilon_effective=k / n,
        n_poison=k,
        theta=log.best[0],
        poison_X=np.repeat(locations, counts, axis=0),
        poison_y=np.repeat(_POINT_LABELS, counts),
        locations=locations,
        masses=masses,
        n_failed_solves=int(inner.n_failed),
        trace={
            "checkpoint_iteration": np.array(log.iterations),
            "checkpoint_estimate": np.array(log.scores),
            "step_value": step_values,
        },
    )
