"""DPA x RAB: training-set smoothing inside each partition, against rows and features at once.

:class:`PartitionedRABClassifier` splits the training rows into ``k`` partitions by a trusted
row key, trains ``N`` members on keyed-noisy copies of each partition (RAB within the
partition), certifies each partition's smoothed vote with a Gaussian l2 radius at level
``alpha / k``, and hands the partitions' classes and radii to the frontier
:func:`~sklearn_certify.bounds.mixed_radius_frontier`: for every number of inserted or deleted
rows ``r``, the largest l2 budget of feature perturbations that cannot change the prediction.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from numbers import Integral
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from sklearn_certify import bounds
from sklearn_certify.ensemble import MemberPlan
from sklearn_certify.smoothing._core import BaseSmoothingEnsemble
from sklearn_certify.smoothing._noise import GaussianNoiseView

__all__ = ["PartitionFrontier", "PartitionedRABClassifier", "partition_of_keys"]

#: Personalisation of the keyed partition hash (BLAKE2b), so that no other hash of the same
#: key and seed in this package can coincide with it.
_HASH_PERSON = b"skc-mixed-part"


def partition_of_keys(row_key, n_partitions: int, seed: int) -> np.ndarray:
    """The partition of every row key: a keyed BLAKE2b hash of the key, modulo ``k``.

    Key ``v`` goes to partition ``h(v) mod n_partitions``, where ``h(v)`` is the first 8 bytes
    (little-endian) of the BLAKE2b digest of ``v`` as 8 little-endian signed bytes, keyed by
    ``seed`` (8 little-endian bytes) and personalised with ``b"skc-mixed-part"``. It is a
    function of the key and the seed alone: neither the row's features, its label nor its
    position moves it.

    Parameters
    ----------
    row_key : array-like of int of shape (n_rows,)
        Row keys (int64 range).
    n_partitions : int
        Number of partitions ``k``.
    seed : int
        Non-negative key of the hash (an estimator's ``seed_``).

    Returns
    -------
    partitions : ndarray of int64 of shape (n_rows,)
        Values in ``0 .. n_partitions - 1``.

    Examples
    --------
    >>> from sklearn_certify.partition import partition_of_keys
    >>> parts = partition_of_keys([10, 11, 12, 10], n_partitions=3, seed=0)
    >>> parts.shape, bool(parts[0] == parts[3]), bool(((parts >= 0) & (parts < 3)).all())
    ((4,), True, True)
    """
    keys = _check_keys(row_key)
    k = int(n_partitions)
    secret = int(seed).to_bytes(8, "little")
    out = np.empty(keys.shape[0], dtype=np.int64)
    for i, value in enumerate(keys.tolist()):
        digest = hashlib.blake2b(
            value.to_bytes(8, "little", signed=True), digest_size=8, key=secret, person=_HASH_PERSON
        ).digest()
        out[i] = int.from_bytes(digest, "little") % k
    return out


def _check_keys(row_key) -> np.ndarray:
    keys = np.asarray(row_key)
    if keys.ndim != 1 or keys.dtype == bool or not np.issubdtype(keys.dtype, np.integer):
        raise TypeError(
            "row_key must be a 1-d array of integers (an id column), got "
            f"dtype {keys.dtype} and shape {keys.shape}."
        )
    if keys.size and (keys.max() > np.iinfo(np.int64).max or keys.min() < np.iinfo(np.int64).min):
        raise ValueError("row_key values must fit in int64.")
    return keys.astype(np.int64)


def training_row_key(row_key, n_rows: int) -> np.ndarray:
    """The training rows' keys: ``row_key`` checked (int64, one unique key per row), or
    the rows' positions when it is None."""
    if row_key is None:
        return np.arange(n_rows, dtype=np.int64)
    keys = _check_keys(row_key)
    if keys.shape[0] != n_rows:
        raise ValueError(
            f"row_key has {keys.shape[0]} entries but X has {n_rows} rows; pass one key per row."
        )
    if np.unique(keys).size != n_rows:
        raise ValueError(
            "row_key must be unique (an id per row): two rows share a key. Deduplicate "
            "the ids, or leave row_key=None to key rows by their position."
        )
    return keys


class PartitionRankNoiseView(GaussianNoiseView):
    """Gaussian noise keyed by (member seed, rank of the row in its partition's key order).

    A row's rank is its position among its partition's rows sorted by row key: a function of
    the partition's trusted keys alone. Member ``m`` of partition ``j`` thus sees row ``i`` as
    ``X[i] + sigma * z`` with ``z`` keyed by ``(member_seed(seed_, m, "view"), rank(i))``:
    rows inserted or deleted in another partition, or features perturbed anywhere, leave
    every member of partition ``j`` exactly as it was (keying by the position in ``X``
    would move the noise of every later row when one row is inserted before it).

    Parameters
    ----------
    sigma : float
        Noise standard deviation, in the units of the features.
    rank : ndarray of int64 of shape (n_samples,)
        Rank of each training row (indexed by its position in ``X``) in its partition.
    """

    def __init__(self, sigma: float, rank: np.ndarray):
        super().__init__(sigma)
        self.rank = np.asarray(rank, dtype=np.int64)

    def __call__(self, X, row_ids, member_ids, seeds):
        import torch

        if row_ids is None:
            return super().__call__(X, row_ids, member_ids, seeds)  # refuses test-time use
        rank = torch.as_tensor(self.rank, device=row_ids.device)[row_ids]
        return super().__call__(X, rank, member_ids, seeds)


@dataclass(frozen=True)
class PartitionFrontier:
    """The certified frontier of a :class:`~sklearn_certify.PartitionedRABClassifier`.

    ``eps[i, t]`` is the largest l2 budget such that no poisoning that inserts or deletes
    ``rows[t]`` training rows *and* perturbs training features by a total l2 norm
    ``sqrt(sum_i ||delta_i||^2) < eps[i, t]`` changes ``prediction[i]`` (0: not certified
    at that row count), with probability at least ``1 - alpha`` over the members' noise.

    Attributes
    ----------
    prediction : ndarray of shape (n_points,)
        The certified prediction (labels).
    rows : ndarray of int64 of shape (n_rows,)
        The row counts of the columns of ``eps``.
    eps : ndarray of float of shape (n_points, n_rows)
        The l2 frontier; non-increasing along ``rows`` when ``rows`` is sorted.
    partition_votes : ndarray of int64 of shape (n_points, n_partitions)
        Each partition's certified class index (into the classifier's ``classes_``), ``-1``
        where its vote bounds do not separate.
    partition_radius : ndarray of float of shape (n_points, n_partitions)
        Each partition's Gaussian l2 radius at level ``alpha / n_partitions`` (0 where it
        abstains).
    partition_p_lower : ndarray of float of shape (n_points, n_partitions)
        Each partition's lower bound on its class's probability under the training noise,
        at the same level (0 where it abstains): a perturbation of l2 norm ``e`` inside the
        partition keeps that probability at least ``Phi(Phi^-1(p_lower) - e / sigma)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify.partition import PartitionFrontier
    >>> f = PartitionFrontier(np.array([3]), np.array([0, 1]), np.array([[0.5, 0.2]]),
    ...                       np.array([[3, 3, 3]]), np.array([[0.4, 0.3, 0.2]]),
    ...                       np.array([[0.9, 0.8, 0.7]]))
    >>> f.certified(1, 0.1).tolist(), f.certified(1, 0.2).tolist()
    ([True], [False])
    """

    prediction: np.ndarray
    rows: np.ndarray
    eps: np.ndarray
    partition_votes: np.ndarray
    partition_radius: np.ndarray
    partition_p_lower: np.ndarray

    def certified(self, rows: int, eps: float) -> np.ndarray:
        """Whether each prediction survives ``rows`` inserted/deleted rows plus l2 ``eps``.

        Parameters
        ----------
        rows : int
            One of ``self.rows``.
        eps : float
            Total l2 norm of the feature perturbation (the prediction is certified for
            budgets strictly below its frontier, and for 0 where the frontier is positive).

        Returns
        -------
        ndarray of bool of shape (n_points,)
        """
        column = np.flatnonzero(self.rows == rows)
        if column.size == 0:
            raise ValueError(
                f"rows={rows} is not one of the reported row counts {self.rows.tolist()}; "
                "fit the classifier with it among its rows parameter."
            )
        frontier = self.eps[:, column[0]]
        return (frontier > eps) | ((eps == 0) & (frontier > 0))


class PartitionedRABClassifier(BaseSmoothingEnsemble):
    """DPA partitions with RAB inside each: certified against rows and features together.

    Deep Partition Aggregation certifies inserted or deleted rows, RAB certifies l2
    perturbations of the training features; a real poisoning often does both (a faint
    backdoor trigger on many rows plus a few inserted rows). This classifier:

    1. splits the training rows into ``n_partitions`` partitions by a **trusted row key**
       (``fit(X, y, row_key=...)``): partition ``j`` holds the rows whose keyed hash
       (:func:`~sklearn_certify.partition.partition_of_keys`, keyed by ``seed_``) is
       ``j``, sorted by key;
    2. trains ``n_estimators`` members on each partition, member ``m`` of partition ``j``
       (member id ``j * n_estimators + m``) on its own noisy copy of the partition's rows:
       Gaussian noise of standard deviation ``sigma`` keyed by the member's seed and the
       row's rank in the partition (``PartitionRankNoiseView``);
    3. certifies each partition's smoothed vote (the statistic ``bound`` on its
       ``n_estimators`` members at level ``alpha / n_partitions``, so that all partitions'
       bounds hold together with probability at least ``1 - alpha``): its class, or ``-1``
       where the bounds do not separate, and its Gaussian l2 radius ``R_j``
       (:func:`~sklearn_certify.bounds.gaussian_certify`);
    4. predicts the plurality of the partitions' classes and certifies it by the frontier
       (:func:`~sklearn_certify.bounds.mixed_radius_frontier`): for each row count ``r`` in
       ``rows``, the largest l2 budget ``eps*`` such that inserting or deleting ``r`` rows
       (each changes one partition at most) and perturbing the training features by a total
       l2 norm below ``eps*`` (flipping partition ``j`` costs at least ``R_j``) cannot change
       the prediction.

    Why the key must be trusted: a content hash (DPA's) moves a row whose features are
    nudged into another partition, so a trigger spread thinly over many rows would change
    many partitions at once; the certificate needs every feature perturbation to stay in
    its row's partition. The key is an id the attacker cannot choose for existing rows (a
    database id, an upload number). Without ``row_key`` the key is the row's position in
    the training order, as SS-DPA trusts its order: sound when the order is trusted, i.e.
    perturbed rows stay where they are and inserted rows come after the clean ones (an
    insertion or deletion *before* a clean row would shift its key and move it).

    Parameters
    ----------
    estimator : estimator object
        Base classifier (a skorch net or any sklearn classifier); one clone per member.
        Data-dependent preprocessing belongs inside it.
    n_partitions : int, default=10
        Number of partitions ``k``. More partitions certify more rows (at most ``k // 2``)
        with weaker members.
    n_estimators : int, default=20
        Members per partition ``N`` (at least 2); ``k * N`` members in all.
    sigma : float, default=0.5
        Standard deviation of the training noise, in feature units.
    alpha : float, default=0.001
        The certificate fails with probability at most ``alpha`` (each partition's bounds
        at ``alpha / n_partitions``).
    bound : {"clopper-pearson", "simultaneous", "hoeffding"}, default="clopper-pearson"
        The vote statistic of each partition (as for :class:`~sklearn_certify.RABClassifier`).
    n_select : int, default=None
        Members of each partition that choose its class (``"clopper-pearson"`` and
        ``"hoeffding"``): the first ``n_select`` of the partition; ``None`` is
        ``ceil(n_estimators / 10)``.
    rows : array-like of int, default=(0, 1, 2, 5)
        Row counts ``r`` at which :meth:`frontier` reports the l2 frontier.
    engine, random_state, n_jobs, verbose
        As for :class:`~sklearn_certify.RABClassifier`.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels seen in ``fit``.
    row_key_ : ndarray of int64 of shape (n_samples,)
        The training rows' keys.
    partition_of_row_ : ndarray of int64 of shape (n_samples,)
        The partition of every training row.
    partition_sizes_ : ndarray of int64 of shape (n_partitions,)
        Rows per partition.
    member_rows_ : list of ndarray of int
        Member ``j * N + m`` saw the rows of partition ``j``, in key order.
    rows_ : ndarray of int64
        The reported row counts.
    n_partitions_, n_estimators_, sigma_, alpha_, bound_ : int, int, float, float, str
        The parameters as ``fit`` saw them; the certificate reads these.
    n_select_ : int
        Members of each partition that choose its class (0 for ``"simultaneous"``).
    seed_ : int
        Seed drawn from ``random_state``; keys the partition hash and every member.

    See Also
    --------
    sklearn_certify.DPAClassifier : Rows only (content-hashed partitions).
    sklearn_certify.RABClassifier : Features only (one smoothed ensemble).

    Notes
    -----
    The certificate covers the training set; test inputs are scored as given (no test-time
    noise), so a test-time trigger is certified on the triggered input itself. A label flip
    of a keyed row changes one partition, as one inserted row does. An empty partition's
    members abstain, and a partition whose labels are all one class gets constant members;
    both are sound.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn_certify.datasets import load_digits
    >>> from sklearn_certify.partition import PartitionedRABClassifier
    >>> X, y = load_digits(digits=(1, 7), split="train")
    >>> X_test, y_test = load_digits(digits=(1, 7), split="test")
    >>> clf = PartitionedRABClassifier(LogisticRegression(), n_partitions=5, n_estimators=20,
    ...                                sigma=0.5, alpha=0.05, rows=(0, 1, 2),
    ...                                random_state=0).fit(X, y)
    >>> len(clf.estimators_), int(clf.partition_sizes_.sum()) == len(X)
    (100, True)
    >>> front = clf.frontier(X_test)
    >>> front.eps.shape, bool((np.diff(front.eps, axis=1) <= 0).all())
    ((91, 3), True)

    Fraction of the test digits certified against 2 inserted or deleted rows plus any
    training-feature perturbation of total l2 norm below 0.25:

    >>> round(float(front.certified(2, 0.25).mean()), 2)
    0.66
    >>> cert = clf.certify(X_test)  # the frontier at no row, as a Certificate
    >>> cert.unit, bool((cert.radius == front.eps[:, 0]).all())
    ('l2', True)
    """

    _parameter_constraints: ClassVar[dict] = {
        **BaseSmoothingEnsemble._parameter_constraints,
        "n_partitions": [Interval(Integral, 1, None, closed="left")],
        "rows": ["array-like"],
    }
    _int_params: ClassVar[tuple] = ("n_jobs", "n_estimators", "n_select", "n_partitions")
    _fitted_params: ClassVar[tuple] = ("n_partitions", "n_estimators", "sigma", "alpha", "bound")
    _too_few_rows_hint = "use fewer partitions (n_partitions)"
    _certificate_unit = "l2"

    def __init__(
        self,
        estimator,
        n_partitions: int = 10,
        n_estimators: int = 20,
        sigma: float = 0.5,
        alpha: float = 0.001,
        bound: str = "clopper-pearson",
        n_select: int | None = None,
        rows=(0, 1, 2, 5),
        engine: str = "auto",
        random_state=None,
        n_jobs: int | None = None,
        verbose: int = 0,
    ):
        super().__init__(
            estimator,
            n_estimators=n_estimators,
            sigma=sigma,
            alpha=alpha,
            bound=bound,
            n_select=n_select,
            engine=engine,
            random_state=random_state,
            n_jobs=n_jobs,
            verbose=verbose,
        )
        self.n_partitions = n_partitions
        self.rows = rows

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y, row_key=None):
        """Partition the rows by their trusted keys, train ``k * N`` members, keep them.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Training rows.
        y : array-like of shape (n_samples,)
            Labels.
        row_key : array-like of int of shape (n_samples,), default=None
            A trusted, unique id per row that feature perturbations cannot change (an id
            column). ``None``: the position in the training order (see the class notes for
            what that assumes).

        Returns
        -------
        self : object
            The fitted classifier.
        """
        self._fit_row_key = row_key
        try:
            return super().fit(X, y)
        finally:
            del self._fit_row_key

    def _record_fitted_params(self) -> None:
        """The parameters as ``<name>_``, and ``rows_`` checked (non-negative ints)."""
        super()._record_fitted_params()
        rows = np.asarray(self.rows)
        if (
            rows.ndim != 1
            or rows.size == 0
            or rows.dtype == bool
            or not np.issubdtype(rows.dtype, np.integer)
        ):
            raise TypeError(f"rows must be a non-empty 1-d sequence of ints, got {self.rows!r}.")
        if rows.min() < 0:
            raise ValueError(f"rows must be non-negative row counts, got {self.rows!r}.")
        self.rows_ = rows.astype(np.int64)

    def _check_options(self, X, y_encoded) -> None:
        super()._check_options(X, y_encoded)
        n = X.shape[0]
        keys = training_row_key(self._fit_row_key, n)
        if self.n_partitions_ > n:
            raise ValueError(
                f"n_partitions={self.n_partitions_} is larger than the number of training rows "
                f"({n}); most partitions would be empty. Use n_partitions <= {n}."
            )
        self.row_key_ = keys

    def _member_plan(self, X, y_encoded) -> MemberPlan:
        """``k * N`` members: member ``j * N + m`` on partition ``j`` (key order), noisy."""
        k, N = self.n_partitions_, self.n_estimators_
        parts = partition_of_keys(self.row_key_, k, self.seed_)
        by_key = np.argsort(self.row_key_, kind="stable")
        partition_rows = [by_key[parts[by_key] == j] for j in range(k)]
        rank = np.empty(X.shape[0], dtype=np.int64)
        for rows in partition_rows:
            rank[rows] = np.arange(rows.shape[0])
        self.partition_of_row_ = parts
        self.partition_sizes_ = np.array([r.shape[0] for r in partition_rows], dtype=np.int64)
        n_empty = int(np.sum(self.partition_sizes_ == 0))
        if n_empty:
            warnings.warn(
                f"{n_empty} of {k} partitions are empty; their members abstain, which lowers "
                "every frontier. Use fewer partitions (n_partitions) for this data set.",
                UserWarning,
                stacklevel=4,
            )
        return MemberPlan(
            [partition_rows[j] for j in range(k) for _ in range(N)],
            member_ids=np.arange(k * N),
            n_members_total=k * N,
            view=PartitionRankNoiseView(self.sigma_, rank),
            view_once=self._view_once,
        )

    def assign_partitions(self, row_key) -> np.ndarray:
        """The partition any row key goes to (training keys or new ones, e.g. inserted rows).

        Parameters
        ----------
        row_key : array-like of int of shape (n_rows,)

        Returns
        -------
        ndarray of int64 of shape (n_rows,)
        """
        check_is_fitted(self)
        return partition_of_keys(row_key, self.n_partitions_, self.seed_)

    # ------------------------------------------------------------------ certificate
    def _partition_bounds(self, scores, abstain) -> bounds.VoteBounds:
        """The statistic ``bound_`` on each partition's ``N`` members, at ``alpha_ / k``.

        Rows of the result are ``(test row, partition)`` pairs, test row major.
        """
        n, _, n_classes = scores.shape
        k, N, s = self.n_partitions_, self.n_estimators_, self.n_select_
        level = self.alpha_ / k
        if self.bound_ == "hoeffding":
            proba = self._probabilities(scores, abstain).reshape(n * k, N, n_classes)
            return bounds.hoeffding_vote_bounds(
                np.clip(proba[:, :s].mean(axis=1), 0.0, 1.0),
                np.clip(proba[:, s:].mean(axis=1), 0.0, 1.0),
                N - s,
                level,
            )
        votes = self._learner_votes(scores, abstain).reshape(n * k, N)
        if self.bound_ == "simultaneous":
            counts = bounds.fa_vote_counts(votes, n_classes)
            return bounds.simultaneous_vote_bounds(counts, level, n_draws=N)
        select = bounds.fa_vote_counts(votes[:, :s], n_classes)
        estimate = bounds.fa_vote_counts(votes[:, s:], n_classes)
        return bounds.cohen_vote_bounds(select, estimate, level, n_estimate=N - s)

    def _frontier_batch(self, scores, abstain) -> dict:
        """Partition classes and radii, the plurality and its frontier, for one batch."""
        n, n_classes, k = scores.shape[0], scores.shape[2], self.n_partitions_
        if n == 0:
            return dict(
                prediction=np.zeros(0, np.int64),
                eps=np.zeros((0, self.rows_.size + 1)),
                partition_votes=np.zeros((0, k), np.int64),
                partition_radius=np.zeros((0, k)),
                partition_p_lower=np.zeros((0, k)),
            )
        certified = bounds.gaussian_certify(self._partition_bounds(scores, abstain), self.sigma_)
        votes = np.where(certified.abstain, bounds.ABSTAIN, certified.prediction).reshape(n, k)
        radius = certified.radius.reshape(n, k)
        p_lower = np.where(certified.abstain, 0.0, certified.p_lower).reshape(n, k)
        prediction, eps = bounds.mixed_radius_frontier(
            votes, radius, n_classes, np.concatenate([[0], self.rows_])
        )
        return dict(
            prediction=np.asarray(prediction, dtype=np.int64),
            eps=np.asarray(eps, dtype=float),
            partition_votes=votes.astype(np.int64),
            partition_radius=radius,
            partition_p_lower=p_lower,
        )

    def _aggregate(self, scores, abstain) -> dict:
        """The certificate at no inserted row: radius ``eps*(0)``, abstain where it is 0."""
        out = self._frontier_batch(scores, abstain)
        radius = out["eps"][:, 0]
        return dict(
            prediction=out["prediction"],
            radius=radius,
            abstain=~(radius > 0),
            votes=bounds.fa_vote_counts(out["partition_votes"], scores.shape[2]),
        )

    def frontier(self, X) -> PartitionFrontier:
        """The certified l2 frontier at every reported row count ``rows_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Rows to certify.

        Returns
        -------
        PartitionFrontier
            ``eps[:, t]`` is the largest total l2 norm of training-feature perturbations
            that, together with ``rows_[t]`` inserted or deleted rows, cannot change the
            prediction (with probability at least ``1 - alpha_``).
        """
        out = self._in_batches(self._validate_X(X), self._frontier_batch)
        return PartitionFrontier(
            prediction=self.classes_[out["prediction"]],
            rows=self.rows_.copy(),
            eps=out["eps"][:, 1:],
            partition_votes=out["partition_votes"],
            partition_radius=out["partition_radius"],
            partition_p_lower=out["partition_p_lower"],
        )

    # ------------------------------------------------------------------ predictions
    def _partition_top(self, scores, abstain) -> np.ndarray:
        """Each partition's voted class ``(n, k)``: its members' most voted class (the largest
        mean probability for ``bound="hoeffding"``), ``-1`` where none of them votes."""
        n, _, n_classes = scores.shape
        k, N = self.n_partitions_, self.n_estimators_
        if self.bound_ == "hoeffding":
            proba = self._probabilities(scores, abstain).reshape(n * k, N, n_classes)
            top = np.argmax(proba.mean(axis=1), axis=1)
            silent = abstain.reshape(n * k, N).all(axis=1)
        else:
            votes = self._learner_votes(scores, abstain).reshape(n * k, N)
            counts = bounds.fa_vote_counts(votes, n_classes)
            top, silent = np.argmax(counts, axis=1), counts.sum(axis=1) == 0
        return np.where(silent, bounds.ABSTAIN, top).reshape(n, k)

    def _partition_shares(self, scores, abstain) -> dict:
        counts = bounds.fa_vote_counts(self._partition_top(scores, abstain), scores.shape[2])
        total = counts.sum(axis=1, keepdims=True)
        flat = 1.0 / scores.shape[2]
        return {"proba": np.where(total > 0, counts / np.maximum(total, 1), flat)}

    def _predict_scores(self, scores, abstain) -> dict:
        """The plurality of the partitions' voted classes (ties to the smaller index)."""
        return {"prediction": np.argmax(self._partition_shares(scores, abstain)["proba"], axis=1)}

    def predict_proba(self, X) -> np.ndarray:
        """Share of the partitions whose members voted for each class.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Rows to predict.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Fraction of the voting partitions whose members' vote (most voted class, or
            largest mean probability for ``bound="hoeffding"``) is each class; uniform where
            no partition votes. :meth:`predict` is its argmax.
        """
        return self._in_batches(self._validate_X(X), self._partition_shares)["proba"]

    def predict(self, X) -> np.ndarray:
        """The plurality of the partitions' voted classes.

        Each partition votes for its members' most voted class (ties to the smaller index),
        and the most voted class over partitions wins. Where :meth:`certify` does not
        abstain it names the same class unless a partition's selection members disagree
        with its other members; where the vote is too close to call, :meth:`certify`
        abstains.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Rows to predict.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        return super().predict(X)

    def predict_with_abstention(self, X) -> tuple[np.ndarray, np.ndarray]:
        """The certified prediction, and where even the clean prediction is not certified.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Rows to predict.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            The plurality of the partitions' certified classes.
        abstain : ndarray of bool of shape (n_samples,)
            True where the frontier at no inserted row is 0: the partitions whose bounds do
            not separate could change the plurality with no poisoning at all.
        """
        cert = self.certify(X)
        return cert.prediction, cert.abstain
