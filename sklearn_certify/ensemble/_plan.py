"""The member plan: which members an ensemble trains, the rows each sees, and how it sees them."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ALL_ROWS", "MemberPlan"]

#: ``MemberPlan(rows=ALL_ROWS)``: every member sees every row of ``X`` (shared, never copied).
ALL_ROWS = "all"


@dataclass(frozen=True, eq=False)
class MemberPlan:
    """What :func:`~sklearn_certify.ensemble.fit_members` trains.

    A plan names the members (their ids, which seed all their randomness, and how many ids the
    ensemble has in all), the training rows each member sees, and optionally a *view*: a
    transformation of a batch that depends on the member. Partition aggregation is "these rows,
    no view"; training-set smoothing is "all rows, plus this member's noise".

    Parameters
    ----------
    rows : list of 1-d int arrays, or ``"all"``
        Member ``m`` trains on ``X[rows[m]], y[rows[m]]`` in exactly that row order; or
        :data:`ALL_ROWS` (``"all"``): every member trains on all of ``X`` in its order (``X``
        is shared, never copied per member). An empty index array is refused: give such a
        member an abstaining stand-in and leave it out of the plan.
    member_ids : sequence of int, default=None
        Each member's id (default ``range(len(rows))``; required with ``rows="all"``). Member
        ``m``'s randomness derives only from ``(seed, member_ids[m], purpose)``
        (:func:`~sklearn_certify.ensemble.member_seed`), so members may be left out or added
        without changing the others. Ids must be unique and non-negative.
    n_members_total : int, default=None
        How many member ids the ensemble has in all (e.g. ``n_partitions * spread``), so the
        vectorized engine's chunk layout never depends on which members a call leaves out.
        Default ``max(member_ids) + 1``.
    view : callable, default=None
        ``view(X, row_ids, member_ids, seeds) -> X_view``, applied to every batch before the
        members see it. ``X`` is a torch tensor of shape ``(n_members, n_rows, ...)`` (one
        block of rows per member), ``row_ids`` the ``(n_members, n_rows)`` int64 tensor of
        those rows' indices into the training ``X``, ``member_ids`` and ``seeds`` the
        ``(n_members,)`` int64 tensors of the members' ids and their
        ``member_seed(seed, member_id, "view")``. It returns a tensor of ``X``'s shape
        and dtype. The view must be a deterministic function of each member's own slice of
        these arguments: the engines call it with different groupings (the loop engine once
        per member on all its rows, the vectorized engine once per training step on a chunk's
        batches, where placeholder slots carry member id ``-1`` and seed ``0``). Row ``i`` of
        member ``m`` then always looks the same, in every epoch, for both engines.
    view_once : bool or "auto", default=False
        Vectorized engine: apply the view once per member to every row it sees, keep the
        result on the device and gather batches from it, instead of applying it to each
        step's batches. Same rows either way (the view is a function of member and row);
        ``view_once`` trades memory (a viewed copy of the rows per chunk slot, which the chunk
        size accounts for) for not recomputing the view every epoch: right for views that
        cost more than a training step (a denoiser, ``True``). ``"auto"`` applies it once
        only while the copies leave chunks at least half as large as without them (keyed
        noise on a small data set), and per step otherwise (the same noise on a large one).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify.ensemble import MemberPlan
    >>> plan = MemberPlan([np.array([0, 2]), np.array([1, 3])])
    >>> plan.n_members, plan.member_ids.tolist(), plan.n_members_total
    (2, [0, 1], 2)
    >>> MemberPlan("all", member_ids=range(3)).all_rows
    True
    """

    rows: Sequence | str
    member_ids: np.ndarray | None = None
    n_members_total: int | None = None
    view: Callable | None = field(default=None, repr=False)
    view_once: bool | str = False

    def __post_init__(self):
        all_rows = isinstance(self.rows, str)
        if all_rows and self.rows != ALL_ROWS:
            raise ValueError(
                f"rows must be a list of index arrays or {ALL_ROWS!r}, got {self.rows!r}."
            )
        if not all_rows:
            object.__setattr__(self, "rows", _as_row_lists(self.rows))
        if self.member_ids is None:
            if all_rows:
                raise ValueError(
                    "rows='all' needs member_ids (e.g. range(n_estimators)): with every "
                    "member on the same rows, the ids are what tells the members apart."
                )
            ids = np.arange(len(self.rows), dtype=np.int64)
        else:
            ids = _as_member_ids(self.member_ids)
            if not all_rows and ids.size != len(self.rows):
                raise ValueError(
                    f"member_ids has {ids.size} entries but rows has {len(self.rows)}; pass one "
                    "id per member."
                )
        object.__setattr__(self, "member_ids", ids)
        object.__setattr__(self, "n_members_total", _as_total(self.n_members_total, ids))
        if self.view_once not in (True, False, "auto"):
            raise ValueError(f"view_once must be True, False or 'auto', got {self.view_once!r}.")
        if self.view is not None and not callable(self.view):
            raise TypeError(
                f"view must be a callable view(X, row_ids, member_ids, seeds), got {self.view!r}."
            )

    @property
    def n_members(self) -> int:
        """Number of members in the plan."""
        return int(self.member_ids.shape[0])

    @property
    def all_rows(self) -> bool:
        """True when every member sees all rows of ``X``."""
        return isinstance(self.rows, str)

    def member_rows(self, position: int):
        """Row indices of the member at ``position``, or ``None`` when it sees all rows."""
        return None if self.all_rows else self.rows[position]

    def sizes(self, n_samples: int) -> np.ndarray:
        """Number of rows each member sees."""
        if self.all_rows:
            return np.full(self.n_members, n_samples, dtype=np.int64)
        return np.array([r.shape[0] for r in self.rows], dtype=np.int64)

    def select(self, positions) -> MemberPlan:
        """The plan of the members at ``positions`` (same total, same view)."""
        positions = [int(p) for p in positions]
        rows = self.rows if self.all_rows else [self.rows[p] for p in positions]
        return MemberPlan(
            rows, self.member_ids[positions], self.n_members_total, self.view, self.view_once
        )

    def check_rows(self, n_samples: int) -> None:
        """Raise a clear error if a member's rows do not address rows of an ``X`` this long."""
        if self.all_rows:
            if n_samples == 0:
                raise ValueError("X has no rows; members cannot be trained on no data.")
            return
        for position, arr in enumerate(self.rows):
            if arr.size == 0:
                raise ValueError(
                    f"rows[{position}] is empty: a member cannot be trained on no rows. Leave "
                    "empty partitions out of the plan (pass member_ids for the others) and give "
                    "them an abstaining member."
                )
            if arr.min() < 0 or arr.max() >= n_samples:
                raise ValueError(
                    f"rows[{position}] holds row indices outside [0, {n_samples}); indices must "
                    "address rows of X."
                )


def _as_row_lists(rows) -> list:
    if isinstance(rows, np.ndarray) and rows.dtype != object and rows.ndim == 1:
        raise TypeError(
            "rows must be a list of 1-d index arrays (one per member), not one flat array."
        )
    if not isinstance(rows, (Sequence, np.ndarray)):
        raise TypeError(f"rows must be a list of 1-d integer index arrays or 'all', got {rows!r}.")
    out = []
    for position, subset in enumerate(rows):
        arr = np.asarray(subset)
        if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise TypeError(
                f"rows[{position}] must be a 1-d array of integer row indices, got dtype "
                f"{arr.dtype} and shape {arr.shape}."
            )
        out.append(arr.astype(np.intp, copy=False))
    return out


def _as_member_ids(member_ids) -> np.ndarray:
    ids = np.asarray(member_ids)
    if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
        raise TypeError(
            f"member_ids must be a 1-d sequence of non-negative ints, got {member_ids!r}."
        )
    ids = ids.astype(np.int64)
    if ids.size and ids.min() < 0:
        raise ValueError("member_ids must be non-negative ints.")
    if np.unique(ids).size != ids.size:
        raise ValueError("member_ids must be unique: two members would share all their randomness.")
    return ids


def _as_total(total, ids: np.ndarray) -> int:
    needed = int(ids.max()) + 1 if ids.size else 0
    if total is None:
        return needed
    if isinstance(total, (bool, np.bool_)) or not isinstance(total, numbers.Integral) or total < 1:
        raise ValueError(f"n_members_total must be a positive int or None, got {total!r}.")
    if total < needed:
        raise ValueError(
            f"n_members_total={total} but member_ids go up to {needed - 1}; n_members_total "
            "must exceed every member id."
        )
    return int(total)
