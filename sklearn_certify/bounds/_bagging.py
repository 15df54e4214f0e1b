"""The bagging radius map (Jia, Cao & Gong, AAAI 2021): vote bounds to poisoned rows.

A bagged classifier trains each member on ``k`` rows drawn uniformly *with replacement* from
the ``n`` training rows and predicts the class most members vote for. Let ``D'`` be a
poisoned training set of ``n'`` rows sharing ``m`` rows with ``D``. A subsample of ``D`` that
draws only shared rows (probability ``(m/n)^k``) is, given that event, distributed as one of
``D'`` that does (probability ``(m/n')^k``), so the top class keeps probability at least
``(n/n')^k (p_A - 1 + (m/n)^k)`` on ``D'`` and every other class at most
``(n/n')^k p_B + 1 - (m/n')^k``. The prediction survives when the first exceeds the second:

    ``(n'/n)^k - 2 (m/n)^k + 1 - (p_A - p_B) < 0``.

Poisoning size is ``r = max(n, n') - m`` (an insertion, a deletion or a modification each
cost one; an insertion and a deletion together cost one too), so ``m = max(n, n') - r`` and
``n'`` ranges over ``[n - r, n + r]``; the radius is the largest ``r`` for which the
condition holds for every such ``n'`` (Theorem 1 of the paper). That worst case is
``n' = n``, a poisoning by modifications alone. The user guide's bagging page gives the
derivation.
"""

from __future__ import annotations

import numpy as np

from sklearn_certify._validation import check_probabilities, check_scalar_int

__all__ = ["bagging_kept_probability", "bagging_radius"]

#: The condition must hold with this margin: float round-off in the powers never certifies
#: an ``r`` whose exact condition is not strictly met (its errors are near 1e-15).
_MARGIN = 1e-12


def _check(p_lower, p_upper, n_train, sample_size):
    n = check_scalar_int("n_train", n_train, min_value=1)
    k = check_scalar_int("sample_size", sample_size, min_value=1)
    p_a = check_probabilities("p_lower", p_lower)
    p_b = check_probabilities("p_upper", p_upper)
    try:
        p_a, p_b = np.broadcast_arrays(p_a, p_b)
    except ValueError as exc:
        raise ValueError(
            f"p_lower {p_a.shape} and p_upper {p_b.shape} must have the same shape."
        ) from exc
    return p_a, p_b, n, k


def _holds(r: np.ndarray, margin: np.ndarray, n: int, k: int) -> np.ndarray:
    """Whether Theorem 1's condition holds at poisoning size ``r`` (with ``_MARGIN`` to spare).

    The worst poisoned set size is ``n' = n``: for ``n' <= n`` (``m = n - r``) the left side
    grows with ``n'``; for ``n' >= n`` (``m = n' - r``) it is ``(x^k - 2 (x - r)^k) / n^k``
    at ``x = n'``, which falls once ``x / (x - r) < 2^(1 / (k - 1))``, i.e. beyond
    ``x* = r / (1 - 2^(-1 / (k - 1)))``; and wherever the condition holds at ``n' = n``,
    ``r < n (1 - 2^(-1/k))`` puts ``x*`` below ``n`` (for ``k = 1`` it only falls). So the
    condition is ``2 (1 - r/n)^k > 2 - margin``, computed as ``exp(k log1p(-r/n))``.
    """
    kept = np.exp(k * np.log1p(-r / n))
    return 2.0 * kept > 2.0 - margin + _MARGIN


def bagging_radius(p_lower, p_upper, n_train: int, sample_size: int) -> np.ndarray:
    """Certified poisoning size of a bagged classifier (Jia, Cao & Gong 2021, Theorem 1).

    The classifier trains each member on ``sample_size`` rows drawn uniformly with
    replacement from the ``n_train`` training rows and predicts the class with the largest
    probability over the draws. Given a lower bound ``p_lower`` on the predicted class's
    probability and an upper bound ``p_upper`` on every other class's, the prediction cannot
    change for any poisoned training set ``D'`` with
    ``max(|D|, |D'|) - |D ∩ D'| <= radius``: inserting, deleting or modifying ``radius``
    rows in any mix (each counts one; an insertion together with a deletion counts one
    too). The radius is the largest ``r`` with

        ``max over n' in [n - r, n + r] of (n'/n)^k - 2 ((max(n, n') - r)/n)^k + 1
        - (p_lower - p_upper) < 0``

    (``n = n_train``, ``k = sample_size``). The maximum is at ``n' = n`` (modifications are
    the worst poisoning; the user guide's bagging page derives it), so the radius is the
    largest integer ``r < n (1 - (1 - (p_lower - p_upper)/2)^(1/k))``, found by bisection
    and checked with a margin of ``1e-12`` against round-off.

    Parameters
    ----------
    p_lower : float or array-like
        Lower confidence bound on the predicted class's probability, in [0, 1].
    p_upper : float or array-like
        Upper confidence bound on every other class's probability, in [0, 1]; same shape.
    n_train : int
        Number of training rows ``n`` the members were drawn from.
    sample_size : int
        Rows ``k`` drawn (with replacement) for each member.

    Returns
    -------
    radius : ndarray of int64
        Rows that may be poisoned; 0 where ``p_lower <= p_upper`` (nothing certified) and
        where only the clean training set is certified. Always below ``n_train``.

    See Also
    --------
    bagging_kept_probability : The top class's probability after a poisoning.

    Examples
    --------
    With ``k = 2`` of ``n = 10`` rows and ``p_lower - p_upper = 0.8``, ``n' = n`` is the
    worst case and ``1 - 2 ((10 - r)/10)^2 + 0.2 < 0`` holds up to ``r = 2``:

    >>> from sklearn_certify.bounds import bagging_radius
    >>> bagging_radius([0.9, 0.6, 0.5], [0.1, 0.4, 0.5], n_train=10, sample_size=2).tolist()
    [2, 0, 0]

    The paper's MNIST setting (``n = 60000``, ``k = 30``):

    >>> int(bagging_radius(0.99, 0.01, n_train=60000, sample_size=30)[()])
    1331
    """
    p_a, p_b, n, k = _check(p_lower, p_upper, n_train, sample_size)
    margin = np.where(p_a > p_b, p_a - p_b, 0.0)
    lo = np.zeros(margin.shape, dtype=np.int64)  # certified, unless margin is too small
    hi = np.full(margin.shape, n, dtype=np.int64)  # never certified: r = n leaves m = 0
    open_ = _holds(lo, margin, n, k) & (hi - lo > 1)
    while np.any(open_):
        mid = (lo + hi) // 2
        holds = _holds(mid, margin, n, k)
        lo = np.where(open_ & holds, mid, lo)
        hi = np.where(open_ & ~holds, mid, hi)
        open_ &= hi - lo > 1
    return lo


def bagging_kept_probability(p_lower, n_train: int, sample_size: int, n_poisoned):
    """Lower bound on the predicted class's probability after ``n_poisoned`` rows change.

    ``max(0, p_lower - 1 + (1 - r/n)^k)`` for ``r = n_poisoned``, ``n = n_train``,
    ``k = sample_size``: the bound ``(n/n')^k (p_lower - 1 + (m/n)^k)`` behind
    :func:`bagging_radius` at its smallest over every poisoned set ``D'`` with
    ``max(|D|, |D'|) - |D ∩ D'| <= r``, which is at ``n' = n`` (it grows with ``n' >= n``,
    and ``n' < n`` only scales a non-negative bound up). A harness uses it to bound how
    often a finite vote on the poisoned set misses a certified prediction.

    Parameters
    ----------
    p_lower : float or array-like
        Lower confidence bound on the predicted class's probability, in [0, 1].
    n_train : int
        Number of training rows ``n``.
    sample_size : int
        Rows ``k`` drawn with replacement for each member.
    n_poisoned : int or array-like of int
        Poisoning size ``r``, in ``[0, n_train]``; broadcast against ``p_lower``.

    Returns
    -------
    ndarray of float
        Probabilities in [0, 1].

    Examples
    --------
    >>> from sklearn_certify.bounds import bagging_kept_probability
    >>> bagging_kept_probability([0.9, 0.9], n_train=10, sample_size=2, n_poisoned=[0, 1])
    array([0.9 , 0.71])
    """
    p_a, _, n, k = _check(p_lower, p_lower, n_train, sample_size)
    r = np.asarray(n_poisoned)
    if r.dtype == bool or not np.issubdtype(r.dtype, np.integer):
        raise TypeError(f"n_poisoned must hold integers, got dtype {r.dtype}.")
    if np.any(r < 0) or np.any(r > n):
        raise ValueError(f"n_poisoned must lie in [0, n_train={n}].")
    return np.maximum(0.0, p_a - 1.0 + (1.0 - r / n) ** k)
