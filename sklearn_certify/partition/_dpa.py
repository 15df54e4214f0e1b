"""Deep Partition Aggregation and its relatives as one scikit-learn classifier.

:class:`DPAClassifier` trains one copy of a base estimator per partition of
the training set and aggregates their votes. Because each training row lands
in a partition chosen from its content alone, one poisoned row (inserted or
deleted) can change at most one member (``spread`` members under Finite
Aggregation), which bounds how many poisoned rows the aggregate survives.
"""

from __future__ import annotations

import warnings
from numbers import Integral
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, _fit_context, clone
from sklearn.utils import gen_batches
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from sklearn_certify import bounds
from sklearn_certify._certificate import Certificate
from sklearn_certify.ensemble import StackedMembers
from sklearn_certify.partition._hashing import (
    HASHES,
    bucket_of_rows,
    buckets_from_digests,
    content_order,
    row_digests,
)

__all__ = ["DPAClassifier"]

_MAX_SEED = np.iinfo(np.int32).max
#: Largest number of member scores (rows x members x classes) held at once when aggregating.
_SCORE_BUDGET = 1 << 24
#: Below this many rows per member on average, fit warns that members will be weak.
_SMALL_PARTITION = 5


class _ConstantMember:
    """Member for a partition whose labels are all one class: always predicts that class.

    It is a deterministic function of its partition, so the certificate stays valid.
    """

    def __init__(self, class_index: int, n_classes: int):
        self.class_index = int(class_index)
        self.n_classes = int(n_classes)

    def scores(self, n_samples: int) -> np.ndarray:
        out = np.zeros((n_samples, self.n_classes))
        out[:, self.class_index] = 1.0
        return out

    def __repr__(self) -> str:
        return f"ConstantMember(class_index={self.class_index})"


class _AbstainMember:
    """Member for an empty partition: it casts no vote; its (flat) scores are never used to vote."""

    def __init__(self, n_classes: int):
        self.n_classes = int(n_classes)

    def scores(self, n_samples: int) -> np.ndarray:
        return np.full((n_samples, self.n_classes), 1.0 / self.n_classes)

    def __repr__(self) -> str:
        return "AbstainMember()"


def _digest_keys(X=None, *, digests=None) -> np.ndarray:
    """(n, 4) uint64 view of the rows' SHA-256 digests, most significant word first."""
    if digests is None:
        digests = row_digests(X)
    return np.frombuffer(digests.tobytes(), dtype=">u8").reshape(-1, 4)


def _check_shifts(shifts, n_partitions: int, spread: int) -> np.ndarray:
    n_buckets = n_partitions * spread
    array = np.asarray(shifts)
    if array.ndim != 1 or array.shape[0] != spread:
        raise ValueError(
            f"shifts must be a 1-d sequence of spread={spread} integers, got shape {array.shape}."
        )
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"shifts must hold integers, got dtype {array.dtype}.")
    if np.any(array < 0) or np.any(array >= n_buckets):
        raise ValueError(
            f"shifts must lie in 0 .. n_partitions*spread-1 = {n_buckets - 1}, "
            f"got {array.tolist()}."
        )
    if np.unique(array).shape[0] != spread:
        raise ValueError(
            "shifts must be distinct (each bucket feeds spread distinct learners), "
            f"got {array.tolist()}."
        )
    return array.astype(np.int64)


class DPAClassifier(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """Partition-aggregation classifier certified against training-set poisoning.

    Deep Partition Aggregation (DPA, Levine & Feizi 2021) splits the training
    set into ``n_partitions`` disjoint parts by a hash of each row's content,
    trains one clone of ``estimator`` per part and predicts the plurality vote.
    A poisoned row changes at most one part, so the prediction provably
    survives ``radius`` inserted plus deleted training rows, where ``radius``
    comes from the vote margin (:func:`sklearn_certify.bounds.dpa_radius`).

    ``spread=d > 1`` gives Finite Aggregation (Wang, Levine & Feizi 2022): rows
    are hashed into ``n_partitions * d`` buckets and each of the
    ``n_partitions * d`` members trains on ``d`` buckets chosen by cyclic
    ``shifts``. ``election="runoff"`` replaces the plurality vote by the run-off
    election of Rezaei et al. (2023), which uses every member's real-valued
    scores. ``threat_model="label_flip"`` is SS-DPA: the unlabeled rows are
    trusted, partitions are dealt round-robin from the rows sorted by content
    (equal sizes), an optional unsupervised ``feature_extractor`` is fit once on
    all rows, and the radius counts flipped labels.

    Parameters
    ----------
    estimator : estimator object
        Base classifier with ``fit`` and ``predict``; one clone is trained per
        member. Data-dependent preprocessing (scalers, PCA) must go inside it
        (e.g. ``make_pipeline(StandardScaler(), LogisticRegression())``) so that
        each member fits its own; a preprocessing step fit on all rows before
        this classifier voids the certificate.
    n_partitions : int, default=50
        Number of partitions ``k``. More partitions give larger possible
        radii (at most ``k // 2``) but less data, so weaker members.
    spread : int, default=1
        Finite Aggregation spread ``d``: every row trains ``d`` of the
        ``k * d`` members. ``1`` is plain DPA.
    election : {"plurality", "runoff"}, default="plurality"
        How members' outputs are combined: plurality of their votes (ties to
        the smaller class index) or run-off election over their scores.
    threat_model : {"general", "label_flip"}, default="general"
        ``"general"``: the attacker inserts and deletes training rows (radius
        unit ``"samples"``). ``"label_flip"``: the attacker only flips labels of
        trusted rows (SS-DPA, radius unit ``"label_flips"``).
    hash : {"digest", "pixel_sum"}, default="digest"
        How a row's partition is computed (``threat_model="general"`` only).
        ``"digest"``: SHA-256 of the row as C-ordered little-endian float64
        bytes (negative zero made positive), first 8 digest bytes read as an
        unsigned little-endian integer, modulo ``k * d``. ``"pixel_sum"``: the
        official DPA/FA hash, the sum of integer pixel values in 0..255 modulo
        ``k * d``. Labels are never hashed.
    shifts : array-like of int of shape (spread,), default=None
        Finite Aggregation shifts: a row in bucket ``b`` trains learners
        ``(b + s) mod (k * d)``. ``None`` uses the official default
        :func:`sklearn_certify.bounds.fa_shifts` when ``spread > 1`` and the
        identity (``[0]``) when ``spread == 1``.
    feature_extractor : transformer, default=None
        ``threat_model="label_flip"`` only: an unsupervised transformer (e.g.
        ``PCA``) fit once on all training rows without labels; members learn
        on its output. Sound only because the unlabeled rows are trusted.
    engine : {"auto", "loop", "vectorized"}, default="auto"
        Training engine passed to :func:`sklearn_certify.ensemble.fit_members`.
    random_state : int, RandomState instance or None, default=None
        Seeds the members; member ``j`` derives its randomness from the seed
        drawn in ``fit`` and ``j`` alone.
    n_jobs : int, default=None
        Parallel jobs for training members (joblib semantics; any joblib
        backend, e.g. dask, works).
    verbose : int, default=0
        Progress output while training.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels seen in ``fit``.
    estimators_ : list of length n_members
        Fitted members in member-id order. Degenerate partitions hold a
        constant member (all labels one class) or an abstaining one (empty).
        Built on first access from ``trained_members_`` (for the vectorized
        engine that builds a skorch net per member, about a millisecond each).
    trained_members_ : sequence
        The trained members (those whose ``member_status_`` is
        ``"trained"``, in member-id order) as
        :func:`~sklearn_certify.ensemble.fit_members` returned them: a list,
        or a :class:`~sklearn_certify.ensemble.StackedMembers` for the
        vectorized engine, which scores all members at once without building
        their nets.
    member_status_ : ndarray of str of shape (n_members,)
        ``"trained"``, ``"constant"`` or ``"abstain"`` for each member.
    member_sizes_ : ndarray of int of shape (n_members,)
        Number of training rows each member saw.
    shifts_ : ndarray of int of shape (spread,)
        Shifts actually used.
    learner_buckets_ : ndarray of int of shape (n_members, spread)
        Buckets each member trains on (``(j - s) mod (k * d)``).
    seed_ : int
        Seed drawn from ``random_state`` in ``fit``.
    feature_extractor_ : transformer
        Fitted clone of ``feature_extractor`` (label-flip mode only).
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen in ``fit``, when ``X`` has string column names.

    See Also
    --------
    sklearn_certify.bounds.dpa_radius : The DPA certificate.
    sklearn_certify.bounds.fa_radius : The Finite Aggregation certificate.
    sklearn_certify.bounds.runoff_radius : The run-off election certificate.

    Notes
    -----
    Rules that keep the certificate honest:

    * Member ``j`` sees the rows of its partition sorted by content (SHA-256
      digest of the canonical bytes, then label), and its randomness comes from
      ``(seed_, j)`` only, so poisoning another partition leaves it unchanged.
    * An empty partition's member abstains: it votes for no class, and under
      run-off it takes part in neither round. A partition whose labels are all
      one class gets a constant member predicting it. Both are deterministic
      functions of the partition, hence sound.
    * The set of classes is taken from the training labels; the certificate
      assumes the attacker does not add a class never seen before.

    Examples
    --------
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from sklearn_certify import DPAClassifier
    >>> from sklearn_certify.datasets import load_digits
    >>> X, y = load_digits(split="train")
    >>> X_test, y_test = load_digits(split="test")
    >>> clf = DPAClassifier(DecisionTreeClassifier(random_state=0), n_partitions=11,
    ...                     random_state=0).fit(X, y)
    >>> cert = clf.certify(X_test[:5])
    >>> cert.unit, cert.radius.shape, bool((cert.radius <= 11 // 2).all())
    ('samples', (5,), True)
    """

    _parameter_constraints: ClassVar[dict] = {
        "estimator": [HasMethods(["fit", "predict"])],
        "n_partitions": [Interval(Integral, 1, None, closed="left")],
        "spread": [Interval(Integral, 1, None, closed="left")],
        "election": [StrOptions({"plurality", "runoff"})],
        "threat_model": [StrOptions({"general", "label_flip"})],
        "hash": [StrOptions(set(HASHES))],
        "shifts": ["array-like", None],
        "feature_extractor": [HasMethods(["fit", "transform"]), None],
        "engine": [str],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator,
        n_partitions: int = 50,
        spread: int = 1,
        election: str = "plurality",
        threat_model: str = "general",
        hash: str = "digest",
        shifts=None,
        feature_extractor=None,
        engine: str = "auto",
        random_state=None,
        n_jobs: int | None = None,
        verbose: int = 0,
    ):
        self.estimator = estimator
        self.n_partitions = n_partitions
        self.spread = spread
        self.election = election
        self.threat_model = threat_model
        self.hash = hash
        self.shifts = shifts
        self.feature_extractor = feature_extractor
        self.engine = engine
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ------------------------------------------------------------------ fitting
    def _validate_data_X(self, X, *, reset: bool):
        return validate_data(
            self,
            X,
            reset=reset,
            accept_sparse=False,
            dtype=[np.float64, np.float32],
            allow_nd=True,
            ensure_all_finite=True,
        )

    def _check_options(self, n_samples: int) -> None:
        k, d = self.n_partitions, self.spread
        if self.threat_model == "label_flip":
            if d != 1:
                raise ValueError(
                    "threat_model='label_flip' (SS-DPA) deals rows round-robin and needs "
                    f"spread=1, got spread={d}. Use threat_model='general' for Finite Aggregation."
                )
            if self.shifts is not None:
                raise ValueError("shifts only applies to threat_model='general'; leave it as None.")
        elif self.feature_extractor is not None:
            raise ValueError(
                "feature_extractor is fit once on all training rows, which is sound only when "
                "the unlabeled rows are trusted (threat_model='label_flip'). Under "
                "threat_model='general' put data-dependent preprocessing inside the base "
                "estimator, e.g. "
                "DPAClassifier(make_pipeline(PCA(), base))."
            )
        if k > n_samples:
            raise ValueError(
                f"n_partitions={k} is larger than the number of training samples "
                f"(n_samples={n_samples}); most partitions would be empty. Use "
                "n_partitions <= n_samples (typically far fewer, so that each member sees "
                "enough data)."
            )

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Partition the training set and fit one member per partition.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Training rows (dense, finite). Image arrays such as
            ``(n, C, H, W)`` are accepted and passed to the members as they are.
        y : array-like of shape (n_samples,)
            Labels of any type (strings too).

        Returns
        -------
        self : DPAClassifier
            The fitted classifier.
        """
        from sklearn_certify.ensemble import fit_members

        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=False,
            dtype=[np.float64, np.float32],
            allow_nd=True,
            ensure_all_finite=True,
        )
        check_classification_targets(y)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        y_enc = y_enc.astype(np.int64)
        n_classes = self.classes_.shape[0]
        n_samples = X.shape[0]
        self._check_options(n_samples)
        k, d = int(self.n_partitions), int(self.spread)
        n_members = k * d

        if self.threat_model == "label_flip":
            self.shifts_ = np.zeros(1, dtype=np.int64)
            self.learner_buckets_ = np.arange(k, dtype=np.int64)[:, None]
            partition_of_row, keys = self._deal_round_robin(X, k)
            if self.feature_extractor is not None:
                self.feature_extractor_ = clone(self.feature_extractor).fit(X)
                X_fit = self.feature_extractor_.transform(X)
            else:
                X_fit = X
            member_rows = [np.flatnonzero(partition_of_row == j) for j in range(k)]
            # Inside a part, rows follow the same digest order as under the general threat model.
            member_rows = [
                rows[np.lexsort((y_enc[rows], *(keys[rows, c] for c in (3, 2, 1, 0))))]
                for rows in member_rows
            ]
        else:
            if self.shifts is None:
                shifts = bounds.fa_shifts(k, d) if d > 1 else np.zeros(1, dtype=np.int64)
            else:
                shifts = self.shifts
            self.shifts_ = _check_shifts(shifts, k, d)
            learners = np.arange(n_members)[:, None]
            self.learner_buckets_ = (learners - self.shifts_[None, :]) % n_members
            digests = row_digests(X)
            if self.hash == "digest":
                buckets = buckets_from_digests(digests, n_members)
            else:
                buckets = bucket_of_rows(X, n_members, hash=self.hash)
            # One canonical content order for all rows (digest, then label); every member's rows
            # are a subsequence of it, hence sorted by content as well.
            keys = _digest_keys(digests=digests)
            order = np.lexsort((y_enc, keys[:, 3], keys[:, 2], keys[:, 1], keys[:, 0]))
            learner_of = (buckets[order][:, None] + self.shifts_[None, :]) % n_members  # (n, d)
            flat_learner = learner_of.ravel()
            flat_rows = np.repeat(order, d)
            by_learner = np.argsort(flat_learner, kind="stable")
            bounds_ = np.searchsorted(flat_learner[by_learner], np.arange(n_members + 1))
            member_rows = [
                flat_rows[by_learner[bounds_[j] : bounds_[j + 1]]] for j in range(n_members)
            ]
            X_fit = X

        sizes = np.array([rows.shape[0] for rows in member_rows], dtype=np.int64)
        status = np.empty(n_members, dtype=object)
        degenerate: dict = {}
        train_ids = []
        for j, rows in enumerate(member_rows):
            if rows.shape[0] == 0:
                status[j] = "abstain"
                degenerate[j] = _AbstainMember(n_classes)
            elif np.all(y_enc[rows] == y_enc[rows[0]]):
                status[j] = "constant"
                degenerate[j] = _ConstantMember(y_enc[rows[0]], n_classes)
            else:
                status[j] = "trained"
                train_ids.append(j)
        n_empty = int(np.sum(status == "abstain"))
        if n_empty:
            warnings.warn(
                f"{n_empty} of {n_members} partitions are empty; their members abstain, which "
                "lowers every radius. Use fewer partitions (n_partitions) for this data set.",
                UserWarning,
                stacklevel=2,
            )
        if n_samples * d / n_members < _SMALL_PARTITION:
            warnings.warn(
                f"members see {n_samples * d / n_members:.1f} training rows on average; with so "
                "little data each member is weak. Use fewer partitions (n_partitions) if "
                "accuracy matters.",
                UserWarning,
                stacklevel=2,
            )

        self.seed_ = int(check_random_state(self.random_state).randint(_MAX_SEED))
        fitted: list | StackedMembers = []
        if train_ids:
            try:
                fitted = fit_members(
                    self.estimator,
                    X_fit,
                    y_enc,
                    [member_rows[j] for j in train_ids],
                    member_ids=train_ids,
                    n_classes=n_classes,
                    random_state=self.seed_,
                    engine=self.engine,
                    n_jobs=self.n_jobs,
                    verbose=self.verbose,
                    n_members_total=n_members,
                )
            except ValueError as exc:
                smallest = int(sizes[train_ids].min())
                raise ValueError(
                    f"Fitting the members failed: {exc} The smallest partition that needs a "
                    f"model holds {smallest} rows; if the base estimator needs more, use "
                    "fewer partitions (n_partitions)."
                ) from exc
        self.trained_members_ = fitted
        self._degenerate_members = degenerate
        self._estimators = None
        self.member_status_ = status.astype(str)
        self.member_sizes_ = sizes
        return self

    @property
    def estimators_(self) -> list:
        """Every member in member-id order (see the class docstring); built on first access."""
        if "trained_members_" not in self.__dict__:
            raise AttributeError(
                "estimators_ exists after fit; this DPAClassifier is not fitted yet."
            )
        if self._estimators is None:
            members = dict(self._degenerate_members)
            trained = np.flatnonzero(self.member_status_ == "trained")
            members.update(zip(trained.tolist(), self.trained_members_, strict=True))
            self._estimators = [members[j] for j in range(len(self.member_status_))]
        return self._estimators

    def __getstate__(self):
        state = super().__getstate__()
        if "_estimators" in state:
            state["_estimators"] = None  # rebuilt from trained_members_ on access
        return state

    def _deal_round_robin(self, X, k: int) -> tuple[np.ndarray, np.ndarray]:
        """SS-DPA partitions: sort rows by content, deal them to partitions 0, 1, ..., k-1, 0.

        Returns the partition of every row and the rows' digest keys.
        """
        digests = _digest_keys(X)
        by_digest = np.lexsort(tuple(digests[:, c] for c in (3, 2, 1, 0)))
        sorted_digests = digests[by_digest]
        dup = np.all(sorted_digests[1:] == sorted_digests[:-1], axis=1)
        if np.any(dup):
            raise ValueError(
                "threat_model='label_flip' needs distinct training rows, but X has "
                f"{int(dup.sum())} duplicate row(s). The round-robin dealing of SS-DPA is only "
                "defined for a set of distinct rows: remove duplicates (e.g. "
                "np.unique(X, axis=0, return_index=True)) or use threat_model='general'."
            )
        order = content_order(X)
        partition_of_row = np.empty(X.shape[0], dtype=np.int64)
        partition_of_row[order] = np.arange(X.shape[0]) % k
        # Remember which (trusted) row went where, to answer assign_partitions on training rows.
        self._train_digests = sorted_digests
        self._train_partitions = partition_of_row[by_digest]
        return partition_of_row, digests

    # --------------------------------------------------------------- inspection
    def assign_partitions(self, X, y=None) -> np.ndarray:
        """Partition (bucket) index of every row, from its content alone.

        Under ``threat_model="general"`` this is the hash bucket in
        ``0 .. n_partitions * spread - 1`` (with ``spread == 1`` the bucket is
        the partition, i.e. the member that trains on the row; with
        ``spread > 1`` the row trains members ``(bucket + shifts_) mod (k*d)``).
        It works on any rows, including ones never seen in ``fit``. Under
        ``threat_model="label_flip"`` partitions come from the trusted training
        rows; rows not among them get ``-1``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Rows to assign.
        y : ignored
            Labels are not hashed; accepted for API symmetry.

        Returns
        -------
        partitions : ndarray of int64 of shape (n_samples,)
            Partition (bucket) index of each row.
        """
        check_is_fitted(self)
        X = self._validate_data_X(X, reset=False)
        if self.threat_model == "label_flip":
            pairs = zip(self._train_digests, self._train_partitions, strict=True)
            index = {tuple(row.tolist()): p for row, p in pairs}
            keys = _digest_keys(X)
            out = np.full(X.shape[0], -1, dtype=np.int64)
            for i, row in enumerate(keys):
                out[i] = index.get(tuple(row.tolist()), -1)
            return out
        return bucket_of_rows(X, self.n_partitions * self.spread, hash=self.hash)

    def _features(self, X):
        if getattr(self, "feature_extractor_", None) is not None:
            return self.feature_extractor_.transform(X)
        return X

    def _scores_and_abstain(self, X):
        """Validated member scores (n, M, C) and the (M,) mask of abstaining members."""
        check_is_fitted(self)
        return self._scores_validated(self._validate_data_X(X, reset=False))

    def _batches(self, X):
        """Row slices small enough that a batch's (rows, members, classes) scores stay bounded."""
        per_row = max(1, len(self.member_status_) * self.classes_.shape[0])
        return gen_batches(X.shape[0], max(1, _SCORE_BUDGET // per_row))

    def _scores_validated(self, X):
        from sklearn_certify.ensemble import member_outputs

        n = X.shape[0]
        n_classes = self.classes_.shape[0]
        n_members = len(self.member_status_)
        scores = np.empty((n, n_members, n_classes), dtype=np.float64)
        trained = np.flatnonzero(self.member_status_ == "trained")
        if trained.size and n:
            out = member_outputs(self.trained_members_, self._features(X), n_classes=n_classes)
            scores[:, trained, :] = np.asarray(out, dtype=np.float64)
        for j, member in self._degenerate_members.items():
            scores[:, j, :] = member.scores(n)
        return scores, self.member_status_ == "abstain"

    def member_scores(self, X) -> np.ndarray:
        """Real-valued outputs of every member (what run-off election uses).

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Rows to score.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_members, n_classes)
            Trained members give their ``predict_proba`` / ``decision_function``
            / logits (whatever :func:`sklearn_certify.ensemble.member_outputs`
            returns); constant members give a one-hot row and abstaining
            members a flat ``1 / n_classes`` row.
        """
        return self._scores_and_abstain(X)[0]

    @staticmethod
    def _member_votes(scores: np.ndarray) -> np.ndarray:
        # First maximum, i.e. ties between a member's scores go to the smaller class index.
        return np.argmax(scores, axis=2)

    def predict_members(self, X) -> np.ma.MaskedArray:
        """Label predicted by every member.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Rows to predict.

        Returns
        -------
        labels : numpy masked array of shape (n_samples, n_members)
            Member ``j``'s vote (a value of ``classes_``), i.e. the first
            maximum of its scores. Entries of abstaining (empty-partition)
            members are masked.
        """
        scores, abstain = self._scores_and_abstain(X)
        votes = self._member_votes(scores)
        labels = self.classes_[votes]
        mask = np.broadcast_to(abstain[None, :], labels.shape).copy()
        return np.ma.MaskedArray(labels, mask=mask)

    # -------------------------------------------------------------- aggregation
    def _aggregate(self, X):
        """Class-index prediction, radius, abstain flags and vote counts (in row batches)."""
        check_is_fitted(self)
        X = self._validate_data_X(X, reset=False)
        parts = [self._aggregate_scores(*self._scores_validated(X[b])) for b in self._batches(X)]
        if not parts:
            return self._aggregate_scores(*self._scores_validated(X))
        return tuple(np.concatenate(p) for p in zip(*parts, strict=True))

    def _aggregate_scores(self, scores, abstain):
        n_classes = self.classes_.shape[0]
        member_votes = self._member_votes(scores)
        n = scores.shape[0]
        # An empty member votes for no class, in the plurality vote and in both run-off rounds.
        learner_preds = np.where(~abstain[None, :], member_votes, bounds.ABSTAIN)
        votes = bounds.fa_vote_counts(learner_preds, n_classes)
        k, d = int(self.n_partitions), int(self.spread)
        if n == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0, dtype=bool), votes
        if n_classes == 1:
            # Only one class was seen: certify against a (never seen) second class with no votes,
            # i.e. the poisons needed to make some member vote for anything else.
            padded = np.concatenate([votes, np.zeros((n, 1), dtype=np.int64)], axis=1)
            if d == 1:
                pred, radius = bounds.dpa_radius(padded)
            else:
                pred, radius = bounds.fa_radius(learner_preds, 2, k, d, shifts=self.shifts_)
            no_vote = votes.sum(axis=1) == 0
        elif self.election == "runoff":
            if d == 1 and np.all(self.shifts_ == 0):
                pred, radius = bounds.runoff_radius(scores, abstain=abstain)
            else:
                pred, radius = bounds.fa_runoff_radius(
                    scores, k, d, shifts=self.shifts_, abstain=abstain
                )
            no_vote = np.full(n, bool(abstain.all()))
        elif d == 1:
            pred, radius = bounds.dpa_radius(votes)
            no_vote = votes.sum(axis=1) == 0
        else:
            pred, radius = bounds.fa_radius(learner_preds, n_classes, k, d, shifts=self.shifts_)
            no_vote = votes.sum(axis=1) == 0
        pred = np.asarray(pred, dtype=np.int64)
        radius = np.maximum(np.asarray(radius, dtype=np.int64), 0)
        radius[no_vote] = 0
        return pred, radius, no_vote, votes

    def predict(self, X) -> np.ndarray:
        """Aggregate prediction (plurality vote or run-off election).

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Rows to predict.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        pred = self._aggregate(X)[0]
        return self.classes_[pred]

    def predict_proba(self, X) -> np.ndarray:
        """Vote fractions of the members that do not abstain.

        Under ``election="runoff"`` these are the round-one vote fractions, so
        their argmax can differ from :meth:`predict`.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Rows to predict.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Fraction of votes for each class in ``classes_`` (uniform where
            every member abstains).
        """
        check_is_fitted(self)
        X = self._validate_data_X(X, reset=False)
        n_classes = self.classes_.shape[0]
        votes = np.zeros((X.shape[0], n_classes))
        for batch in self._batches(X):
            scores, abstain = self._scores_validated(X[batch])
            member_votes = np.where(abstain[None, :], bounds.ABSTAIN, self._member_votes(scores))
            votes[batch] = bounds.fa_vote_counts(member_votes, n_classes)
        total = votes.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            proba = np.where(total > 0, votes / np.where(total > 0, total, 1), 1.0 / n_classes)
        return proba

    def certify(self, X) -> Certificate:
        """Predict and certify every row.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Rows to certify.

        Returns
        -------
        certificate : Certificate
            ``prediction`` (labels), ``radius`` (the prediction provably holds
            for any poisoning of at most ``radius`` inserted plus deleted
            training rows, or flipped labels when
            ``threat_model="label_flip"``), ``abstain`` (True only where every
            member abstains), ``unit`` and ``votes`` (round-one vote counts per
            class index).
        """
        pred, radius, no_vote, votes = self._aggregate(X)
        unit = "label_flips" if self.threat_model == "label_flip" else "samples"
        return Certificate(
            prediction=self.classes_[pred],
            radius=radius.astype(np.int64),
            abstain=no_vote,
            unit=unit,
            votes=votes,
        )

    def score(self, X, y) -> float:
        """Clean accuracy of :meth:`predict` on ``X`` against ``y``.

        For certified accuracy at an attack size use
        :func:`sklearn_certify.metrics.make_certified_scorer`.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Test rows.
        y : array-like of shape (n_samples,)
            True labels.

        Returns
        -------
        score : float
            Fraction of rows predicted correctly.
        """
        return float(np.mean(self.predict(X) == np.asarray(y)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        return tags
