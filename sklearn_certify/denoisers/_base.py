"""The denoiser protocol, the identity denoiser, and the trusted-data check."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sklearn_certify._validation import check_positive

__all__ = [
    "Denoiser",
    "IdentityDenoiser",
    "as_denoiser",
    "check_trusted_denoiser",
    "overlapping_rows",
]

#: How many noise standard deviations noisy values may lie outside a denoiser's ``data_range``
#: before :func:`check_data_range` refuses them (a Gaussian draw lands that far out with
#: probability below 2e-23).
NOISE_MARGIN = 10.0


@runtime_checkable
class Denoiser(Protocol):
    """What a denoiser is: an object with ``denoise(X_noisy, sigma) -> X``.

    ``X`` has the shape of ``X_noisy`` and values on the data's [0, 1] scale; ``sigma`` is the
    standard deviation of the Gaussian noise in ``X_noisy`` on that scale.

    A denoiser may also declare ``data_range = (low, high)``, the range of the clean data it
    was made for (``(0.0, 1.0)`` for :class:`DDPMDenoiser`). :func:`check_data_range` then
    refuses data outside it: :class:`~sklearn_certify.DenoisedSmoothingClassifier` checks its
    training rows and :meth:`DDPMDenoiser.denoise` its noisy input. ``None`` or no attribute
    (:class:`IdentityDenoiser`, plain callables) declares nothing, and nothing is checked.
    """

    def denoise(self, X_noisy: Any, sigma: float) -> Any:
        """Return the denoised ``X_noisy``."""


class IdentityDenoiser:
    """The denoiser that changes nothing: members then train on the plain noisy copies.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify.denoisers import IdentityDenoiser
    >>> X_noisy = np.array([[0.2, 1.3]])
    >>> IdentityDenoiser().denoise(X_noisy, sigma=0.5) is X_noisy
    True
    """

    #: Any data: the identity has no range of its own.
    data_range = None

    def denoise(self, X_noisy, sigma: float):
        """Return ``X_noisy`` itself (not a copy).

        Parameters
        ----------
        X_noisy : array-like
            Noisy data.
        sigma : float
            Noise level; checked (> 0) and otherwise unused.

        Returns
        -------
        array-like
            ``X_noisy``.
        """
        check_positive("sigma", sigma)
        return X_noisy

    def __repr__(self) -> str:
        return "IdentityDenoiser()"


class _FunctionDenoiser:
    """A callable ``func(X_noisy, sigma)`` seen as a denoiser; the output shape is checked."""

    #: A plain callable declares no range.
    data_range = None

    def __init__(self, func: Callable[[Any, float], Any]) -> None:
        self.func = func

    def denoise(self, X_noisy, sigma: float):
        X = self.func(X_noisy, sigma)
        if not hasattr(X, "shape"):
            raise TypeError(
                f"the denoiser function {self.func!r} returned {type(X).__name__}; it must "
                "return an array (numpy or torch) of the input's shape."
            )
        if tuple(X.shape) != tuple(X_noisy.shape):
            raise ValueError(
                f"the denoiser function {self.func!r} returned shape "
                f"{tuple(X.shape)} for input of shape {tuple(X_noisy.shape)}; "
                "it must return an array of the input's shape."
            )
        return X

    def __repr__(self) -> str:
        return f"as_denoiser({self.func!r})"


def as_denoiser(denoiser) -> Denoiser:
    """Return an object with ``denoise(X_noisy, sigma)`` for any accepted denoiser.

    Parameters
    ----------
    denoiser : None, object with a ``denoise`` method, or callable
        ``None`` gives :class:`IdentityDenoiser` (plain Gaussian-noise training); an object
        with a callable ``denoise`` attribute (e.g. :class:`DDPMDenoiser`) is returned as it
        is; a callable ``f(X_noisy, sigma) -> X`` is wrapped so that ``denoise`` calls it and
        checks that the result has the input's shape.

    Returns
    -------
    object with a ``denoise(X_noisy, sigma)`` method

    Raises
    ------
    TypeError
        For anything else.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify.denoisers import as_denoiser
    >>> as_denoiser(None)
    IdentityDenoiser()
    >>> halve = as_denoiser(lambda X, sigma: X / 2)
    >>> halve.denoise(np.ones((1, 2)), sigma=0.25)
    array([[0.5, 0.5]])
    """
    if denoiser is None:
        return IdentityDenoiser()
    method = getattr(denoiser, "denoise", None)
    if method is not None:
        if not callable(method):
            raise TypeError(
                f"denoiser.denoise must be a method denoise(X_noisy, sigma), got "
                f"{type(method).__name__}."
            )
        return denoiser
    if callable(denoiser):
        return _FunctionDenoiser(denoiser)
    raise TypeError(
        "denoiser must be None, an object with a denoise(X_noisy, sigma) method, or a callable "
        f"f(X_noisy, sigma) -> X; got {type(denoiser).__name__}."
    )


def check_data_range(denoiser, X, *, sigma: float = 0.0, name: str = "X") -> None:
    """Refuse data outside the range a denoiser declares in its ``data_range`` attribute.

    Clean data (``sigma=0``) must lie in ``data_range = (low, high)``; noisy data with noise
    of standard deviation ``sigma`` may stray ``10 * sigma`` (``NOISE_MARGIN``) beyond it.
    A denoiser declaring no range (``None`` or no attribute) accepts anything. Data on
    another scale (sklearn's ``load_digits`` pixels are 0..16, the bundled digits denoiser
    expects [0, 1]) would be denoised into garbage without a word, so it is refused.

    Parameters
    ----------
    denoiser : object
        Any denoiser; only its ``data_range`` attribute is read, if present.
    X : ndarray or torch.Tensor
        The data the denoiser will see (or whose noisy copies it will see).
    sigma : float, default=0.0
        Standard deviation of the noise already in ``X``.
    name : str, default="X"
        What the error message calls ``X``.

    Raises
    ------
    ValueError
        If a value of ``X`` lies outside the (widened) range.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify.denoisers import IdentityDenoiser, load_bundled
    >>> from sklearn_certify.denoisers import check_data_range
    >>> pixels = np.array([[0.0, 16.0]])
    >>> check_data_range(IdentityDenoiser(), pixels)  # declares no range
    >>> check_data_range(load_bundled("digits"), pixels / 16)
    >>> check_data_range(load_bundled("digits"), pixels)
    Traceback (most recent call last):
    ...
    ValueError: X has values in [0, 16], outside [0, 1]: the denoiser DDPMDenoiser(...
    """
    data_range = getattr(denoiser, "data_range", None)
    if data_range is None or math.prod(X.shape) == 0:
        return
    low, high = (float(v) for v in data_range)
    slack = NOISE_MARGIN * sigma + 1e-6 * (high - low)  # float rounding of a rescaled range
    x_min, x_max = float(X.min()), float(X.max())
    if low - slack <= x_min and x_max <= high + slack:
        return
    widened = f" widened by {NOISE_MARGIN:g} * sigma = {NOISE_MARGIN * sigma:g}" if sigma else ""
    raise ValueError(
        f"{name} has values in [{x_min:.4g}, {x_max:.4g}], outside [{low:g}, {high:g}]"
        f"{widened}: the denoiser {denoiser!r} was made for data in [{low:g}, {high:g}] and "
        f"would return garbage. Rescale the data to [{low:g}, {high:g}] first (e.g. sklearn's "
        "load_digits pixels are 0..16: divide them by 16, or use "
        "sklearn_certify.datasets.load_digits_for_denoising)."
    )


def overlapping_rows(digests_a: np.ndarray, X) -> np.ndarray:
    """Indices of the rows of ``X`` whose content digest is in ``digests_a``.

    Parameters
    ----------
    digests_a : ndarray of dtype ``S32``
        Row digests (:func:`~sklearn_certify.partition.row_digests`).
    X : array-like of shape (n_samples, ...)
        Rows to look up; a torch tensor is accepted.

    Returns
    -------
    ndarray of int64
        Sorted row indices into ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify.denoisers import overlapping_rows
    >>> from sklearn_certify.partition import row_digests
    >>> overlapping_rows(row_digests(np.eye(3)[:2]), np.eye(3)[::-1])
    array([1, 2])
    """
    from sklearn_certify.partition import row_digests

    if hasattr(X, "detach"):
        X = X.detach().cpu().numpy()
    return np.flatnonzero(np.isin(row_digests(X), np.asarray(digests_a, dtype="S32")))


def check_trusted_denoiser(denoiser, X) -> None:
    """Refuse a denoiser that was trained on any row of ``X``, the data being certified.

    Certified smoothing treats the denoiser as a fixed function. A denoiser fit on the
    training set being certified is not fixed: like a scaler fit on that set, it changes
    with every poisoned row, so the attacker moves every member through it and the
    certificate no longer bounds what the attacker can do. Only a denoiser trained on
    separate, trusted data keeps the certificate. This check catches the obvious misuse:
    a denoiser that records the content digests of its training rows (``training_digests``,
    set by :func:`train_ddpm_denoiser` and by the bundled models) and ``X`` sharing a row.
    Rows are compared by exact content, as given (the same scaling and dtype-independent
    values): a denoiser trained on a rescaled or perturbed copy of ``X`` passes the check
    and is still not trusted. A denoiser that records nothing (a callable, a downloaded
    checkpoint) is not checked.

    Parameters
    ----------
    denoiser : object
        Any denoiser; only its ``training_digests`` attribute is read, if present.
    X : array-like of shape (n_samples, ...)
        The training data the smoothed classifier is fit on.

    Raises
    ------
    ValueError
        If a row of ``X`` is one of the denoiser's training rows.

    Examples
    --------
    >>> from sklearn_certify.datasets import load_digits, load_digits_for_denoising
    >>> from sklearn_certify.denoisers import check_trusted_denoiser, load_bundled
    >>> denoiser = load_bundled("digits")
    >>> X_train, _ = load_digits_for_denoising(split="train")
    >>> check_trusted_denoiser(denoiser, X_train)  # disjoint from its training rows
    >>> X_all, _ = load_digits()
    >>> check_trusted_denoiser(denoiser, X_all)
    Traceback (most recent call last):
    ...
    ValueError: 718 of the 1797 rows of X are rows the denoiser was trained on...
    """
    digests = getattr(denoiser, "training_digests", None)
    if digests is None:
        return
    shared = overlapping_rows(digests, X)
    if shared.size:
        raise ValueError(
            f"{shared.size} of the {len(X)} rows of X are rows the denoiser was trained on "
            f"(first: row {shared[0]}). A denoiser fit on the data being certified moves with "
            "every poisoned row and voids the certificate; certify on rows the denoiser never "
            "saw (for the bundled digits denoiser: sklearn_certify.datasets."
            "load_digits_for_denoising)."
        )
