"""The base class of the certified ensembles: a subclass supplies its plan and its certificate."""

from __future__ import annotations

import copy
import warnings
from abc import ABCMeta, abstractmethod
from numbers import Integral
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, _fit_context
from sklearn.utils import gen_batches
from sklearn.utils._param_validation import HasMethods, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from sklearn_certify import bounds
from sklearn_certify._certificate import Certificate
from sklearn_certify._validation import check_row_shape
from sklearn_certify.ensemble._fit import check_engine, check_nets, train_members
from sklearn_certify.ensemble._module_check import check_module_io
from sklearn_certify.ensemble._outputs import member_outputs_impl, scoring_method
from sklearn_certify.ensemble._skorch import nested_nets

__all__ = ["AbstainMember", "BaseCertifiedEnsemble", "ConstantMember", "DegenerateMemberWarning"]

_MAX_SEED = np.iinfo(np.int32).max
#: Largest number of member scores (rows x members x classes) held at once when aggregating.
_SCORE_BUDGET = 1 << 24


class DegenerateMemberWarning(UserWarning):
    """Some members' outputs are unusable (NaN); their votes abstain where that happens."""


class ConstantMember:
    """Stand-in for a member whose training labels are all one class: always predicts it.

    It is a deterministic function of the member's rows, so certificates stay valid.
    """

    def __init__(self, class_index: int, n_classes: int):
        self.class_index = int(class_index)
        self.n_classes = int(n_classes)

    def scores(self, n_samples: int) -> np.ndarray:
        """One-hot scores for the member's class."""
        out = np.zeros((n_samples, self.n_classes))
        out[:, self.class_index] = 1.0
        return out

    def __repr__(self) -> str:
        return f"ConstantMember(class_index={self.class_index})"


class AbstainMember:
    """Stand-in for a member with no training rows: it casts no vote."""

    def __init__(self, n_classes: int):
        self.n_classes = int(n_classes)

    def scores(self, n_samples: int) -> np.ndarray:
        """Flat scores (never used as a vote)."""
        return np.full((n_samples, self.n_classes), 1.0 / self.n_classes)

    def __repr__(self) -> str:
        return "AbstainMember()"


class BaseCertifiedEnsemble(ClassifierMixin, MetaEstimatorMixin, BaseEstimator, metaclass=ABCMeta):
    """Base class of the certified ensembles (as scikit-learn's ``BaseBagging`` is for bagging).

    It owns everything the certified ensembles share: input validation and label encoding,
    the seed ``seed_`` every member's randomness derives from, training the members through
    :func:`~sklearn_certify.ensemble.fit_members`, degenerate members (no rows: abstain; one
    label: constant), storing and pickling the members, ``estimators_``,
    :meth:`member_scores`, :meth:`predict_members`, :meth:`predict_proba`, :meth:`predict`,
    :meth:`certify` and scoring in row batches of bounded memory.

    A subclass supplies only what differs:

    * ``_member_plan(X, y_encoded)``: a :class:`~sklearn_certify.ensemble.MemberPlan` over
      all members (its ids ``0 .. n_members-1``), called once per ``fit`` after validation
      and after ``seed_`` is drawn (a plan that needs randomness derives it from ``seed_``
      with :func:`~sklearn_certify.ensemble.member_seed`);
    * ``_aggregate(scores, abstain)``: from member scores ``(n, n_members, n_classes)`` and
      the ``(n, n_members)`` mask of abstentions (members without rows, and members whose
      scores on a row are NaN), a dict with ``prediction`` (class indices), ``radius``,
      ``abstain`` and any certificate extras, for one batch of rows;
    * ``_certificate_unit``: what the radius counts.

    Optional hooks: ``_fit_features(X)`` / ``_transform_features(X)`` (rows as the members
    see them; identity by default), ``_test_view()`` (a test-time member view, default
    ``None``), ``_check_options(X, y_encoded)`` (checks before planning), ``_needs_scores()``
    (what needs real-valued member scores, checked against the base estimator),
    ``_predict_scores(scores, abstain)`` (``predict``'s class indices, by default the
    certified ones), ``_member_estimator(X, y_encoded)`` (the estimator the members are
    cloned from), ``_after_fit(X)`` (checks and records after training),
    ``_int_params`` / ``_real_params`` (numeric parameters that refuse booleans) and
    ``_too_few_rows_hint`` (the fix suggested when a member's fit fails on its rows).

    Parameters
    ----------
    estimator : estimator object
        Base classifier; one clone is trained per member.
    engine : {"auto", "loop", "vectorized"}, default="auto"
        Training engine (see :func:`~sklearn_certify.ensemble.fit_members`).
    random_state : int, RandomState instance or None, default=None
        Seeds the members: ``fit`` draws ``seed_`` from it and member ``j`` derives its
        randomness from ``(seed_, j)`` alone.
    n_jobs : int, default=None
        Parallel jobs for training and scoring members (joblib semantics).
    verbose : int, default=0
        Progress output while training.
    """

    _parameter_constraints: ClassVar[dict] = {
        "estimator": [HasMethods(["fit", "predict"])],
        "engine": [StrOptions({"auto", "loop", "vectorized"})],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }
    _certificate_unit: ClassVar[str]
    #: Constructor parameters that the certificate, ``predict`` and the rest depend on.
    #: ``fit`` records each as ``<name>_`` before anything else, and every method after
    #: ``fit`` reads those: a parameter changed since (``set_params``) changes nothing.
    _fitted_params: ClassVar[tuple] = ()
    _too_few_rows_hint: ClassVar[str] = ""
    #: Integer and real parameters that must not be given as booleans.
    _int_params: ClassVar[tuple] = ("n_jobs",)
    _real_params: ClassVar[tuple] = ()

    @abstractmethod
    def __init__(self, estimator, *, engine="auto", random_state=None, n_jobs=None, verbose=0):
        self.estimator = estimator
        self.engine = engine
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ------------------------------------------------------------------ subclass hooks
    @abstractmethod
    def _member_plan(self, X, y_encoded):
        """The member plan over all members (ids ``0 .. n_members-1``)."""

    @abstractmethod
    def _aggregate(self, scores: np.ndarray, abstain: np.ndarray) -> dict:
        """Prediction (class indices), radius, abstain and extras for one batch of rows."""

    def _check_options(self, X, y_encoded) -> None:
        """Checks of the parameters against the data, before anything is planned or trained."""

    def _fit_features(self, X):
        """Rows as the members are trained on them (after any trusted feature map)."""
        return X

    def _transform_features(self, X):
        """Rows as the members score them."""
        return X

    def _test_view(self):
        """Test-time member view passed to :func:`member_outputs` (``None``: no view)."""
        return None

    # ------------------------------------------------------------------ fitting
    _VALIDATION: ClassVar[dict] = dict(
        accept_sparse=False,
        dtype=[np.float64, np.float32],
        allow_nd=True,
        ensure_all_finite=True,
    )

    def _validate_X(self, X):
        """Rows to score, checked against what ``fit`` saw (the whole row shape too)."""
        check_is_fitted(self)
        check_row_shape(X, self.row_shape_)
        return validate_data(self, X, reset=False, **self._VALIDATION)

    def __sklearn_is_fitted__(self) -> bool:
        return "trained_members_" in self.__dict__

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Plan the members, train them and keep them for scoring.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Training rows (dense, finite). Image arrays such as ``(n, C, H, W)`` are accepted
            and passed to the members as they are.
        y : array-like of shape (n_samples,)
            Labels of any type (strings too).

        Returns
        -------
        self : object
            The fitted ensemble.
        """
        self.__dict__.pop("trained_members_", None)  # not fitted until training succeeds
        self._check_param_types()
        self._check_estimator()
        X, y = validate_data(self, X, y, **self._VALIDATION)
        check_classification_targets(y)
        self._check_input_shape(X)
        self._record_fitted_params()
        self.row_shape_ = tuple(X.shape[1:])
        self.classes_, y_encoded = np.unique(y, return_inverse=True)
        y_encoded = y_encoded.astype(np.int64)
        self._check_options(X, y_encoded)
        self.seed_ = int(check_random_state(self.random_state).randint(_MAX_SEED))
        plan = self._member_plan(X, y_encoded)
        X_fit = self._fit_features(X)
        status, fixed = self._degenerate_members(plan, y_encoded)
        trained = np.flatnonzero(status == "trained")
        self._check_member_sizes(plan.sizes(X.shape[0])[trained])
        if trained.size:
            check_module_io(self.estimator, X_fit, self.classes_.shape[0])
        members: list = []
        if trained.size:
            try:
                members = train_members(
                    self._member_estimator(X_fit, y_encoded),
                    X_fit,
                    y_encoded,
                    plan.select(trained),
                    n_classes=self.classes_.shape[0],
                    seed=self.seed_,
                    engine=self.engine,
                    n_jobs=self.n_jobs,
                    verbose=self.verbose,
                )
            except ValueError as exc:
                raise self._member_fit_error(exc, plan, trained, X.shape[0]) from exc
        self._member_row_plan = (plan.rows, X.shape[0])
        self.trained_members_ = members
        self.member_status_ = status
        self._fixed_members = fixed
        self._estimators = None
        self._after_fit(X)
        return self

    def _record_fitted_params(self) -> None:
        """Record the parameters the certificate depends on as ``<name>_`` (a deep copy)."""
        for name in self._fitted_params:
            setattr(self, f"{name}_", copy.deepcopy(getattr(self, name)))

    # ------------------------------------------------------------------ checks before training
    def _check_param_types(self) -> None:
        """Numeric parameters refuse booleans (``True`` is an int to Python, never to a user)."""
        for name in (*self._int_params, *self._real_params):
            value = getattr(self, name)
            if isinstance(value, (bool, np.bool_)):
                kind = "an int" if name in self._int_params else "a real number"
                raise TypeError(f"{name} must be {kind}, got the boolean {value!r}.")
        if self.n_jobs == 0:
            raise ValueError(
                "n_jobs=0 runs nothing; use n_jobs=None or 1 (one job), a positive number of "
                "jobs, or -1 (all cores)."
            )

    def _check_estimator(self) -> None:
        """The base estimator is an instance that can give the members' votes (or scores).

        Its skorch nets (itself, or nested in a Pipeline) must not let members share weights
        or write files, and ``engine="vectorized"`` needs a skorch net.
        """
        estimator = self.estimator
        if isinstance(estimator, type):
            raise TypeError(
                f"estimator must be an estimator instance, e.g. {estimator.__name__}(), not "
                "the class itself."
            )
        check_engine(estimator, self.engine)
        if nested_nets(estimator):
            check_nets(estimator)
            return
        if self._needs_scores() and scoring_method(estimator) == "predict":
            raise TypeError(
                f"{self._needs_scores()} ranks the classes by each member's real-valued "
                f"scores, but {type(estimator).__name__} has neither predict_proba nor "
                "decision_function. Use a base estimator that has one, or an aggregation "
                "that needs only the members' labels."
            )

    def _check_input_shape(self, X) -> None:
        if X.ndim > 2 and not nested_nets(self.estimator) and not hasattr(self.estimator, "steps"):
            raise ValueError(
                f"X has shape {X.shape}, but {type(self.estimator).__name__} is trained on 2-D "
                "rows. Pass X.reshape(len(X), -1), or a skorch net whose module takes these "
                "arrays."
            )

    def _check_member_sizes(self, sizes: np.ndarray) -> None:
        """A k-nearest-neighbour base needs at least ``n_neighbors`` rows in every member."""
        if not sizes.size or not hasattr(self.estimator, "get_params"):
            return
        for key, value in self.estimator.get_params(deep=True).items():
            if key.split("__")[-1] == "n_neighbors" and isinstance(value, Integral):
                if value > sizes.min():
                    hint = f"; {self._too_few_rows_hint}" if self._too_few_rows_hint else ""
                    raise ValueError(
                        f"estimator {key}={value}, but the smallest member training set holds "
                        f"{int(sizes.min())} rows: that member could not find {value} "
                        f"neighbours. Use fewer neighbours{hint}."
                    )

    def _needs_scores(self) -> str:
        """The name of what needs real-valued member scores, or ``""`` if labels suffice."""
        return ""

    def _member_estimator(self, X, y_encoded):
        """The estimator the members are cloned from (``estimator`` itself by default)."""
        return self.estimator

    def _after_fit(self, X) -> None:
        """Checks on the trained members and what a subclass records about them; none here."""

    def _degenerate_members(self, plan, y_encoded) -> tuple[np.ndarray, dict]:
        """Member status (trained / constant / abstain) and the stand-ins of degenerate ones."""
        n_classes = self.classes_.shape[0]
        status = np.full(plan.n_members, "trained", dtype="<U8")
        fixed: dict = {}
        for position in range(plan.n_members):
            rows = plan.member_rows(position)
            labels = y_encoded if rows is None else y_encoded[rows]
            if labels.size == 0:
                status[position] = "abstain"
                fixed[position] = AbstainMember(n_classes)
            elif np.all(labels == labels[0]):
                status[position] = "constant"
                fixed[position] = ConstantMember(labels[0], n_classes)
        return status, fixed

    def _member_fit_error(self, exc, plan, trained, n_samples) -> ValueError:
        sizes = plan.sizes(n_samples)[trained]
        message = f"Fitting the members failed: {exc}"
        if self._too_few_rows_hint and sizes.min() < n_samples:
            message += (
                f" The smallest member training set holds {int(sizes.min())} rows; if the base "
                f"estimator needs more, {self._too_few_rows_hint}."
            )
        return ValueError(message)

    @property
    def member_rows_(self) -> list:
        """The training rows each member saw, as indices into the ``X`` given to ``fit``.

        One int64 array per member, in member-id order and in the order the member saw them
        (``np.arange(n_samples)`` for a member that saw every row through its own view). A
        clone of the base estimator fitted on ``X[member_rows_[j]]`` (through the member's
        view, with its seeds) is member ``j``: the rows are regenerated from the fitted plan,
        as scikit-learn's bagging regenerates ``estimators_samples_``.
        """
        if "_member_row_plan" not in self.__dict__:
            raise AttributeError(
                f"member_rows_ exists after fit; this {type(self).__name__} is not fitted yet."
            )
        rows, n_samples = self._member_row_plan
        if isinstance(rows, str):  # ALL_ROWS: every member saw every row
            return [np.arange(n_samples) for _ in range(len(self.member_status_))]
        return [np.asarray(r, dtype=np.int64) for r in rows]

    @property
    def estimators_(self) -> list:
        """Every member in member-id order; built on first access.

        Degenerate members are a :class:`~sklearn_certify.ensemble.ConstantMember` (one
        training label) or an :class:`~sklearn_certify.ensemble.AbstainMember` (no training
        rows).
        """
        if "trained_members_" not in self.__dict__:
            raise AttributeError(
                f"estimators_ exists after fit; this {type(self).__name__} is not fitted yet."
            )
        if self._estimators is None:
            members = dict(self._fixed_members)
            trained = np.flatnonzero(self.member_status_ == "trained")
            members.update(zip(trained.tolist(), self.trained_members_, strict=True))
            self._estimators = [members[j] for j in range(len(self.member_status_))]
        return self._estimators

    def __getstate__(self):
        state = super().__getstate__()
        if "_estimators" in state:
            state["_estimators"] = None  # rebuilt from trained_members_ on access
        return state

    # ------------------------------------------------------------------ scoring
    def _batches(self, X):
        """Row slices small enough that a batch's (rows, members, classes) scores stay bounded."""
        per_row = max(1, len(self.member_status_) * self.classes_.shape[0])
        return gen_batches(X.shape[0], max(1, _SCORE_BUDGET // per_row))

    def _scores(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Member scores ``(n, n_members, n_classes)`` of validated rows, and the abstain mask."""
        n = X.shape[0]
        n_classes = self.classes_.shape[0]
        scores = np.empty((n, len(self.member_status_), n_classes), dtype=np.float64)
        trained = np.flatnonzero(self.member_status_ == "trained")
        if trained.size and n:
            scores[:, trained, :] = member_outputs_impl(
                self.trained_members_,
                self._transform_features(X),
                n_classes=n_classes,
                view=self._test_view(),
                member_ids=trained,
                seed=self.seed_,
                n_jobs=self.n_jobs,
            )
        for j, member in self._fixed_members.items():
            scores[:, j, :] = member.scores(n)
        return scores, self.member_status_ == "abstain"

    def _voting_scores(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Scores the votes come from, and the ``(n, n_members)`` mask of abstentions.

        A member whose scores on a row contain NaN (a diverged net, say) abstains on that row:
        it votes for no class, in every election. Its flat stand-in scores are never read.
        """
        scores, abstain = self._scores(X)
        unusable = np.isnan(scores).any(axis=2)
        if unusable.any():
            scores = np.where(unusable[:, :, None], 1.0 / scores.shape[2], scores)
        return scores, abstain[None, :] | unusable

    def _in_batches(self, X, fn) -> dict:
        """``fn(scores, abstain)`` (a dict of per-row arrays) over row batches, concatenated.

        Warns once (:class:`DegenerateMemberWarning`) if some members' scores were NaN.
        """
        parts = []
        nan_members = np.zeros(len(self.member_status_), dtype=bool)
        batches = list(self._batches(X)) or [slice(0, 0)]
        for batch in batches:
            scores, abstain = self._voting_scores(X[batch])
            nan_members |= (abstain & ~(self.member_status_ == "abstain")[None, :]).any(axis=0)
            parts.append(fn(scores, abstain))
        if nan_members.any():
            which = np.flatnonzero(nan_members)
            warnings.warn(
                f"{which.size} of {nan_members.size} members gave NaN scores on some rows "
                f"(members {which[:10].tolist()}{' ...' if which.size > 10 else ''}); their "
                "votes on those rows abstain, which lowers the radii there. A diverged net "
                "(e.g. too high a learning rate) is the usual cause.",
                DegenerateMemberWarning,
                stacklevel=3,
            )
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

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
        return self._scores(self._validate_X(X))[0]

    @staticmethod
    def _member_votes(scores: np.ndarray) -> np.ndarray:
        # First maximum, i.e. ties between a member's scores go to the smaller class index.
        return np.argmax(scores, axis=2)

    def _learner_votes(self, scores, abstain) -> np.ndarray:
        """Each member's vote (class index), :data:`bounds.ABSTAIN` where it abstains.

        ``abstain`` is the ``(n_members,)`` or ``(n_samples, n_members)`` abstention mask.
        """
        return np.where(abstain, bounds.ABSTAIN, self._member_votes(scores))

    def predict_members(self, X) -> np.ma.MaskedArray:
        """Label voted by every member.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Rows to predict.

        Returns
        -------
        labels : numpy masked array of shape (n_samples, n_members)
            Member ``j``'s vote (a value of ``classes_``): the first maximum of its scores
            (:meth:`member_scores`). Entries of abstaining members are masked, and so are
            the rows on which a member's scores are NaN (it abstains there).
        """
        result = self._in_batches(self._validate_X(X), self._labels_and_mask)
        return np.ma.MaskedArray(result["labels"], mask=result["mask"])

    def _labels_and_mask(self, scores, abstain) -> dict:
        labels = self.classes_[self._member_votes(scores)]
        return {"labels": labels, "mask": np.broadcast_to(abstain, labels.shape).copy()}

    def predict_proba(self, X) -> np.ndarray:
        """Vote shares of the members that do not abstain.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Rows to predict.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Fraction of votes for each class in ``classes_`` (uniform where every member
            abstains). The certified prediction need not be its argmax (run-off election,
            for one, looks beyond round-one votes).
        """
        X = self._validate_X(X)
        n_classes = self.classes_.shape[0]

        def shares(scores, abstain):
            votes = bounds.fa_vote_counts(self._learner_votes(scores, abstain), n_classes)
            total = votes.sum(axis=1, keepdims=True)
            safe = np.where(total > 0, total, 1)
            return {"proba": np.where(total > 0, votes / safe, 1.0 / n_classes)}

        return self._in_batches(X, shares)["proba"]

    def predict(self, X) -> np.ndarray:
        """The certified prediction.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Rows to predict.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        result = self._in_batches(self._validate_X(X), self._predict_scores)
        return self.classes_[result["prediction"]]

    def _predict_scores(self, scores, abstain) -> dict:
        """``{"prediction": class indices}`` for one batch (by default the certified ones)."""
        return self._aggregate(scores, abstain)

    def certify(self, X) -> Certificate:
        """Predict and certify every row.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Rows to certify.

        Returns
        -------
        certificate : Certificate
            ``prediction`` (labels), ``radius`` (how much poisoning, in ``unit``, provably
            leaves the prediction unchanged), ``abstain`` and the method's extras.
        """
        result = self._in_batches(self._validate_X(X), self._aggregate)
        prediction = self.classes_[result.pop("prediction")]
        return Certificate(prediction=prediction, unit=self._certificate_unit, **result)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        return tags
