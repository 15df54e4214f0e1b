"""Gaussian smoothing certificates: vote bounds followed by the Gaussian l2 radius map.

Every ``*_certify`` function here is a statistic of :mod:`~sklearn_certify.bounds` (one of
:func:`~sklearn_certify.bounds.cohen_vote_bounds`,
:func:`~sklearn_certify.bounds.simultaneous_vote_bounds`,
:func:`~sklearn_certify.bounds.hoeffding_vote_bounds`) followed by the Gaussian radius map
:func:`gaussian_certify`. With probability at least ``1 - alpha`` over the draws, the returned
``p_lower`` and ``p_upper`` bound the top class's and every other class's probability, so the
prediction cannot change under any perturbation whose l2 norm stays below ``radius``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats

from sklearn_certify._validation import check_alpha, check_positive
from sklearn_certify.bounds._smoothing import rab_radius
from sklearn_certify.bounds._vote_bounds import (
    VoteBounds,
    _counts_matrix,
    _probability_matrix,
    cohen_vote_bounds,
    hoeffding_vote_bounds,
    simultaneous_vote_bounds,
)

__all__ = [
    "SmoothingBounds",
    "cohen_certify",
    "cohen_predict",
    "gaussian_certify",
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


def gaussian_certify(vote_bounds: VoteBounds, sigma: float) -> SmoothingBounds:
    """The Gaussian l2 radius map: ``sigma/2 (Phi^-1(p_lower) - Phi^-1(p_upper))``.

    Applied to vote bounds of a classifier smoothed with Gaussian noise of standard
    deviation ``sigma`` (Cohen et al. 2019 with ``p_upper = 1 - p_lower``; Weber et al.'s RAB
    for the training set), it gives the l2 radius within which the smoothed prediction
    cannot change; the row is abstained on (radius 0) where the bounds do not separate.

    Parameters
    ----------
    vote_bounds : VoteBounds
        From one of the vote-bound statistics.
    sigma : float
        Noise standard deviation, in the units of the radius.

    Returns
    -------
    SmoothingBounds

    Examples
    --------
    >>> from sklearn_certify.bounds import cohen_vote_bounds, gaussian_certify
    >>> out = gaussian_certify(cohen_vote_bounds([[2, 98]], [[10, 990]], 0.001), sigma=0.5)
    >>> round(float(out.radius[0]), 6), bool(out.abstain[0])
    (0.989005, False)
    """
    sigma = check_positive("sigma", sigma)
    p_lower, p_upper = vote_bounds.p_lower, vote_bounds.p_upper
    abstain = ~vote_bounds.separated
    # clip only to evaluate the formula where it is used; the bounds are returned as computed
    radius = rab_radius(np.where(abstain, 0.5, p_lower), np.where(abstain, 0.5, p_upper), sigma)
    return SmoothingBounds(
        prediction=vote_bounds.prediction,
        p_lower=p_lower,
        p_upper=p_upper,
        radius=np.where(abstain, 0.0, radius),
        abstain=abstain,
    )


def cohen_certify(
    counts_select, counts_estimate, alpha: float, sigma: float, *, n_estimate=None
) -> SmoothingBounds:
    """Cohen et al.'s CERTIFY: select the class on one set of draws, bound it on another.

    :func:`~sklearn_certify.bounds.cohen_vote_bounds` followed by :func:`gaussian_certify`:
    the radius is ``sigma * Phi^-1(p_lower)``.

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
    sigma = check_positive("sigma", sigma)
    votes = cohen_vote_bounds(counts_select, counts_estimate, alpha, n_estimate=n_estimate)
    return gaussian_certify(votes, sigma)


def simultaneous_certify(counts, alpha: float, sigma: float, *, n_draws=None) -> SmoothingBounds:
    """Every draw selects and estimates, with bounds that hold for all classes at once.

    :func:`~sklearn_certify.bounds.simultaneous_vote_bounds` followed by
    :func:`gaussian_certify`.

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
    sigma = check_positive("sigma", sigma)
    return gaussian_certify(simultaneous_vote_bounds(counts, alpha, n_draws=n_draws), sigma)


def hoeffding_certify(
    mean_select, mean_estimate, n_estimate: int, alpha: float, sigma: float
) -> SmoothingBounds:
    """Hoeffding bounds on averaged member probabilities (RAB's statistic, made sound).

    :func:`~sklearn_certify.bounds.hoeffding_vote_bounds` followed by
    :func:`gaussian_certify`.

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
    sigma = check_positive("sigma", sigma)
    votes = hoeffding_vote_bounds(mean_select, mean_estimate, n_estimate, alpha)
    return gaussian_certify(votes, sigma)


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
