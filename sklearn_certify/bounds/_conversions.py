"""Conversions between what an l2 certificate covers and common attack budgets."""

from __future__ import annotations

import numpy as np

from sklearn_certify._validation import check_scalar_int

__all__ = ["l2_radius_per_sample", "linf_to_l2"]


def l2_radius_per_sample(radius, n_poisoned: int) -> np.ndarray:
    """Per-sample l2 budget certified when ``n_poisoned`` training samples are perturbed.

    Training-set smoothing certifies the l2 norm of the whole perturbation,
    ``sqrt(sum_i ||delta_i||^2)``. If ``r`` samples are each moved by at most
    ``delta`` (l2), the total is at most ``sqrt(r) * delta``, so a total radius
    ``R`` covers any such attack with ``delta <= R / sqrt(r)``.

    Parameters
    ----------
    radius : float or array-like
        Certified total l2 radius, >= 0.
    n_poisoned : int
        Number of perturbed training samples, >= 1.

    Returns
    -------
    ndarray
        ``radius / sqrt(n_poisoned)``.

    Examples
    --------
    >>> from sklearn_certify.bounds import l2_radius_per_sample
    >>> float(l2_radius_per_sample(2.0, 4))
    1.0
    """
    n_poisoned = check_scalar_int("n_poisoned", n_poisoned, min_value=1)
    radius = np.asarray(radius, dtype=float)
    if np.any(~np.isfinite(radius)) or np.any(radius < 0):
        raise ValueError("radius must be finite and >= 0.")
    return radius / np.sqrt(n_poisoned)


def linf_to_l2(epsilon_inf, n_features: int) -> np.ndarray:
    """Largest l2 norm of a perturbation bounded by ``epsilon_inf`` in l_inf.

    A perturbation of ``n_features`` entries each at most ``epsilon_inf`` in
    magnitude has l2 norm at most ``epsilon_inf * sqrt(n_features)``; an l2
    certificate at least that large covers the l_inf attack.

    Parameters
    ----------
    epsilon_inf : float or array-like
        l_inf budget per sample, >= 0.
    n_features : int
        Number of perturbed features, >= 1.

    Returns
    -------
    ndarray
        ``epsilon_inf * sqrt(n_features)``.

    Examples
    --------
    >>> from sklearn_certify.bounds import linf_to_l2
    >>> float(linf_to_l2(8 / 255, 64)) == 8 / 255 * 8
    True
    """
    n_features = check_scalar_int("n_features", n_features, min_value=1)
    epsilon_inf = np.asarray(epsilon_inf, dtype=float)
    if np.any(~np.isfinite(epsilon_inf)) or np.any(epsilon_inf < 0):
        raise ValueError("epsilon_inf must be finite and >= 0.")
    return epsilon_inf * np.sqrt(n_features)
