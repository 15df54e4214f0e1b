"""The sphere and slab sanitisation defences of Steinhardt, Koh & Liang (2017)."""

from __future__ import annotations

from numbers import Real
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from sklearn_certify.convex._checks import check_data, row_sq_norms

__all__ = ["SphereSlabDefense"]

#: Class order used everywhere in the convex module: index 0 is -1, index 1 is +1.
CLASSES = np.array([-1, 1], dtype=np.int64)


def _class_centroids(X, y) -> np.ndarray:
    centroids = []
    for label in CLASSES:
        rows = X[y == label]
        centroids.append(np.asarray(rows.mean(axis=0)).ravel())
    return np.vstack(centroids)


def _slab_direction(centroids: np.ndarray) -> np.ndarray:
    diff = centroids[0] - centroids[1]
    norm = float(np.linalg.norm(diff))
    if norm == 0.0:
        raise ValueError(
            "The two class centroids coincide, so the slab direction (mu_-1 - mu_+1) is "
            "undefined; use SphereSlabDefense(slab=False)."
        )
    return diff / norm


class SphereSlabDefense(BaseEstimator):
    """Sphere and slab outlier filters around the class centroids.

    A labelled point ``(x, y)`` is feasible when it lies in the sphere
    ``||x - mu_y|| <= r_y`` and in the slab ``|v . (x - mu_y)| <= s_y``, where
    ``mu_y`` is the centroid of class ``y``, ``v`` is the unit vector along
    ``mu_-1 - mu_+1``, and ``r_y``, ``s_y`` are the ``percentile``-th percentiles
    (linear interpolation, as :func:`numpy.percentile`) of the clean points'
    distances. This is the *oracle* defence of the paper: the centroids come from
    the clean data passed to :meth:`fit`.

    Parameters
    ----------
    percentile : float, default=70
        Percentile (in (0, 100]) of the clean distances used as sphere radius and
        slab half-width. At 70, about 30% of the clean points of each class fall
        outside each constraint.
    sphere : bool, default=True
        Use the sphere constraint.
    slab : bool, default=True
        Use the slab constraint.
    data_dependent : bool, default=False
        If True, :meth:`filter` and :meth:`contains` recompute the centroids (and
        the slab direction) from the data they are given (clean plus poison),
        keeping the radii and widths learnt in :meth:`fit`: the *data-dependent*
        defence, which the attacker can move. Bounds for it are only estimated,
        see :func:`sklearn_certify.convex.data_dependent_estimate`.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        ``[-1, 1]``; rows of the per-class arrays follow this order.
    centroids_ : ndarray of shape (2, n_features)
        Class centroids of the fitted (clean) data.
    slab_direction_ : ndarray of shape (n_features,)
        Unit vector along ``centroids_[0] - centroids_[1]`` (None if ``slab=False``).
    radii_ : ndarray of shape (2,)
        Sphere radii per class (``inf`` if ``sphere=False``).
    slab_widths_ : ndarray of shape (2,)
        Slab half-widths per class (``inf`` if ``slab=False``).
    sphere_, slab_, data_dependent_ : bool
        ``sphere``, ``slab`` and ``data_dependent`` as :meth:`fit` saw them; every method
        after ``fit`` (and the oracles and bounds that use the defence) reads these, never a
        parameter set since.
    n_features_in_ : int
        Number of features.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify.convex import SphereSlabDefense
    >>> X = np.array([[2., 0], [3, 1], [3, -1], [4, 0], [-2, 0], [-3, 1], [-3, -1], [-4, 0]])
    >>> y = np.array([1, 1, 1, 1, -1, -1, -1, -1])
    >>> defense = SphereSlabDefense(percentile=50).fit(X, y)
    >>> defense.radii_, defense.slab_widths_
    (array([1., 1.]), array([0.5, 0.5]))
    >>> defense.contains(np.array([[2.5, 0], [2, 0]]), np.array([1, 1]))
    array([ True, False])
    """

    _parameter_constraints: ClassVar[dict] = {
        "percentile": [Interval(Real, 0, 100, closed="right")],
        "sphere": ["boolean"],
        "slab": ["boolean"],
        "data_dependent": ["boolean"],
    }

    def __init__(
        self,
        percentile: float = 70,
        sphere: bool = True,
        slab: bool = True,
        data_dependent: bool = False,
    ):
        self.percentile = percentile
        self.sphere = sphere
        self.slab = slab
        self.data_dependent = data_dependent

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y) -> SphereSlabDefense:
        """Compute centroids, radii and slab widths from clean data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Clean training features (no NaN).
        y : array-like of shape (n_samples,)
            Labels in {-1, +1}; each class needs at least 2 points.

        Returns
        -------
        self : SphereSlabDefense
        """
        X, y = check_data(X, y, min_per_class=2)
        percentile = float(self.percentile)
        self.sphere_, self.slab_ = bool(self.sphere), bool(self.slab)
        self.data_dependent_ = bool(self.data_dependent)
        self.classes_ = CLASSES.copy()
        self.n_features_in_ = X.shape[1]
        self.centroids_ = _class_centroids(X, y)
        self.slab_direction_ = _slab_direction(self.centroids_) if self.slab else None
        radii = np.full(2, np.inf)
        widths = np.full(2, np.inf)
        for k, label in enumerate(CLASSES):
            rows = X[y == label]
            mu = self.centroids_[k]
            if self.sphere:
                sq = row_sq_norms(rows) - 2.0 * np.asarray(rows @ mu).ravel() + mu @ mu
                radii[k] = np.percentile(np.sqrt(np.maximum(sq, 0.0)), percentile)
            if self.slab:
                proj = np.asarray(rows @ self.slab_direction_).ravel() - mu @ self.slab_direction_
                widths[k] = np.percentile(np.abs(proj), percentile)
        self.radii_ = radii
        self.slab_widths_ = widths
        return self

    def _geometry(self, X, y):
        """Centroids and slab direction to test ``(X, y)`` against."""
        if not self.data_dependent_:
            return self.centroids_, self.slab_direction_
        centroids = _class_centroids(X, y)
        return centroids, (_slab_direction(centroids) if self.slab_ else None)

    def distances(self, X, y) -> tuple[np.ndarray, np.ndarray]:
        """Sphere distance and slab offset of each labelled point from its class centroid.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Labels in {-1, +1}.

        Returns
        -------
        sphere_distance : ndarray of shape (n_samples,)
            ``||x - mu_y||``.
        slab_distance : ndarray of shape (n_samples,)
            ``|v . (x - mu_y)|`` (zeros when ``slab=False``).
        """
        check_is_fitted(self, "centroids_")
        X, y = check_data(
            X, y, n_features=self.n_features_in_, min_per_class=2 if self.data_dependent_ else 0
        )
        centroids, v = self._geometry(X, y)
        mu = centroids[(y == 1).astype(int)]
        if sp.issparse(X):
            cross = np.asarray(X.multiply(mu).sum(axis=1)).ravel()
        else:
            cross = np.einsum("ij,ij->i", X, mu)
        sq = row_sq_norms(X) - 2.0 * cross + np.einsum("ij,ij->i", mu, mu)
        sphere_distance = np.sqrt(np.maximum(sq, 0.0))
        if v is None:
            slab_distance = np.zeros(X.shape[0])
        else:
            slab_distance = np.abs(np.asarray(X @ v).ravel() - mu @ v)
        return sphere_distance, slab_distance

    def contains(self, X, y, *, rtol: float = 1e-7) -> np.ndarray:
        """Whether each labelled point passes the enabled filters.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Labels in {-1, +1}.
        rtol : float, default=1e-7
            Relative slack on the radii and widths, so that points placed exactly
            on the boundary by a solver count as inside.

        Returns
        -------
        inside : ndarray of bool, shape (n_samples,)
        """
        sphere_distance, slab_distance = self.distances(X, y)
        idx = (np.asarray(y) == 1).astype(int)
        inside = np.ones(sphere_distance.shape[0], dtype=bool)
        if self.sphere_:
            r = self.radii_[idx]
            inside &= sphere_distance <= r * (1 + rtol) + rtol
        if self.slab_:
            s = self.slab_widths_[idx]
            inside &= slab_distance <= s * (1 + rtol) + rtol
        return inside

    def filter(self, X, y):
        """Keep only the labelled points that pass the filters.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Labels in {-1, +1}.

        Returns
        -------
        X_kept : ndarray or sparse matrix
        y_kept : ndarray
        """
        X, y = check_data(X, y, n_features=getattr(self, "n_features_in_", None))
        mask = self.contains(X, y)
        return X[mask], y[mask]
