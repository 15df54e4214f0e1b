"""Finite Aggregation certificate (Wang, Levine & Feizi, 2022).

Training samples are hashed into ``n_buckets = n_partitions * spread``
buckets and learner ``j`` trains on the ``spread`` buckets ``(j - s) mod
n_buckets`` for ``s`` in a fixed set of shifts, so bucket ``b`` feeds the
learners ``(b + s) mod n_buckets``. One poison touches one bucket and hence at
most ``spread`` learners.
"""

from __future__ import annotations

import random

import numpy as np

from sklearn_certify._validation import check_scalar_int

__all__ = [
    "ABSTAIN",
    "fa_bucket_learners",
    "fa_learner_buckets",
    "fa_radius",
    "fa_shifts",
    "fa_vote_counts",
]

#: Learner prediction that means "this learner abstains" (e.g. it saw no data).
ABSTAIN = -1

#: Seed of Python's ``random`` used by the official Finite Aggregation code.
OFFICIAL_SHIFT_SEED = 1000000207

_TARGET_CHUNK_ELEMENTS = 1 << 20


def fa_shifts(n_partitions: int, spread: int) -> np.ndarray:
    """The official Finite Aggregation shifts for ``(n_partitions, spread)``.

    Reproduces ``random.seed(1000000207); random.sample(range(k * d), d)``
    from the paper's code, so partitions and certificates match it exactly.

    Parameters
    ----------
    n_partitions : int
        ``k``, the number of partitions (learners per unit of spread).
    spread : int
        ``d``, how many learners each bucket feeds.

    Returns
    -------
    ndarray of shape (spread,)
        Distinct int64 shifts in ``[0, n_partitions * spread)``.

    Examples
    --------
    >>> from sklearn_certify.bounds import fa_shifts
    >>> fa_shifts(3, 2).tolist(), fa_shifts(10, 2).tolist()
    ([2, 0], [11, 2])
    """
    k = check_scalar_int("n_partitions", n_partitions, min_value=1)
    d = check_scalar_int("spread", spread, min_value=1)
    return np.array(random.Random(OFFICIAL_SHIFT_SEED).sample(range(k * d), d), dtype=np.int64)


def resolve_shifts(n_partitions, spread, shifts) -> np.ndarray:
    """Validated Finite Aggregation shifts as int64; ``None`` gives :func:`fa_shifts`.

    The one validator of shifts, shared by the bounds and by ``DPAClassifier``: ``shifts``
    must be ``spread`` distinct integers in ``[0, n_partitions * spread)`` (a ``TypeError``
    for non-integers, a ``ValueError`` for the wrong count, range or repeats).
    """
    k = check_scalar_int("n_partitions", n_partitions, min_value=1)
    d = check_scalar_int("spread", spread, min_value=1)
    if shifts is None:
        return fa_shifts(k, d)
    array = np.asarray(shifts)
    if array.ndim != 1 or array.shape[0] != d:
        raise ValueError(
            f"shifts must be a 1-d sequence of spread={d} integers, got shape {array.shape}."
        )
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"shifts must hold integers, got dtype {array.dtype}.")
    if np.any(array < 0) or np.any(array >= k * d):
        raise ValueError(
            f"shifts must lie in 0 .. n_partitions*spread-1 = {k * d - 1}, got {array.tolist()}."
        )
    if np.unique(array).shape[0] != d:
        raise ValueError(
            "shifts must be distinct (each bucket feeds spread distinct learners), "
            f"got {array.tolist()}."
        )
    return array.astype(np.int64)


def fa_bucket_learners(n_partitions: int, spread: int, shifts=None) -> np.ndarray:
    """Learners fed by each bucket: row ``b`` lists ``(b + s) mod (k*d)``.

    Parameters
    ----------
    n_partitions, spread : int
        ``k`` and ``d``.
    shifts : array-like of shape (spread,), default=None
        Distinct shifts in ``[0, k*d)``; ``None`` uses :func:`fa_shifts`.

    Returns
    -------
    ndarray of shape (k*d, spread)
        int64 learner ids.

    Examples
    --------
    >>> from sklearn_certify.bounds import fa_bucket_learners
    >>> fa_bucket_learners(3, 2)[:2].tolist()
    [[2, 0], [3, 1]]
    """
    shifts = resolve_shifts(n_partitions, spread, shifts)
    n_buckets = n_partitions * spread
    return (np.arange(n_buckets)[:, None] + shifts[None, :]) % n_buckets


def fa_learner_buckets(n_partitions: int, spread: int, shifts=None) -> np.ndarray:
    """Buckets each learner trains on: row ``j`` lists ``(j - s) mod (k*d)``.

    The inverse of :func:`fa_bucket_learners`: learner ``j`` appears in row ``b`` of
    that map (at column ``i``) exactly when ``b`` is entry ``i`` of row ``j`` here.

    Parameters
    ----------
    n_partitions, spread : int
        ``k`` and ``d``.
    shifts : array-like of shape (spread,), default=None
        Distinct shifts in ``[0, k*d)``; ``None`` uses :func:`fa_shifts`.

    Returns
    -------
    ndarray of shape (k*d, spread)
        int64 bucket ids.

    Examples
    --------
    >>> from sklearn_certify.bounds import fa_learner_buckets
    >>> fa_learner_buckets(3, 2)[:2].tolist()
    [[4, 0], [5, 1]]
    """
    bucket_learners = fa_bucket_learners(n_partitions, spread, shifts)
    n_buckets, d = bucket_learners.shape
    learner_buckets = np.empty_like(bucket_learners)
    learner_buckets[bucket_learners, np.arange(d)[None, :]] = np.arange(n_buckets)[:, None]
    return learner_buckets


def _check_learner_predictions(learner_predictions, n_classes, n_learners) -> np.ndarray:
    preds = np.asarray(learner_predictions)
    if preds.ndim != 2 or preds.shape[1] != n_learners:
        raise ValueError(
            f"learner_predictions must have shape (n_samples, n_partitions * spread) = "
            f"(n_samples, {n_learners}), got {preds.shape}."
        )
    if not np.issubdtype(preds.dtype, np.integer):
        raise ValueError(
            "learner_predictions must hold integer class indices (or -1 for an abstaining "
            f"learner), got dtype {preds.dtype}."
        )
    if preds.size and (preds.min() < ABSTAIN or preds.max() >= n_classes):
        raise ValueError(
            f"learner_predictions must lie in [0, {n_classes}) (n_classes={n_classes}), or be -1 "
            "for an abstaining learner."
        )
    return preds


_ROW_LOOP_MIN_WIDTH = 512


def _row_histograms(values, n_bins: int) -> np.ndarray:
    """Histogram of each row of a non-negative integer matrix, shape (n_rows, n_bins).

    Long rows are counted one ``bincount`` per row (no index arithmetic over the whole
    matrix); short rows with one ``bincount`` over row-offset keys.
    """
    n_rows, width = values.shape
    if width >= _ROW_LOOP_MIN_WIDTH:
        out = np.empty((n_rows, n_bins), dtype=np.int64)
        for i, row in enumerate(values):
            out[i] = np.bincount(row, minlength=n_bins)
        return out
    keys = (np.arange(n_rows)[:, None] * n_bins + values).ravel()
    return np.bincount(keys, minlength=n_rows * n_bins).reshape(n_rows, n_bins)


def fa_vote_counts(learner_predictions, n_classes: int) -> np.ndarray:
    """Votes per class from learner predictions; abstentions (-1) count for no class.

    Parameters
    ----------
    learner_predictions : array-like of shape (n_samples, n_learners)
        Class indices in ``[0, n_classes)`` or -1.
    n_classes : int
        Number of classes, >= 1.

    Returns
    -------
    ndarray of shape (n_samples, n_classes)
        int64 vote counts.

    Examples
    --------
    >>> from sklearn_certify.bounds import fa_vote_counts
    >>> fa_vote_counts([[0, 2, 2, -1]], 3).tolist()
    [[1, 0, 2]]
    """
    n_classes = check_scalar_int("n_classes", n_classes, min_value=1)
    preds = np.asarray(learner_predictions)
    preds = _check_learner_predictions(preds, n_classes, preds.shape[-1] if preds.ndim == 2 else -1)
    return _row_histograms(preds.astype(np.int64) + 1, n_classes + 1)[:, 1:]


def _bucket_counts(is_class, shifts, dtype):
    """Per bucket, how many of its learners have ``is_class`` set (rows independent).

    Bucket ``b`` holds learners ``(b + s) mod n`` for ``s`` in ``shifts``, so its
    count is a sum of the indicator cyclically shifted left by each ``s``.
    """
    n_learners = is_class.shape[1]
    indicator = is_class.astype(dtype)
    counts = np.zeros_like(indicator)
    for s in shifts:
        counts[:, : n_learners - s] += indicator[:, s:]
        counts[:, n_learners - s :] += indicator[:, :s]
    return counts


def _greedy_from_histogram(hist, gap):
    """Largest r with (sum of the r largest values) <= gap, from value histograms.

    ``hist[i, v]`` counts items of value ``v`` in row ``i``; values are taken
    from the largest down, as the official greedy does after sorting.
    """
    n_values = hist.shape[1]
    values = np.arange(n_values - 1, -1, -1)
    counts = hist[:, ::-1]
    cum_counts = np.cumsum(counts, axis=1)
    cum_sums = np.cumsum(counts * values, axis=1)
    exceeded = cum_sums > gap[:, None]
    first = np.argmax(exceeded, axis=1)
    any_exceeded = exceeded[np.arange(hist.shape[0]), first]
    rows = np.arange(hist.shape[0])
    taken_before = np.where(first > 0, cum_counts[rows, first - 1], 0)
    sum_before = np.where(first > 0, cum_sums[rows, first - 1], 0)
    value = values[first]
    partial = (gap - sum_before) // np.maximum(value, 1)
    return np.where(any_exceeded, taken_before + partial, cum_counts[:, -1])


def _fa_radius_chunk(preds, n_classes, spread, shifts):
    n_rows = preds.shape[0]
    votes = _row_histograms(preds + 1, n_classes + 1)[:, 1:]
    prediction = np.argmax(votes, axis=1)
    rows = np.arange(n_rows)
    classes = np.arange(n_classes)
    gaps = votes[rows, prediction][:, None] - votes - (classes[None, :] < prediction[:, None])
    gaps[rows, prediction] = np.iinfo(np.int64).max
    order = np.argsort(gaps, axis=1, kind="stable")[:, : n_classes - 1]

    dtype = np.int8 if spread < 128 else np.int64
    pred_in_bucket = _bucket_counts(preds == prediction[:, None], shifts, dtype)
    n_values = 2 * spread + 1
    # A poisoned bucket can turn each of its learners to the challenger c: a learner
    # voting for the prediction closes the gap by 2, one voting elsewhere (or
    # abstaining) by 1, one already voting for c by 0. So the bucket's power is
    # spread + (#learners voting the prediction) - (#learners voting c), and the
    # bound power <= spread + (#voting the prediction) holds for every challenger.
    upper = pred_in_bucket.astype(np.int16 if spread < 16384 else np.int64) + spread
    hist_upper = _row_histograms(upper, n_values)
    best = np.full(n_rows, np.iinfo(np.int64).max, dtype=np.int64)
    for rank in range(n_classes - 1):
        challenger = order[:, rank]
        gap = gaps[rows, challenger]
        # Larger powers fit fewer buckets in the gap, so the greedy on the upper-bound
        # powers is a lower bound on this challenger's radius: skip it when that
        # already reaches the best radius found (the minimum cannot change).
        active = _greedy_from_histogram(hist_upper, gap) < best
        if not np.any(active):
            continue
        idx = np.flatnonzero(active)
        challenger_in_bucket = _bucket_counts(preds[idx] == challenger[idx, None], shifts, dtype)
        hist = _row_histograms(upper[idx] - challenger_in_bucket, n_values)
        best[idx] = np.minimum(best[idx], _greedy_from_histogram(hist, gap[idx]))
    return prediction.astype(np.int64), best


def fa_radius(
    learner_predictions, n_classes: int, n_partitions: int, spread: int, shifts=None
) -> tuple[np.ndarray, np.ndarray]:
    """Plurality prediction and Finite Aggregation certified radius.

    For the plurality class ``y`` (ties to the smaller index) and each other
    class ``c``, a poisoned bucket ``b`` can lower the margin
    ``N_y - N_c - [c < y]`` by at most its *power*, the sum over its learners
    of 2 (learner votes ``y``), 1 (votes another class or abstains) or 0
    (already votes ``c``). The certificate is the smallest over ``c`` of the
    largest ``r`` such that the ``r`` most powerful buckets together stay
    within the margin. It equals the official greedy, computed without a
    per-sample loop (value histograms instead of sorting), and reduces to
    :func:`dpa_radius` when ``spread == 1``.

    Parameters
    ----------
    learner_predictions : array-like of shape (n_samples, n_partitions * spread)
        Each learner's predicted class index, **in learner-id order**, or -1
        where a learner abstains (e.g. it was trained on no data).
    n_classes : int
        Number of classes, >= 2.
    n_partitions : int
        ``k``.
    spread : int
        ``d``: each bucket feeds ``d`` of the ``k*d`` learners.
    shifts : array-like of shape (spread,), default=None
        Bucket-to-learner shifts; ``None`` uses the official :func:`fa_shifts`.

    Returns
    -------
    prediction : ndarray of shape (n_samples,)
        Plurality class index.
    radius : ndarray of shape (n_samples,)
        int64 certified number of inserted plus deleted training samples.

    Examples
    --------
    Example 5 of the reference test vectors (k=10, d=2, official shifts):

    >>> from sklearn_certify.bounds import fa_radius
    >>> preds = [[int(ch) for ch in "01020304010203040102"]]
    >>> fa_radius(preds, n_classes=5, n_partitions=10, spread=2)
    (array([0]), array([2]))
    """
    n_classes = check_scalar_int("n_classes", n_classes, min_value=2)
    shifts = resolve_shifts(n_partitions, spread, shifts)
    n_learners = n_partitions * spread
    preds = _check_learner_predictions(learner_predictions, n_classes, n_learners)
    chunk = max(1, _TARGET_CHUNK_ELEMENTS // max(1, n_learners))
    predictions, radii = [], []
    for start in range(0, preds.shape[0], chunk):
        rows = preds[start : start + chunk].astype(np.int16 if n_classes < 32767 else np.int64)
        p, r = _fa_radius_chunk(rows, n_classes, spread, shifts)
        predictions.append(p)
        radii.append(r)
    if not predictions:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(predictions), np.concatenate(radii)
