"""Smoothing certificates from the members' votes or scores: counts in, bounds and radius out.

Every function here certifies a *smoothed* classifier from ``N`` independent draws of it (the
members of a smoothing ensemble, or Cohen et al.'s noise samples) and holds at level ``alpha``:
with probability at least ``1 - alpha`` over the draws, the returned ``p_lower`` and
``p_upper`` bound the top class's and every other class's probability, so the prediction
cannot change under any perturbation whose l2 norm stays below ``radius``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats

from sklearn_certify._validation import check_alpha, check_counts, check_positive
from sklearn_certify.bounds._smoothing import (
    clopper_pearson_lower,
    clopper_pearson_upper,
    rab_radius,
)

__all__ = [
    "SmoothingBounds",
    "cohen_certify",
    "cohen_predict",
    "hoeffding_certify",
    "rab_eval_certify",
    "simultaneous_certify",
]


class SmoothingBounds(NamedTuple):
    """What a smoothing certificate says about each sample (arrays of length n_samples)."""

    prediction: np.ndarray  #: certified class index
    p_lower: np.ndarray  #: lower confidence bound on the prediction's probability
    p_upper: np.ndarray  #: upper confidence bound on every other class's probability
    radius: np.ndarray  #: l2 radius; 0 where the bounds do not separate
    abstain: np.ndarray  #: True where ``p_lower <= p_upper`` (nothing certified)


def _counts_matrix(name: str, counts) -> np.ndarray:
    counts = check_counts(name, counts, ndim=2)
    if counts.shape[1] < 2:
        raise ValueError(f"{name} needs at least 2 class columns, got {counts.shape[1]}.")
    return counts


def _finish(prediction, p_lower, p_upper, sigma) -> SmoothingBounds:
    """Radius ``sigma/2 (Phi^-1(p_lower) - Phi^-1(p_upper))`` where the bounds separate."""
    p_lower = np.asarray(p_lower, dtype=float)
    p_upper = np.asarray(p_upper, dtype=float)
    abstain = ~(p_lower > p_upper)
    # clip only to evaluate the formula where it is used; the bounds are returned as computed
    radius = rab_radius(np.where(abstain, 0.5, p_lower), np.where(abstain, 0.5, p_upper), sigma)
    return SmoothingBounds(
        prediction=np.asarray(prediction, dtype=np.int64),
        p_lower=p_lower,
        p_upper=p_upper,
        radius=np.where(abstain, 0.0, radius),
        abstain=abstain,
    )


def cohen_certify(
    counts_select, counts_estimate, alpha: float, sigma: float, *, n_estimate=None
) -> SmoothingBounds:
    """Cohen et al.'s CERTIFY: select the class on one set of draws, bound it on another.

    The class is the most frequent among ``counts_select`` (ties to the smaller index);
    ``p_lower`` is the one-sided ``(1 - alpha)`` Clopper-Pearson bound on its frequency in
    ``counts_estimate``, independent draws, and every other class is bounded by
    ``p_upper = 1 - p_lower``. The radius is then ``sigma * Phi^-1(p_lower)``. Selecting and
    estimating on separate draws is what makes one bound at level ``alpha`` enough.

    Parameters
    ----------
    counts_select : array-like of int of shape (n_samples, n_classes)
        Class counts of the selection draws.
    counts_estimate : array-like of int of shape (n_samples, n_classes)
        Class counts of the estimation draws.
    alpha : float
        Error level in (0, 1).
    sigma : float
        Noise standard deviation, in the units of the radius.
    n_estimate : int or array-like of int, default=None
        Number of estimation draws, when some voted for no class (default: the row sums of
        ``counts_estimate``).

    Returns
    -------
    SmoothingBounds

    Examples
    --------
    >>> from sklearn_certify.bounds import cohen_certify
    >>> out = cohen_certify([[2, 98]], [[10, 990]], alpha=0.001, sigma=0.5)
    >>> int(out.prediction[0]), round(float(out.p_lower[0]), 10), round(float(out.radius[0]), 6)
    (1, 0.9760361872, 0.989005)
    """
    alpha = check_alpha(alpha)
    sigma = check_positive("sigma", sigma)
    select = _counts_matrix("counts_select", counts_select)
    estimate = _counts_matrix("counts_estimate", counts_estimate)
    if select.shape != estimate.shape:
        raise ValueError(
            f"counts_select {select.shape} and counts_estimate {estimate.shape} must have the "
            "same shape."
        )
    prediction = np.argmax(select, axis=1)
    n = _draws("n_estimate", n_estimate, estimate)
    n_a = estimate[np.arange(len(n)), prediction]
    p_lower = clopper_pearson_lower(n_a, np.maximum(n, 1), alpha) if n.size else np.zeros(0)
    return _finish(prediction, p_lower, 1.0 - p_lower, sigma)


def simultaneous_certify(counts, alpha: float, sigma: float, *, n_draws=None) -> SmoothingBounds:
    """Every draw selects and estimates: Clopper-Pearson bounds that hold for all classes at once.

    The top class comes from the same counts it is bounded with, so its bound must hold
    whichever class the data make the top one. With ``K`` classes:

    * ``K == 2``: a one-sided lower bound at ``alpha / 2`` for each class (union bound over
      the two), ``p_lower`` the top class's, ``p_upper = 1 - p_lower``;
    * ``K > 2``: a two-sided interval at ``alpha / K`` for each class (one-sided
      ``alpha / (2K)`` on each side), so that all of them hold together with probability at
      least ``1 - alpha``; ``p_lower`` is the top class's lower end and ``p_upper`` the
      smaller of the other classes' largest upper end and ``1 - p_lower``.

    Why not ``alpha / K`` per one-sided bound for ``K > 2``: which class is bounded from
    below and which from above depends on the counts, so each class may fail on either side,
    and the union bound then only gives ``2 alpha``; ``alpha / (2K)`` per side makes it
    ``alpha``.

    Parameters
    ----------
    counts : array-like of int of shape (n_samples, n_classes)
        Class counts of all draws.
    alpha : float
        Error level in (0, 1).
    sigma : float
        Noise standard deviation, in the units of the radius.
    n_draws : int or array-like of int, default=None
        Number of draws, when some voted for no class (default: the row sums of ``counts``).

    Returns
    -------
    SmoothingBounds

    Examples
    --------
    >>> from sklearn_certify.bounds import simultaneous_certify
    >>> out = simultaneous_certify([[900, 100]], alpha=0.001, sigma=1.0)
    >>> round(float(out.p_lower[0]), 6), round(float(out.p_upper[0]), 6)
    (0.865225, 0.134775)
    >>> round(float(out.radius[0]), 6)
    1.104099
    """
    alpha = check_alpha(alpha)
    sigma = check_positive("sigma", sigma)
    counts = _counts_matrix("counts", counts)
    n_samples, n_classes = counts.shape
    rows = np.arange(n_samples)
    prediction = np.argmax(counts, axis=1)
    if not n_samples:
        empty = np.zeros(0)
        return _finish(prediction, empty, empty, sigma)
    n = np.maximum(_draws("n_draws", n_draws, counts), 1)
    n_a = counts[rows, prediction]
    if n_classes == 2:
        p_lower = clopper_pearson_lower(n_a, n, alpha / 2)
        return _finish(prediction, p_lower, 1.0 - p_lower, sigma)
    level = alpha / (2 * n_classes)
    p_lower = clopper_pearson_lower(n_a, n, level)
    others = clopper_pearson_upper(counts, n[:, None], level)
    others[rows, prediction] = -np.inf
    p_upper = np.minimum(others.max(axis=1), 1.0 - p_lower)
    return _finish(prediction, p_lower, p_upper, sigma)


def hoeffding_certify(
    mean_select, mean_estimate, n_estimate: int, alpha: float, sigma: float
) -> SmoothingBounds:
    """Hoeffding bounds on averaged member probabilities (RAB's statistic, made sound).

    The smoothed classifier here is soft: the expected probability each class gets. The class
    is the largest average among the selection members (``mean_select``, ties to the smaller
    index); on ``n_estimate`` other members, ``p_lower = mean - sqrt(ln(2 / alpha) / (2 n))``
    holds with probability ``1 - alpha / 2``, and the other classes' averages plus
    ``sqrt(ln(2 (K - 1) / alpha) / (2 n))`` hold together with probability ``1 - alpha / 2``
    (union bound over the ``K - 1`` classes); ``p_upper`` is the largest of those, capped at
    ``1 - p_lower``. Unlike the official RAB evaluation (:func:`rab_eval_certify`), the class
    is not selected from the draws that bound it, and the two bounds share ``alpha``.

    Parameters
    ----------
    mean_select : array-like of shape (n_samples, n_classes)
        Average member probabilities over the selection members.
    mean_estimate : array-like of shape (n_samples, n_classes)
        Average member probabilities over the ``n_estimate`` estimation members.
    n_estimate : int
        Number of estimation members.
    alpha : float
        Error level in (0, 1).
    sigma : float
        Noise standard deviation, in the units of the radius.

    Returns
    -------
    SmoothingBounds

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify.bounds import hoeffding_certify
    >>> out = hoeffding_certify([[0.1, 0.9]], [[0.1, 0.9]], 1000, alpha=0.001, sigma=1.0)
    >>> eps = np.sqrt(np.log(2 / 0.001) / 2000)
    >>> bool(np.isclose(out.p_lower[0], 0.9 - eps)), bool(np.isclose(out.p_upper[0], 0.1 + eps))
    (True, True)
    """
    alpha = check_alpha(alpha)
    sigma = check_positive("sigma", sigma)
    if isinstance(n_estimate, bool) or not isinstance(n_estimate, (int, np.integer)):
        raise TypeError(f"n_estimate must be an int, got {n_estimate!r}.")
    if n_estimate < 1:
        raise ValueError(f"n_estimate must be >= 1, got {n_estimate}.")
    select = _probability_matrix("mean_select", mean_select)
    estimate = _probability_matrix("mean_estimate", mean_estimate)
    if select.shape != estimate.shape:
        raise ValueError(
            f"mean_select {select.shape} and mean_estimate {estimate.shape} must have the same "
            "shape."
        )
    n_samples, n_classes = estimate.shape
    rows = np.arange(n_samples)
    prediction = np.argmax(select, axis=1)
    p_lower = estimate[rows, prediction] - np.sqrt(np.log(2.0 / alpha) / (2.0 * n_estimate))
    others = estimate.copy()
    others[rows, prediction] = -np.inf
    eps_b = np.sqrt(np.log(2.0 * (n_classes - 1) / alpha) / (2.0 * n_estimate))
    p_upper = np.minimum(others.max(axis=1) + eps_b, 1.0 - p_lower)
    return _finish(prediction, np.clip(p_lower, 0.0, 1.0), np.clip(p_upper, 0.0, 1.0), sigma)


def _draws(name: str, value, counts: np.ndarray) -> np.ndarray:
    """Draws per row: ``value`` broadcast to the rows, at least each row's total count."""
    totals = counts.sum(axis=1)
    if value is None:
        return totals
    draws = np.broadcast_to(check_counts(name, value), totals.shape)
    if np.any(draws < totals):
        raise ValueError(f"{name} must be at least the number of votes counted in each row.")
    return draws


def _probability_matrix(name: str, value) -> np.ndarray:
    from sklearn_certify._validation import check_probabilities

    array = check_probabilities(name, value)
    if array.ndim != 2 or array.shape[1] < 2:
        raise ValueError(f"{name} must have shape (n_samples, n_classes >= 2), got {array.shape}.")
    return array


def cohen_predict(counts, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Cohen et al.'s PREDICT: the top class, or abstain if it may not be the smoothed one.

    The top two counts ``c1 >= c2`` (ties to the smaller index) are compared with the exact
    two-sided binomial test of ``c1`` out of ``c1 + c2`` at ``p = 1/2``; the prediction is
    kept where the p-value is at most ``alpha``. With probability at least ``1 - alpha`` a
    prediction that is kept is the smoothed classifier's.

    Parameters
    ----------
    counts : array-like of int of shape (n_samples, n_classes)
        Class counts of the draws.
    alpha : float
        Error level in (0, 1).

    Returns
    -------
    prediction : ndarray of int64 of shape (n_samples,)
        The top class index.
    abstain : ndarray of bool of shape (n_samples,)
        True where the test does not reject (PREDICT abstains).

    Examples
    --------
    >>> from sklearn_certify.bounds import cohen_predict
    >>> prediction, abstain = cohen_predict([[40, 60], [300, 700], [55, 45]], alpha=0.001)
    >>> prediction.tolist(), abstain.tolist()
    ([1, 1, 0], [True, False, True])
    """
    alpha = check_alpha(alpha)
    counts = _counts_matrix("counts", counts)
    order = np.argsort(-counts, axis=1, kind="stable")
    rows = np.arange(counts.shape[0])
    c1, c2 = counts[rows, order[:, 0]], counts[rows, order[:, 1]]
    p_values = np.array(
        [
            stats.binomtest(int(a), int(a + b), 0.5).pvalue if a + b else 1.0
            for a, b in zip(c1, c2, strict=True)
        ]
    )
    return order[:, 0].astype(np.int64), p_values > alpha


def rab_eval_certify(mean_scores, n_members: int, alpha: float, sigma: float):
    """The official RAB evaluation, reproduced for comparison (not what the estimators use).

    As the paper's ``eval.py``: the class is the largest average score over **all** members
    (the same draws then bound it), the Hoeffding bounds ``max(1e-8, p_a - eps)`` and
    ``min(1 - 1e-8, p_b + eps)`` with ``eps = sqrt(ln(1 / alpha) / (2 N))`` each hold at level
    ``alpha`` (jointly only ``2 alpha``), and a prediction counts as certified at radius
    ``r`` when ``radius > r`` (strictly). The radius may be negative.

    Parameters
    ----------
    mean_scores : array-like of shape (n_samples, n_classes)
        Average member scores in [0, 1].
    n_members : int
        Number of members averaged.
    alpha : float
        Error level of each bound, in (0, 1).
    sigma : float
        Noise standard deviation.

    Returns
    -------
    prediction : ndarray of int64 of shape (n_samples,)
    radius : ndarray of shape (n_samples,)
        ``sigma / 2 (Phi^-1(p_a) - Phi^-1(p_b))``, negative where the bounds cross.

    Examples
    --------
    >>> from sklearn_certify.bounds import rab_eval_certify
    >>> prediction, radius = rab_eval_certify([[0.1, 0.9], [0.45, 0.55]], 1000, 0.001, 1.0)
    >>> prediction.tolist(), [round(float(r), 6) for r in radius]
    ([1, 1], [0.999527, -0.021984])
    """
    from sklearn_certify.bounds._smoothing import hoeffding_bounds

    sigma = check_positive("sigma", sigma)
    means = _probability_matrix("mean_scores", mean_scores)
    ordered = -np.sort(-means, axis=1)
    p_a, p_b = hoeffding_bounds(ordered[:, 0], ordered[:, 1], n_members, alpha)
    radius = 0.5 * sigma * (stats.norm.ppf(p_a) - stats.norm.ppf(p_b))
    return np.argmax(means, axis=1).astype(np.int64), radius
