"""Deep Partition Aggregation and its relatives as one scikit-learn classifier.

:class:`DPAClassifier` trains one copy of a base estimator per partition of
the training set and aggregates their votes. Because each training row lands
in a partition chosen from its content alone, one poisoned row (inserted or
deleted) can change at most one member (``spread`` members under Finite
Aggregation), which bounds how many poisoned rows the aggregate survives.
The partitions come from the pure planner :func:`plan_partitions`; training,
storing and scoring the members is :class:`BaseCertifiedEnsemble`'s job; this
module adds the DPA / FA / run-off certificate.
"""

from __future__ import annotations

import warnings
from numbers import Integral
from typing import ClassVar

import numpy as np
from sklearn.base import clone
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from sklearn_certify import bounds
from sklearn_certify.ensemble import BaseCertifiedEnsemble, MemberPlan
from sklearn_certify.partition._hashing import HASHES, bucket_of_rows
from sklearn_certify.partition._plan import digest_keys, plan_partitions

__all__ = ["DPAClassifier"]

#: Below this many rows per member on average, fit warns that members will be weak.
_SMALL_PARTITION = 5
#: Run-off: training rows scored after fit to see whether members' top two scores tie,
#: and the fraction of tied outputs above which fit warns.
_TIE_PROBE_ROWS = 256
_TIE_WARNING_FRACTION = 0.2


class DPAClassifier(BaseCertifiedEnsemble):
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
        Every member trains with one thread, so the members, and hence the
        certificates, are the same for every ``engine`` run twice, every
        ``n_jobs`` and every joblib backend.
    random_state : int, RandomState instance or None, default=None
        Seeds the members; member ``j`` derives its randomness from the seed
        drawn in ``fit`` and ``j`` alone.
    n_jobs : int, default=None
        Parallel jobs for training and scoring members (joblib semantics; any
        joblib backend, e.g. dask, works). It changes no result.
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
    member_rows_ : list of ndarray of int
        The training rows member ``j`` saw, in the order it saw them (indices
        into the ``X`` given to ``fit``). Fitting a clone of the member on
        exactly these rows, with its seeds, reproduces it bit for bit.
    member_sizes_ : ndarray of int of shape (n_members,)
        Number of training rows each member saw.
    shifts_ : ndarray of int of shape (spread,)
        Shifts actually used.
    learner_buckets_ : ndarray of int of shape (n_members, spread)
        Buckets each member trains on (``(j - s) mod (k * d)``).
    seed_ : int
        Seed drawn from ``random_state`` in ``fit``.
    feature_extractor_ : transformer or None
        Fitted clone of ``feature_extractor`` (label-flip mode only), else ``None``.
    n_partitions_, spread_, election_, threat_model_, hash_ : int, int, str, str, str
        These parameters as ``fit`` saw them; the certificate, ``predict`` and
        :meth:`assign_partitions` use these, never a value set since.
    row_shape_ : tuple of int
        Shape of each row seen in ``fit`` (``X.shape[1:]``); scored rows must match it.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen in ``fit``, when ``X`` has string column names.

    See Also
    --------
    sklearn_certify.partition.plan_partitions : The partition planner.
    sklearn_certify.ensemble.BaseCertifiedEnsemble : What every certified ensemble shares.
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
        **BaseCertifiedEnsemble._parameter_constraints,
        "n_partitions": [Interval(Integral, 1, None, closed="left")],
        "spread": [Interval(Integral, 1, None, closed="left")],
        "election": [StrOptions({"plurality", "runoff"})],
        "threat_model": [StrOptions({"general", "label_flip"})],
        "hash": [StrOptions(set(HASHES))],
        "shifts": ["array-like", None],
        "feature_extractor": [HasMethods(["fit", "transform"]), None],
    }
    _too_few_rows_hint = "use fewer partitions (n_partitions)"
    _int_params = ("n_jobs", "n_partitions", "spread")

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
        super().__init__(
            estimator, engine=engine, random_state=random_state, n_jobs=n_jobs, verbose=verbose
        )
        self.n_partitions = n_partitions
        self.spread = spread
        self.election = election
        self.threat_model = threat_model
        self.hash = hash
        self.shifts = shifts
        self.feature_extractor = feature_extractor

    _fitted_params: ClassVar[tuple] = (
        "n_partitions",
        "spread",
        "election",
        "threat_model",
        "hash",
    )

    @property
    def _certificate_unit(self) -> str:
        return "label_flips" if self.threat_model_ == "label_flip" else "samples"

    # ------------------------------------------------------------------ planning
    def _check_options(self, X, y_encoded) -> None:
        k, d = self.n_partitions, self.spread
        n_samples = X.shape[0]
        if self.threat_model == "label_flip":
            if d != 1:
                raise ValueError(
                    "threat_model='label_flip' (SS-DPA) deals rows round-robin and needs "
                    f"spread=1, got spread={d}. Use threat_model='general' for Finite Aggregation."
                )
            if self.shifts is not None:
                raise ValueError("shifts only applies to threat_model='general'; leave it as None.")
            if self.hash != "digest":
                raise ValueError(
                    f"hash={self.hash!r} is unused under threat_model='label_flip', whose "
                    "partitions follow the trusted row order; drop hash (or use "
                    "threat_model='general', where the hash picks each row's partition)."
                )
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

    def _member_plan(self, X, y_encoded) -> MemberPlan:
        plan = plan_partitions(
            X,
            y_encoded,
            n_partitions=self.n_partitions,
            spread=self.spread,
            threat_model=self.threat_model,
            hash=self.hash,
            shifts=self.shifts,
        )
        self._partition_plan = plan
        self.shifts_ = np.array(plan.shifts)
        self.learner_buckets_ = np.array(plan.learner_buckets)
        self.member_sizes_ = plan.sizes
        n_members, n_empty = plan.n_members, int(np.sum(plan.sizes == 0))
        if n_empty:
            warnings.warn(
                f"{n_empty} of {n_members} partitions are empty; their members abstain, which "
                "lowers every radius. Use fewer partitions (n_partitions) for this data set.",
                UserWarning,
                stacklevel=4,
            )
        mean_rows = X.shape[0] * plan.spread / n_members
        if mean_rows < _SMALL_PARTITION:
            warnings.warn(
                f"members see {mean_rows:.1f} training rows on average; with so little data "
                "each member is weak. Use fewer partitions (n_partitions) if accuracy matters.",
                UserWarning,
                stacklevel=4,
            )
        return MemberPlan(plan.member_rows, n_members_total=n_members)

    def _needs_scores(self) -> str:
        return "election='runoff'" if self.election == "runoff" else ""

    def _after_fit(self, X) -> None:
        """Warn when run-off meets members whose two best scores tie (one-hot outputs)."""
        if self.election_ != "runoff" or not np.any(self.member_status_ == "trained"):
            return
        scores, abstain = self._voting_scores(X[:_TIE_PROBE_ROWS])
        if scores.shape[2] < 3:
            return
        # a member whose second and third best scores tie gives no preference between the
        # classes it did not vote for (e.g. one-hot probabilities)
        ranked = -np.sort(-scores, axis=2)
        voting = ~abstain & (self.member_status_ == "trained")[None, :]
        tied = (ranked[:, :, 1] == ranked[:, :, 2])[voting]
        if tied.size and tied.mean() > _TIE_WARNING_FRACTION:
            warnings.warn(
                f"election='runoff': on the first training rows, {tied.mean():.0%} of the "
                "trained members' outputs tie the scores of the classes below their vote "
                f"(one-hot probabilities, as {type(self.estimator).__name__} gives). A member "
                "that scores both finalists equally counts against the first finalist in "
                "round two, which can cut accuracy sharply. Use election='plurality', or a "
                "base estimator with graded scores (e.g. LogisticRegression, a net).",
                UserWarning,
                stacklevel=4,
            )

    def _fit_features(self, X):
        if self.feature_extractor is None:
            self.feature_extractor_ = None
            return X
        self.feature_extractor_ = clone(self.feature_extractor).fit(X)
        return self.feature_extractor_.transform(X)

    def _transform_features(self, X):
        if self.feature_extractor_ is not None:
            return self.feature_extractor_.transform(X)
        return X

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
        X = self._validate_X(X)
        if self.threat_model_ == "label_flip":
            plan = self._partition_plan
            pairs = zip(plan.trusted_digests, plan.trusted_partitions, strict=True)
            index = {tuple(row.tolist()): p for row, p in pairs}
            keys = digest_keys(X)
            out = np.full(X.shape[0], -1, dtype=np.int64)
            for i, row in enumerate(keys):
                out[i] = index.get(tuple(row.tolist()), -1)
            return out
        return bucket_of_rows(X, self.n_partitions_ * self.spread_, hash=self.hash_)

    # -------------------------------------------------------------- certificate
    def _aggregate(self, scores, abstain) -> dict:
        """Prediction, radius, abstain flags and round-one vote counts of one batch of rows."""
        n_classes = self.classes_.shape[0]
        n = scores.shape[0]
        # An empty member votes for no class, in the plurality vote and in both run-off rounds.
        learner_preds = self._learner_votes(scores, abstain)
        votes = bounds.fa_vote_counts(learner_preds, n_classes)
        k, d = int(self.n_partitions_), int(self.spread_)
        if n == 0:
            empty = np.zeros(0, dtype=np.int64)
            return dict(prediction=empty, radius=empty, abstain=np.zeros(0, bool), votes=votes)
        if n_classes == 1:
            # Only one class was seen: certify against a (never seen) second class with no votes,
            # i.e. the poisons needed to make some member vote for anything else.
            padded = np.concatenate([votes, np.zeros((n, 1), dtype=np.int64)], axis=1)
            if d == 1:
                pred, radius = bounds.dpa_radius(padded)
            else:
                pred, radius = bounds.fa_radius(learner_preds, 2, k, d, shifts=self.shifts_)
            no_vote = votes.sum(axis=1) == 0
        elif self.election_ == "runoff":
            if d == 1 and np.all(self.shifts_ == 0):
                pred, radius = bounds.runoff_radius(scores, abstain=abstain)
            else:
                pred, radius = bounds.fa_runoff_radius(
                    scores, k, d, shifts=self.shifts_, abstain=abstain
                )
            no_vote = abstain.all(axis=1)
        elif d == 1:
            pred, radius = bounds.dpa_radius(votes)
            no_vote = votes.sum(axis=1) == 0
        else:
            pred, radius = bounds.fa_radius(learner_preds, n_classes, k, d, shifts=self.shifts_)
            no_vote = votes.sum(axis=1) == 0
        radius = np.maximum(np.asarray(radius, dtype=np.int64), 0)
        radius[no_vote] = 0
        return dict(
            prediction=np.asarray(pred, dtype=np.int64),
            radius=radius,
            abstain=no_vote,
            votes=votes,
        )
