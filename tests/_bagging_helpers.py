"""A deterministic base learner whose bagged class probabilities can be computed exactly."""

import itertools

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class NearestLabel(ClassifierMixin, BaseEstimator):
    """1-nearest neighbour on one integer feature; ties go to the smaller label.

    A deterministic function of the multiset of training rows (their order never matters),
    which is what the bagging theorem assumes of the base learner.
    """

    def fit(self, X, y):
        self.X_ = np.asarray(X)[:, 0].astype(np.int64)
        self.y_ = np.asarray(y)
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        x = np.asarray(X)[:, :1].astype(np.int64)
        key = np.abs(self.X_[None, :] - x) * (self.y_.max() + 1) + self.y_[None, :]
        return self.y_[np.argmin(key, axis=1)]


_TUPLES: dict = {}


def _tuples(n: int, k: int) -> np.ndarray:
    """Every ordered draw of ``k`` of ``n`` rows with replacement, ``(n^k, k)``."""
    if (n, k) not in _TUPLES:
        _TUPLES[n, k] = np.array(list(itertools.product(range(n), repeat=k)), dtype=np.int64)
    return _TUPLES[n, k]


def bagged_counts(x, y, x_test: int, k: int, n_classes: int) -> np.ndarray:
    """How many of the ``n^k`` equally likely subsamples make :class:`NearestLabel` vote each class.

    ``x`` holds the integer feature of each training row and ``y`` its label in
    ``0..n_classes-1``; the bagged probability of class ``c`` is ``counts[c] / n^k`` exactly.
    """
    draws = _tuples(len(x), k)
    key = np.abs(x[draws] - x_test) * n_classes + y[draws]
    return np.bincount(key.min(axis=1) % n_classes, minlength=n_classes)
