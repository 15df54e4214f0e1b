"""Insert near-copies of a test point into the partitions whose votes matter most."""

from __future__ import annotations

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval

from sklearn_certify.attacks._base import (
    PoisoningAttack,
    PoisonResult,
    assemble,
    greedy_buckets,
    label_index,
    member_view,
    partition_learners,
)
from sklearn_certify.partition import bucket_of_rows

__all__ = ["PartitionInsertionAttack"]

#: Candidate near-copies hashed per round of the search (``hash="digest"``).
_CANDIDATES_PER_ROUND = 4096
#: Largest pixel value of ``hash="pixel_sum"``.
_MAX_PIXEL = 255


class PartitionInsertionAttack(PoisoningAttack):
    """Insert labelled near-copies of a test point into chosen DPA / FA partitions.

    The partition of a row is a public function of its content
    (:meth:`~sklearn_certify.DPAClassifier.assign_partitions`), so the attacker can
    craft copies of the test point ``target``, each moved by a tiny amount until its hash
    lands in a chosen bucket, and label them ``target_label`` (by default the class that
    needs the fewest votes to overtake the prediction). Buckets are chosen greedily by how
    much turning their members' votes closes the vote gap: members voting for the
    prediction first. With a 1-nearest-neighbour base each copy becomes the nearest
    neighbour of the test point in its partition and turns the votes of the members that
    train on it, which is the worst case DPA's certificate allows: ``radius`` copies leave
    the prediction in place and one more overturns it.

    The budget counts inserted rows (``unit = "samples"``). It needs the fitted
    :class:`~sklearn_certify.DPAClassifier` (``model``, ``threat_model="general"``)
    trained on the clean set.

    Parameters
    ----------
    target_label : label, default=None
        The label of the copies; ``None`` is the runner-up of the model's vote at the
        target (the class the DPA radius is computed against).
    max_perturbation : float, default=1e-3
        ``hash="digest"``: each copy differs from the target in one feature, by at most
        this much (within the range of the training values). ``hash="pixel_sum"`` moves
        integer pixel values by one unit at a time instead, as little as the bucket needs.
    max_tries : int, default=100000
        ``hash="digest"``: candidate copies hashed before giving up on a bucket.
    random_state : int, RandomState instance or None, default=None
        Which feature each copy moves, and by how much.

    Attributes
    ----------
    unit : str
        ``"samples"``.

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn_certify import DPAClassifier
    >>> from sklearn_certify.attacks import PartitionInsertionAttack
    >>> from sklearn_certify.datasets import load_digits
    >>> X, y = load_digits(split="train")
    >>> x = load_digits(split="test")[0][0]
    >>> clf = DPAClassifier(KNeighborsClassifier(1), n_partitions=11, random_state=0).fit(X, y)
    >>> r = int(clf.certify(x[None]).radius[0])
    >>> attack = PartitionInsertionAttack(random_state=0)
    >>> held = attack.poison(X, y, r, model=clf, target=x)
    >>> flipped = attack.poison(X, y, r + 1, model=clf, target=x)
    >>> def refit(res):
    ...     return DPAClassifier(KNeighborsClassifier(1), n_partitions=11,
    ...                          random_state=0).fit(res.X, res.y).predict(x[None])[0]
    >>> pred = clf.predict(x[None])[0]
    >>> r, bool(refit(held) == pred), bool(refit(flipped) == pred)
    (3, True, False)
    """

    _parameter_constraints: ClassVar[dict] = {
        "target_label": "no_validation",
        "max_perturbation": [Interval(Real, 0, None, closed="neither")],
        "max_tries": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }
    unit = "samples"

    def __init__(
        self,
        *,
        target_label=None,
        max_perturbation: float = 1e-3,
        max_tries: int = 100_000,
        random_state=None,
    ):
        self.target_label = target_label
        self.max_perturbation = max_perturbation
        self.max_tries = max_tries
        self.random_state = random_state

    @property
    def per_target(self) -> bool:
        """Always True: the copies are crafted against one test point."""
        return True

    @property
    def changes(self) -> frozenset:
        """Inserted rows only."""
        return frozenset({"rows"})

    def validate_estimator(self, estimator) -> None:
        """Refuse any classifier but a DPA whose ``threat_model`` is ``"general"``.

        Parameters
        ----------
        estimator : estimator
            The unfitted certified classifier.
        """
        from sklearn_certify.partition import DPAClassifier

        if not isinstance(estimator, DPAClassifier):
            raise TypeError(
                "PartitionInsertionAttack reads the content-hashed partitions of a "
                f"DPAClassifier; got {type(estimator).__name__}."
            )
        _check_threat_model(estimator)

    def _poison(self, X, y, budget, *, model, target, rng) -> PoisonResult:
        _check_model(model)
        prediction, runner_up, member_votes = member_view(model, target)
        if self.target_label is None:
            label = runner_up
        else:
            label = label_index("target_label", self.target_label, model.classes_)
        n_buckets = int(model.n_partitions) * int(model.spread)
        buckets = greedy_buckets(member_votes, partition_learners(model), prediction, label, budget)
        if model.hash == "pixel_sum":
            copies = _pixel_sum_copies(target, buckets, n_buckets, rng)
        else:
            copies = self._digest_copies(X, target, buckets, n_buckets, rng)
        labels = np.full(budget, model.classes_[label], dtype=np.asarray(y).dtype)
        X_new, y_new, source = assemble(X, y, X_added=copies, y_added=labels)
        info = {"target_label": model.classes_[label], "buckets": buckets}
        return PoisonResult.from_poisoned(
            X, y, X_new, y_new, source, budget=budget, unit=self.unit, info=info
        )

    def _digest_copies(self, X, target, buckets, n_buckets, rng) -> np.ndarray:
        """Copies of ``target`` with one feature moved, one per entry of ``buckets``."""
        dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else np.float64
        flat = target.reshape(-1).astype(dtype)
        high = float(X.max())
        found: dict[int, np.ndarray] = {}
        missing = set(np.unique(buckets).tolist())
        tries = 0
        while missing and tries < self.max_tries:
            m = min(_CANDIDATES_PER_ROUND, self.max_tries - tries)
            tries += m
            feature = rng.randint(flat.size, size=m)
            step = self.max_perturbation * (1.0 - rng.uniform(size=m))  # in (0, max]
            step = np.where(flat[feature] + step <= high, step, -step)
            candidates = np.repeat(flat[None, :], m, axis=0)
            candidates[np.arange(m), feature] = (flat[feature] + step).astype(dtype)
            hit = bucket_of_rows(candidates, n_buckets, hash="digest")
            for bucket in list(missing):
                where = np.flatnonzero(hit == bucket)
                if where.size:
                    found[bucket] = candidates[where[0]]
                    missing.discard(bucket)
        if missing:
            raise RuntimeError(
                f"no copy of the target hashing into bucket(s) {sorted(missing)[:5]} within "
                f"max_tries={self.max_tries} candidates; raise max_tries."
            )
        if not buckets.size:
            return np.zeros((0, *target.shape), dtype=dtype)
        return np.stack([found[int(b)] for b in buckets]).reshape(-1, *target.shape)


def _check_model(model) -> None:
    needed = ("assign_partitions", "predict_members", "n_partitions", "spread", "shifts_")
    if model is None or not all(hasattr(model, name) for name in needed):
        raise TypeError(
            "PartitionInsertionAttack reads the partitions of a fitted DPAClassifier; pass the "
            f"classifier trained on the clean set as model=..., got {type(model).__name__}."
        )
    _check_threat_model(model)


def _check_threat_model(model) -> None:
    if getattr(model, "threat_model", None) != "general":
        raise ValueError(
            "PartitionInsertionAttack inserts rows, which the label-flip threat model "
            "(SS-DPA, threat_model='label_flip') does not cover; use LabelFlipAttack there."
        )


def _pixel_sum_copies(target, buckets, n_buckets, rng) -> np.ndarray:
    """Copies of ``target`` whose integer pixel sum is the bucket modulo ``n_buckets``."""
    flat = target.reshape(-1).astype(np.float64)
    if np.any(flat != np.round(flat)) or flat.min() < 0 or flat.max() > _MAX_PIXEL:
        raise ValueError(
            "hash='pixel_sum' copies need a target of integer pixel values in 0..255 (raw "
            "images), like the training rows."
        )
    pixels = flat.astype(np.int64)
    total = int(pixels.sum())
    copies = []
    for bucket in buckets:
        up = (int(bucket) - total) % n_buckets
        # the smaller of the two moves (up, or down by n_buckets - up) the pixels have room for
        feasible = [
            move
            for move in sorted((up, up - n_buckets), key=abs)
            if (_MAX_PIXEL - pixels if move > 0 else pixels).sum() >= abs(move)
        ]
        if not feasible:
            raise ValueError(
                f"no image of this size reaches pixel sum {int(bucket)} modulo {n_buckets}; "
                "use hash='digest'."
            )
        move = feasible[0]
        room = _MAX_PIXEL - pixels if move > 0 else pixels
        copy = pixels.copy()
        order = rng.permutation(np.flatnonzero(room > 0))
        remaining, sign = abs(move), 1 if move > 0 else -1
        while remaining:
            for p in order:
                if remaining and (copy[p] < _MAX_PIXEL if sign > 0 else copy[p] > 0):
                    copy[p] += sign
                    remaining -= 1
        copies.append(copy)
    if not copies:
        return np.zeros((0, *target.shape))
    return np.stack(copies).astype(np.float64).reshape(-1, *target.shape)
