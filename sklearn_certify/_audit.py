"""Certificates as audit records: data digests, metadata, files, and certification that resumes.

A saved certificate says what it is a certificate of. :func:`data_digest`
fingerprints the training and the certified arrays; :func:`certificate_metadata`
gathers those digests with the estimator's class, parameters and seed, the
library versions and the time (:meth:`Certificate.with_metadata
<sklearn_certify.Certificate.with_metadata>` attaches them). :meth:`Certificate.save
<sklearn_certify.Certificate.save>` writes a certificate as a CSV table with a
``.meta.json`` file next to it, or as one JSON file, and :meth:`Certificate.load
<sklearn_certify.Certificate.load>` reads either back unchanged.
:func:`certify_to_file` certifies a long run of rows chunk by chunk, appending each
chunk to the CSV file, and continues where an interrupted run stopped.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import platform
import re
from dataclasses import replace
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from os import PathLike
from pathlib import Path

import numpy as np

from sklearn_certify._certificate import Certificate

__all__ = [
    "certificate_metadata",
    "certify_to_file",
    "data_digest",
    "metadata_path",
    "read_certificate",
    "save_certificate",
    "table_columns",
]

#: Names the files carry, so that a reader knows what it holds.
FORMAT = "sklearn_certify.Certificate"
FORMAT_VERSION = 1

#: The certificate's per-sample fields, in file order.
_FIELDS = ("prediction", "radius", "abstain", "p_lower", "p_upper", "votes")
#: CSV columns written by :func:`save_certificate` besides the ``votes_*`` columns.
_RESERVED = ("row", "prediction", "radius", "abstain", "p_lower", "p_upper", "radius_unit")
#: Distributions whose versions a record keeps (the library and what its results rest on).
_DISTRIBUTIONS = ("numpy", "scipy", "scikit-learn", "torch", "skorch")
#: Metadata of :func:`certify_to_file` that describes one call, not the estimator or data.
_PER_CALL = ("created", "test_digest", "rows")
#: Memory addresses in reprs (``<function f at 0x7f...>``) change from run to run.
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


# ---------------------------------------------------------------------- digests
def _canonical(array, name: str) -> np.ndarray:
    """``array`` in the byte form :func:`data_digest` hashes (C order, little-endian)."""
    a = np.asarray(array)
    if a.dtype == object:
        if not all(isinstance(v, str) for v in a.flat):
            raise TypeError(
                f"data_digest: {name} is an object array holding more than strings; convert it "
                "to a numeric or string dtype first."
            )
        a = a.astype(str)
    if a.dtype.kind not in "biufcUS":
        raise TypeError(
            f"data_digest: {name} has dtype {a.dtype}; only bool, numeric and string arrays "
            "have a fixed byte form."
        )
    if a.dtype.kind in "US":  # the string width is storage, not content
        width = max((len(v) for v in a.flat), default=0)
        a = a.astype(f"{a.dtype.kind}{max(width, 1)}")
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))


def data_digest(X, y=None) -> str:
    """SHA-256 fingerprint of an array (and its labels): dtype, shape and every byte.

    Two calls give the same digest exactly when the arrays have the same dtype,
    shape and values, so a record's ``train_digest`` or ``test_digest`` checks
    that a certificate is about the data at hand (see :ref:`audit-records`).

    Parameters
    ----------
    X : array-like
        Numeric, boolean or string array (rows of any shape). An object array
        must hold only strings.
    y : array-like of shape (n_samples,), default=None
        Labels, hashed after ``X``; same first dimension as ``X``.

    Returns
    -------
    digest : str
        64 hexadecimal digits.

    Raises
    ------
    TypeError
        For arrays without a fixed byte form (objects other than strings, dates).
    ValueError
        If ``y`` has another length than ``X``.

    Notes
    -----
    The hash reads, for ``X`` and then for ``y`` if given, one header line, the
    UTF-8 JSON ``{"name": "X", "dtype": "<f8", "shape": [n, d]}`` (``json.dumps``
    with its default separators) followed by ``\\n``, then the array's bytes in C
    order and little-endian. Strings are hashed as fixed-width UTF-32 (``<U``)
    at the width of the longest one, whatever width or object dtype they came
    in; float32 and float64 arrays of equal values differ, as do ints and floats.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify import data_digest
    >>> X, y = np.array([[0.0, 1.5], [2.0, 3.0]]), np.array([0, 1])
    >>> len(data_digest(X, y))
    64
    >>> data_digest(X, y) == data_digest(X.copy(), y.copy())
    True
    >>> data_digest(X, y) == data_digest(X.astype(np.float32), y)
    False
    >>> data_digest(np.array(["a", "bc"])) == data_digest(np.array(["a", "bc"], dtype=object))
    True
    """
    arrays = [("X", _canonical(X, "X"))]
    if y is not None:
        y = _canonical(y, "y")
        if y.shape[:1] != arrays[0][1].shape[:1]:
            raise ValueError(
                f"data_digest: y has {y.shape[:1]} rows but X has {arrays[0][1].shape[:1]}."
            )
        arrays.append(("y", y))
    digest = hashlib.sha256()
    for name, array in arrays:
        header = {"name": name, "dtype": array.dtype.str, "shape": list(array.shape)}
        digest.update(json.dumps(header).encode() + b"\n")
        digest.update(array.reshape(-1).view(np.uint8))
    return digest.hexdigest()


# ---------------------------------------------------------------------- metadata
def json_safe(value):
    """``value`` as JSON data: numbers, strings, lists and dicts; anything else as its repr.

    Numpy scalars and arrays become Python numbers and lists, tuples become
    lists, dict keys strings, non-finite floats ``"nan"``/``"inf"``, and other
    objects (estimators, random generators, callables) their ``repr`` without
    memory addresses, so that equal settings give equal records.
    """
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if np.isfinite(value) else repr(value)
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return _ADDRESS.sub("", repr(value))


def _is_setting(value) -> bool:
    """A plain value (number, string, bool, None, or a list or tuple of them), not data."""
    if isinstance(value, (list, tuple)):
        return all(_is_setting(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str, np.bool_, np.number))


def estimator_metadata(estimator) -> dict:
    """What a fitted estimator's certificates depend on, as JSON data.

    ``estimator`` (class name), ``params`` (``get_params(deep=False)``),
    ``fitted_params`` (for each parameter with a plain value, number, string or
    list of them, in an attribute ``<name>_`` set by ``fit``: the value
    ``certify`` reads, e.g. ``sigma_``, or ``n_select_`` resolved from None;
    it differs from ``params`` if ``set_params`` was called after ``fit``),
    ``alpha`` (fitted, else the parameter, else None), ``random_state``,
    ``seed`` (``seed_``) and ``classes`` (``classes_``).
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    params = estimator.get_params(deep=False)
    absent = object()  # not a setting, so left out like arrays and estimators
    fitted = {name: getattr(estimator, f"{name}_", absent) for name in params}
    fitted = {name: value for name, value in fitted.items() if _is_setting(value)}
    return {
        "estimator": type(estimator).__name__,
        "params": json_safe(params),
        "fitted_params": json_safe(fitted),
        "alpha": json_safe(fitted.get("alpha", params.get("alpha"))),
        "random_state": json_safe(params.get("random_state")),
        "seed": json_safe(getattr(estimator, "seed_", None)),
        "classes": json_safe(getattr(estimator, "classes_", None)),
    }


def _versions() -> dict:
    import sklearn_certify

    versions = {"python": platform.python_version(), "sklearn_certify": sklearn_certify.__version__}
    for name in _DISTRIBUTIONS:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def _check_classes(certificate: Certificate, classes) -> None:
    """Refuse a certificate whose votes or predictions do not fit the estimator's classes."""
    if classes is None:
        return
    if certificate.votes is not None and certificate.votes.shape[1] != len(classes):
        raise ValueError(
            f"The certificate has votes for {certificate.votes.shape[1]} classes but the "
            f"estimator has {len(classes)}; is it this estimator's certificate?"
        )
    if not np.all(np.isin(certificate.prediction, classes)):
        raise ValueError(
            "The certificate predicts labels that are not among the estimator's classes_; is it "
            "this estimator's certificate?"
        )


def _record(estimator, X_train, y_train, X_test) -> dict:
    """The metadata of an estimator and its data, then versions and time (no certificate)."""
    if y_train is not None and X_train is None:
        raise ValueError("y_train is given without X_train; pass both, or neither.")
    record = {} if estimator is None else estimator_metadata(estimator)
    record["train_digest"] = None if X_train is None else data_digest(X_train, y_train)
    record["test_digest"] = None if X_test is None else data_digest(X_test)
    record["versions"] = _versions()
    record["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return record


def _with_extra(metadata: dict, extra) -> dict:
    clash = sorted(set(extra or {}) & set(metadata))
    if clash:
        raise ValueError(f"extra keys {clash} would replace metadata of the same name.")
    return {**metadata, **json_safe(dict(extra or {}))}


def certificate_metadata(
    certificate: Certificate,
    estimator=None,
    *,
    X_train=None,
    y_train=None,
    X_test=None,
    extra: dict | None = None,
) -> dict:
    """What a certificate is a certificate of, as a JSON-ready dict.

    Parameters
    ----------
    certificate : Certificate
        The certificate described.
    estimator : fitted estimator, default=None
        The estimator whose ``certify`` returned it; adds the keys of
        :func:`estimator_metadata` and checks its classes fit the certificate.
    X_train, y_train : array-like, default=None
        The training rows and labels passed to ``fit``: ``train_digest``.
    X_test : array-like, default=None
        The certified rows, one per certificate entry: ``test_digest``.
    extra : dict, default=None
        More keys (e.g. where the data came from), made JSON-safe; they must
        not reuse the names above.

    Returns
    -------
    metadata : dict
        ``unit``, the estimator's keys, ``train_digest`` and ``test_digest``
        (:func:`data_digest`, None where the data was not given), ``versions``
        (Python, sklearn_certify and the libraries its results rest on) and
        ``created`` (UTC, ISO 8601), then ``extra``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify import Certificate
    >>> from sklearn_certify._audit import certificate_metadata, data_digest
    >>> cert = Certificate(np.array([1]), np.array([2]), np.array([False]), "samples")
    >>> X_test = np.array([[0.5, 0.25]])
    >>> meta = certificate_metadata(cert, X_test=X_test, extra={"note": "pilot"})
    >>> sorted(meta)
    ['created', 'note', 'test_digest', 'train_digest', 'unit', 'versions']
    >>> meta["test_digest"] == data_digest(X_test), meta["train_digest"]
    (True, None)
    """
    if X_test is not None and len(X_test) != len(certificate):
        raise ValueError(
            f"X_test has {len(X_test)} rows but the certificate {len(certificate)}; pass the "
            "rows that were certified."
        )
    record = _record(estimator, X_train, y_train, X_test)
    if estimator is not None:
        _check_classes(certificate, getattr(estimator, "classes_", None))
    return _with_extra({"unit": certificate.unit, **record}, extra)


# ---------------------------------------------------------------------- tables
def _vote_names(certificate: Certificate) -> list[str]:
    """``votes_<class>`` if the metadata lists one distinct class per column, else ``votes_<j>``."""
    k = certificate.votes.shape[1]
    classes = certificate.metadata.get("classes")
    names = [f"votes_{c}" for c in classes] if isinstance(classes, list) else []
    if len(names) != k or len(set(names)) != k:
        names = [f"votes_{j}" for j in range(k)]
    return names


def table_columns(certificate: Certificate) -> dict:
    """The per-sample columns of :meth:`Certificate.to_frame` and of the CSV file, in order.

    ``prediction``, ``radius``, ``abstain``, ``p_lower`` and ``p_upper`` where
    present, and one ``votes_*`` column per vote column, named by class label
    when the metadata lists the classes.
    """
    columns = {}
    for name in _FIELDS:
        value = getattr(certificate, name)
        if value is None:
            continue
        if name == "votes":
            columns.update(zip(_vote_names(certificate), value.T, strict=True))
        else:
            columns[name] = value
    return columns


def _check_savable(certificate: Certificate) -> None:
    prediction = certificate.prediction
    strings = prediction.dtype == object and all(isinstance(v, str) for v in prediction)
    if prediction.dtype.kind not in "biufU" and not strings:
        raise TypeError(
            f"Certificate.save keeps labels of bool, integer, float or string dtype; the "
            f"predictions have dtype {prediction.dtype}."
        )
    if certificate.votes is not None and certificate.votes.dtype.kind not in "biuf":
        raise TypeError(f"Certificate.save needs numeric votes, got {certificate.votes.dtype}.")


def _header(certificate: Certificate) -> dict:
    """What a reader needs besides the values: unit, dtypes, vote columns and metadata."""
    present = [n for n in _FIELDS if getattr(certificate, n) is not None]
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "unit": certificate.unit,
        "dtypes": {n: getattr(certificate, n).dtype.str for n in present},
        "n_votes": None if certificate.votes is None else int(certificate.votes.shape[1]),
        "metadata": certificate.metadata,
    }


def _check_header(header: dict, source: Path, keys: tuple = ()) -> dict:
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{source} is not a certificate file written by Certificate.save.")
    if header.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{source} has certificate file version {header.get('version')}; this version of "
            f"sklearn_certify reads version {FORMAT_VERSION}."
        )
    missing = [k for k in ("unit", "dtypes", "n_votes", "metadata", *keys) if k not in header]
    if missing:
        raise ValueError(f"{source} lacks the entries {missing} of a certificate file.")
    return header


def _rows(rows, n: int) -> np.ndarray:
    if rows is None:
        return np.arange(n)
    rows = np.asarray(rows)
    if rows.shape != (n,) or rows.dtype.kind not in "iu":
        raise ValueError(f"rows must be {n} integers, one per certified sample; got {rows!r}.")
    return rows


def _extra_columns(extra, n: int) -> dict:
    columns = {}
    for name, values in (extra or {}).items():
        if not isinstance(name, str) or name in _RESERVED or name.startswith("votes_"):
            raise ValueError(
                f"extra column {name!r}: the names {_RESERVED} and 'votes_*' are the "
                "certificate's own; choose another."
            )
        values = np.asarray(values)
        if values.shape != (n,):
            raise ValueError(f"extra column {name!r} must have {n} entries, got {values.shape}.")
        columns[name] = values
    return columns


def metadata_path(path: str | PathLike) -> Path:
    """The ``.meta.json`` file that :meth:`Certificate.save` writes next to a CSV table.

    Examples
    --------
    >>> from sklearn_certify._audit import metadata_path
    >>> metadata_path("results/certificates.csv").as_posix()
    'results/certificates.meta.json'
    """
    return Path(path).with_suffix(".meta.json")


def _format(path: Path, format: str | None) -> str:
    chosen = path.suffix.lower().lstrip(".") if format is None else format
    if chosen not in ("csv", "json"):
        given = f"format={format!r}" if format is not None else f"the suffix of {path}"
        raise ValueError(
            f"Certificate files are .csv or .json; {given} names neither. Name the file .csv "
            "or .json, or pass format='csv' or 'json'."
        )
    return chosen


# ---------------------------------------------------------------------- CSV
def _csv_records(certificate: Certificate, rows: np.ndarray, extra: dict):
    columns = [rows.tolist()]
    columns += [values.tolist() for values in table_columns(certificate).values()]
    columns.append([certificate.unit] * len(certificate))
    columns += [values.tolist() for values in extra.values()]
    return zip(*columns, strict=True)


def _write_lines(path: Path, mode: str, lines) -> None:
    """Write CSV records and make them durable before returning (a resumed run trusts them)."""
    with path.open(mode, newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(lines)
        handle.flush()
        os.fsync(handle.fileno())


def _write_header(path: Path, header: dict) -> Path:
    sidecar = metadata_path(path)
    sidecar.write_text(json.dumps({**header, "table": path.name}, indent=2) + "\n", "utf-8")
    return sidecar


def _write_csv(certificate: Certificate, path: Path, rows, extra) -> list[Path]:
    names = ["row", *table_columns(certificate), "radius_unit", *extra]
    sidecar = _write_header(path, _header(certificate))
    _write_lines(path, "w", [names, *_csv_records(certificate, rows, extra)])
    return [path, sidecar]


def _parse(values: list, dtype: np.dtype, where: str) -> np.ndarray:
    """Strings read from a CSV column (or JSON values) as an array of ``dtype``."""
    kind = dtype.kind
    try:
        if kind == "b":
            values = [
                {"True": True, "False": False}[v] if isinstance(v, str) else v for v in values
            ]
        elif kind in "iu":
            values = [int(v) for v in values]
        elif kind == "f":
            values = [np.nan if v is None else float(v) for v in values]
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{where}: a value is not of dtype {dtype} ({exc}).") from exc
    out = np.empty(len(values), dtype=dtype)
    out[:] = values
    return out


def _csv_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """The header and the records of a CSV file, each record as long as the header."""
    with path.open(newline="", encoding="utf-8") as handle:
        records = list(csv.reader(handle))
    if not records:
        raise ValueError(f"{path} is empty; it has no header line.")
    names, records = records[0], records[1:]
    for line, record in enumerate(records, start=2):
        if len(record) != len(names):
            raise ValueError(f"{path}, line {line}: {len(record)} fields, the header {len(names)}.")
    return names, records


def _csv_votes(path: Path, names: list, records: list, dtype: np.dtype, n_votes: int):
    """The ``votes_*`` columns, in file order, as an ``(n_samples, n_votes)`` matrix."""
    positions = [j for j, name in enumerate(names) if name.startswith("votes_")]
    if len(positions) != n_votes:
        raise ValueError(f"{path}: {len(positions)} votes_* columns where {n_votes} are listed.")
    votes = np.empty((len(records), n_votes), dtype=dtype)
    for column, j in enumerate(positions):
        votes[:, column] = _parse([r[j] for r in records], dtype, f"{path}, {names[j]}")
    return votes


def _read_csv(path: Path) -> tuple[Certificate, np.ndarray, dict]:
    sidecar = metadata_path(path)
    if not sidecar.is_file():
        raise FileNotFoundError(
            f"{path} has no metadata file {sidecar.name} next to it; Certificate.save writes "
            "both, and Certificate.load reads both."
        )
    header = _check_header(json.loads(sidecar.read_text("utf-8")), sidecar)
    names, records = _csv_table(path)
    columns = {name: [r[j] for r in records] for j, name in enumerate(names)}
    if set(columns.get("radius_unit", [])) - {header["unit"]}:
        raise ValueError(f"{path}: radius_unit is not {header['unit']!r} on every line.")
    fields = {}
    for name, dtype in header["dtypes"].items():
        if name == "votes":
            fields[name] = _csv_votes(path, names, records, np.dtype(dtype), header["n_votes"])
        elif name not in columns:
            raise ValueError(f"{path} has no column {name!r} although {sidecar.name} lists it.")
        else:
            fields[name] = _parse(columns[name], np.dtype(dtype), f"{path}, column {name}")
    certificate = Certificate(unit=header["unit"], metadata=header["metadata"], **fields)
    rows = _parse(columns.get("row", range(len(records))), np.dtype(int), f"{path}, column row")
    extra = {n: v for n, v in columns.items() if n not in _RESERVED and not n.startswith("votes_")}
    return certificate, rows, extra


# ---------------------------------------------------------------------- JSON
def _json_values(array: np.ndarray) -> list:
    if array.ndim == 2:
        return [_json_values(row) for row in array]
    values = array.tolist()
    if array.dtype.kind == "f":
        return [None if np.isnan(v) else v if np.isfinite(v) else repr(v) for v in values]
    return values


def _write_json(certificate: Certificate, path: Path, rows, extra) -> list[Path]:
    payload = _header(certificate)
    payload["rows"] = rows.tolist()
    payload["fields"] = {n: _json_values(getattr(certificate, n)) for n in payload["dtypes"]}
    payload["columns"] = {n: json_safe(v.tolist()) for n, v in extra.items()}
    path.write_text(json.dumps(payload, allow_nan=False) + "\n", "utf-8")
    return [path]


def _read_json(path: Path) -> tuple[Certificate, np.ndarray, dict]:
    payload = _check_header(
        json.loads(path.read_text("utf-8")), path, ("rows", "fields", "columns")
    )
    fields = {}
    for name, dtype in payload["dtypes"].items():
        values = payload["fields"][name]
        if name == "votes":
            flat = [v for row in values for v in row]
            parsed = _parse(flat, np.dtype(dtype), f"{path}, votes")
            fields[name] = parsed.reshape(len(values), payload["n_votes"])
        else:
            fields[name] = _parse(values, np.dtype(dtype), f"{path}, {name}")
    certificate = Certificate(unit=payload["unit"], metadata=payload["metadata"], **fields)
    return certificate, np.asarray(payload["rows"], dtype=int), payload["columns"]


# ---------------------------------------------------------------------- save / load
def save_certificate(
    certificate: Certificate,
    path: str | PathLike,
    format: str | None = None,
    *,
    rows=None,
    extra_columns: dict | None = None,
) -> list[Path]:
    """Write ``certificate`` as a CSV table and its ``.meta.json`` file, or as one JSON file.

    The implementation of :meth:`Certificate.save`, which documents the parameters.
    """
    path = Path(path)
    kind = _format(path, format)
    _check_savable(certificate)
    rows = _rows(rows, len(certificate))
    extra = _extra_columns(extra_columns, len(certificate))
    write = _write_csv if kind == "csv" else _write_json
    return write(certificate, path, rows, extra)


def read_certificate(
    path: str | PathLike, format: str | None = None
) -> tuple[Certificate, np.ndarray, dict]:
    """A saved certificate, its ``row`` column and its extra columns (as read).

    The implementation of :meth:`Certificate.load`, which returns the certificate.
    """
    path = Path(path)
    kind = _format(path, format)
    return _read_csv(path) if kind == "csv" else _read_json(path)


# ---------------------------------------------------------------------- certify_to_file
def _check_slice(n: int, start, stop, chunk_size) -> int:
    stop = n if stop is None else stop
    for name, value in (("start", start), ("stop", stop), ("chunk_size", chunk_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"certify_to_file: {name} must be an int, got {value!r}.")
    if not 0 <= start < stop <= n:
        raise ValueError(
            f"certify_to_file: need 0 <= start < stop <= len(X) = {n}; got start={start}, "
            f"stop={stop}."
        )
    if chunk_size < 1:
        raise ValueError(f"certify_to_file: chunk_size must be at least 1, got {chunk_size}.")
    return int(stop)


def _drop_partial_line(path: Path) -> None:
    """Cut a line that an interrupted write left without its line end."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)


def _check_same_run(path: Path, metadata: dict, record: dict, X) -> None:
    """Refuse to continue a file of another estimator, training set or certified rows."""
    differ = [k for k in record if k not in _PER_CALL and metadata.get(k) != record[k]]
    if differ:
        raise ValueError(
            f"{path} holds certificates of another estimator, training set or library version "
            f"({', '.join(differ)} differ); remove it or write to another file."
        )
    if not isinstance(metadata.get("rows"), list):
        raise ValueError(f"{path} was not written by certify_to_file; it cannot be continued.")
    first, last = metadata["rows"]
    if last > len(X) or data_digest(X[first:last]) != metadata.get("test_digest"):
        raise ValueError(
            f"{path} was started on rows {first}..{last - 1} of another X; remove it or write "
            "to another file."
        )


def _resume(path: Path, record: dict, X) -> tuple[int, dict | None]:
    """Rows already in the file, and its header (None for a new file)."""
    if not path.exists():
        return 0, None
    _drop_partial_line(path)
    if path.stat().st_size == 0:
        return 0, None
    certificate, rows, _ = _read_csv(path)
    _check_same_run(path, certificate.metadata, record, X)
    start, stop = record["rows"]
    if len(rows) > stop - start or not np.array_equal(rows, np.arange(start, start + len(rows))):
        held = f"rows {rows[0]}..{rows[-1]}" if len(rows) else "no rows"
        raise ValueError(
            f"{path} holds {held}, not the first rows of {start}..{stop - 1}; continue it with "
            "the start it was written with and a stop past its last row."
        )
    header = _header(replace(certificate, metadata={"unit": certificate.unit, **record}))
    _write_header(path, header)
    return len(rows), header


def _append(path: Path, header: dict | None, record: dict, certificate, rows) -> dict:
    certificate = replace(certificate, metadata={"unit": certificate.unit, **record})
    _check_savable(certificate)
    if header is None:
        _write_csv(certificate, path, rows, {})
        return _header(certificate)
    if _header(certificate) != header:
        raise ValueError(
            f"certify returned a certificate of unit {certificate.unit!r}, dtypes "
            f"{_header(certificate)['dtypes']} for rows {rows[0]}..{rows[-1]}, unlike the "
            f"rows in {path} ({header['unit']!r}, {header['dtypes']})."
        )
    _write_lines(path, "a", _csv_records(certificate, rows, {}))
    return header


def certify_to_file(
    estimator,
    X,
    path: str | PathLike,
    *,
    start: int = 0,
    stop: int | None = None,
    chunk_size: int = 100,
    X_train=None,
    y_train=None,
) -> Certificate:
    """Certify the rows of ``X`` from ``start`` to ``stop`` chunk by chunk into a resumable CSV.

    Each chunk of ``chunk_size`` rows is certified with ``estimator.certify`` and
    appended to ``path`` (flushed to disk) before the next one starts, its
    ``row`` column holding each row's position in ``X``. If ``path`` already
    holds the first rows of the slice, written by an earlier call with the same
    fitted estimator, training data and ``start`` (an interrupted run, or a
    smaller ``stop``), those rows are kept and certification continues after
    them. The metadata file next to the table (``metadata_path``) is written
    by every call; its ``rows`` entry is ``[start, stop]`` and its
    ``test_digest`` the digest of ``X[start:stop]``, so a file is complete when
    it holds ``stop - start`` rows.

    Parameters
    ----------
    estimator : fitted certified estimator
        Its certificate of a row must not depend on the other rows certified
        with it (true of every estimator of this library).
    X : array-like of shape (n_samples, ...)
        All the rows; ``len(X)`` and slices ``X[a:b]`` are used.
    path : str or path-like
        The ``.csv`` file (see :meth:`Certificate.save` for its columns).
    start, stop : int, default=0, None
        The rows to certify, ``X[start:stop]``; ``stop=None`` is ``len(X)``.
    chunk_size : int, default=100
        Rows per ``certify`` call and per append.
    X_train, y_train : array-like, default=None
        The training data, for the record's ``train_digest``; a file is
        continued only with the same training data (or again without it).

    Returns
    -------
    certificate : Certificate
        ``Certificate.load(path)``: the certificates of ``X[start:stop]``, with
        their metadata (:meth:`Certificate.with_metadata` plus ``rows``).

    Raises
    ------
    ValueError
        If ``path`` holds another estimator's certificates (its seed,
        parameters, classes, training digest or library versions differ), rows
        of another ``X``, or rows other than the first rows of the slice.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from sklearn_certify import DPAClassifier
    >>> from sklearn_certify._audit import certify_to_file
    >>> from sklearn_certify.datasets import load_digits
    >>> X, y = load_digits()
    >>> clf = DPAClassifier(DecisionTreeClassifier(), n_partitions=5, random_state=0)
    >>> clf = clf.fit(X[:300], y[:300])
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "certificates.csv"
    >>> first = certify_to_file(clf, X[300:340], path, stop=20, chunk_size=8)  # interrupted
    >>> cert = certify_to_file(clf, X[300:340], path, chunk_size=8)  # resumes at row 20
    >>> len(first), len(cert), cert.metadata["rows"]
    (20, 40, [0, 40])
    >>> bool((cert.radius == clf.certify(X[300:340]).radius).all())
    True
    """
    stop = _check_slice(len(X), start, stop, chunk_size)
    path = Path(path)
    if _format(path, None) != "csv":
        raise ValueError(f"certify_to_file appends to a .csv file; got {path}.")
    record = {**_record(estimator, X_train, y_train, X[start:stop]), "rows": [int(start), stop]}
    done, header = _resume(path, record, X)
    for lo in range(start + done, stop, chunk_size):
        hi = min(lo + chunk_size, stop)
        certificate = estimator.certify(X[lo:hi])
        if record.get("classes") is not None:
            _check_classes(certificate, getattr(estimator, "classes_", None))
        header = _append(path, header, record, certificate, np.arange(lo, hi))
    return Certificate.load(path)
