"""Base classifiers with known behaviour for the RandomizedSmoothingClassifier tests.

Module level, so that estimators built on them pickle.
"""

import numpy as np
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin


class _Base(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self


class ScriptedBase(_Base):
    """Ignores its input: ``predict`` on ``m`` rows returns ``labels_by_size[m]``.

    With ``n_select != n_samples`` and a ``batch_size`` at least both, the selection call and
    the estimation call of a row have different sizes, so the counts are set by hand.
    """

    def __init__(self, labels_by_size=None):
        self.labels_by_size = labels_by_size

    def predict(self, X):
        return np.asarray(self.labels_by_size[len(X)], dtype=np.int64)


def scripted(counts_by_size: dict) -> ScriptedBase:
    """A ScriptedBase whose call on ``m`` rows returns ``counts_by_size[m][c]`` times class c."""
    return ScriptedBase({m: np.repeat(np.arange(len(c)), c) for m, c in counts_by_size.items()})


class Recording(_Base):
    """Predicts class 0 and keeps a copy of every input it is asked to predict (``seen_``)."""

    def fit(self, X, y):
        self.seen_ = []
        return super().fit(X, y)

    def predict(self, X):
        self.seen_.append(np.array(X, copy=True))
        return np.zeros(len(X), dtype=np.int64)


class FixedLinear(_Base):
    """``sign(w . x + b)`` whatever it is trained on: class 1 where ``w . x + b > 0``.

    Under ``x + N(0, sigma^2 I)``, class 1 has probability ``Phi((w . x + b) / (sigma ||w||))``,
    so the smoothed classifier is this same classifier and its exact l2 radius at ``x`` is the
    distance ``|w . x + b| / ||w||`` to the hyperplane.
    """

    def __init__(self, w=(3.0, 4.0, 0.0), b=0.5):
        self.w = w
        self.b = b

    def predict(self, X):
        return (np.asarray(X) @ np.asarray(self.w) + self.b > 0).astype(np.int64)

    def proba_one(self, X, sigma):
        w = np.asarray(self.w, dtype=float)
        return stats.norm.cdf((np.asarray(X) @ w + self.b) / (sigma * np.linalg.norm(w)))


class Intervals(_Base):
    """Three classes by where ``t = u . x`` falls: below ``-cut``, in ``[-cut, cut)``, above.

    ``u`` is a unit vector, so under ``x + N(0, sigma^2 I)`` ``t`` is ``N(u . x, sigma^2)`` and
    the class probabilities are differences of normal CDFs.
    """

    def __init__(self, u=(0.6, 0.8, 0.0), cut=0.5):
        self.u = u
        self.cut = cut

    def predict(self, X):
        t = np.asarray(X) @ np.asarray(self.u)
        return np.where(t < -self.cut, 0, np.where(t < self.cut, 1, 2)).astype(np.int64)

    def probabilities(self, X, sigma):
        t = np.asarray(X) @ np.asarray(self.u, dtype=float)
        below = stats.norm.cdf((-self.cut - t) / sigma)
        above = stats.norm.sf((self.cut - t) / sigma)
        return np.stack([below, 1.0 - below - above, above], axis=1)
