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
