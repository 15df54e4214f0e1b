"""How sure are the votes: confidence bounds on the top class and on every other class.

Each function here turns ``N`` independent draws of a randomized classifier (the members of a
smoothing or bagging ensemble, or Cohen et al.'s noise samples) into :class:`VoteBounds`:
the predicted class, a lower confidence bound ``p_lower`` on its probability and an upper
bound ``p_upper`` on every other class's, holding together with probability at least
``1 - alpha`` over the draws. What those bounds buy is a separate question, answered by a
radius map (:func:`~sklearn_certify.bounds.gaussian_certify` for Gaussian smoothing).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sklearn_certify._validation import check_alpha, check_counts, check_probabilities
from sklearn_certify.bounds._smoothing import clopper_pearson_lower, clopper_pearson_upper

__all__ = [
    "VoteBounds",
    "cohen_vote_bounds",
    "hoeffding_vote_bounds",
    "simultaneous_vote_bounds",
]


class VoteBounds(NamedTuple):
    """Confidence bounds of the votes (arrays of length n_samples).

    Examples
    --------
    >>> from sklearn_certify.bounds import simultaneous_vote_bounds
    >>> out = simultaneous_vote_bounds([[900, 100], [52, 48]], alpha=0.001)
    >>> out.prediction.tolist(), out.separated.tolist()
    ([0, 0], [True, False])
    """

    prediction: np.ndarray  #: class index chosen
    p_lower: np.ndarray  #: lower confidence bound on the prediction's probability
    p_upper: np.ndarray  #: upper confidence bound on every other class's probability

    @property
    def separated(self) -> np.ndarray:
        """True where ``p_lower > p_upper``: only there can a radius be positive."""
        return self.p_lower > self.p_upper


def _counts_matrix(name: str, counts) -> np.ndarray:
    counts = check_counts(name, counts, ndim=2)
    if counts.shape[1] < 2:
        raise ValueError(f"{name} needs at least 2 class columns, got {counts.shape[1]}.")
    return counts


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
    array = check_probabilities(name, value)
    if array.ndim != 2 or array.shape[1] < 2:
        raise ValueError(f"{name} must have shape (n_samples, n_classes >= 2), got {array.shape}.")
    return array


def _bounds(prediction, p_lower, p_upper) -> VoteBounds:
    return VoteBounds(
        np.asarray(prediction, dtype=np.int64),
        np.asarray(p_lower, dtype=float),
        np.asarray(p_upper, dtype=float),
    )


def cohen_vote_bounds(counts_select, counts_estimate, alpha: float, *, n_estimate=None):
    """Select the class on one set of draws, bound it on another (Cohen et al.'s CERTIFY).

    The class is the most frequent among ``counts_select`` (ties to the smaller index);
    ``p_lower`` is the one-sided ``(1 - alpha)`` Clopper-Pearson bound on its frequency in
    ``counts_estimate``, independent draws, and every other class is bounded by
    ``p_upper = 1 - p_lower``. Selecting and estimating on separate draws is what makes one
    bound at level ``alpha`` enough.

    Parameters
    ----------
    counts_select : array-like of int of shape (n_samples, n_classes)
        Class counts of the selection draws.
    counts_estimate : array-like of int of shape (n_samples, n_classes)
        Class counts of the estimation draws.
    alpha : float
        Error level in (0, 1).
    n_estimate : int or array-like of int, default=None
        Number of estimation draws, when some voted for no class (default: the row sums of
        ``counts_estimate``).

    Returns
    -------
    VoteBounds

    Examples
    --------
    >>> from sklearn_certify.bounds import cohen_vote_bounds
    >>> out = cohen_vote_bounds([[2, 98]], [[10, 990]], alpha=0.001)
    >>> int(out.prediction[0]), round(float(out.p_lower[0]), 10), round(float(out.p_upper[0]), 10)
    (1, 0.9760361872, 0.0239638128)
    """
    alpha = check_alpha(alpha)
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
    return _bounds(prediction, p_lower, 1.0 - p_lower)


def simultaneous_vote_bounds(counts, alpha: float, *, n_draws=None) -> VoteBounds:
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
    n_draws : int or array-like of int, default=None
        Number of draws, when some voted for no class (default: the row sums of ``counts``).

    Returns
    -------
    VoteBounds

    Examples
    --------
    >>> from sklearn_certify.bounds import simultaneous_vote_bounds
    >>> out = simultaneous_vote_bounds([[900, 100]], alpha=0.001)
    >>> round(float(out.p_lower[0]), 6), round(float(out.p_upper[0]), 6)
    (0.865225, 0.134775)
    """
    alpha = check_alpha(alpha)
    counts = _counts_matrix("counts", counts)
    n_samples, n_classes = counts.shape
    rows = np.arange(n_samples)
    prediction = np.argmax(counts, axis=1)
    if not n_samples:
        return _bounds(prediction, np.zeros(0), np.zeros(0))
    n = np.maximum(_draws("n_draws", n_draws, counts), 1)
    n_a = counts[rows, prediction]
    if n_classes == 2:
        p_lower = clopper_pearson_lower(n_a, n, alpha / 2)
        return _bounds(prediction, p_lower, 1.0 - p_lower)
    level = alpha / (2 * n_classes)
    p_lower = clopper_pearson_lower(n_a, n, level)
    others = clopper_pearson_upper(counts, n[:, None], level)
    others[rows, prediction] = -np.inf
    p_upper = np.minimum(others.max(axis=1), 1.0 - p_lower)
    return _bounds(prediction, p_lower, p_upper)


def hoeffding_vote_bounds(mean_select, mean_estimate, n_estimate: int, alpha: float) -> VoteBounds:
    """Hoeffding bounds on averaged member probabilities (RAB's statistic, made sound).

    The smoothed classifier here is soft: the expected probability each class gets. The class
    is the largest average among the selection members (``mean_select``, ties to the smaller
    index); on ``n_estimate`` other members, ``p_lower = mean - sqrt(ln(2 / alpha) / (2 n))``
    holds with probability ``1 - alpha / 2``, and the other classes' averages plus
    ``sqrt(ln(2 (K - 1) / alpha) / (2 n))`` hold together with probability ``1 - alpha / 2``
    (union bound over the ``K - 1`` classes); ``p_upper`` is the largest of those, capped at
    ``1 - p_lower``. Both are clipped into [0, 1]. Unlike the official RAB evaluation
    (:func:`~sklearn_certify.bounds.rab_eval_certify`), the class is not selected from the
    draws that bound it, and the two bounds share ``alpha``.

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

    Returns
    -------
    VoteBounds

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify.bounds import hoeffding_vote_bounds
    >>> out = hoeffding_vote_bounds([[0.1, 0.9]], [[0.1, 0.9]], 1000, alpha=0.001)
    >>> eps = np.sqrt(np.log(2 / 0.001) / 2000)
    >>> bool(np.isclose(out.p_lower[0], 0.9 - eps)), bool(np.isclose(out.p_upper[0], 0.1 + eps))
    (True, True)
    """
    alpha = check_alpha(alpha)
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
    return _bounds(prediction, np.clip(p_lower, 0.0, 1.0), np.clip(p_upper, 0.0, 1.0))
