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
