"""The :class:`Certificate` returned by every ``certify`` method."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

__all__ = ["RADIUS_UNITS", "Certificate"]

#: What a radius can count: training-set changes ("samples", "rows", "label_flips", "l2") or
#: a perturbation of the test input alone ("input_l2").
RADIUS_UNITS = ("samples", "rows", "label_flips", "l2", "input_l2")


def _as_1d(name: str, value, n: int | None) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim != 1:
        raise ValueError(f"Certificate.{name} must be one-dimensional, got shape {array.shape}.")
    if n is not None and array.shape[0] != n:
        raise ValueError(
            f"Certificate.{name} has {array.shape[0]} entries but prediction has {n}; "
            "every per-sample field must have one entry per sample."
        )
    return array


def _frozen(array: np.ndarray) -> np.ndarray:
    """A read-only copy: a validated certificate cannot be edited afterwards."""
    out = np.array(array, copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class Certificate:
    """Per-sample predictions with how much poisoning provably cannot change them.

    Every array field has one entry per certified sample. Instances validate
    themselves on construction and keep read-only copies of the arrays, so a
    certificate that exists is well formed and stays so.

    Parameters
    ----------
    prediction : ndarray of shape (n_samples,)
        The certified estimator's label for each sample, in the original label
        values (not class indices).
    radius : ndarray of shape (n_samples,)
        How much poisoning the prediction provably survives, in ``unit``. ``0``
        where nothing is certified. Never negative, never NaN.
    abstain : ndarray of bool of shape (n_samples,)
        True where the method abstains; the radius is then 0.
    unit : {"samples", "rows", "label_flips", "l2", "input_l2"}
        What the radius counts: inserted plus deleted training samples (a modified
        row counting as both), inserted, deleted or modified training rows counting
        one each (``"rows"``, :class:`~sklearn_certify.CertifiedBaggingClassifier`), flipped
        training labels, the l2 norm of the total training-set perturbation
        ``sqrt(sum_i ||delta_i||^2)``, or (``"input_l2"``) the l2 norm
        ``||delta||`` of a perturbation of the test input only, the training set
        being trusted (test-time smoothing,
        :class:`~sklearn_certify.RandomizedSmoothingClassifier`).
    p_lower, p_upper : ndarray of shape (n_samples,), default=None
        Confidence bounds on the top and runner-up class probability, for
        smoothing certificates.
    votes : ndarray of shape (n_samples, n_classes), default=None
        Vote counts behind the prediction, for aggregation certificates.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify import Certificate
    >>> cert = Certificate(prediction=np.array(["cat", "dog"]), radius=np.array([3, 0]),
    ...                    abstain=np.array([False, False]), unit="samples")
    >>> len(cert), cert.radius.max()
    (2, np.int64(3))
    """

    prediction: np.ndarray
    radius: np.ndarray
    abstain: np.ndarray
    unit: str
    p_lower: np.ndarray | None = field(default=None)
    p_upper: np.ndarray | None = field(default=None)
    votes: np.ndarray | None = field(default=None)

    def __post_init__(self):
        if self.unit not in RADIUS_UNITS:
            raise ValueError(f"Certificate.unit must be one of {RADIUS_UNITS}, got {self.unit!r}.")
        prediction = _as_1d("prediction", self.prediction, None)
        n = prediction.shape[0]
        radius = _as_1d("radius", self.radius, n)
        if not (
            np.issubdtype(radius.dtype, np.integer) or np.issubdtype(radius.dtype, np.floating)
        ):
            raise ValueError(f"Certificate.radius must be numeric, got dtype {radius.dtype}.")
        if not np.all(np.isfinite(radius)):
            raise ValueError("Certificate.radius must be finite; use 0 where nothing is certified.")
        if np.any(radius < 0):
            raise ValueError(
                "Certificate.radius must be non-negative; use 0 where nothing is certified."
            )
        integral = np.issubdtype(radius.dtype, np.integer)
        if self.unit in ("samples", "rows", "label_flips") and not integral:
            raise ValueError(f"Certificate.radius must be integer when unit={self.unit!r}.")
        abstain = _as_1d("abstain", self.abstain, n)
        if abstain.dtype != bool:
            raise ValueError(f"Certificate.abstain must be boolean, got dtype {abstain.dtype}.")
        if np.any(radius[abstain] != 0):
            raise ValueError("Certificate.radius must be 0 wherever abstain is True.")
        object.__setattr__(self, "prediction", _frozen(prediction))
        object.__setattr__(self, "radius", _frozen(radius))
        object.__setattr__(self, "abstain", _frozen(abstain))
        for name in ("p_lower", "p_upper"):
            value = getattr(self, name)
            if value is not None:
                value = _as_1d(name, value, n).astype(float)
                if np.any((value < 0) | (value > 1)):
                    raise ValueError(f"Certificate.{name} must lie in [0, 1].")
                object.__setattr__(self, name, _frozen(value))
        if self.votes is not None:
            votes = np.asarray(self.votes)
            if votes.ndim != 2 or votes.shape[0] != n:
                raise ValueError(
                    f"Certificate.votes must have shape (n_samples, n_classes) = ({n}, ...), "
                    f"got {votes.shape}."
                )
            object.__setattr__(self, "votes", _frozen(votes))

    def __len__(self) -> int:
        return self.prediction.shape[0]

    def to_dict(self) -> dict:
        """Per-sample columns as a dict of 1-d arrays (ready for ``pandas.DataFrame``).

        ``votes`` is split into one ``votes_<j>`` column per class index.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_certify import Certificate
        >>> cert = Certificate(np.array([1]), np.array([2]), np.array([False]), "samples")
        >>> sorted(cert.to_dict())
        ['abstain', 'prediction', 'radius']
        """
        columns = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or f.name == "unit":
                continue
            if f.name == "votes":
                for j in range(value.shape[1]):
                    columns[f"votes_{j}"] = value[:, j]
            else:
                columns[f.name] = value
        return columns
