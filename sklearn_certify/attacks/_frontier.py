"""Holding a frontier certificate to a poisoning: rows by trusted key, l2 inside partitions.

:class:`~sklearn_certify.PartitionedRABClassifier` partitions its training rows by a trusted
row key and certifies, for ``r`` inserted, deleted or relabeled rows, an l2 budget of
feature changes on top. The harness keys the poisoned rows as the classifier assumes (a
kept row keeps its key, an inserted row gets a fresh one), measures each poisoning in
``"rows+l2"``, reads the frontier at that row count, and bounds the chance that a
prediction the frontier certifies still changes: ``alpha``, plus the chance that a
partition the poisoning did not buy (no row of it touched, its l2 share below its radius)
has a finite vote that misses its smoothed class.
"""

from __future__ import annotations

import inspect

import numpy as np
from scipy import stats

from sklearn_certify import bounds

__all__ = ["FrontierCheck", "clean_row_key", "finite_vote_miss", "is_keyed", "poisoned_row_key"]


def is_keyed(estimator) -> bool:
    """Whether the estimator partitions by a trusted row key (its ``fit`` takes ``row_key``)."""
    return "row_key" in inspect.signature(type(estimator).fit).parameters


def clean_row_key(estimator, row_key, n_rows: int) -> np.ndarray | None:
    """The clean rows' keys (their positions when None), or None for an unkeyed estimator."""
    from sklearn_certify.partition._mixed import training_row_key

    if not is_keyed(estimator):
        if row_key is not None:
            raise ValueError(
                f"row_key is for a classifier partitioned by a trusted row key (one whose fit "
                f"takes row_key, e.g. PartitionedRABClassifier); {type(estimator).__name__} "
                "takes none. Leave row_key as None."
            )
        return None
    return training_row_key(row_key, n_rows)


def poisoned_row_key(clean_key: np.ndarray, result) -> np.ndarray:
    """Keys of the poisoned rows: a kept row keeps its key, inserted rows get fresh ones.

    The fresh keys follow the largest clean key, in the order the rows were inserted;
    the certificate lets an inserted row land in any partition, so which one it is does
    not matter.
    """
    source = np.asarray(result.source)
    keys = np.empty(source.shape[0], dtype=np.int64)
    kept = source >= 0
    keys[kept] = clean_key[source[kept]]
    keys[~kept] = int(clean_key.max(initial=-1)) + 1 + np.arange(int((~kept).sum()))
    return keys


def finite_vote_miss(q: np.ndarray, n_votes: int, rule: str) -> np.ndarray:
    """Bound on the chance that a finite vote misses a class each draw keeps with prob. ``q``.

    ``rule="votes"``: the vote of ``n_votes`` independent draws keeps the class when more
    than half go to it, so it misses with probability at most ``P(Binomial(n, q) <= n/2)``.
    ``rule="mean"``: averaged probabilities, Hoeffding's ``exp(-2 n (q - 1/2)^2)`` (1 where
    ``q <= 1/2``).
    """
    if rule == "mean":
        return np.where(q > 0.5, np.exp(-2.0 * n_votes * (q - 0.5) ** 2), 1.0)
    return stats.binom.cdf(n_votes // 2, n_votes, q)


class FrontierCheck:
    """The frontier of a fitted ``PartitionedRABClassifier`` on the evaluated inputs.

    The level, the noise, the members per partition and how a partition votes in
    ``predict`` (its members' most voted class, or their largest mean probability for
    ``bound="hoeffding"``) are read from the model's fitted attributes.

    Parameters
    ----------
    model : PartitionedRABClassifier
        Fitted on the clean set with keys ``clean_key``.
    X : ndarray
        The inputs whose predictions are held to the frontier.
    clean_key : ndarray of int64
        The clean rows' keys.
    """

    def __init__(self, model, X, clean_key):
        self.model = model
        self.frontier = model.frontier(X)
        self.clean_key = clean_key

    def slack(self, rows: np.ndarray, l2: np.ndarray) -> np.ndarray:
        """Per point, how many more rows its frontier covers on top of ``(rows[i], l2[i])``.

        The largest ``f`` such that ``rows[i] + f`` rows together with l2 norm ``l2[i]``
        are certified (the frontier at ``rows[i] + f`` is above ``l2[i]``, or positive when
        ``l2[i]`` is 0); -1 where ``(rows[i], l2[i])`` itself is not certified.
        """
        front, n_classes = self.frontier, len(self.model.classes_)
        k = front.partition_votes.shape[1]
        out = np.empty(rows.shape[0], dtype=np.int64)
        for count in np.unique(rows):
            at = rows == count
            _, eps = bounds.mixed_radius_frontier(
                front.partition_votes[at],
                front.partition_radius[at],
                n_classes,
                int(count) + np.arange(k + 1),
            )
            budget = l2[at][:, None]
            covered = (eps > budget) | ((budget == 0) & (eps > 0))
            out[at] = covered.sum(axis=1) - 1  # eps is non-increasing in the row count
        return out

    def footprint(self, result) -> tuple[np.ndarray, np.ndarray]:
        """Which partitions a poisoning touched with a row, and each one's l2 share.

        Returns ``(touched, share)``: ``touched[j]`` where a row was inserted into,
        deleted from or relabeled in partition ``j``; ``share[j]`` the l2 norm of the
        feature changes of partition ``j``'s other kept rows.
        """
        model = self.model
        touched = np.zeros(model.n_partitions_, dtype=bool)
        inserted = poisoned_row_key(self.clean_key, result)[np.asarray(result.added)]
        touched[model.assign_partitions(inserted)] = True
        touched[model.partition_of_row_[np.asarray(result.removed)]] = True
        touched[model.partition_of_row_[np.asarray(result.relabeled)]] = True
        nudged = ~np.isin(result.changed, result.relabeled)
        squares = np.zeros(model.n_partitions_)
        np.add.at(
            squares,
            model.partition_of_row_[np.asarray(result.changed)[nudged]],
            np.asarray(result.feature_l2)[nudged] ** 2,
        )
        return touched, np.sqrt(squares)

    def failure_bound(self, results: list, slack: np.ndarray) -> np.ndarray:
        """Per point, a bound on the chance that its certified prediction changes.

        ``results[i]`` is the poisoning point ``i`` was evaluated under and ``slack[i]``
        its :meth:`slack` (at least 0). With probability at least ``1 - alpha`` every
        partition's bounds hold. Then a partition that no row touched and whose l2 share
        ``e`` is below its radius keeps its class with probability at least
        ``q = Phi(Phi^-1(p_lower) - e / sigma)`` per member, and its finite vote in
        ``predict`` misses that class with probability at most
        ``m = P(Binomial(N, q) <= N / 2)`` (Hoeffding's ``exp(-2 N (q - 1/2)^2)`` for
        averaged probabilities); the partitions' members are independent, so are their
        misses. A miss changes that partition's vote as one more inserted row could, and
        the frontier already counts every other partition as lost, so the prediction can
        change only if more than ``slack[i]`` partitions miss. The bound is ``alpha`` plus
        that Poisson-binomial tail, computed with the bounds ``m``.
        """
        front = self.frontier
        footprints = {}
        touched = np.empty(front.partition_votes.shape, dtype=bool)
        share = np.empty(front.partition_votes.shape)
        for i, result in enumerate(results):
            if id(result) not in footprints:
                footprints[id(result)] = self.footprint(result)
            touched[i], share[i] = footprints[id(result)]
        exposed = (front.partition_votes >= 0) & ~touched & (share < front.partition_radius)
        model = self.model
        q = stats.norm.cdf(stats.norm.ppf(front.partition_p_lower) - share / model.sigma_)
        rule = "mean" if model.bound_ == "hoeffding" else "votes"
        miss = finite_vote_miss(q, model.n_estimators_, rule)
        tail = _tail_beyond(np.where(exposed, miss, 0.0), slack)
        return np.minimum(1.0, model.alpha_ + tail)


def _tail_beyond(p: np.ndarray, slack: np.ndarray) -> np.ndarray:
    """Per row, ``P(sum of independent Bernoulli(p[i, j]) over j > slack[i])``."""
    n_points, k = p.shape
    mass = np.zeros((n_points, k + 1))  # mass[i, s]: P(s successes so far)
    mass[:, 0] = 1.0
    for j in range(k):
        moved = mass * p[:, [j]]
        mass = mass - moved
        mass[:, 1:] += moved[:, :-1]
    beyond = np.arange(k + 1)[None, :] > slack[:, None]
    return np.clip(np.sum(np.where(beyond, mass, 0.0), axis=1), 0.0, 1.0)
