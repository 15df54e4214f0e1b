"""What every poisoning attack shares: its interface and the record of what it changed.

An attack turns a clean training set into a poisoned one. :class:`PoisonResult` records
exactly which rows were inserted, deleted or changed (features, label or both) and measures
the change in every unit a certificate can count, so that a harness can compare it with the
certificate it tests without trusting the attack's own bookkeeping.
"""

from __future__ import annotations

import numbers
from abc import ABCMeta, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state

__all__ = ["CHANGES", "COST_UNITS", "PoisonResult", "PoisoningAttack"]

#: Units a poisoning can be measured in. ``"rows"``: training rows touched (inserted, deleted
#: or changed); ``"samples"``: inserted plus deleted rows, a changed row counting as one
#: deletion and one insertion (DPA's unit); ``"label_flips"``: rows whose label alone changed
#: (SS-DPA's unit); ``"l2"``: l2 norm of the whole feature perturbation (RAB's unit);
#: ``"linf"``: largest l_inf change of one row; ``"rows+l2"``: the pair ``(rows, l2)`` of a
#: certificate partitioned by a trusted row key (inserted, deleted and relabeled rows, and
#: the l2 norm of the other rows' feature changes).
COST_UNITS = ("rows", "samples", "label_flips", "l2", "linf", "rows+l2")

#: The unit whose costs and budgets are pairs ``(rows, l2)``.
PAIR_UNIT = "rows+l2"

#: Units counted in whole rows, whose budgets are integers.
INTEGER_UNITS = ("rows", "samples", "label_flips")

#: What a poisoning can change: ``"rows"`` (rows inserted or deleted), ``"features"`` and
#: ``"labels"`` (of rows kept).
CHANGES = ("rows", "features", "labels")

#: The changes a unit cannot measure (the others can measure everything).
_UNMEASURED = {"label_flips": ("rows", "features"), "l2": ("rows", "labels")}
_UNMEASURED["linf"] = _UNMEASURED["l2"]


def measures(unit: str, changes) -> bool:
    """Whether a poisoning that makes ``changes`` (see :data:`CHANGES`) has a cost in ``unit``.

    Row counts measure every change; ``"label_flips"`` only relabeled rows; the feature
    norms ``"l2"`` and ``"linf"`` only changed features.
    """
    return not set(_UNMEASURED.get(unit, ())) & set(changes)


def _frozen(array) -> np.ndarray:
    out = np.array(array, copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class PoisonResult:
    """A poisoned training set and exactly how it differs from the clean one.

    Build it with :meth:`from_poisoned`, which derives every field from the clean and the
    poisoned data, so the description always matches the data. All arrays are read-only.

    Attributes
    ----------
    X : ndarray of shape (n_poisoned, ...)
        Poisoned training rows.
    y : ndarray of shape (n_poisoned,)
        Their labels.
    source : ndarray of int64 of shape (n_poisoned,)
        For each poisoned row, the clean row it comes from, ``-1`` for an inserted row.
    added : ndarray of int64
        Indices into ``X`` of the inserted rows.
    removed : ndarray of int64
        Indices into the clean set of the deleted rows.
    changed : ndarray of int64
        Indices into the clean set of the rows kept but changed (features, label or both).
    relabeled : ndarray of int64
        The subset of ``changed`` whose label changed.
    feature_l2, feature_linf : ndarray of float of shape (len(changed),)
        l2 and l_inf norms of each changed row's feature change (0 for a label-only change).
    budget : int or float
        The budget the attack was given, in ``unit``.
    unit : str
        The attack's budget unit, one of :data:`COST_UNITS`.
    info : dict
        What the attack chose (target label, buckets, trigger, ...), for inspection.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify.attacks import PoisonResult
    >>> X, y = np.zeros((3, 2)), np.array([0, 0, 1])
    >>> X_new = np.array([[0.0, 0.0], [0.0, 0.5], [9.0, 9.0]])
    >>> res = PoisonResult.from_poisoned(X, y, X_new, np.array([0, 0, 1]), [0, 1, -1],
    ...                                  budget=3, unit="rows")
    >>> res.added.tolist(), res.removed.tolist(), res.changed.tolist()
    ([2], [2], [1])
    >>> res.cost("rows"), res.cost("samples"), res.cost("label_flips")
    (3, 4, None)
    """

    X: np.ndarray
    y: np.ndarray
    source: np.ndarray
    added: np.ndarray
    removed: np.ndarray
    changed: np.ndarray
    relabeled: np.ndarray
    feature_l2: np.ndarray
    feature_linf: np.ndarray
    budget: float
    unit: str
    info: dict = field(default_factory=dict)

    @classmethod
    def from_poisoned(
        cls, X, y, X_poisoned, y_poisoned, source, *, budget, unit: str, info=None
    ) -> PoisonResult:
        """Describe a poisoned training set by comparing it with the clean one.

        Parameters
        ----------
        X, y : ndarray
            The clean training set.
        X_poisoned, y_poisoned : ndarray
            The poisoned training set (rows with the shape of ``X``'s rows).
        source : array-like of int of shape (n_poisoned,)
            For each poisoned row, the clean row it replaces (kept as is or changed), or
            ``-1`` for an inserted row. Each clean row appears at most once; clean rows
            that do not appear were deleted.
        budget : int or float
            The budget the attack was given, in ``unit``.
        unit : str
            The attack's budget unit, one of :data:`COST_UNITS`.
        info : dict, default=None
            Attack-specific details kept in ``info``.

        Returns
        -------
        PoisonResult
        """
        X, y = np.asarray(X), np.asarray(y)
        X_poisoned, y_poisoned = np.asarray(X_poisoned), np.asarray(y_poisoned)
        source = np.asarray(source, dtype=np.int64).reshape(-1)
        n = X.shape[0]
        if unit not in COST_UNITS:
            raise ValueError(f"unit must be one of {COST_UNITS}, got {unit!r}.")
        if X_poisoned.shape[1:] != X.shape[1:] or X_poisoned.shape[0] != y_poisoned.shape[0]:
            raise ValueError(
                f"X_poisoned must hold rows of shape {X.shape[1:]} with one label each; got "
                f"X_poisoned {X_poisoned.shape} and y_poisoned {y_poisoned.shape}."
            )
        if source.shape[0] != X_poisoned.shape[0]:
            raise ValueError(
                f"source must name the origin of each of the {X_poisoned.shape[0]} poisoned "
                f"rows, got {source.shape[0]} entries."
            )
        kept = source[source >= 0]
        if np.any(source < -1) or np.any(kept >= n) or np.unique(kept).size != kept.size:
            raise ValueError(
                f"source must hold -1 (inserted) or distinct clean row indices in 0..{n - 1}."
            )
        rows = np.flatnonzero(source >= 0)
        delta = (X_poisoned[rows].astype(np.float64) - X[kept].astype(np.float64)).reshape(
            rows.size, -1
        )
        feature_changed = np.any(delta != 0, axis=1)
        label_changed = y_poisoned[rows] != y[kept]
        is_changed = feature_changed | label_changed
        order = np.argsort(kept[is_changed], kind="stable")
        changed = kept[is_changed][order]
        delta = delta[is_changed][order]
        absent = np.ones(n, dtype=bool)
        absent[kept] = False
        return cls(
            X=_frozen(X_poisoned),
            y=_frozen(y_poisoned),
            source=_frozen(source),
            added=_frozen(np.flatnonzero(source < 0).astype(np.int64)),
            removed=_frozen(np.flatnonzero(absent).astype(np.int64)),
            changed=_frozen(changed),
            relabeled=_frozen(np.sort(kept[label_changed])),
            feature_l2=_frozen(np.sqrt(np.sum(delta**2, axis=1))),
            feature_linf=_frozen(np.abs(delta).max(axis=1, initial=0.0)),
            budget=budget,
            unit=unit,
            info=dict(info or {}),
        )

    @property
    def is_clean(self) -> bool:
        """True when nothing was inserted, deleted or changed."""
        return not (self.added.size or self.removed.size or self.changed.size)

    @property
    def spent(self):
        """The cost in the attack's own unit (:meth:`cost` of ``unit``)."""
        return self.cost(self.unit)

    def cost(self, unit: str):
        """How large this poisoning is in ``unit``, or None where ``unit`` cannot measure it.

        Parameters
        ----------
        unit : {"rows", "samples", "label_flips", "l2", "linf", "rows+l2"}
            ``"rows"``: inserted + deleted + changed rows. ``"samples"``: inserted +
            deleted rows, a changed row counting twice (deleted, then inserted): the size of
            the symmetric difference DPA certifies. ``"label_flips"``: rows whose label
            changed, defined only when nothing else changed. ``"l2"``: the l2 norm of the
            whole feature perturbation, ``sqrt(sum_i ||delta_i||^2)``, and ``"linf"``: the
            largest ``||delta_i||_inf``, both defined only when no row was inserted or
            deleted and no label changed. ``"rows+l2"``: the pair ``(rows, l2)`` a
            certificate partitioned by a trusted row key counts (a kept row stays in its
            partition): ``rows`` = inserted + deleted + relabeled rows (a relabeled row may
            change any way, as one arbitrary row), ``l2`` = the l2 norm of the feature
            changes of the other kept rows; defined for every poisoning.

        Returns
        -------
        int, float, tuple (int, float) or None
            Integers for the row counts, floats for the norms, a pair for ``"rows+l2"``,
            None where undefined.
        """
        if unit not in COST_UNITS:
            raise ValueError(f"unit must be one of {COST_UNITS}, got {unit!r}.")
        n_moved = int(self.added.size + self.removed.size)
        if not measures(unit, self.changes):
            return None
        if unit == "rows":
            return n_moved + int(self.changed.size)
        if unit == "samples":
            return n_moved + 2 * int(self.changed.size)
        if unit == "label_flips":
            return int(self.relabeled.size)
        if unit == "l2":
            return float(np.sqrt(np.sum(self.feature_l2**2)))
        if unit == PAIR_UNIT:
            nudged = ~np.isin(self.changed, self.relabeled)
            l2 = float(np.sqrt(np.sum(self.feature_l2[nudged] ** 2)))
            return n_moved + int(self.relabeled.size), l2
        return float(self.feature_linf.max(initial=0.0))

    @property
    def changes(self) -> frozenset:
        """What this poisoning changed: a subset of ``{"rows", "features", "labels"}``.

        ``"rows"``: rows inserted or deleted; ``"features"``, ``"labels"``: of rows kept.
        """
        made = {
            "rows": bool(self.added.size or self.removed.size),
            "features": bool(np.any(self.feature_l2 > 0)),
            "labels": bool(self.relabeled.size),
        }
        return frozenset(kind for kind, made_it in made.items() if made_it)

    def describe(self) -> str:
        """One line: what was inserted, deleted and changed.

        Returns
        -------
        str
        """
        return (
            f"{self.added.size} inserted, {self.removed.size} deleted, {self.changed.size} "
            f"changed ({self.relabeled.size} relabeled); budget {self.budget} {self.unit}"
        )


def assemble(X, y, *, rows=None, X_rows=None, y_rows=None, X_added=None, y_added=None):
    """The poisoned set: clean rows, ``rows`` replaced in place, inserted rows appended.

    Returns ``(X_poisoned, y_poisoned, source)`` for :meth:`PoisonResult.from_poisoned`.
    """
    rows = np.zeros(0, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    parts_X = [np.asarray(X)]
    if X_rows is not None:
        parts_X.append(np.asarray(X_rows))
    if X_added is not None:
        parts_X.append(np.asarray(X_added))
    dtype = np.result_type(*parts_X)
    if not np.issubdtype(dtype, np.floating):
        dtype = np.float64
    X_new = np.array(X, dtype=dtype, copy=True)
    y_new = np.array(y, copy=True)
    if rows.size:
        if X_rows is not None:
            X_new[rows] = X_rows
        if y_rows is not None:
            y_new = y_new.astype(np.result_type(y_new, np.asarray(y_rows)))
            y_new[rows] = y_rows
    source = np.arange(X_new.shape[0], dtype=np.int64)
    if X_added is not None and len(X_added):
        X_new = np.concatenate([X_new, np.asarray(X_added, dtype=dtype)])
        y_new = np.concatenate([y_new, np.asarray(y_added)])
        source = np.concatenate([source, np.full(len(X_added), -1, dtype=np.int64)])
    return X_new, y_new, source


@contextmanager
def one_torch_thread():
    """Run torch on one thread, restoring the caller's thread count afterwards.

    The attacks' optimisations are many small full-batch steps: on a shared machine more
    threads add synchronisation, not speed.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def check_training_set(X, y) -> tuple[np.ndarray, np.ndarray]:
    """``X`` (numeric, finite, one row per sample) and ``y`` (1-d, one label per row)."""
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim < 2:
        raise ValueError(f"X must have one row per sample (at least 2-d), got shape {X.shape}.")
    if X.dtype == bool or not np.issubdtype(X.dtype, np.number):
        raise TypeError(f"X must be numeric, got dtype {X.dtype}.")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinite values.")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(
            f"y must be 1-d with one label per row of X ({X.shape[0]}), got shape {y.shape}."
        )
    if X.shape[0] == 0:
        raise ValueError("X has no rows; an attack needs a training set.")
    return X, y


def check_budget(budget, unit: str):
    """The budget as an int (row units), a float (norms) or a pair ``(int, float)``.

    Non-negative and finite; ``"rows+l2"`` budgets are pairs ``(rows, l2)``.
    """
    if unit == PAIR_UNIT:
        if isinstance(budget, np.ndarray):
            budget = tuple(budget.tolist())
        if not isinstance(budget, (tuple, list)) or len(budget) != 2:
            raise TypeError(
                f"a {unit} budget is a pair (rows, l2), e.g. (2, 0.5), got {budget!r}."
            )
        rows, l2 = (b.item() if isinstance(b, np.generic) else b for b in budget)
        return check_budget(rows, "rows"), check_budget(l2, "l2")
    if unit in INTEGER_UNITS:
        if isinstance(budget, (bool, np.bool_)) or not isinstance(budget, numbers.Integral):
            raise TypeError(f"budget counts {unit} and must be an integer, got {budget!r}.")
        if budget < 0:
            raise ValueError(f"budget must be >= 0, got {budget}.")
        return int(budget)
    if isinstance(budget, (bool, np.bool_)) or not isinstance(budget, numbers.Real):
        raise TypeError(f"budget must be a real number ({unit}), got {budget!r}.")
    if not (np.isfinite(budget) and budget >= 0):
        raise ValueError(f"budget must be a finite number >= 0, got {budget}.")
    return float(budget)


def label_index(name: str, label, classes: np.ndarray) -> int:
    """Position of ``label`` in ``classes``, or an error naming ``name``."""
    matches = np.flatnonzero(classes == label)
    if matches.size == 0:
        raise ValueError(f"{name}={label!r} is not one of the training labels {classes.tolist()}.")
    return int(matches[0])


class PoisoningAttack(BaseEstimator, metaclass=ABCMeta):
    """Base class of the attacks: ``poison`` a training set within a budget.

    A subclass sets ``unit`` (what its budget counts, one of :data:`COST_UNITS`) and
    implements ``_poison``. An attack is *global* (one poisoned set for all test points,
    e.g. a backdoor) or *per target* (crafted against one test point, ``per_target`` is
    True); :func:`~sklearn_certify.attacks.evaluate_under_attack` calls it accordingly.
    Attacks with randomness draw it from ``random_state`` afresh in each call, so equal
    arguments and an integer ``random_state`` give equal poisonings, and a larger budget
    extends a smaller one.
    """

    #: What the budget counts.
    unit: ClassVar[str]

    @property
    def per_target(self) -> bool:
        """True when each poisoning is crafted against one test point (``target``)."""
        return False

    @property
    def reads_model(self) -> bool:
        """True when :meth:`poison` reads ``model``, the classifier trained on the clean set.

        Assumed by default; an attack that never looks at the model says False, so that a
        harness need not train one for it.
        """
        return True

    @property
    def changes(self) -> frozenset:
        """What this attack's poisonings may change: a subset of ``{"rows", "features", "labels"}``.

        Read before anything is trained, to refuse a certificate that does not count these
        changes. Empty when an attack does not say (the cost of each poisoning is still
        checked once it is made).
        """
        return frozenset()

    def validate_estimator(self, estimator) -> None:
        """Refuse, before it is trained, a certified classifier this attack cannot attack.

        Parameters
        ----------
        estimator : estimator
            The unfitted certified classifier the attack will read (as ``model``).

        Raises
        ------
        TypeError, ValueError
            Where :meth:`poison` would refuse the classifier once trained (none by default).
        """

    def validate_budget(self, X, y, budget, *, target=None) -> None:
        """Refuse a budget :meth:`poison` could not spend on ``(X, y)``, without poisoning.

        Cheap: nothing is optimised or trained. For an attack that reads ``model``, the
        check covers every model (a budget it passes may still be refused by
        :meth:`poison` for a particular one).

        Parameters
        ----------
        X, y, budget, target :
            As in :meth:`poison`.

        Raises
        ------
        TypeError, ValueError
            Where :meth:`poison` would refuse these arguments.
        """
        self._validate_params()
        X, y = check_training_set(X, y)
        budget = check_budget(budget, self.unit)
        self._validate_budget(X, y, budget, self._checked_target(X, target))

    def _validate_budget(self, X, y, budget, target) -> None:
        """The attack's own checks of :meth:`validate_budget`, on checked inputs (none here)."""

    def _checked_target(self, X, target):
        """``target`` shaped like a row of ``X``: required per target, refused otherwise."""
        if not self.per_target:
            if target is not None:
                raise ValueError(
                    f"{type(self).__name__} poisons for every test point at once; leave "
                    "target as None."
                )
            return None
        if target is None:
            raise ValueError(
                f"{type(self).__name__} is crafted against one test point; pass target "
                "(one row shaped like the rows of X)."
            )
        target = np.asarray(target)
        if target.size != int(np.prod(X.shape[1:])):
            raise ValueError(
                f"target must be one row of shape {X.shape[1:]}, got shape {target.shape}."
            )
        return target.reshape(X.shape[1:])

    def poison(self, X, y, budget, *, model=None, target=None) -> PoisonResult:
        """Poison the training set ``(X, y)`` with exactly ``budget`` (in ``unit``).

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Clean training rows.
        y : array-like of shape (n_samples,)
            Their labels.
        budget : int or float
            Size of the poisoning, in :attr:`unit`; the result spends exactly this much.
        model : fitted estimator, default=None
            The classifier trained on the clean set, for attacks that read it (the
            attacker knows the training algorithm and the data, hence this model).
        target : array-like of shape X.shape[1:], default=None
            The test point a per-target attack is crafted against (required then, refused
            otherwise).

        Returns
        -------
        PoisonResult
            The poisoned set and exactly what changed.
        """
        self._validate_params()
        X, y = check_training_set(X, y)
        budget = check_budget(budget, self.unit)
        target = self._checked_target(X, target)
        rng = check_random_state(getattr(self, "random_state", None))
        return self._poison(X, y, budget, model=model, target=target, rng=rng)

    @abstractmethod
    def _poison(self, X, y, budget, *, model, target, rng) -> PoisonResult:
        """The poisoning, on checked inputs."""

    def test_inputs(self, X_test) -> np.ndarray:
        """Test inputs as the attacker presents them (a backdoor adds its trigger).

        Parameters
        ----------
        X_test : array-like of shape (n_test, ...)

        Returns
        -------
        ndarray of shape (n_test, ...)
            ``X_test`` unchanged, unless the attack has a test-time part.
        """
        return np.asarray(X_test)

    def evaluation_rows(self, y_test) -> np.ndarray:
        """Indices of the test points the attack is evaluated on.

        All of them, except for a global attack with a ``target_label`` (a backdoor, say),
        which is evaluated on the points of the other classes: those it tries to move.

        Parameters
        ----------
        y_test : array-like of shape (n_test,)

        Returns
        -------
        ndarray of int64
        """
        y_test = np.asarray(y_test)
        target = getattr(self, "target_label", None)
        if target is None or self.per_target:
            return np.arange(y_test.shape[0], dtype=np.int64)
        return np.flatnonzero(y_test != target).astype(np.int64)

    def succeeded(self, clean_prediction, poisoned_prediction, y_true) -> np.ndarray:
        """Whether the attack reached its goal on each evaluated test point.

        A global attack with a ``target_label`` succeeds where the poisoned model predicts
        it; any other attack succeeds where the poisoned model's prediction differs from
        the clean model's.

        Parameters
        ----------
        clean_prediction : ndarray of shape (n,)
            The clean model's predictions on the evaluated inputs.
        poisoned_prediction : ndarray of shape (n,)
            The poisoned model's predictions on the same inputs.
        y_true : ndarray of shape (n,)
            Their true labels, for attacks whose goal depends on them (a subclass may
            override this method; the attacks here do not read them).

        Returns
        -------
        ndarray of bool of shape (n,)
        """
        target = getattr(self, "target_label", None)
        if target is None or self.per_target:
            return np.asarray(poisoned_prediction) != np.asarray(clean_prediction)
        return np.asarray(poisoned_prediction) == target


def challenger(votes: np.ndarray, prediction: int) -> int:
    """The class that needs the fewest moved votes to overtake ``prediction`` (DPA's radius).

    Ties between votes go to the smaller class index, so a class below the prediction needs
    one vote less.
    """
    classes = np.arange(votes.size)
    gaps = votes[prediction] - votes - (classes < prediction)
    gaps[prediction] = np.iinfo(np.int64).max
    return int(np.argmin(gaps))


def member_view(model, x) -> tuple[int, int, np.ndarray]:
    """A partition ensemble's prediction, its challenger and each member's vote at ``x``.

    Returns ``(prediction, challenger, votes)`` as class indices, ``-1`` for a member that
    abstains.
    """
    cert = model.certify(x[None])
    prediction = int(np.searchsorted(model.classes_, cert.prediction[0]))
    members = model.predict_members(x[None])[0]
    votes = np.where(
        np.ma.getmaskarray(members), -1, np.searchsorted(model.classes_, members.data)
    ).astype(np.int64)
    return prediction, challenger(np.asarray(cert.votes[0]), prediction), votes


def greedy_buckets(
    member_votes, learners, prediction: int, target: int, n_picks: int, allowed=None
) -> np.ndarray:
    """Buckets to poison, greedily: each turns its members' votes to ``target``.

    A member moving from ``prediction`` to ``target`` closes the vote gap by two, one moving
    from another class or from abstaining closes it by one. Buckets (those ``allowed``, all
    by default) are picked by the gap they close given the earlier picks, ties to the
    smaller bucket; once every allowed bucket is picked, the order repeats.
    """
    current = np.array(member_votes, copy=True)
    available = np.ones(learners.shape[0], dtype=bool) if allowed is None else allowed.copy()
    order = []
    for _ in range(min(n_picks, int(available.sum()))):
        votes = current[learners]
        gain = (votes != target).astype(np.int64) + ((votes == prediction) & (prediction != target))
        bucket = int(np.argmax(np.where(available, gain.sum(axis=1), -1)))
        order.append(bucket)
        available[bucket] = False
        current[learners[bucket]] = target
    if not order:
        return np.zeros(0, dtype=np.int64)
    return np.resize(np.array(order, dtype=np.int64), n_picks)


def partition_learners(model) -> np.ndarray:
    """``(n_buckets, spread)`` members each bucket of a fitted partition ensemble feeds."""
    n = int(model.n_partitions) * int(model.spread)
    return (np.arange(n)[:, None] + np.asarray(model.shifts_)[None, :]) % n
