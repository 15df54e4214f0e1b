"""Argument checks shared by the pure bound functions and the estimators.

Every check raises a ``ValueError`` (or ``TypeError``) that names the argument
and says how to fix it; nothing is clipped or coerced silently.
"""

from __future__ import annotations

import numbers

import numpy as np

#: Largest count accepted: every integer up to it is exact as a float64, and differences of
#: such counts never overflow int64.
MAX_COUNT = 2**53
#: Smallest error level accepted. Below it scipy's binomial quantiles (Boost's inverse
#: incomplete beta) give up, warn and return NaN for small counts; no certificate needs it.
MIN_ALPHA = 1e-60


def check_counts(name: str, value, *, ndim: int | None = None) -> np.ndarray:
    """Return ``value`` as an int64 array of non-negative integers.

    Floats are accepted only when every entry is integral (vote counts stored
    as floats, as the official DPA scripts do); anything else is an error.
    """
    array = np.asarray(value)
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise ValueError(
            f"{name} must be an array of non-negative integers, got dtype {array.dtype}."
        )
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {array.shape}.")
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise ValueError(
                f"{name} must hold integer counts; got non-integer or non-finite values."
            )
    if np.any(array < 0):
        raise ValueError(f"{name} must be non-negative; got a negative entry.")
    if array.size and np.max(array) > MAX_COUNT:
        raise ValueError(
            f"{name} must be at most 2**53 (counts beyond that lose precision and overflow the "
            f"radius arithmetic); got {np.max(array)}."
        )
    return array.astype(np.int64)


def check_scalar_int(name: str, value, *, min_value: int) -> int:
    """Return ``value`` as int, requiring an integral number >= ``min_value``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}.")
    if value < min_value:
        raise ValueError(f"{name} must be >= {min_value}, got {value}.")
    return int(value)


def check_open_unit(name: str, value) -> float:
    """Return ``value`` as float, requiring 0 < value < 1 (levels such as ``alpha``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number in (0, 1), got {type(value).__name__}.")
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value}.")
    return float(value)


def check_alpha(value, name: str = "alpha") -> float:
    """Return an error level as float, requiring ``MIN_ALPHA <= value < 1``."""
    value = check_open_unit(name, value)
    if value < MIN_ALPHA:
        raise ValueError(
            f"{name}={value!r} is below {MIN_ALPHA:g}, where the exact binomial bounds cannot be "
            f"computed in double precision; use {name} >= {MIN_ALPHA:g} (1e-3 to 1e-10 is usual)."
        )
    return value


def check_positive(name: str, value) -> float:
    """Return ``value`` as float, requiring a finite value > 0 (noise levels such as ``sigma``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive real number, got {type(value).__name__}.")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value}.")
    return float(value)


def check_real_array(name: str, value) -> np.ndarray:
    """Return ``value`` as a float array, refusing strings, booleans and other non-numbers."""
    array = np.asarray(value)
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise TypeError(
            f"{name} must hold real numbers, got dtype {array.dtype}"
            + (" (strings are not converted)" if array.dtype.kind in "US" else "")
            + "."
        )
    return array.astype(float)


def check_probabilities(name: str, value) -> np.ndarray:
    """Return ``value`` as a float array, requiring every entry in [0, 1]."""
    array = check_real_array(name, value)
    if not np.all(np.isfinite(array)) or np.any((array < 0) | (array > 1)):
        raise ValueError(f"{name} must hold probabilities in [0, 1]; got values outside or NaN.")
    return array


def check_row_shape(X, row_shape: tuple) -> None:
    """Require the rows of ``X`` to have the shape recorded in ``fit`` (every axis after the first).

    scikit-learn's ``n_features_in_`` checks the second axis only, so image rows of another
    height and width, or flat rows given to a model fitted on images, would pass it.
    """
    shape = getattr(X, "shape", None)
    if shape is None:
        try:
            shape = np.asarray(X).shape
        except ValueError:  # ragged nested lists: validate_data reports them
            return
    if len(shape) < 2 or tuple(shape[1:]) == tuple(row_shape):
        return
    if len(shape) == 2 and len(row_shape) == 1:  # flat rows: validate_data says it the sklearn way
        return
    row = tuple(int(d) for d in shape[1:])
    fix = "pass rows shaped as in fit"
    if int(np.prod(row)) == int(np.prod(row_shape)):
        fix = f"pass X.reshape(len(X), {', '.join(str(int(d)) for d in row_shape)})"
    raise ValueError(
        f"X has rows of shape {row}, but this estimator was fitted on rows of shape "
        f"{tuple(int(d) for d in row_shape)}; {fix}."
    )
