"""The :class:`Certificate` returned by every ``certify`` method."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from os import PathLike
from pathlib import Path

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


def _json_copy(metadata, unit: str) -> dict:
    """A copy of ``metadata`` that JSON keeps exactly, or a ValueError saying what is not."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ValueError(f"Certificate.metadata must be a dict, got {type(metadata).__name__}.")
    try:
        copy = json.loads(json.dumps(metadata, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"Certificate.metadata must be JSON data (str keys; str, int, finite float, bool, "
            f"None, list and dict values): {exc}."
        ) from exc
    if copy != metadata:
        raise ValueError(
            "Certificate.metadata must come back from JSON unchanged: use lists, not tuples, "
            "and str dict keys."
        )
    if copy.get("unit", unit) != unit:
        raise ValueError(
            f"Certificate.metadata['unit'] is {copy['unit']!r} but the certificate's unit is "
            f"{unit!r}."
        )
    return copy


def _same_array(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """Both absent, or the same dtype, shape and entries (NaN equal to NaN)."""
    if a is None or b is None:
        return a is None and b is None
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


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
    metadata : dict, default=None
        What the certificate is a certificate of (estimator, parameters, seed,
        digests of the training and certified rows, versions, time): JSON data,
        kept as a copy; empty unless given. :meth:`with_metadata` fills it in,
        :meth:`save` writes it and :meth:`load` reads it back (see
        :ref:`audit-records`).

    Notes
    -----
    Two certificates are equal (``==``) when their units and metadata are equal
    and every array has the same dtype, shape and entries, NaN matching NaN.

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
    metadata: dict | None = field(default=None, repr=False)

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
        object.__setattr__(self, "metadata", _json_copy(self.metadata, self.unit))

    def __len__(self) -> int:
        return self.prediction.shape[0]

    def __eq__(self, other) -> bool:
        if not isinstance(other, Certificate):
            return NotImplemented
        arrays = ("prediction", "radius", "abstain", "p_lower", "p_upper", "votes")
        return (
            self.unit == other.unit
            and self.metadata == other.metadata
            and all(_same_array(getattr(self, n), getattr(other, n)) for n in arrays)
        )

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
            if value is None or f.name in ("unit", "metadata"):
                continue
            if f.name == "votes":
                for j in range(value.shape[1]):
                    columns[f"votes_{j}"] = value[:, j]
            else:
                columns[f.name] = value
        return columns

    def to_frame(self):
        """The certificate as a pandas DataFrame, one row per sample, metadata in ``attrs``.

        The columns are those of :meth:`to_dict`, except that the vote columns
        are named ``votes_<class label>`` when ``metadata`` lists the classes
        (as :meth:`with_metadata` records them). ``frame.attrs`` holds ``unit``
        and a copy of every ``metadata`` entry.

        Returns
        -------
        frame : pandas.DataFrame

        Raises
        ------
        ImportError
            If pandas is not installed (``pip install pandas``).

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_certify import Certificate
        >>> cert = Certificate(np.array(["cat", "dog"]), np.array([3, 0]),
        ...                    np.array([False, True]), "samples",
        ...                    votes=np.array([[5, 1], [3, 3]]),
        ...                    metadata={"classes": ["cat", "dog"]})
        >>> frame = cert.to_frame()
        >>> list(frame.columns), frame.attrs["unit"]
        (['prediction', 'radius', 'abstain', 'votes_cat', 'votes_dog'], 'samples')
        """
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError(
                "Certificate.to_frame needs pandas; install it with `pip install pandas`."
            ) from exc
        from sklearn_certify._audit import table_columns

        frame = pd.DataFrame(table_columns(self))
        frame.attrs = {"unit": self.unit, **json.loads(json.dumps(self.metadata))}
        return frame

    def with_metadata(
        self,
        estimator=None,
        *,
        X_train=None,
        y_train=None,
        X_test=None,
        extra: dict | None = None,
    ) -> Certificate:
        """This certificate with a record of what it certifies in ``metadata``.

        The new entries (see :ref:`audit-records`) replace those of the same
        name; the arrays are unchanged.

        Parameters
        ----------
        estimator : fitted estimator, default=None
            The estimator whose ``certify`` returned this certificate. Records
            ``estimator`` (class name), ``params`` (``get_params(deep=False)``,
            objects as their repr), ``fitted_params`` (the ``<name>_`` copies
            ``certify`` reads), ``alpha``, ``random_state``, ``seed``
            (``seed_``) and ``classes`` (``classes_``); the certificate's votes
            and predictions must fit those classes.
        X_train, y_train : array-like, default=None
            The data the estimator was fitted on: ``train_digest``.
        X_test : array-like, default=None
            The rows certified, one per entry: ``test_digest``.
        extra : dict, default=None
            Further entries (e.g. where the data came from), made JSON-safe.

        Returns
        -------
        certificate : Certificate
            Also with ``unit``, ``versions`` (Python, sklearn_certify and the
            libraries its results rest on) and ``created`` (UTC, ISO 8601);
            digests of data not given are None.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.tree import DecisionTreeClassifier
        >>> from sklearn_certify import DPAClassifier
        >>> from sklearn_certify import data_digest
        >>> from sklearn_certify.datasets import load_digits
        >>> X, y = load_digits()
        >>> clf = DPAClassifier(DecisionTreeClassifier(), n_partitions=5, random_state=0)
        >>> clf = clf.fit(X[:300], y[:300])
        >>> cert = clf.certify(X[300:310]).with_metadata(
        ...     clf, X_train=X[:300], y_train=y[:300], X_test=X[300:310])
        >>> cert.metadata["estimator"], cert.metadata["params"]["n_partitions"]
        ('DPAClassifier', 5)
        >>> cert.metadata["train_digest"] == data_digest(X[:300], y[:300])
        True
        """
        from sklearn_certify._audit import certificate_metadata

        metadata = certificate_metadata(
            self, estimator, X_train=X_train, y_train=y_train, X_test=X_test, extra=extra
        )
        return replace(self, metadata={**self.metadata, **metadata})

    def save(
        self,
        path: str | PathLike,
        format: str | None = None,
        *,
        rows=None,
        extra_columns: dict | None = None,
    ) -> list[Path]:
        """Write the certificate to a CSV table with a ``.meta.json`` file, or to one JSON file.

        :meth:`load` reads either back equal to this certificate: every array
        with its dtype (integer, float, bool or string labels), NaN bounds, the
        votes and the metadata.

        **CSV** (``.csv``): a header line, then one line per sample with the
        columns ``row``, ``prediction``, ``radius``, ``abstain``, ``p_lower``
        and ``p_upper`` (if present), ``votes_*`` (one per class, see
        :meth:`to_frame`), ``radius_unit`` and the ``extra_columns``. Any CSV
        reader reads it (``pandas.read_csv(path)``). The file next to it with
        suffix ``.meta.json`` (``results.csv``: ``results.meta.json``) holds
        ``unit``, the dtype of each field, the number of vote columns and
        ``metadata``. **JSON** (``.json``): one object with the same entries
        plus ``rows``, ``fields`` (each field's values; NaN as null) and
        ``columns`` (the extra columns).

        Parameters
        ----------
        path : str or path-like
            The file to write (replaced if it exists).
        format : {"csv", "json"}, default=None
            The format; by default the suffix of ``path`` (``.csv``, ``.json``).
        rows : array-like of int, default=None
            The ``row`` column: where each sample comes from (e.g. its position
            in the certified array; the default ``0 .. n - 1``).
        extra_columns : dict of str to array-like, default=None
            More per-sample columns (e.g. true labels), written after the
            certificate's; :meth:`load` ignores them.

        Returns
        -------
        paths : list of Path
            The files written: the table, and for CSV its ``.meta.json`` file.

        Raises
        ------
        ValueError
            If the format is neither CSV nor JSON, or ``rows`` or
            ``extra_columns`` do not have one entry per sample.
        TypeError
            If the labels are not bool, numbers or strings.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> import numpy as np
        >>> from sklearn_certify import Certificate
        >>> cert = Certificate(np.array([7, 3]), np.array([2, 0]), np.array([False, True]),
        ...                    "samples", metadata={"note": "example"})
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> [path.name for path in cert.save(folder / "certs.csv")]
        ['certs.csv', 'certs.meta.json']
        >>> print((folder / "certs.csv").read_text())
        row,prediction,radius,abstain,radius_unit
        0,7,2,False,samples
        1,3,0,True,samples
        >>> Certificate.load(folder / "certs.csv") == cert
        True
        """
        from sklearn_certify._audit import save_certificate

        return save_certificate(self, path, format, rows=rows, extra_columns=extra_columns)

    @classmethod
    def load(cls, path: str | PathLike, format: str | None = None) -> Certificate:
        """Read a certificate written by :meth:`save` (or by ``certify_to_file``).

        Parameters
        ----------
        path : str or path-like
            The ``.csv`` table (its ``.meta.json`` file must lie next to it) or
            the ``.json`` file.
        format : {"csv", "json"}, default=None
            The format; by default the suffix of ``path``.

        Returns
        -------
        certificate : Certificate
            Equal to the one saved. The ``row`` and extra columns are not part
            of it; read them with ``pandas.read_csv(path)``.

        Raises
        ------
        FileNotFoundError
            If the file, or a CSV table's ``.meta.json`` file, is missing.
        ValueError
            If the file is not a certificate file or is malformed.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> import numpy as np
        >>> from sklearn_certify import Certificate
        >>> cert = Certificate(np.array(["a"]), np.array([0.5]), np.array([False]), "l2",
        ...                    p_lower=np.array([np.nan]))
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "cert.json"
        >>> _ = cert.save(path)
        >>> Certificate.load(path) == cert
        True
        """
        from sklearn_certify._audit import read_certificate

        return read_certificate(path, format)[0]
