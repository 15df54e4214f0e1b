"""The ``--out`` folder: checked before any training, then filled with tables and figures.

Every sub-command's ``--out`` is a folder (created if missing) into which it
writes fixed file names: ``certificates.csv`` with its metadata file
``certificates.meta.json`` and ``certified_accuracy.{csv,json,png}`` (``demo``,
``certify``) or ``bound_curve.{csv,png}`` (``bound``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from sklearn_certify._audit import metadata_path
from sklearn_certify.cli._methods import UNIT_WORDS
from sklearn_certify.cli._parser import CLIError

__all__ = [
    "CERTIFICATE_OUTPUTS",
    "accuracy_summary",
    "certificate_files",
    "file_sha256",
    "prepare_out_dir",
    "write_certificates",
    "write_curve",
]


def certificate_files(name: str) -> dict[str, str]:
    """The certificates table ``name`` and the metadata file ``Certificate.save`` puts next to it.

    Examples
    --------
    >>> certificate_files("certificates.csv")
    {'certificates': 'certificates.csv', 'metadata': 'certificates.meta.json'}
    """
    return {"certificates": name, "metadata": metadata_path(name).name}


#: Files of ``certify``: certificates and their metadata, then the certified-accuracy curve.
CERTIFICATE_OUTPUTS = {
    **certificate_files("certificates.csv"),
    "csv": "certified_accuracy.csv",
    "json": "certified_accuracy.json",
    "png": "certified_accuracy.png",
}

#: Units counted in whole rows or labels (integer radii); the others are l2 norms.
_COUNT_UNITS = ("samples", "rows", "label_flips")

_FILE_SUFFIXES = (".csv", ".json", ".png", ".npz")


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _refuse_overwriting_inputs(out: Path, paths, inputs) -> None:
    for option, given in inputs:
        if _same_file(out, given):
            raise CLIError(
                f"--out {out} is the {option} file; --out names the folder the outputs are "
                "written into (e.g. --out results)."
            )
        for path in paths:
            if _same_file(path, given):
                raise CLIError(
                    f"--out {out} would overwrite the {option} file {given} with {path.name}; "
                    "choose another --out folder."
                )


def _check_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise CLIError(
            f"--out {out} is a file; --out names the folder the outputs are written into."
        )
    if not out.exists() and out.suffix.lower() in _FILE_SUFFIXES:
        raise CLIError(
            f"--out {out} looks like a file name; --out names the folder the outputs are "
            f"written into (e.g. --out {out.with_suffix('')})."
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CLIError(
            f"--out {out}: cannot create the folder ({exc.strerror}); choose a writable folder."
        ) from exc
    try:
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise CLIError(
            f"--out {out} is not writable ({exc.strerror}); choose a writable folder."
        ) from exc


def prepare_out_dir(out: Path, names: dict[str, str], inputs) -> dict[str, Path]:
    """Create the ``--out`` folder and check every output can be written, before any work.

    Parameters
    ----------
    out : Path
        The ``--out`` folder.
    names : dict of str to str
        Kind of output (``"csv"``) to its file name in ``out``.
    inputs : iterable of (str, Path)
        Input files by option (``("--data", path)``), which must not be overwritten.

    Returns
    -------
    dict of str to Path
        Kind of output to its path.

    Raises
    ------
    CLIError
        If an output would overwrite an input, ``out`` is a file, or the
        folder or an output file cannot be created or written.
    """
    paths = {kind: out / name for kind, name in names.items()}
    _refuse_overwriting_inputs(out, list(paths.values()), list(inputs))
    _check_folder(out)
    for path in paths.values():
        if path.is_dir():
            raise CLIError(f"--out {out}: {path.name} there is a folder, not a file; remove it.")
        if path.exists() and not os.access(path, os.W_OK):
            raise CLIError(f"--out {out}: {path.name} there is read-only; make it writable.")
    return paths


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, as ``sha256sum`` prints it (64 hexadecimal digits)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_certificates(path: Path, cert, rows, y_true=None) -> list[Path]:
    """Save the certificates with their row numbers, and with labels their correctness.

    Through :meth:`Certificate.save <sklearn_certify.Certificate.save>`: one line
    per certificate in ``path`` (``row``, the certificate's columns, its vote
    columns named by class when ``cert.metadata`` lists the classes,
    ``radius_unit``) and the metadata file next to it.

    Parameters
    ----------
    path : Path
        The CSV file.
    cert : Certificate
        From ``certify``, with its metadata.
    rows : array-like of int
        Row number of each certified sample in its input (see the callers).
    y_true : array-like, default=None
        True labels; adds the columns ``label`` and ``correct``.

    Returns
    -------
    list of Path
        The table and its metadata file.
    """
    extra = None
    if y_true is not None:
        extra = {"label": y_true, "correct": np.asarray(cert.prediction == y_true, dtype=bool)}
    return cert.save(path, "csv", rows=np.asarray(rows, dtype=np.int64), extra_columns=extra)


def write_curve(paths: dict[str, Path], radii, accuracy, summary: dict, *, unit: str, title: str):
    """Write the certified-accuracy curve as CSV, as JSON with ``summary``, and as a PNG.

    Parameters
    ----------
    paths : dict of str to Path
        From :func:`prepare_out_dir` with :data:`CERTIFICATE_OUTPUTS`.
    radii, accuracy : array-like
        From :func:`sklearn_certify.metrics.certified_accuracy_curve`.
    summary : dict
        Settings and scores stored next to the curve in the JSON file.
    unit : str
        The certificate's radius unit.
    title : str
        Figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sklearn_certify.plotting import plot_certified_accuracy

    number = int if unit in _COUNT_UNITS else float
    with paths["csv"].open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["radius", "certified_accuracy"])
        writer.writerows([number(r), float(a)] for r, a in zip(radii, accuracy, strict=True))
    payload = dict(summary)
    payload["curve"] = {
        "radius": [number(r) for r in radii],
        "certified_accuracy": [float(a) for a in accuracy],
    }
    paths["json"].write_text(json.dumps(payload, indent=2))
    ax = plot_certified_accuracy(
        (radii, accuracy), xlabel=f"attack size ({UNIT_WORDS[unit]})", title=title
    )
    ax.figure.savefig(paths["png"], dpi=120)
    plt.close(ax.figure)


def accuracy_summary(y_true, cert) -> str:
    """One line: clean accuracy, median certified radius, certified accuracy at two radii.

    Parameters
    ----------
    y_true : array-like
        True labels of the certified rows.
    cert : Certificate
        Their certificates.

    Returns
    -------
    str
        The line, radii in words of ``cert.unit``.
    """
    from sklearn_certify.metrics import certified_accuracy, median_certified_radius

    clean = certified_accuracy(y_true, cert)
    median = median_certified_radius(y_true, cert)
    if np.isnan(median):
        return (
            f"clean accuracy {clean:.3f} (fewer than half the rows correct: no median "
            "certified radius)"
        )
    radii = sorted({1, max(1, int(median))}) if cert.unit in _COUNT_UNITS else [median]
    at = ", ".join(f"{certified_accuracy(y_true, cert, r):.3f} at radius {r:g}" for r in radii)
    return (
        f"clean accuracy {clean:.3f}; median certified radius {median:g} "
        f"({UNIT_WORDS[cert.unit]}); certified accuracy {at}"
    )
