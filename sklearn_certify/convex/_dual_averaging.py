"""The online learner of Algorithm 1: dual averaging over the ball ``||w||^2 + b^2 <= rho_sq``.

:func:`~sklearn_certify.convex.upper_bound` and
:func:`~sklearn_certify.convex.data_dependent_estimate` take the same step: at
the iterate ``theta = (w, b)`` the gradient is the clean loss's
(:func:`~sklearn_certify.convex._losses.mean_loss_and_gradient`) plus the
weighted loss of the step's poison points (:func:`poison_gradient`), and
:meth:`DualAveraging.step` moves ``theta``.
"""

from __future__ import annotations

import math

import numpy as np

from sklearn_certify.convex._losses import loss_slope


class DualAveraging:
    """Dual averaging with a growing regulariser, kept inside a ball.

    After the gradients ``g_1, ..., g_t`` the iterate is ``theta = z / lambda``
    with ``z = -(g_1 + ... + g_t)`` and ``lambda = max(lambda, ||z|| / sqrt(rho_sq))``:
    ``lambda`` starts at ``1 / lr`` and only grows, which keeps ``theta`` in the
    ball ``||w||^2 + b^2 <= rho_sq`` (bias included).

    Parameters
    ----------
    n_features : int
        Length of ``w``.
    lr : float
        Step size; ``lambda`` starts at ``1 / lr``.
    rho_sq : float
        Squared radius of the ball.

    Attributes
    ----------
    w : ndarray of shape (n_features,)
        Current weights (zero before the first step).
    b : float
        Current bias (zero before the first step).
    lam : float
        Current regulariser ``lambda``.

    Examples
    --------
    >>> import numpy as np
    >>> opt = DualAveraging(2, lr=0.5, rho_sq=1.0)
    >>> opt.step(np.array([-1.0, 0.0]), 0.0)   # inside the ball: theta = -lr * g
    >>> opt.w, opt.b, opt.lam
    (array([0.5, 0. ]), 0.0, 2.0)
    >>> opt.step(np.array([-3.0, 0.0]), 0.0)   # ||z|| / sqrt(rho_sq) = 4 > lambda: it grows
    >>> opt.w, opt.lam
    (array([1., 0.]), 4.0)
    """

    def __init__(self, n_features: int, *, lr: float, rho_sq: float):
        self._rho = math.sqrt(rho_sq)
        self.lam = 1.0 / lr
        self.w = np.zeros(n_features)
        self.b = 0.0
        self._z_w = np.zeros(n_features)
        self._z_b = 0.0

    def step(self, grad_w: np.ndarray, grad_b: float) -> None:
        """Take one step with the gradient ``(grad_w, grad_b)`` at the current iterate.

        Parameters
        ----------
        grad_w : ndarray of shape (n_features,)
            Gradient in ``w``.
        grad_b : float
            Gradient in ``b``.
        """
        self._z_w -= grad_w
        self._z_b -= grad_b
        norm = math.sqrt(float(self._z_w @ self._z_w) + self._z_b * self._z_b)
        self.lam = max(self.lam, norm / self._rho)
        self.w = self._z_w / self.lam
        self.b = self._z_b / self.lam


def poison_gradient(loss: str, points, labels, point_margins, masses):
    """Gradient in ``(w, b)`` of ``sum_i masses_i * loss(margin_i)`` over poison points.

    Parameters
    ----------
    loss : {"hinge", "logistic", "squared_hinge"}
    points : ndarray of shape (n_points, n_features) or (n_features,)
        The poison points (one point may be passed as a vector).
    labels : int or ndarray of shape (n_points,)
        Their labels in {-1, +1}.
    point_margins : float or ndarray of shape (n_points,)
        Their margins ``y (w . x + b)`` at the current iterate.
    masses : float or ndarray of shape (n_points,)
        Their weights (fractions of the clean size ``n``).

    Returns
    -------
    grad_w : ndarray of shape (n_features,)
    grad_b : float

    Examples
    --------
    >>> import numpy as np
    >>> grad_w, grad_b = poison_gradient("hinge", np.array([2.0, 1.0]), -1, 0.5, 0.1)
    >>> grad_w, grad_b
    (array([0.2, 0.1]), 0.1)
    """
    slopes = loss_slope(loss, np.atleast_1d(point_margins)) * masses * np.atleast_1d(labels)
    return slopes @ np.atleast_2d(points), float(slopes.sum())
