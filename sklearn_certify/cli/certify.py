"""``python -m sklearn_certify certify``: certify a method on your own data.

Reads training rows from ``--data`` (file formats: :mod:`sklearn_certify.cli._tables`),
certifies the rows of ``--test-data``, else the ``X_test`` arrays of an
``.npz`` ``--data``, else a random ``--test-size`` split of ``--data``, and
writes into the ``--out`` folder ``certificates.csv`` (one line per certified
row; its ``row`` column locates the row in its input file) with its metadata
file ``certificates.meta.json`` (what the certificates certify: the estimator,
its parameters and seed, digests of the input files and of the training and
certified rows, versions; :meth:`Certificate.load
<sklearn_certify.Certificate.load>` reads both back) and, when the certified
rows have labels, the certified-accuracy curve (``certified_accuracy.csv``,
``.json``, ``.png``). Every input and option is checked before any training.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from sklearn_certify.cli._methods import (
    METHODS,
    UNIT_WORDS,
    add_method_options,
    build,
    check_fit,
    described,
    method_params,
)
from sklearn_certify.cli._outputs import (
    CERTIFICATE_OUTPUTS,
    accuracy_summary,
    file_sha256,
    prepare_out_dir,
    write_certificates,
    write_curve,
)
from sklearn_certify.cli._parser import CLIError, n_jobs, open_fraction, out_folder, seed
from sklearn_certify.cli._tables import (
    Table,
    align_columns,
    check_input_file,
    integer_labels,
    load_csv,
    load_npz,
    random_split,
)

__all__ = ["add_parser", "run"]

DEFAULT_LABEL_COLUMN = "label"
DEFAULT_TEST_SIZE = 0.25
DEFAULT_OUT = Path("sklearn_certify_certify")


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        required=True,
        type=Path,
        metavar="FILE",
        help="training rows: a .csv file whose first line is a header naming the columns (the "
        "label column is found by name, see --label-column; every other column is a numeric "
        "feature) or a .npz file with arrays X and y (see --x-key, --y-key) and optionally "
        "X_test and y_test, which are then the rows certified",
    )
    parser.add_argument(
        "--test-data",
        type=Path,
        default=None,
        metavar="FILE",
        help="rows to certify, in the format of --data: a .csv whose columns are matched to "
        "those of --data by header name, in any order (its label column is optional; with it "
        "accuracies are reported), or a .npz with the --x-key array (and optionally --y-key). "
        "Default: the X_test arrays of a .npz --data, else a random --test-size split of --data",
    )
    parser.add_argument(
        "--label-column",
        default=None,
        metavar="NAME",
        help=".csv only: header name of the label column (default: "
        f"{DEFAULT_LABEL_COLUMN!r}); columns are never picked by position",
    )
    parser.add_argument(
        "--x-key", default=None, metavar="NAME", help=".npz only: feature array (default: X)"
    )
    parser.add_argument(
        "--y-key", default=None, metavar="NAME", help=".npz only: label array (default: y)"
    )
    parser.add_argument(
        "--test-size",
        type=open_fraction,
        default=None,
        metavar="FRACTION",
        help="only without test rows: fraction of the --data rows held out at random (seeded "
        "by --seed, stratified by label when every class has 2 rows) and certified; the rest "
        f"train the members (default: {DEFAULT_TEST_SIZE})",
    )


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``certify`` sub-command.

    Parameters
    ----------
    subparsers : argparse subparsers action
        From ``parser.add_subparsers()``.

    Returns
    -------
    argparse.ArgumentParser
        The sub-command's parser.
    """
    parser = subparsers.add_parser(
        "certify",
        help="fit a certified method on your .csv/.npz data and write per-row certificates",
        description=(
            "Fit a certified classifier on --data and write one certificate per certified row "
            "into the --out folder: certificates.csv (its 'row' column locates each row in its "
            "input file) with certificates.meta.json (what they certify: the estimator, its "
            "parameters and seed, SHA-256 digests of the input files and of the training and "
            "certified rows, library versions) and, when those rows have labels, the certified "
            "accuracy against the attack size (certified_accuracy.csv, .json, .png)."
        ),
    )
    _add_data_options(parser)
    add_method_options(parser)
    parser.add_argument(
        "--n-jobs",
        type=n_jobs,
        default=None,
        metavar="N",
        help="parallel jobs training the members (joblib; -1: all cores; default: 1)",
    )
    parser.add_argument(
        "--seed",
        type=seed,
        default=0,
        help="seeds the members and the --test-size split (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=out_folder,
        default=DEFAULT_OUT,
        metavar="DIR",
        help="output folder, created if missing (default: %(default)s)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show a progress bar while the members train"
    )
    parser.set_defaults(func=run)
    return parser


def _refuse(args, options: tuple[str, ...], reason: str) -> None:
    given = [o for o in options if getattr(args, o.lstrip("-").replace("-", "_")) is not None]
    if given:
        raise CLIError(f"{', '.join(given)}: {reason}; drop {'them' if len(given) > 1 else 'it'}.")


def _read_csv_inputs(args) -> tuple[Table, Table | None]:
    _refuse(args, ("--x-key", "--y-key"), "only for .npz files")
    label = args.label_column or DEFAULT_LABEL_COLUMN
    train = load_csv(args.data, "--data", label, labels_required=True)
    test = None
    if args.test_data is not None:
        test = load_csv(args.test_data, "--test-data", label, labels_required=False)
        test = align_columns(train, test, "--test-data")
    y, y_test = integer_labels(train.y, None if test is None else test.y)
    return replace(train, y=y), None if test is None else replace(test, y=y_test)


def _read_npz_inputs(args) -> tuple[Table, Table | None]:
    _refuse(args, ("--label-column",), "only for .csv files")
    x_key, y_key = args.x_key or "X", args.y_key or "y"
    train, test = load_npz(
        args.data, "--data", x_key, y_key, labels_required=True, key_options=True
    )
    if args.test_data is None:
        return train, test
    if test is not None:
        raise CLIError(
            f"--data {args.data} holds its own test arrays ({test.source}) and --test-data is "
            "given too; drop one of them."
        )
    test, extra = load_npz(
        args.test_data, "--test-data", x_key, y_key, labels_required=False, key_options=True
    )
    if extra is not None:
        raise CLIError(
            f"--test-data {args.test_data} holds test arrays ({x_key}_test) too; certify "
            f"certifies its {x_key!r} array (labels: {y_key!r}), so save just those."
        )
    return train, align_columns(train, test, "--test-data")


def _read_inputs(args) -> tuple[Table, Table | None]:
    """The training rows and the test rows, if any, with the same columns in the same order."""
    kind = check_input_file(args.data, "--data")
    if args.test_data is not None and check_input_file(args.test_data, "--test-data") != kind:
        raise CLIError(
            f"--test-data {args.test_data} must be a {kind} file like --data {args.data}; "
            "columns are matched by header name (.csv) or position (.npz)."
        )
    train, test = _read_csv_inputs(args) if kind == ".csv" else _read_npz_inputs(args)
    if test is not None:
        _refuse(args, ("--test-size",), "only for splitting --data when there are no test rows")
    return train, test


@dataclass(frozen=True)
class _Split:
    """Training rows, certified rows and where the certified rows come from."""

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray | None
    rows: np.ndarray
    description: str
    row_meaning: str


def _split(args, train: Table, test: Table | None) -> _Split:
    if test is not None:
        return _Split(
            train.X,
            train.y,
            test.X,
            test.y,
            np.arange(test.X.shape[0]),
            f"all {test.X.shape[0]} rows of {test.source}",
            test.row_meaning,
        )
    test_size = DEFAULT_TEST_SIZE if args.test_size is None else args.test_size
    fit_rows, test_rows, how = random_split(train.y, test_size, args.seed)
    description = (
        f"a {how} {test_rows.size} of the {train.y.shape[0]} rows of {train.source} "
        f"(--test-size {test_size:g}, --seed {args.seed}); the other {fit_rows.size} trained "
        "the members"
    )
    return _Split(
        train.X[fit_rows],
        train.y[fit_rows],
        train.X[test_rows],
        train.y[test_rows],
        test_rows,
        description,
        train.row_meaning,
    )


def _summary(args, split: _Split, cert, settings: dict) -> dict:
    from sklearn_certify.metrics import certified_accuracy, median_certified_radius

    median = median_certified_radius(split.y_test, cert)
    return {
        **settings,
        "base": args.base,
        "seed": args.seed,
        "data": str(args.data),
        "certified_rows": split.description,
        "row_column": split.row_meaning,
        "n_train": int(split.X.shape[0]),
        "n_test": len(cert),
        "unit": cert.unit,
        "clean_accuracy": certified_accuracy(split.y_test, cert),
        "median_certified_radius": None if np.isnan(median) else float(median),
    }


def _provenance(args, split: _Split) -> dict:
    """Where the certified and training rows come from, for the certificates' metadata."""
    files = [("data", args.data)] + ([("test_data", args.test_data)] if args.test_data else [])
    return {
        "command": "certify",
        "method": args.method,
        "base": args.base,
        **{key: str(path) for key, path in files},
        **{f"{key}_sha256": file_sha256(path) for key, path in files},
        "certified_rows": split.description,
        "row_column": split.row_meaning,
    }


def _write(args, paths, clf, cert, split: _Split, settings: dict) -> list[Path]:
    """Write the certificates and, with labels, the curve; return the files written."""
    from sklearn_certify.metrics import certified_accuracy_curve

    record = cert.with_metadata(
        clf, X_train=split.X, y_train=split.y, X_test=split.X_test, extra=_provenance(args, split)
    )
    written = write_certificates(paths["certificates"], record, split.rows, split.y_test)
    if split.y_test is None:
        for kind in ("csv", "json", "png"):  # a curve of an earlier run would not match
            paths[kind].unlink(missing_ok=True)
        return written
    radii, accuracy = certified_accuracy_curve(split.y_test, cert)
    title = f"{settings['estimator']} on {args.data.name}"
    summary = _summary(args, split, cert, settings)
    write_curve(paths, radii, accuracy, summary, unit=cert.unit, title=title)
    return [paths[kind] for kind in CERTIFICATE_OUTPUTS]


def _report(args, cert, split: _Split, written: list[Path], line: str) -> None:
    holds = "exactly" if METHODS[args.method].exact else "with probability 1 - alpha"
    print(f"Certified {split.description}.")
    print(f"{line}; radius: {UNIT_WORDS[cert.unit]}, holds {holds}.")
    if split.y_test is None:
        print(
            f"No labels for the certified rows, so no accuracy; median radius "
            f"{np.median(cert.radius):g}, {int(cert.abstain.sum())} abstention(s)."
        )
    else:
        print(accuracy_summary(split.y_test, cert) + ".")
    print(f"The 'row' column of certificates.csv is the {split.row_meaning}.")
    for path in written:
        print(f"wrote {path}")


def run(args) -> int:
    """Check everything, fit, certify, write the outputs and print a summary.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options of the ``certify`` sub-command.

    Returns
    -------
    int
        Exit status 0 (errors raise :class:`~sklearn_certify.cli._parser.CLIError`).
    """
    params = method_params(args)
    train, test = _read_inputs(args)
    split = _split(args, train, test)
    clf = build(args, params)
    check_fit(clf, split.X, split.y, args.method)
    inputs = [("--data", args.data)] + ([("--test-data", args.test_data)] if args.test_data else [])
    paths = prepare_out_dir(args.out, CERTIFICATE_OUTPUTS, inputs)
    cert = clf.fit(split.X, split.y).certify(split.X_test)
    settings, line = described(args, params)
    written = _write(args, paths, clf, cert, split, settings)
    _report(args, cert, split, written, line)
    return 0
