"""The partition planner: which training rows each DPA / FA / SS-DPA member trains on.

:func:`plan_partitions` is a pure function of the training rows, their encoded labels and the
partitioning options. It returns a frozen :class:`PartitionPlan` and changes nothing else, so
the plan can be computed, inspected and tested without an estimator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sklearn_certify import bounds
from sklearn_certify.bounds._fa import resolve_shifts
from sklearn_certify.partition._hashing import (
    bucket_of_rows,
    buckets_from_digests,
    content_order,
    row_digests,
)

__all__ = ["PartitionPlan", "plan_partitions"]


@dataclass(frozen=True, eq=False)
class PartitionPlan:
    """The rows of every member of a partition ensemble (all arrays read-only).

    Attributes
    ----------
    n_partitions, spread : int
        ``k`` and ``d``; the ensemble has ``k * d`` members.
    shifts : ndarray of int64 of shape (spread,)
        Finite Aggregation shifts (``[0]`` for plain DPA and SS-DPA).
    learner_buckets : ndarray of int64 of shape (k * d, spread)
        Buckets each member trains on.
    rows, offsets : ndarray of int64
        Member ``j`` trains on ``rows[offsets[j]:offsets[j + 1]]``, in that order (sorted by
        content: SHA-256 digest of the canonical bytes, then label).
    trusted_digests, trusted_partitions : ndarray or None
        SS-DPA only: the training rows' digest keys, sorted, and the partition each was dealt
        to (the trusted row order that lets ``assign_partitions`` answer for training rows).
    """

    n_partitions: int
    spread: int
    shifts: np.ndarray
    learner_buckets: np.ndarray
    rows: np.ndarray
    offsets: np.ndarray
    trusted_digests: np.ndarray | None = None
    trusted_partitions: np.ndarray | None = None

    def __post_init__(self):
        for name in ("shifts", "learner_buckets", "rows", "offsets"):
            getattr(self, name).setflags(write=False)
        for name in ("trusted_digests", "trusted_partitions"):
            if getattr(self, name) is not None:
                getattr(self, name).setflags(write=False)

    @property
    def n_members(self) -> int:
        """Number of members, ``n_partitions * spread``."""
        return self.n_partitions * self.spread

    @property
    def member_rows(self) -> list:
        """Row indices of every member, in member-id order (read-only views)."""
        return [self.rows[a:b] for a, b in zip(self.offsets[:-1], self.offsets[1:], strict=True)]

    @property
    def sizes(self) -> np.ndarray:
        """Number of rows each member trains on."""
        return np.diff(self.offsets)


def digest_keys(X=None, *, digests=None) -> np.ndarray:
    """(n, 4) uint64 view of the rows' SHA-256 digests, most significant word first."""
    if digests is None:
        digests = row_digests(X)
    return np.frombuffer(digests.tobytes(), dtype=">u8").reshape(-1, 4)


def _content_sorted(keys: np.ndarray, y_enc: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``rows`` sorted by digest (most significant word first), then label."""
    return rows[np.lexsort((y_enc[rows], *(keys[rows, c] for c in (3, 2, 1, 0))))]


def _csr(member_rows: list) -> tuple[np.ndarray, np.ndarray]:
    sizes = np.array([r.shape[0] for r in member_rows], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    rows = np.concatenate(member_rows).astype(np.int64) if member_rows else np.zeros(0, np.int64)
    return rows, offsets


def _plan_general(X, y_enc, k: int, d: int, hash: str, shifts) -> PartitionPlan:
    """DPA / FA: rows hashed into ``k * d`` buckets; bucket ``b`` feeds ``(b + s) mod (k*d)``."""
    n_members = k * d
    # plain DPA has the identity shift; FA defaults to the official shifts
    shifts = resolve_shifts(k, d, [0] if shifts is None and d == 1 else shifts)
    bucket_learners = bounds.fa_bucket_learners(k, d, shifts)
    digests = row_digests(X)
    if hash == "digest":
        buckets = buckets_from_digests(digests, n_members)
    else:
        buckets = bucket_of_rows(X, n_members, hash=hash)
    # One canonical content order for all rows (digest, then label); every member's rows are a
    # subsequence of it, hence sorted by content as well.
    keys = digest_keys(digests=digests)
    order = _content_sorted(keys, y_enc, np.arange(X.shape[0]))
    flat_learner = bucket_learners[buckets[order]].ravel()  # (n * d,): the learners of each row
    flat_rows = np.repeat(order, d)
    by_learner = np.argsort(flat_learner, kind="stable")
    offsets = np.searchsorted(flat_learner[by_learner], np.arange(n_members + 1))
    return PartitionPlan(
        n_partitions=k,
        spread=d,
        shifts=shifts,
        learner_buckets=bounds.fa_learner_buckets(k, d, shifts),
        rows=flat_rows[by_learner].astype(np.int64),
        offsets=offsets.astype(np.int64),
    )


def _plan_label_flip(X, y_enc, k: int) -> PartitionPlan:
    """SS-DPA: rows sorted by content and dealt to partitions 0, 1, ..., k-1, 0, ..."""
    keys = digest_keys(X)
    by_digest = np.lexsort(tuple(keys[:, c] for c in (3, 2, 1, 0)))
    sorted_keys = keys[by_digest]
    duplicate = np.all(sorted_keys[1:] == sorted_keys[:-1], axis=1)
    if np.any(duplicate):
        raise ValueError(
            "threat_model='label_flip' needs distinct training rows, but X has "
            f"{int(duplicate.sum())} duplicate row(s). The round-robin dealing of SS-DPA is only "
            "defined for a set of distinct rows: remove duplicates (e.g. "
            "np.unique(X, axis=0, return_index=True)) or use threat_model='general'."
        )
    partition_of_row = np.empty(X.shape[0], dtype=np.int64)
    partition_of_row[content_order(X)] = np.arange(X.shape[0]) % k
    # Inside a part, rows follow the same digest order as under the general threat model.
    member_rows = [
        _content_sorted(keys, y_enc, np.flatnonzero(partition_of_row == j)) for j in range(k)
    ]
    rows, offsets = _csr(member_rows)
    shifts = np.zeros(1, dtype=np.int64)
    return PartitionPlan(
        n_partitions=k,
        spread=1,
        shifts=shifts,
        learner_buckets=bounds.fa_learner_buckets(k, 1, shifts),
        rows=rows,
        offsets=offsets,
        trusted_digests=np.ascontiguousarray(sorted_keys),
        trusted_partitions=partition_of_row[by_digest],
    )


def plan_partitions(
    X,
    y_enc,
    *,
    n_partitions: int,
    spread: int = 1,
    threat_model: str = "general",
    hash: str = "digest",
    shifts=None,
) -> PartitionPlan:
    """Plan the members of a DPA, Finite Aggregation or SS-DPA ensemble.

    Parameters
    ----------
    X : ndarray of shape (n_samples, ...)
        Training rows; only their content decides where they go.
    y_enc : ndarray of int of shape (n_samples,)
        Encoded labels; they break ties in the order of equal rows, never decide a partition.
    n_partitions : int
        ``k``.
    spread : int, default=1
        ``d``: under ``threat_model="general"`` each row trains ``d`` of the ``k * d``
        members (Finite Aggregation); must be 1 for ``"label_flip"``.
    threat_model : {"general", "label_flip"}, default="general"
        ``"general"``: rows are hashed into ``k * d`` buckets (``hash``) and bucket ``b``
        feeds the members ``(b + s) mod (k*d)``, ``s`` in ``shifts``. ``"label_flip"``
        (SS-DPA): the rows, which must be distinct, are sorted by content and dealt
        round-robin, so every partition gets ``n // k`` or ``n // k + 1`` rows.
    hash : {"digest", "pixel_sum"}, default="digest"
        See :func:`sklearn_certify.partition.bucket_of_rows`.
    shifts : array-like of int of shape (spread,), default=None
        Finite Aggregation shifts; ``None`` is ``[0]`` when ``spread == 1`` and the official
        :func:`sklearn_certify.bounds.fa_shifts` otherwise.

    Returns
    -------
    PartitionPlan
        Frozen; its arrays are read-only.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify.partition import plan_partitions
    >>> X = np.arange(20.0).reshape(10, 2); y = np.arange(10) % 2
    >>> plan = plan_partitions(X, y, n_partitions=3)
    >>> plan.n_members, int(plan.sizes.sum())
    (3, 10)
    >>> fa = plan_partitions(X, y, n_partitions=3, spread=2)
    >>> fa.n_members, int(fa.sizes.sum()), fa.shifts.tolist()
    (6, 20, [2, 0])
    """
    k, d = int(n_partitions), int(spread)
    if threat_model == "label_flip":
        if d != 1:
            raise ValueError(f"threat_model='label_flip' needs spread=1, got spread={d}.")
        return _plan_label_flip(X, y_enc, k)
    if threat_model != "general":
        raise ValueError(f"threat_model must be 'general' or 'label_flip', got {threat_model!r}.")
    return _plan_general(X, y_enc, k, d, hash, shifts)
