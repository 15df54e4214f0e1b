"""Input checks shared by the convex module (labels are -1/+1)."""

from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array

from sklearn_certify._validation import check_positive, check_scalar_int


def check_features(X, name: str = "X", *, n_features: int | None = None, allow_empty: bool = False):
    """Return ``X`` as float64 (dense ndarray or CSR matrix), rejecting NaN and infinity."""
    if X is None:
        raise ValueError(f"{name} is required; got None.")
    try:
        X = check_array(
            X,
            accept_sparse="csr",
            dtype=np.float64,
            ensure_all_finite=False,
            input_name=name,
            ensure_min_samples=0 if allow_empty else 1,
        )
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from exc
    data = X.data if sp.issparse(X) else X
    if not np.all(np.isfinite(data)):
        raise ValueError(
            f"{name} contains NaN or infinite values; impute or drop those rows before "
            "computing a bound (nothing is filled in silently)."
        )
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features, expected {n_features}.")
    return X


def check_labels(y, n_samples: int, name: str = "y", *, min_per_class: int = 0) -> np.ndarray:
    """Return ``y`` as an int64 array of -1/+1 labels, or explain how to map it."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {y.shape}.")
    if y.shape[0] != n_samples:
        raise ValueError(f"{name} has {y.shape[0]} entries but X has {n_samples} rows.")
    if y.size and not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
        classes = np.unique(y)
        raise ValueError(_label_message(name, classes))
    if y.dtype == bool:
        raise ValueError(_label_message(name, np.unique(y)))
    classes = np.unique(y)
    if not np.all(np.isin(classes, (-1, 1))):
        raise ValueError(_label_message(name, classes))
    y = y.astype(np.int64)
    for label in (-1, 1):
        count = int(np.sum(y == label))
        if count < min_per_class:
            raise ValueError(
                f"{name} has {count} point(s) of class {label:+d}; each class needs at least "
                f"{min_per_class} to define a centroid and its spread."
            )
    return y


def check_data(
    X,
    y,
    *,
    names: tuple[str, str] = ("X", "y"),
    n_features: int | None = None,
    min_per_class: int = 0,
):
    """Validate a labelled data set: :func:`check_features` on ``X``, then :func:`check_labels`.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        Labels in {-1, +1}.
    names : tuple of str, default=("X", "y")
        Names of the two arguments in error messages.
    n_features : int, default=None
        Required number of columns, if any.
    min_per_class : int, default=0
        Points each class needs.

    Returns
    -------
    X : ndarray or CSR matrix of float64
    y : ndarray of int64
    """
    X = check_features(X, names[0], n_features=n_features)
    return X, check_labels(y, X.shape[0], names[1], min_per_class=min_per_class)


def check_run_inputs(X, y, epsilon, rho_sq, lr, max_iter) -> tuple:
    """Validate the arguments that every dual-averaging run takes.

    Shared by :func:`~sklearn_certify.convex.upper_bound` and
    :func:`~sklearn_certify.convex.data_dependent_estimate`: clean data with at
    least two points per class, ``epsilon`` in [0, 1), ``rho_sq > 0``,
    ``lr > 0`` and ``max_iter >= 1``.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Clean training features.
    y : array-like of shape (n_samples,)
        Labels in {-1, +1}, at least two per class.
    epsilon : float
        Poison fraction.
    rho_sq : float
        Squared radius of the parameter ball.
    lr : float
        Step size.
    max_iter : int
        Number of iterations.

    Returns
    -------
    X : ndarray or CSR matrix of float64
    y : ndarray of int64
    epsilon, rho_sq, lr : float
    max_iter : int
    """
    X, y = check_data(X, y, min_per_class=2)
    return (
        X,
        y,
        check_epsilon(epsilon),
        check_rho_sq(rho_sq),
        check_positive("lr", lr),
        check_scalar_int("max_iter", max_iter, min_value=1),
    )


def _label_message(name, classes) -> str:
    shown = [c.item() if hasattr(c, "item") else c for c in classes]
    hint = ""
    if len(classes) == 2:
        hint = (
            f" Map them first, e.g. {name} = np.where({name} == {shown[1]!r}, 1, -1) "
            f"(makes {shown[1]!r} the +1 class)."
        )
    elif len(classes) > 2:
        hint = " The convex bounds are for binary problems: keep two classes and map them."
    return f"{name} must hold labels in {{-1, +1}}; got classes {shown}.{hint}"


def check_epsilon(epsilon, name: str = "epsilon") -> float:
    """Return ``epsilon`` as float, requiring 0 <= epsilon < 1."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real):
        raise TypeError(f"{name} must be a real number in [0, 1), got {type(epsilon).__name__}.")
    if not (np.isfinite(epsilon) and 0.0 <= float(epsilon) < 1.0):
        raise ValueError(
            f"{name} is the number of poison points relative to the clean size n and must lie "
            f"in [0, 1); got {epsilon}."
        )
    return float(epsilon)


def check_rho_sq(rho_sq) -> float:
    """Return ``rho_sq`` as float, requiring a finite value > 0."""
    if isinstance(rho_sq, bool) or not isinstance(rho_sq, numbers.Real):
        raise TypeError(f"rho_sq must be a positive real number, got {type(rho_sq).__name__}.")
    if not (np.isfinite(rho_sq) and rho_sq > 0):
        raise ValueError(
            "rho_sq is the squared radius of the parameter ball ||w||^2 + b^2 <= rho_sq and "
            f"must be a finite number > 0; got {rho_sq}."
        )
    return float(rho_sq)


def row_sq_norms(X) -> np.ndarray:
    """Squared Euclidean norm of each row of a dense or CSR matrix."""
    if sp.issparse(X):
        return np.asarray(X.multiply(X).sum(axis=1)).ravel()
    return np.einsum("ij,ij->i", X, X)
