"""Reading ``--data`` / ``--test-data`` files: ``.csv`` with a header, or ``.npz`` arrays.

CSV files
    The first line is a header naming every column (names must be unique and
    non-empty). The label column is found by its header name (``label`` unless
    ``--label-column NAME`` says otherwise; never by position); every other
    column is a numeric feature. Blank lines are skipped (as pandas does), so
    data row ``i`` (counted from 0) is ``pandas.read_csv(path).iloc[i]``.
    Labels that are all whole numbers (``0``, ``-1``, ``7.0``) become
    integers, otherwise they stay strings. Two CSV files are matched by column
    name, in any order.
NPZ files
    Arrays ``X`` (one row per sample, 2-D, numeric) and ``y`` (1-D labels), or
    the names given by ``--x-key`` / ``--y-key``, and optionally ``X_test`` /
    ``y_test`` (``<x-key>_test`` / ``<y-key>_test``). Columns are matched by
    position.

Every problem is a :class:`~sklearn_certify.cli._parser.CLIError` naming the
option, the file, the line (CSV: file line, 1-based, the header is line 1) or
array index, and the fix; nothing is dropped, filled in or reordered silently.
"""

from __future__ import annotations

import csv
import math
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from sklearn_certify.cli._parser import CLIError

__all__ = [
    "SUFFIXES",
    "Table",
    "align_columns",
    "check_input_file",
    "integer_labels",
    "load_csv",
    "load_npz",
    "random_split",
]

#: File types ``--data`` and ``--test-data`` accept.
SUFFIXES = (".csv", ".npz")

#: A label column given as a position instead of a name.
_INTEGER = re.compile(r"[+-]?[0-9]+")
#: Largest whole number a float64 holds exactly.
_MAX_EXACT = 2**53


@dataclass(frozen=True)
class Table:
    """Features and labels read from one file.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Finite float features.
    y : ndarray of shape (n_samples,) or None
        Labels, ``None`` when the file has none.
    names : tuple of str or None
        Feature column names (CSV), ``None`` for ``.npz`` arrays.
    source : str
        Where the rows come from, for messages (``"data.csv"``,
        ``"X_test of d.npz"``).
    row_meaning : str
        What a row number ``i`` of this table is in its file, for outputs.
    """

    X: np.ndarray
    y: np.ndarray | None
    names: tuple[str, ...] | None
    source: str
    row_meaning: str


def _shown(names, limit: int = 6) -> str:
    names = [repr(n) for n in names]
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def check_input_file(path: Path, option: str) -> str:
    """Return the lower-case suffix of an existing ``.csv`` / ``.npz`` file.

    Parameters
    ----------
    path : Path
        The file as given.
    option : str
        The option that named it (``"--data"``), for messages.

    Returns
    -------
    str
        ``".csv"`` or ``".npz"``.

    Raises
    ------
    CLIError
        If the path is missing, a folder, or of another type.
    """
    if not path.exists():
        raise CLIError(f"{option} {path}: no such file.")
    if path.is_dir():
        raise CLIError(f"{option} {path} is a folder; give a .csv or .npz file.")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise CLIError(f"{option} {path}: expected a .csv or .npz file, got {path.suffix!r}.")
    return suffix


def _read_csv(path: Path, option: str) -> tuple[list[str] | None, list[tuple[int, list[str]]]]:
    """The header and the ``(file line, cells)`` of each non-blank data row."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            body = [(reader.line_num, row) for row in reader if row]
    except UnicodeDecodeError as exc:
        raise CLIError(
            f"{option} {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV."
        ) from exc
    except csv.Error as exc:
        raise CLIError(f"{option} {path} is not a readable CSV file: {exc}.") from exc
    except OSError as exc:
        raise CLIError(f"{option} {path} cannot be read: {exc.strerror}.") from exc
    return header, body


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_header(header: list[str] | None, path: Path, option: str) -> list[str]:
    if header is None:
        raise CLIError(
            f"{option} {path} is empty; expected a header line naming the columns, then one "
            "line per sample."
        )
    if not header:
        raise CLIError(
            f"{option} {path}: line 1 is blank; it must be the header naming the columns."
        )
    unnamed = [j + 1 for j, name in enumerate(header) if not name.strip()]
    if unnamed:
        raise CLIError(
            f"{option} {path}: header column {unnamed[0]} has no name; every column needs a "
            "unique name (a pandas index saved by DataFrame.to_csv has none: save with "
            "index=False)."
        )
    repeated = [name for name, count in Counter(header).items() if count > 1]
    if repeated:
        raise CLIError(
            f"{option} {path}: the header repeats the column name(s) {_shown(repeated)}; "
            "column names must be unique."
        )
    if all(_is_number(name) for name in header):
        raise CLIError(
            f"{option} {path}: line 1 holds only numbers, so it looks like data, but it must be "
            "a header naming the columns; add a header line."
        )
    return header


def _check_body(body, n_columns: int, path: Path, option: str) -> None:
    if not body:
        raise CLIError(f"{option} {path} has a header but no data rows.")
    for line, row in body:
        if len(row) != n_columns:
            raise CLIError(
                f"{option} {path}, line {line}: {len(row)} values but the header names "
                f"{n_columns} columns; every line needs one value per column."
            )


def _parse_features(cells, lines, names, path: Path, option: str, hint: str) -> np.ndarray:
    """Float matrix of ``cells``, or an error locating non-numeric / non-finite cells."""
    values = np.empty((len(cells), len(names)), dtype=np.float64)
    bad = []
    for i, row in enumerate(cells):
        for j, text in enumerate(row):
            try:
                values[i, j] = float(text)
            except ValueError:
                bad.append((i, j))
    if bad:
        i, j = bad[0]
        raise CLIError(
            f"{option} {path}: {len(bad)} non-numeric feature cell(s), the first at line "
            f"{lines[i]}, column {names[j]!r}: {cells[i][j]!r}; every column except the label "
            f"column must hold numbers{hint}."
        )
    infinite = np.argwhere(~np.isfinite(values))
    if infinite.size:
        i, j = infinite[0]
        raise CLIError(
            f"{option} {path}: {len(infinite)} NaN or infinite feature cell(s), the first at line "
            f"{lines[i]}, column {names[j]!r}: {cells[i][j]!r}; impute or drop those rows "
            "(nothing is filled in)."
        )
    return values


def _label_index(header, label_column: str, path: Path, option: str, required: bool):
    if label_column in header:
        return header.index(label_column)
    if not required:
        return None
    hint = " (it takes a column name, not a position)" if _INTEGER.fullmatch(label_column) else ""
    raise CLIError(
        f"{option} {path} has no column named {label_column!r}; its columns are "
        f"{_shown(header)}. Name the label column with --label-column NAME{hint}."
    )


def load_csv(path: Path, option: str, label_column: str, *, labels_required: bool) -> Table:
    """Read a CSV file with a header line; the label column is found by name.

    Parameters
    ----------
    path : Path
        The file.
    option : str
        The option that named it, for messages.
    label_column : str
        Header name of the label column.
    labels_required : bool
        Whether a file without that column is an error (training data) or
        holds unlabeled rows (test data).

    Returns
    -------
    Table
        Features in file order, labels as strings (see :func:`integer_labels`).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "d.csv"
    >>> _ = path.write_text("a,label,b\\n1,cat,2\\n\\n3,dog,4\\n")
    >>> table = load_csv(path, "--data", "label", labels_required=True)
    >>> table.X.tolist(), table.y.tolist(), table.names
    ([[1.0, 2.0], [3.0, 4.0]], ['cat', 'dog'], ('a', 'b'))
    """
    header, body = _read_csv(path, option)
    header = _check_header(header, path, option)
    _check_body(body, len(header), path, option)
    col = _label_index(header, label_column, path, option, labels_required)
    keep = [j for j in range(len(header)) if j != col]
    if not keep:
        raise CLIError(f"{option} {path} has no feature columns besides {label_column!r}.")
    lines = [line for line, _ in body]
    cells = [[row[j] for j in keep] for _, row in body]
    names = tuple(header[j] for j in keep)
    hint = "" if col is not None else f" (no column is named {label_column!r}: see --label-column)"
    X = _parse_features(cells, lines, names, path, option, hint)
    y = None
    if col is not None:
        y = np.array([row[col] for _, row in body])
        empty = np.flatnonzero(y == "")
        if empty.size:
            raise CLIError(
                f"{option} {path}, line {lines[empty[0]]}: empty label in column "
                f"{label_column!r}; every row needs a label."
            )
    meaning = f"0-based data row of {path.name} (the header and blank lines not counted)"
    return Table(X=X, y=y, names=names, source=path.name, row_meaning=meaning)


def _load_arrays(path: Path, option: str, keys: list[str]) -> dict[str, np.ndarray]:
    """The arrays of ``keys`` that the ``.npz`` archive holds."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CLIError(f"{option} {path} is not a readable .npz archive ({exc}).") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise CLIError(f"{option} {path} holds a single .npy array, not an .npz archive.")
    with archive:
        try:
            return {key: archive[key] for key in keys if key in archive.files}
        except ValueError as exc:
            raise CLIError(f"{option} {path}: {exc} (save numeric arrays).") from exc


def _check_features(X: np.ndarray, key: str, path: Path, option: str) -> np.ndarray:
    if not (X.dtype == bool or any(np.issubdtype(X.dtype, t) for t in (np.integer, np.floating))):
        raise CLIError(
            f"{option} {path}: array {key!r} has dtype {X.dtype}; features must be numbers."
        )
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise CLIError(
            f"{option} {path}: array {key!r} has shape {X.shape}; expected one row per sample "
            "and at least one column (2-D, e.g. images flattened with X.reshape(len(X), -1))."
        )
    X = X.astype(np.float64)
    infinite = np.argwhere(~np.isfinite(X))
    if infinite.size:
        i, j = infinite[0]
        raise CLIError(
            f"{option} {path}: array {key!r} has {len(infinite)} NaN or infinite value(s), the "
            f"first at {key}[{i}, {j}]; impute or drop those rows (nothing is filled in)."
        )
    return X


def _check_labels(y: np.ndarray, n: int, key: str, path: Path, option: str) -> np.ndarray:
    from sklearn.utils.multiclass import type_of_target

    if y.ndim != 1 or y.shape[0] != n:
        raise CLIError(
            f"{option} {path}: array {key!r} has shape {y.shape}; expected one label per row of "
            f"the features ({n},)."
        )
    try:
        kind = type_of_target(y)
    except ValueError as exc:
        raise CLIError(f"{option} {path}: array {key!r}: {exc}") from exc
    if kind not in ("binary", "multiclass"):
        raise CLIError(
            f"{option} {path}: array {key!r} holds {kind} values, not class labels; certificates "
            "are for classification (use integer or string labels)."
        )
    return y


def _npz_table(arrays, x_key: str, y_key: str, path: Path, option: str) -> Table:
    X = _check_features(arrays[x_key], x_key, path, option)
    y = arrays.get(y_key)
    if y is not None:
        y = _check_labels(y, X.shape[0], y_key, path, option)
    source = f"{x_key} of {path.name}"
    meaning = f"index into array {x_key!r} of {path.name}"
    return Table(X=X, y=y, names=None, source=source, row_meaning=meaning)


def load_npz(
    path: Path,
    option: str,
    x_key: str,
    y_key: str,
    *,
    labels_required: bool,
    key_options: bool = False,
) -> tuple[Table, Table | None]:
    """Read features, labels and the optional test arrays of an ``.npz`` archive.

    Parameters
    ----------
    path : Path
        The archive.
    option : str
        The option that named it, for messages.
    x_key, y_key : str
        Names of the feature and label arrays; ``<x_key>_test`` and
        ``<y_key>_test`` are the optional test arrays.
    labels_required : bool
        Whether a missing ``y_key`` array is an error.
    key_options : bool, default=False
        Whether the command has ``--x-key`` / ``--y-key``: a missing array's message
        then suggests them, else it asks for arrays of these names.

    Returns
    -------
    table : Table
        The ``x_key`` / ``y_key`` arrays.
    test : Table or None
        The test arrays (``y`` None when only ``<x_key>_test`` is present).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "d.npz"
    >>> np.savez(path, X=np.eye(2), y=np.array([0, 1]), X_test=np.ones((1, 2)))
    >>> table, test = load_npz(path, "--data", "X", "y", labels_required=True)
    >>> table.y.tolist(), test.X.tolist(), test.y
    ([0, 1], [[1.0, 1.0]], None)
    """
    tx, ty = f"{x_key}_test", f"{y_key}_test"
    arrays = _load_arrays(path, option, [x_key, y_key, tx, ty])
    missing = [key for key in (x_key, y_key) if key not in arrays]
    if x_key in missing or (labels_required and missing):
        fix = (
            "name the feature and label arrays with --x-key / --y-key"
            if key_options
            else f"save the features as {x_key!r} and the labels as {y_key!r}"
        )
        raise CLIError(f"{option} {path} has no array(s) {_shown(missing)}; {fix}.")
    table = _npz_table(arrays, x_key, y_key, path, option)
    if ty in arrays and tx not in arrays:
        raise CLIError(f"{option} {path} has {ty!r} but no {tx!r}; save both or neither.")
    if tx not in arrays:
        return table, None
    test = _npz_table(arrays, tx, ty, path, option)
    return table, align_columns(table, test, option)


def align_columns(train: Table, test: Table, option: str) -> Table:
    """Put ``test``'s feature columns in ``train``'s order (by name when both have names).

    Parameters
    ----------
    train, test : Table
        The training and the test rows.
    option : str
        The option that named the test rows, for messages.

    Returns
    -------
    Table
        ``test`` with its columns reordered to match ``train``.

    Raises
    ------
    CLIError
        If a name is missing or unexpected, or (without names) the widths differ.
    """
    if train.names is None or test.names is None:
        if test.X.shape[1] != train.X.shape[1]:
            raise CLIError(
                f"{option}: {test.source} has {test.X.shape[1]} feature columns but "
                f"{train.source} has {train.X.shape[1]}."
            )
        return test
    missing = [name for name in train.names if name not in test.names]
    extra = [name for name in test.names if name not in train.names]
    problems = [f"lacks the feature column(s) {_shown(missing)}"] if missing else []
    problems += [f"has column(s) {_shown(extra)} that --data lacks"] if extra else []
    if problems:
        raise CLIError(
            f"{option} {test.source} {' and '.join(problems)} ({train.source} has "
            f"{_shown(train.names)}); columns are matched by header name, in any order."
        )
    order = [test.names.index(name) for name in train.names]
    return replace(test, X=test.X[:, order], names=train.names)


def _integer(text: str) -> int | None:
    """The integer ``text`` denotes (``"7"``, ``"-1.0"``, ``"1e+00"``), else None."""
    try:
        value = float(text)
    except ValueError:
        return None
    if not (math.isfinite(value) and value == round(value) and abs(value) <= _MAX_EXACT):
        return None
    return int(value)


def integer_labels(*labels: np.ndarray | None) -> list[np.ndarray | None]:
    """Convert string labels to integers when every label of every array is an integer number.

    Parameters
    ----------
    *labels : ndarray of str or None
        Label arrays read from CSV files (train and test together, so that
        both get the same type).

    Returns
    -------
    list of ndarray or None
        The arrays as ``int64`` if every label is a whole number written in
        any float notation (``7``, ``-1.0``, ``1e+00``), else unchanged.

    Examples
    --------
    >>> integer_labels(np.array(["1", "-1.0"]), None)
    [array([ 1, -1]), None]
    >>> integer_labels(np.array(["1", "one"]))[0].tolist()
    ['1', 'one']
    """
    values = [None if y is None else [_integer(v) for v in y] for y in labels]
    if any(None in v for v in values if v is not None):
        return list(labels)
    return [None if v is None else np.array(v, dtype=np.int64) for v in values]


def random_split(y: np.ndarray, test_size: float, random_state: int):
    """Split row indices at random into training and held-out rows (``--test-size``).

    Stratified by label when every class has at least 2 rows and both sides
    can hold every class; otherwise a plain random split.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Labels of all rows.
    test_size : float
        Fraction held out, in (0, 1); ``ceil(test_size * n_samples)`` rows.
    random_state : int
        Seed of the split (``--seed``).

    Returns
    -------
    train, test : ndarray of int
        Sorted row indices of each side.
    how : str
        ``"stratified random"`` or why the split is not stratified.

    Examples
    --------
    >>> train, test, how = random_split(np.array([0, 0, 1, 1]), 0.5, 0)
    >>> test.size, how
    (2, 'stratified random')
    """
    from sklearn.model_selection import train_test_split

    n = y.shape[0]
    n_test = math.ceil(test_size * n)
    if n_test >= n:
        raise CLIError(
            f"--test-size {test_size:g} of {n} row(s) leaves no training rows; use a smaller "
            "--test-size."
        )
    _, counts = np.unique(y, return_counts=True)
    stratified = counts.min() >= 2 and min(n_test, n - n_test) >= counts.size
    train, test = train_test_split(
        np.arange(n),
        test_size=n_test,
        stratify=y if stratified else None,
        random_state=random_state,
    )
    how = "stratified random" if stratified else "random (not stratified: too few rows per class)"
    return np.sort(train), np.sort(test), how
