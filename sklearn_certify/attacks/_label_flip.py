"""Label flipping: random, or targeted at the training rows nearest a test point."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import StrOptions

from sklearn_certify.attacks._base import (
    PoisoningAttack,
    PoisonResult,
    assemble,
    greedy_buckets,
    label_index,
    member_view,
    partition_learners,
)

__all__ = ["LabelFlipAttack"]


class LabelFlipAttack(PoisoningAttack):
    """Flip the labels of ``budget`` training rows; features are left untouched.

    ``strategy="random"`` flips rows drawn at random, each to ``target_label`` or, without
    one, to a random other class: an indiscriminate attack on every test point at once.

    ``strategy="nearest"`` is crafted against one test point (``target``): it flips the
    training rows nearest to it, to ``target_label`` or, when the model's certificate has
    votes, to the class that needs the fewest votes to overtake the prediction. Against a
    partition ensemble (a fitted :class:`~sklearn_certify.DPAClassifier` or
    :class:`~sklearn_certify.PartitionedRABClassifier` passed as ``model``) it flips one
    row per partition, the nearest one, in the partitions whose members vote for the
    prediction first (against the keyed partitions a flip is one row of the frontier):
    with a 1-nearest-neighbour base each flip turns one member's vote, the strongest
    label-flip attack on partition aggregation.

    The budget counts flipped labels (``unit = "label_flips"``), SS-DPA's unit; against
    the general threat model a flip costs two samples (a deletion and an insertion).

    Parameters
    ----------
    strategy : {"random", "nearest"}, default="random"
        Which rows to flip (see above).
    target_label : label, default=None
        The label flipped rows get. ``None``: a random other class (``"random"``), or the
        runner-up of the model's vote (``"nearest"``; without votes, the label of the
        nearest training row that disagrees with the model's prediction).
    random_state : int, RandomState instance or None, default=None
        Rows and new labels of ``"random"`` (a larger budget extends a smaller one);
        ``"nearest"`` is deterministic.

    Attributes
    ----------
    unit : str
        ``"label_flips"``.

    Examples
    --------
    >>> from sklearn_certify.attacks import LabelFlipAttack
    >>> from sklearn_certify.datasets import load_digits
    >>> X, y = load_digits(split="train")
    >>> res = LabelFlipAttack(random_state=0).poison(X, y, 5)
    >>> res.relabeled.size, res.cost("label_flips"), res.cost("samples")
    (5, 5, 10)
    """

    _parameter_constraints: ClassVar[dict] = {
        "strategy": [StrOptions({"random", "nearest"})],
        "target_label": "no_validation",
        "random_state": ["random_state"],
    }
    unit = "label_flips"

    def __init__(self, strategy: str = "random", *, target_label=None, random_state=None):
        self.strategy = strategy
        self.target_label = target_label
        self.random_state = random_state

    @property
    def per_target(self) -> bool:
        """True for ``strategy="nearest"``, which is crafted against one test point."""
        return self.strategy == "nearest"

    @property
    def reads_model(self) -> bool:
        """True for ``strategy="nearest"``, which reads the clean model's vote."""
        return self.strategy == "nearest"

    @property
    def changes(self) -> frozenset:
        """Labels only."""
        return frozenset({"labels"})

    def _classes(self, y) -> np.ndarray:
        classes = np.unique(y)
        if self.target_label is not None:
            label_index("target_label", self.target_label, classes)
        if classes.size < 2:
            raise ValueError("y has a single class; there is no other label to flip to.")
        return classes

    def _validate_budget(self, X, y, budget, target) -> None:
        self._classes(y)
        classes, counts = np.unique(y, return_counts=True)
        if self.target_label is not None:
            self._check_pool(budget, int(np.sum(y != self.target_label)))
        elif self.strategy == "random":
            self._check_pool(budget, y.shape[0])
        elif budget > y.shape[0] - counts.min():
            raise ValueError(
                f"budget={budget} is more than the {y.shape[0] - counts.min()} training rows "
                f"not labelled {classes[np.argmin(counts)].item()!r} (the rarest label): a nearest "
                "flip relabels rows of other labels than the one it flips to."
            )

    def _poison(self, X, y, budget, *, model, target, rng) -> PoisonResult:
        classes = self._classes(y)
        if self.strategy == "random":
            rows, labels, info = self._random(y, classes, budget, rng)
        else:
            rows, labels, info = self._nearest(X, y, budget, model, target)
        X_new, y_new, source = assemble(X, y, rows=rows, y_rows=labels)
        return PoisonResult.from_poisoned(
            X, y, X_new, y_new, source, budget=budget, unit=self.unit, info=info
        )

    def _random(self, y, classes, budget, rng):
        pool = np.arange(y.shape[0])
        if self.target_label is not None:
            pool = np.flatnonzero(y != self.target_label)
        self._check_pool(budget, pool.size)
        order = pool[rng.permutation(pool.size)]
        if self.target_label is None:
            # every row's new label is drawn up front, so a larger budget extends a smaller one
            shift = rng.randint(1, classes.size, size=order.size)
            new = classes[(np.searchsorted(classes, y[order]) + shift) % classes.size]
        else:
            new = np.full(order.size, self.target_label, dtype=y.dtype)
        return order[:budget], new[:budget], {"target_label": self.target_label}

    def _new_label(self, X, y, model, target):
        """The label to flip to, and the model's view of the target (or None)."""
        view = None
        if hasattr(model, "assign_partitions"):
            view = member_view(model, target)
        if self.target_label is not None:
            return self.target_label, view
        if view is not None:
            return model.classes_[view[1]], view
        if model is None:
            raise ValueError(
                "strategy='nearest' needs target_label, or the model trained on the clean "
                "set (model=...) to read the prediction it attacks."
            )
        prediction = model.predict(target[None])[0]
        distance = _squared_distances(X, target)
        others = np.flatnonzero(y != prediction)
        return y[others[np.argmin(distance[others])]], None

    def _nearest(self, X, y, budget, model, target):
        new_label, view = self._new_label(X, y, model, target)
        distance = _squared_distances(X, target)
        pool = np.flatnonzero(y != new_label)
        pool = pool[np.argsort(distance[pool], kind="stable")]
        self._check_pool(budget, pool.size)
        if view is None:
            return (
                pool[:budget],
                np.full(budget, new_label, dtype=y.dtype),
                {"target_label": new_label},
            )
        prediction, _, member_votes = view
        buckets, learners = _partition_layout(model, X)
        allowed = np.zeros(learners.shape[0], dtype=bool)
        allowed[buckets[pool]] = True  # buckets holding a row that can be flipped
        target_index = int(np.searchsorted(model.classes_, new_label))
        picks = greedy_buckets(
            member_votes, learners, prediction, target_index, int(allowed.sum()), allowed=allowed
        )
        nearest = {}
        for row in pool:  # pool is sorted by distance: the first row seen is the nearest
            nearest.setdefault(int(buckets[row]), int(row))
        chosen = [nearest[int(b)] for b in picks]
        taken = set(chosen)
        # beyond one flip per bucket, the next nearest rows
        rows = np.array((chosen + [int(r) for r in pool if r not in taken])[:budget], np.int64)
        info = {"target_label": new_label, "buckets": buckets[rows]}
        return rows, np.full(budget, new_label, dtype=y.dtype), info

    def _check_pool(self, budget, size):
        if budget > size:
            which = (
                ""
                if self.target_label is None
                else (f" not already labelled target_label={self.target_label!r}")
            )
            raise ValueError(f"budget={budget} is more than the {size} training rows{which}.")


def _partition_layout(model, X) -> tuple[np.ndarray, np.ndarray]:
    """Each training row's bucket, and the members each bucket feeds, of a partition ensemble.

    A DPA hashes the rows (``assign_partitions``; its buckets feed ``spread`` members each);
    a :class:`~sklearn_certify.PartitionedRABClassifier` keeps the partition of every
    training row (``partition_of_row_``), and partition ``j`` feeds members
    ``j * N .. (j + 1) * N - 1``.
    """
    from sklearn_certify.partition import PartitionedRABClassifier

    if isinstance(model, PartitionedRABClassifier):
        if X.shape[0] != model.partition_of_row_.shape[0]:
            raise ValueError(
                f"model was trained on {model.partition_of_row_.shape[0]} rows, X has "
                f"{X.shape[0]}; pass the training set the model was fitted on."
            )
        k, N = model.n_partitions_, model.n_estimators_
        return model.partition_of_row_, np.arange(k * N).reshape(k, N)
    buckets = model.assign_partitions(X)
    if np.any(buckets < 0):
        raise ValueError(
            "model was not trained on X (its label-flip partitions do not know some rows); "
            "pass the training set the model was fitted on."
        )
    return buckets, partition_learners(model)


def _squared_distances(X, target) -> np.ndarray:
    """Squared Euclidean distance of every row of ``X`` to ``target`` (in float64)."""
    rows = X.reshape(X.shape[0], -1).astype(np.float64)
    return np.sum((rows - target.reshape(-1).astype(np.float64)) ** 2, axis=1)
