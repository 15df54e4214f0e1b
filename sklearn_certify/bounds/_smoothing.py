"""Confidence bounds and radii for (training-set) randomized smoothing."""

from __future__ import annotations

import numpy as np
from scipy import stats

from sklearn_certify._validation import (
    check_alpha,
    check_counts,
    check_positive,
    check_probabilities,
    check_scalar_int,
)

__all__ = [
    "clopper_pearson_lower",
    "clopper_pearson_upper",
    "cohen_radius",
    "hoeffding_bounds",
    "rab_radius",
]


def _check_k_n(k, n):
    k = check_counts("k", k)
    n = check_counts("n", n)
    if np.any(n < 1):
        raise ValueError("n must be >= 1 (the number of draws).")
    if np.any(k > n):
        raise ValueError("k must not exceed n (successes cannot outnumber draws).")
    return np.broadcast_arrays(k, n)


def _clopper_pearson(k, n, alpha, *, upper: bool) -> np.ndarray:
    """One-sided exact binomial bound: the lower one, or the upper one (``upper=True``)."""
    alpha = check_alpha(alpha)
    k, n = _check_k_n(k, n)
    with np.errstate(invalid="ignore"):
        if upper:
            return np.where(k == n, 1.0, stats.beta.ppf(1.0 - alpha, k + 1, n - k))
        return np.where(k == 0, 0.0, stats.beta.ppf(alpha, k, n - k + 1))


def clopper_pearson_lower(k, n, alpha: float) -> np.ndarray:
    """Exact one-sided (1 - alpha) lower confidence bound on a binomial proportion.

    ``Beta(alpha; k, n - k + 1)`` quantile, and 0 when ``k == 0``. This is the
    lower end of the two-sided Clopper-Pearson interval at level ``2 * alpha``
    (what Cohen et al.'s CERTIFY computes with
    ``proportion_confint(k, n, alpha=2*alpha, method="beta")``).

    Parameters
    ----------
    k : int or array-like of int
        Successes, ``0 <= k <= n``.
    n : int or array-like of int
        Draws, ``n >= 1``.
    alpha : float
        One-sided error level in (0, 1).

    Returns
    -------
    ndarray
        Lower bounds, broadcast over ``k`` and ``n``.

    Examples
    --------
    >>> from sklearn_certify.bounds import clopper_pearson_lower
    >>> round(float(clopper_pearson_lower(990, 1000, 0.001)), 10)
    0.9760361872
    """
    return _clopper_pearson(k, n, alpha, upper=False)


def clopper_pearson_upper(k, n, alpha: float) -> np.ndarray:
    """Exact one-sided (1 - alpha) upper confidence bound on a binomial proportion.

    ``Beta(1 - alpha; k + 1, n - k)`` quantile, and 1 when ``k == n``.

    Parameters
    ----------
    k : int or array-like of int
        Successes, ``0 <= k <= n``.
    n : int or array-like of int
        Draws, ``n >= 1``.
    alpha : float
        One-sided error level in (0, 1).

    Returns
    -------
    ndarray
        Upper bounds, broadcast over ``k`` and ``n``.

    Examples
    --------
    >>> from sklearn_certify.bounds import clopper_pearson_upper
    >>> round(float(clopper_pearson_upper(10, 1000, 0.001)), 10)
    0.0239638128
    """
    return _clopper_pearson(k, n, alpha, upper=True)


def cohen_radius(p_lower, sigma: float) -> np.ndarray:
    """Gaussian-smoothing l2 radius ``sigma * Phi^-1(p_lower)``; 0 where ``p_lower <= 1/2``.

    Cohen et al. (2019) with the runner-up bounded by ``1 - p_lower``. Applied
    to training-set smoothing, the radius bounds the l2 norm of the whole
    training-set perturbation.

    Parameters
    ----------
    p_lower : float or array-like
        Lower confidence bound on the top class probability, in [0, 1].
    sigma : float
        Noise standard deviation, > 0, in the units the radius is stated in.

    Returns
    -------
    ndarray
        Non-negative radii (finite: ``p_lower == 1`` is refused, since no
        finite sample certifies it).

    Examples
    --------
    >>> from sklearn_certify.bounds import cohen_radius
    >>> round(float(cohen_radius(0.9760361872, 0.5)), 6)
    0.989005
    """
    sigma = check_positive("sigma", sigma)
    p_lower = check_probabilities("p_lower", p_lower)
    if np.any(p_lower >= 1.0):
        raise ValueError(
            "p_lower must be < 1: a lower confidence bound of 1 certifies an infinite radius."
        )
    return np.where(p_lower > 0.5, sigma * stats.norm.ppf(np.maximum(p_lower, 0.5)), 0.0)


def rab_radius(p_a_lower, p_b_upper, sigma: float) -> np.ndarray:
    """RAB l2 radius ``sigma/2 * (Phi^-1(p_a_lower) - Phi^-1(p_b_upper))``.

    Zero where ``p_a_lower <= p_b_upper``.

    Weber et al. (2023): a training-set (and test-input) perturbation whose
    total l2 norm stays below this radius cannot change the smoothed
    prediction.

    Parameters
    ----------
    p_a_lower : float or array-like
        Lower bound on the top class probability, in [0, 1).
    p_b_upper : float or array-like
        Upper bound on the runner-up probability, in (0, 1].
    sigma : float
        Noise standard deviation, > 0.

    Returns
    -------
    ndarray
        Non-negative radii.

    Examples
    --------
    >>> from sklearn_certify.bounds import rab_radius
    >>> round(float(rab_radius(0.9, 0.1, sigma=1.0)), 6)
    1.281552
    """
    sigma = check_positive("sigma", sigma)
    p_a = check_probabilities("p_a_lower", p_a_lower)
    p_b = check_probabilities("p_b_upper", p_b_upper)
    if np.any(p_a >= 1.0) or np.any(p_b <= 0.0):
        raise ValueError(
            "p_a_lower must be < 1 and p_b_upper > 0: otherwise the radius is infinite; "
            "bound the probabilities with a finite-sample confidence bound first."
        )
    p_a, p_b = np.broadcast_arrays(p_a, p_b)
    margin = stats.norm.ppf(p_a) - stats.norm.ppf(p_b)
    return np.where(p_a > p_b, 0.5 * sigma * margin, 0.0)


def hoeffding_bounds(p_a_mean, p_b_mean, n: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Hoeffding bounds on mean [0, 1] scores, as the official RAB code computes them.

    ``eps = sqrt(ln(1/alpha) / (2 n))``; the lower bound ``max(1e-8, p_a_mean -
    eps)`` and upper bound ``min(1 - 1e-8, p_b_mean + eps)``. Each holds with
    probability ``1 - alpha`` separately (jointly ``1 - 2 alpha``), and the
    top class is chosen from the same draws: use Clopper-Pearson with separate
    selection draws for the stricter guarantee.

    Parameters
    ----------
    p_a_mean, p_b_mean : float or array-like
        Average scores of the top and runner-up class over ``n`` models, in [0, 1].
    n : int
        Number of models averaged.
    alpha : float
        Error level of each bound, in (0, 1).

    Returns
    -------
    p_a_lower, p_b_upper : ndarray
        Bounds to pass to :func:`rab_radius`.

    Examples
    --------
    >>> from sklearn_certify.bounds import hoeffding_bounds, rab_radius
    >>> lo, hi = hoeffding_bounds(0.9, 0.1, n=1000, alpha=0.001)
    >>> round(float(lo), 6), round(float(rab_radius(lo, hi, sigma=1.0)), 6)
    (0.84123, 0.999527)
    """
    n = check_scalar_int("n", n, min_value=1)
    alpha = check_alpha(alpha)
    p_a = check_probabilities("p_a_mean", p_a_mean)
    p_b = check_probabilities("p_b_mean", p_b_mean)
    eps = np.sqrt(np.log(1.0 / alpha) / (2.0 * n))
    return np.maximum(1e-8, p_a - eps), np.minimum(1.0 - 1e-8, p_b + eps)
