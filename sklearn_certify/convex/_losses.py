"""Convex margin losses: value and derivative in the margin m = y (w . x + b)."""

from __future__ import annotations

import numpy as np
from scipy.special import expit

LOSSES = ("hinge", "logistic", "squared_hinge")


def check_loss(loss) -> str:
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}.")
    return loss


def loss_value(loss: str, margin):
    """Loss at ``margin`` (elementwise)."""
    margin = np.asarray(margin, dtype=np.float64)
    if loss == "hinge":
        return np.maximum(0.0, 1.0 - margin)
    if loss == "squared_hinge":
        return np.maximum(0.0, 1.0 - margin) ** 2
    return np.logaddexp(0.0, -margin)


def loss_slope(loss: str, margin):
    """A subgradient of the loss in the margin (<= 0); hinge uses the strict ``margin < 1``."""
    margin = np.asarray(margin, dtype=np.float64)
    if loss == "hinge":
        return np.where(margin < 1.0, -1.0, 0.0)
    if loss == "squared_hinge":
        return -2.0 * np.maximum(0.0, 1.0 - margin)
    return -expit(-margin)


def margins(X, y, w: np.ndarray, b: float) -> np.ndarray:
    """Margins ``y_i (w . x_i + b)`` of the rows of a dense or sparse ``X``.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        Labels in {-1, +1}.
    w : ndarray of shape (n_features,)
    b : float

    Returns
    -------
    margins : ndarray of shape (n_samples,)
    """
    return y * (np.asarray(X @ w).ravel() + b)


def mean_loss_and_gradient(loss: str, X, y, w: np.ndarray, b: float):
    """Mean loss of the labelled points ``(X, y)`` at ``(w, b)`` and its (sub)gradient.

    This is the clean part ``(1/n) L(theta; D_c)`` of the objective of Algorithm 1.

    Parameters
    ----------
    loss : {"hinge", "logistic", "squared_hinge"}
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        Labels in {-1, +1}.
    w : ndarray of shape (n_features,)
    b : float

    Returns
    -------
    value : float
        ``mean_i loss(y_i (w . x_i + b))``.
    grad_w : ndarray of shape (n_features,)
        Its subgradient in ``w`` (:func:`loss_slope`).
    grad_b : float
        Its subgradient in ``b``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> value, grad_w, grad_b = mean_loss_and_gradient("hinge", X, np.array([1, -1]),
    ...                                                np.zeros(2), 0.0)
    >>> value, grad_w, grad_b
    (1.0, array([-0.5,  1. ]), 0.0)
    """
    m = margins(X, y, w, b)
    coeff = loss_slope(loss, m) * y / X.shape[0]
    return float(loss_value(loss, m).mean()), np.asarray(X.T @ coeff).ravel(), float(coeff.sum())
