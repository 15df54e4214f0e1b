"""Mixed certificate: a few arbitrary poisoned rows and many small feature perturbations at once.

The training set is split into ``k`` partitions by a trusted row key, so a row whose features
are perturbed stays in its partition, an inserted row lands in one partition and a deleted row
leaves its own. Each partition's vote comes from a classifier smoothed over noisy copies of
that partition (RAB within the partition) and is certified: it predicts ``v_j`` for every
perturbation of the partition's features with l2 norm below ``R_j``. The partitions' votes are
aggregated by plurality, ties to the smaller class index, as in DPA.

An attacker inserts or deletes ``r`` rows and perturbs the other rows' features with total l2
norm ``eps`` (the squares of the partitions' shares add up). Changing partition ``j``'s vote
costs one row, or l2 budget ``R_j`` spent inside it (``R_j ** 2`` out of ``eps ** 2``). For
each ``r`` the cheapest attack is found exactly (the user guide's mixed page proves it):
for a target class ``c``, the l2 budget buys the partitions voting for the prediction with the
smallest radii and the others with the smallest radii, and the rows go to partitions voting
for the prediction first (each such flip gains two votes, any other one).
"""

from __future__ import annotations

import numpy as np

from sklearn_certify._validation import check_counts, check_real_array, check_scalar_int
from sklearn_certify.bounds._fa import ABSTAIN

__all__ = ["mixed_radius_frontier", "mixed_rows_frontier"]


def _check_votes(votes, n_classes: int) -> np.ndarray:
    array = check_real_array("votes", votes)
    if array.ndim != 2 or array.shape[1] < 1:
        raise ValueError(f"votes must have shape (n_points, n_partitions >= 1), got {array.shape}.")
    if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
        raise ValueError("votes must hold integer class indices (or -1 for an abstained vote).")
    if np.any(array < ABSTAIN) or np.any(array >= n_classes):
        raise ValueError(
            f"votes must lie in [-1, n_classes - 1] = [-1, {n_classes - 1}] "
            "(-1: the partition's certificate abstained)."
        )
    return array.astype(np.int64)


def _check_radii(radii, votes: np.ndarray) -> np.ndarray:
    array = check_real_array("radii", radii)
    if array.shape != votes.shape:
        raise ValueError(f"radii {array.shape} must have the shape of votes {votes.shape}.")
    if np.any(np.isnan(array)) or np.any(array < 0):
        raise ValueError("radii must be >= 0 (+inf allowed); got a negative value or NaN.")
    if np.any(array[votes == ABSTAIN] != 0):
        raise ValueError("radii must be 0 where votes is -1 (an abstained partition).")
    return array


def _check_budgets(eps) -> np.ndarray:
    array = check_real_array("eps", eps)
    if array.ndim != 1:
        raise ValueError(f"eps must be 1-dimensional, got shape {array.shape}.")
    if np.any(np.isnan(array)) or np.any(array < 0):
        raise ValueError("eps must hold l2 budgets >= 0; got a negative value or NaN.")
    return array


def _prefix_squares(radii: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Per point: 0, then running sums of the members' squared radii, smallest first.

    Column ``l`` is the cost of buying the ``l`` cheapest members with l2 budget; columns past
    a point's number of members are ``inf`` and never chosen.
    """
    squares = np.sort(np.where(members, radii, np.inf), axis=1) ** 2
    start = np.zeros((len(radii), 1))
    return np.concatenate([start, np.cumsum(squares, axis=1)], axis=1)


def _squared_frontier(votes: np.ndarray, radii: np.ndarray, n_classes: int, rows: np.ndarray):
    """Prediction and the cheapest successful attack's squared l2 cost, per point and row count.

    For each target class ``c`` and each number ``l_a`` of prediction voters bought with l2
    (the cheapest ones), rows take the remaining prediction voters first (two votes each), then
    other partitions; the other partitions still missing are bought with l2, cheapest first.
    """
    n_points, n_partitions = votes.shape
    points = np.arange(n_points)
    counts = (votes[:, :, None] == np.arange(n_classes)).sum(axis=1)
    prediction = np.argmax(counts, axis=1)
    n_a = counts[points, prediction]
    is_a = votes == prediction[:, None]
    prefix_a = _prefix_squares(radii, is_a)
    r = rows[None, :]
    best = np.full((n_points, len(rows)), np.inf)
    for c in range(n_classes):
        challenger = (prediction != c)[:, None]
        others = ~is_a & (votes != c)
        prefix_o = _prefix_squares(radii, others)
        n_o = others.sum(axis=1)[:, None]
        # votes c must gain on the prediction to beat it under the tie-break
        gap = (n_a - counts[:, c] + (c > prediction))[:, None]
        for l_a in range(int(n_a.max(initial=0)) + 1):
            t_a = np.minimum(r, n_a[:, None] - l_a)  # rows flipping prediction voters
            need = gap - 2 * l_a - 2 * t_a  # gain still missing, one per other partition
            l_o = np.maximum(need - (r - t_a), 0)  # others bought with l2 after the rows
            feasible = challenger & (l_a <= n_a[:, None]) & (need <= n_o)
            bought = np.take_along_axis(prefix_o, np.minimum(l_o, n_partitions), axis=1)
            cost = prefix_a[:, [l_a]] + bought
            best = np.where(feasible, np.minimum(best, cost), best)
    return prediction.astype(np.int64), best


def mixed_radius_frontier(votes, radii, n_classes: int, rows) -> tuple[np.ndarray, np.ndarray]:
    """Certified l2 budget against ``r`` poisoned rows plus feature perturbations, for each ``r``.

    Partition ``j`` of ``k`` (split by a trusted row key) votes ``votes[:, j]``, certified
    against every perturbation of its rows' features with l2 norm below ``radii[:, j]``; the
    prediction is the plurality of the votes, ties to the smaller class index. An attacker who
    inserts or deletes ``r`` rows (each lands in, or leaves, one partition, whose vote it can
    then set to anything) and perturbs the features by a total l2 norm below the returned
    ``eps`` (shared among partitions, the squares adding up) cannot change the prediction.
    ``eps`` is the largest such budget: some attack with ``r`` rows and l2 norm ``eps`` does
    change the prediction when the certificates are tight. The user guide's mixed page proves
    that the cheapest attack found here is optimal.

    ``eps`` is 0 where ``r`` rows alone (or abstained partitions, which change for free) can
    change the prediction, and non-increasing in ``r``. It is ``+inf`` only where some radii
    are ``+inf`` (partitions no feature perturbation can change) and ``r`` rows together with
    the finite-radius partitions cannot change the prediction: with every radius finite,
    changing all ``k`` votes always succeeds, so ``eps`` is finite.

    The partitions' certificates must hold together: with ``k`` partitions certified at level
    ``alpha / k`` each, the frontier holds with probability at least ``1 - alpha``.

    Parameters
    ----------
    votes : array-like of int of shape (n_points, n_partitions)
        Each partition's certified class, or -1 where its certificate abstained (it votes for
        no class and an attacker may set it to any class for free).
    radii : array-like of shape (n_points, n_partitions)
        Each partition's certified l2 radius, ``>= 0`` (``+inf`` allowed); 0 where a vote is
        -1. A radius of 0 means the vote changes for free.
    n_classes : int
        Number of classes, ``>= 2``.
    rows : array-like of int of shape (n_rows,)
        Numbers of inserted plus deleted rows ``r >= 0``.

    Returns
    -------
    prediction : ndarray of int64 of shape (n_points,)
        Plurality of the votes (abstained votes do not count), ties to the smaller index.
    eps : ndarray of float of shape (n_points, n_rows)
        The largest l2 budget certified together with each row count: every attack with
        ``rows[i]`` rows and l2 norm strictly below ``eps[:, i]`` keeps the prediction.

    See Also
    --------
    mixed_rows_frontier : The same frontier read the other way: rows certified per l2 budget.
    dpa_radius : Rows alone (the frontier's positive part when every radius is positive).
    gaussian_certify : A partition's l2 radius from its members' votes.

    Examples
    --------
    Three partitions vote 0, 0, 1. To make class 1 win (a tie goes to 0) the attacker must
    flip a partition voting 0: with no row the cheapest costs l2 budget 0.5, one row does it:

    >>> from sklearn_certify.bounds import mixed_radius_frontier
    >>> prediction, eps = mixed_radius_frontier([[0, 0, 1]], [[0.5, 1.0, 0.3]], 2, [0, 1, 2])
    >>> prediction.tolist(), eps.tolist()
    ([0], [[0.5, 0.0, 0.0]])
    """
    n_classes = check_scalar_int("n_classes", n_classes, min_value=2)
    votes = _check_votes(votes, n_classes)
    radii = _check_radii(radii, votes)
    rows = check_counts("rows", rows, ndim=1)
    prediction, squared = _squared_frontier(votes, radii, n_classes, rows)
    return prediction, np.sqrt(squared)


def mixed_rows_frontier(votes, radii, n_classes: int, eps) -> tuple[np.ndarray, np.ndarray]:
    """Certified number of poisoned rows for each l2 budget (the frontier read the other way).

    For each budget ``eps``, the largest ``r`` such that every attack with ``r`` inserted or
    deleted rows and feature perturbations of total l2 norm at most ``eps`` keeps the
    prediction, i.e. the largest ``r`` with ``eps < eps*(r)`` for the frontier ``eps*`` of
    :func:`mixed_radius_frontier` (which is non-increasing in ``r``). With ``eps = 0`` and
    every radius positive it is DPA's radius.

    Parameters
    ----------
    votes : array-like of int of shape (n_points, n_partitions)
        Each partition's certified class, or -1 where its certificate abstained.
    radii : array-like of shape (n_points, n_partitions)
        Each partition's certified l2 radius, ``>= 0`` (``+inf`` allowed); 0 where a vote is
        -1.
    n_classes : int
        Number of classes, ``>= 2``.
    eps : array-like of shape (n_budgets,)
        l2 budgets ``>= 0``.

    Returns
    -------
    prediction : ndarray of int64 of shape (n_points,)
        Plurality of the votes (abstained votes do not count), ties to the smaller index.
    rows : ndarray of int64 of shape (n_points, n_budgets)
        Certified rows, at most ``n_partitions - 1``; -1 where even an attack with no row
        (perturbations of norm ``eps``, or abstained partitions) can change the prediction.

    See Also
    --------
    mixed_radius_frontier : The l2 budget certified for each number of rows.

    Examples
    --------
    Five partitions vote 0, 0, 0, 1, 2. Class 2 wins once a 0-voter (the cheapest has radius
    2) and the 1-voter (radius 0.1) vote 2: with no row that costs l2 norm ``sqrt(4 + 0.01)``,
    with one row (on the 0-voter) 0.1, with two rows nothing. So a budget of 0.05 certifies one
    row, 0.1 none, and 2.1 not even the training set as it is (-1):

    >>> from sklearn_certify.bounds import mixed_rows_frontier
    >>> votes, radii = [[0, 0, 0, 1, 2]], [[2.0, 3.0, 4.0, 0.1, 0.2]]
    >>> prediction, rows = mixed_rows_frontier(votes, radii, 3, [0.0, 0.05, 0.1, 2.1])
    >>> prediction.tolist(), rows.tolist()
    ([0], [[1, 1, 0, -1]])
    """
    n_classes = check_scalar_int("n_classes", n_classes, min_value=2)
    votes = _check_votes(votes, n_classes)
    radii = _check_radii(radii, votes)
    eps = _check_budgets(eps)
    all_rows = np.arange(votes.shape[1], dtype=np.int64)
    prediction, squared = _squared_frontier(votes, radii, n_classes, all_rows)
    certified = np.sqrt(squared)[:, None, :] > eps[None, :, None]
    return prediction, certified.sum(axis=2).astype(np.int64) - 1
