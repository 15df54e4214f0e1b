"""Per-step oracle of Algorithm 1: the feasible point that maximises the loss.

Every loss used here decreases in the margin ``y (w . x + b)``, so for a class
``y`` the worst feasible point is the one minimising ``y w . x``: a linear
objective ``c . x`` with ``c = -y w`` maximised over the feasible set. The bias
``b`` is a constant per class; it matters only when the two classes are compared.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import cvxpy as cp
import numpy as np
from sklearn.utils.validation import check_is_fitted

from sklearn_certify.convex._defense import CLASSES, SphereSlabDefense

__all__ = ["ClosedFormOracle", "CvxpyOracle", "max_linear_sphere_slab"]

_TIGHT_CLARABEL = {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10}


def max_linear_sphere_slab(c, mu, v, r, s) -> np.ndarray:
    """Maximise the linear objective ``c @ x`` over a sphere cut by a slab.

    The feasible set is ``||x - mu|| <= r`` and ``|v @ (x - mu)| <= s``.

    The problem reduces to two dimensions (the directions ``v`` and the part of
    ``c`` orthogonal to it): if the sphere's tangent point ``mu + r c/||c||``
    lies in the slab it is optimal; otherwise the slab binds and the optimum is
    ``mu + sign(c . v) s v + sqrt(r^2 - s^2) c_perp/||c_perp||``. Cost O(d).

    Parameters
    ----------
    c : ndarray of shape (d,)
        Objective direction (``-y w`` for the hinge loss of class ``y``).
    mu : ndarray of shape (d,)
        Centre of the sphere and of the slab.
    v : ndarray of shape (d,) or None
        Slab normal (normalised here); ``None`` means no slab.
    r : float
        Sphere radius (finite).
    s : float
        Slab half-width (``inf`` means no slab).

    Returns
    -------
    x : ndarray of shape (d,)
        A maximiser (``mu`` itself when ``c`` is zero: every point is optimal).

    Examples
    --------
    A 2-D step that is easy by hand (class +1, slab binding): with ``u = x - mu``, the slab
    fixes ``v . u = s``, i.e. ``u_1 = -1``, and the sphere then gives
    ``u_2 = -sqrt(r^2 - 1) = -sqrt(3)``:

    >>> import numpy as np
    >>> x = max_linear_sphere_slab(np.array([-1., -1.]), np.array([2., 0.]),
    ...                            np.array([-1., 0.]), r=2.0, s=1.0)
    >>> np.round(x, 6)
    array([ 1.      , -1.732051])
    """
    c = np.asarray(c, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    if not np.isfinite(r):
        raise ValueError("max_linear_sphere_slab needs a finite sphere radius r.")
    norm_c = float(np.linalg.norm(c))
    if norm_c == 0.0:
        return mu.copy()
    u = (r / norm_c) * c
    if v is None or not np.isfinite(s):
        return mu + u
    v = np.asarray(v, dtype=np.float64)
    v = v / np.linalg.norm(v)
    alpha = float(c @ v)
    if abs(float(u @ v)) <= s:
        return mu + u
    c_perp = c - alpha * v
    norm_perp = float(np.linalg.norm(c_perp))
    u = np.sign(alpha) * s * v
    if norm_perp > 0.0 and r > s:
        u = u + (np.sqrt(r * r - s * s) / norm_perp) * c_perp
    return mu + u


class ClosedFormOracle:
    """Exact O(d) oracle for the sphere (optionally cut by the slab) defence.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify.convex import ClosedFormOracle, SphereSlabDefense
    >>> X = np.array([[2., 0], [3, 1], [3, -1], [4, 0], [-2, 0], [-3, 1], [-3, -1], [-4, 0]])
    >>> y = np.array([1, 1, 1, 1, -1, -1, -1, -1])
    >>> oracle = ClosedFormOracle().fit(SphereSlabDefense(percentile=50).fit(X, y))
    >>> oracle.worst_points(np.array([0.2, 0.0]))   # rows: class -1, class +1
    array([[-2.5,  0. ],
           [ 2.5,  0. ]])
    """

    name = "closed_form"

    def fit(self, defense: SphereSlabDefense) -> ClosedFormOracle:
        """Bind the oracle to a fitted defence."""
        check_is_fitted(defense, "centroids_")
        if not defense.sphere_:
            raise ValueError(
                "The closed-form oracle needs the sphere constraint: without it the feasible "
                "set is unbounded and the worst-case loss is infinite. Use sphere=True, or "
                "oracle=CvxpyOracle(box=(low, high)) to bound the features."
            )
        self.defense_ = defense
        return self

    def worst_points(self, w: np.ndarray) -> np.ndarray:
        """Worst feasible point of each class for weights ``w``; rows follow ``[-1, +1]``."""
        d = self.defense_
        out = np.empty((2, w.shape[0]))
        for k, label in enumerate(CLASSES):
            out[k] = max_linear_sphere_slab(
                -label * w, d.centroids_[k], d.slab_direction_, d.radii_[k], d.slab_widths_[k]
            )
        return out


class CvxpyOracle:
    """General oracle solved with cvxpy, for feasible sets without a closed form.

    Per class it solves ``maximise c . u`` over ``u = x - mu_y`` subject to the
    enabled sphere and slab constraints, an optional box ``low <= x <= high``
    (e.g. pixels in [0, 1]) and any extra cvxpy constraints. The problem is
    written in disciplined parametrized form (the variable is ``u = x - mu_y``
    and ``c = -y w`` is one :class:`cvxpy.Parameter`), so cvxpy compiles it once
    and every later step only re-solves it.

    Parameters
    ----------
    box : tuple of (float or ndarray, float or ndarray), default=None
        Lower and upper bounds on every feature of a poison point.
    constraints : callable, default=None
        ``constraints(x, y) -> list of cvxpy constraints`` where ``x`` is the
        cvxpy expression of the poison point and ``y`` its label (-1 or +1).
    solver : str, default=None
        cvxpy solver name. ``None`` uses Clarabel (cvxpy's default open-source
        conic solver) with tight tolerances (1e-10) when no ``solver_options``
        are given, so that its points match the closed form.
    solver_options : dict, default=None
        Keyword arguments passed to :meth:`cvxpy.Problem.solve`.
    compile_once : bool, default=True
        Keep one parametrised problem per class and re-solve it. ``False``
        rebuilds the problem at every call (slower; kept for benchmarks).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify.convex import CvxpyOracle, SphereSlabDefense
    >>> X = np.array([[2., 0], [3, 1], [3, -1], [4, 0], [-2, 0], [-3, 1], [-3, -1], [-4, 0]])
    >>> y = np.array([1, 1, 1, 1, -1, -1, -1, -1])
    >>> oracle = CvxpyOracle().fit(SphereSlabDefense(percentile=50).fit(X, y))
    >>> np.round(oracle.worst_points(np.array([0.2, 0.0])), 4)
    array([[-2.5,  0. ],
           [ 2.5,  0. ]])
    """

    name = "cvxpy"

    def __init__(
        self,
        box: tuple | None = None,
        constraints: Callable | None = None,
        solver: str | None = None,
        solver_options: dict | None = None,
        compile_once: bool = True,
    ):
        self.box = box
        self.constraints = constraints
        self.solver = solver
        self.solver_options = solver_options
        self.compile_once = compile_once

    def _build(self, k: int, c_value=None):
        d = self.defense_
        n_features = d.n_features_in_
        mu = d.centroids_[k]
        u = cp.Variable(n_features)
        c = cp.Parameter(n_features) if c_value is None else c_value
        cons = []
        if d.sphere_:
            cons.append(cp.norm(u, 2) <= d.radii_[k])
        if d.slab_:
            cons.append(cp.abs(d.slab_direction_ @ u) <= d.slab_widths_[k])
        if self.box is not None:
            low, high = self.box
            low = np.broadcast_to(np.asarray(low, dtype=np.float64), (n_features,))
            high = np.broadcast_to(np.asarray(high, dtype=np.float64), (n_features,))
            if np.any(low > high):
                raise ValueError("box=(low, high) needs low <= high in every feature.")
            cons += [u >= low - mu, u <= high - mu]
        if self.constraints is not None:
            extra = self.constraints(mu + u, int(CLASSES[k]))
            cons += list(extra)
        problem = cp.Problem(cp.Maximize(c @ u), cons)
        return problem, u, c

    def fit(self, defense: SphereSlabDefense) -> CvxpyOracle:
        """Bind the oracle to a fitted defence and compile one problem per class."""
        check_is_fitted(defense, "centroids_")
        self.defense_ = defense
        self.problems_ = []
        if self.compile_once:
            for k in range(2):
                problem, u, c = self._build(k)
                if not problem.is_dcp(dpp=True):
                    raise ValueError(
                        "The oracle problem is not DPP (compile-once) compliant; check the "
                        "extra constraints (they must not multiply parameters)."
                    )
                self.problems_.append((problem, u, c))
        return self

    def _solve(self, problem, u):
        solver, options = self.solver, self.solver_options
        if solver is None:
            solver = cp.CLARABEL
            if options is None:
                options = _TIGHT_CLARABEL
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Solution may be inaccurate")
            problem.solve(solver=solver, **(options or {}))
        if problem.status not in ("optimal", "optimal_inaccurate") or u.value is None:
            raise RuntimeError(
                f"The cvxpy oracle returned status {problem.status!r}; the feasible set may be "
                "empty or unbounded (a slab alone is unbounded: add the sphere or a box)."
            )
        return u.value

    def worst_points(self, w: np.ndarray) -> np.ndarray:
        """Worst feasible point of each class for weights ``w``; rows follow ``[-1, +1]``."""
        d = self.defense_
        out = np.empty((2, w.shape[0]))
        for k, label in enumerate(CLASSES):
            c_value = -label * np.asarray(w, dtype=np.float64)
            if self.compile_once:
                problem, u, c = self.problems_[k]
                c.value = c_value
            else:
                problem, u, _ = self._build(k, c_value=c_value)
            out[k] = d.centroids_[k] + self._solve(problem, u)
        return out


def make_oracle(oracle, defense: SphereSlabDefense):
    """Resolve the ``oracle`` argument ("closed_form", "cvxpy" or an instance) and fit it."""
    if isinstance(oracle, str):
        if oracle == "closed_form":
            return ClosedFormOracle().fit(defense)
        if oracle == "cvxpy":
            return CvxpyOracle().fit(defense)
        raise ValueError(
            f"oracle must be 'closed_form', 'cvxpy' or an oracle instance, got {oracle!r}."
        )
    if not hasattr(oracle, "fit") or not hasattr(oracle, "worst_points"):
        raise TypeError(
            "oracle must be 'closed_form', 'cvxpy', ClosedFormOracle() or CvxpyOracle(...); "
            f"got {type(oracle).__name__}."
        )
    return oracle.fit(defense)
