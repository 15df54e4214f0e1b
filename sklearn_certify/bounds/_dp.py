"""The differential-privacy radius map (Ma, Zhu & Hsu, IJCAI 2019): vote bounds to poisoned rows.

A learner is (epsilon, delta)-differentially private when, for any two training sets ``D`` and
``D'`` that differ by one inserted or deleted row and any set ``S`` of models,
``P[M(D) in S] <= e^epsilon P[M(D') in S] + delta``. Chaining that inequality along ``k``
single-row steps gives group privacy: sets that differ by ``k`` insertions or deletions satisfy
it with ``k epsilon`` and ``delta_k = k e^((k - 1) epsilon) delta``. Applied to the events "the
model predicts class A" and "the model predicts class B" on a fixed test point, it bounds how
far ``k`` poisoned rows can move the probability of each prediction over the learner's own
randomness, and so how many rows a prediction with a clear margin survives. The user guide's
differential-privacy page gives the derivation.
"""

from __future__ import annotations

import numbers

import numpy as np

from sklearn_certify._validation import MAX_COUNT, check_positive, check_probabilities

__all__ = ["dp_group_radius"]

#: The condition must hold with this margin, relative to the size of the logarithms compared:
#: float round-off (a few ulps of each term) never certifies a ``k`` whose exact condition is
#: not strictly met.
_MARGIN = 1e-12
#: Above ``-log`` of the smallest positive double (about 744.4).
_LOG_TINY = 750.0


def _check_delta(delta) -> float:
    if isinstance(delta, bool) or not isinstance(delta, numbers.Real):
        raise TypeError(f"delta must be a real number in [0, 1), got {type(delta).__name__}.")
    if not 0.0 <= float(delta) < 1.0:
        raise ValueError(f"delta must lie in [0, 1), got {delta}.")
    return float(delta)


def _check_max_radius(max_radius) -> int:
    if max_radius is None:
        return MAX_COUNT
    if isinstance(max_radius, bool) or not isinstance(max_radius, numbers.Integral):
        raise TypeError(f"max_radius must be an integer or None, got {type(max_radius).__name__}.")
    if not 0 <= max_radius <= MAX_COUNT:
        raise ValueError(f"max_radius must lie in [0, 2**53], got {max_radius}.")
    return int(max_radius)


def _check(p_lower, p_upper):
    p_a = check_probabilities("p_lower", p_lower)
    p_b = check_probabilities("p_upper", p_upper)
    try:
        return np.broadcast_arrays(p_a, p_b)
    except ValueError as exc:
        raise ValueError(
            f"p_lower {p_a.shape} and p_upper {p_b.shape} must have the same shape."
        ) from exc


def _holds(k: np.ndarray, log_pa, log_pb, epsilon: float, log_delta: float) -> np.ndarray:
    """Whether the group-privacy condition holds at ``k`` rows, with ``_MARGIN`` to spare.

    ``e^(-k eps) (pA - delta_k) > e^(k eps) pB + delta_k`` divided by ``e^(k eps)`` reads
    ``pA e^(-2 k eps) > pB + k delta e^(-eps) (1 + e^(-k eps))``; both sides are compared as
    logarithms, whose terms are all finite or ``-inf`` (never ``+inf`` or ``nan``), so no
    ``k`` or ``epsilon`` overflows. Where the right side is 0 (``pB = 0`` and ``k delta = 0``)
    the condition is ``pA > 0`` whatever ``2 k eps`` is.

    The margin scales with a bound on the magnitude of every term (the left side adds
    non-positive terms, so its magnitude bounds theirs; a log of a positive double is above
    ``-_LOG_TINY``), which bounds the round-off of either side. It grows with ``k``,
    ``epsilon`` and ``-log pA`` and never with ``pB`` or ``delta``, so it keeps the
    condition monotone in each.
    """
    k = k.astype(float)
    with np.errstate(divide="ignore", over="ignore"):
        decay = 2.0 * k * epsilon  # overflows to +inf only for absurd epsilon
        log_k = np.log(k)  # -inf at k = 0: no delta term
        log_slack = log_k + log_delta - epsilon + np.log1p(np.exp(-k * epsilon))
    lhs = log_pa - decay
    rhs = np.logaddexp(log_pb, log_slack)
    has_slack = np.isfinite(log_slack)
    scale = (
        1.0
        + np.where(np.isfinite(lhs), -lhs, 0.0)
        + np.where(np.isfinite(log_pb), _LOG_TINY, 0.0)
        + np.where(has_slack, log_k + _LOG_TINY + epsilon, 0.0)
    )
    zero_rhs = np.isneginf(rhs)
    return np.where(zero_rhs, np.isfinite(log_pa), lhs > rhs + _MARGIN * scale)


def dp_group_radius(
    p_lower, p_upper, epsilon: float, delta: float, *, max_radius: int | None = None
) -> np.ndarray:
    """Certified poisoning size of a differentially private learner (Ma, Zhu & Hsu 2019).

    Let ``M`` be an (``epsilon``, ``delta``)-differentially private learner for training sets
    that differ by one inserted or deleted row, and let ``p_lower`` bound from below the
    probability, over ``M``'s randomness, that the trained model predicts class A on a test
    point, and ``p_upper`` bound from above that of every other class. By group privacy, a
    training set ``k`` insertions or deletions away keeps A's probability at least
    ``e^(-k eps) (p_lower - delta_k)`` and every other class's at most
    ``e^(k eps) p_upper + delta_k``, with ``delta_k = k e^((k - 1) eps) delta``. The
    prediction survives ``k`` rows while

        ``e^(-k eps) (p_lower - delta_k) > e^(k eps) p_upper + delta_k``.

    The left side never grows with ``k`` and the right side never shrinks, so the condition
    holds for every ``k`` up to a largest one, the radius, found by bisection. At ``k = 0``
    it reads ``p_lower > p_upper``; where even that fails the radius is 0 too, so the caller
    tells abstentions apart with ``p_lower > p_upper``
    (:attr:`~sklearn_certify.bounds.VoteBounds.separated`). The comparison is made between
    logarithms, so large ``k * epsilon`` never overflows, and with a relative margin of
    ``1e-12`` against round-off.

    Parameters
    ----------
    p_lower : float or array-like
        Lower confidence bound on the predicted class's probability, in [0, 1].
    p_upper : float or array-like
        Upper confidence bound on every other class's probability, in [0, 1]; broadcast
        against ``p_lower``.
    epsilon : float
        The learner's privacy parameter, finite and > 0, for neighbouring training sets that
        differ by one inserted or deleted row.
    delta : float
        The learner's failure probability, in [0, 1).
    max_radius : int, default=None
        Largest radius reported, in [0, 2**53]; ``None`` is ``2**53``. Where the condition
        holds up to it (with ``delta = 0`` and ``p_upper = 0`` it holds for every ``k``), the
        radius is ``max_radius``, a true lower bound on the exact one.

    Returns
    -------
    radius : ndarray of int64
        Rows that may be inserted or deleted in any mix without changing the prediction (a
        modified row counts two: one deletion and one insertion); 0 where only the clean
        training set, or nothing, is certified.

    See Also
    --------
    bagging_radius : The radius map of bagging, from the same kind of vote bounds.

    Examples
    --------
    With ``epsilon = ln 2`` and ``delta = 0`` the condition is ``0.9 / 4^k > 0.1``, which
    holds for ``k = 1`` (0.225) and fails for ``k = 2`` (0.05625):

    >>> import math
    >>> from sklearn_certify.bounds import dp_group_radius
    >>> dp_group_radius([0.9, 0.6, 0.5], [0.1, 0.4, 0.5], math.log(2), 0.0).tolist()
    [1, 0, 0]

    With ``delta = 0.01``, ``p_lower = 1`` and ``p_upper = 0``: ``delta_k = k 2^(k-1) / 100``
    and ``(1 - delta_k) / 2^k > delta_k`` holds for ``k = 2`` (0.24 > 0.04) but not for
    ``k = 3`` (0.11 < 0.12); with ``delta = 0`` only ``max_radius`` stops it:

    >>> dp_group_radius(1.0, 0.0, math.log(2), 0.01).item()
    2
    >>> dp_group_radius(1.0, 0.0, math.log(2), 0.0, max_radius=1000).item()
    1000
    """
    p_a, p_b = _check(p_lower, p_upper)
    epsilon = check_positive("epsilon", epsilon)
    delta = _check_delta(delta)
    cap = _check_max_radius(max_radius)
    with np.errstate(divide="ignore"):
        log_pa, log_pb, log_delta = np.log(p_a), np.log(p_b), float(np.log(delta))

    def holds(k):
        return _holds(k, log_pa, log_pb, epsilon, log_delta)

    lo = np.zeros(p_a.shape, dtype=np.int64)  # holds, where anything is certified
    hi = np.full(p_a.shape, cap + 1, dtype=np.int64)  # treated as failing
    open_ = holds(lo) & (hi - lo > 1)
    while np.any(open_):
        mid = (lo + hi) // 2
        mid_holds = holds(mid)
        lo = np.where(open_ & mid_holds, mid, lo)
        hi = np.where(open_ & ~mid_holds, mid, hi)
        open_ &= hi - lo > 1
    return lo
