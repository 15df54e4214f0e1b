"""``python -m sklearn_certify certify``: certify a method on your own data.

Reads features and labels from a ``.npz`` file (arrays ``X`` and ``y``, and
optionally ``X_test`` and ``y_test``) or a ``.csv`` file with a header row
(one label column, every other column a numeric feature), fits the chosen
method, certifies the test rows and writes one certificate per row as CSV.
Without separate test data a stratified split of the input is certified.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

__all__ = ["BASE_ESTIMATORS", "add_parser", "load_table", "run"]

#: Base estimators the command line can build (each preprocesses inside the member: sound).
BASE_ESTIMATORS = ("ridge", "logreg", "tree", "knn")


def _base_estimator(name: str):
    from sklearn.linear_model import LogisticRegression, RidgeClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    if name == "ridge":
        return make_pipeline(StandardScaler(), RidgeClassifier())
    if name == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    if name == "tree":
        return DecisionTreeClassifier()
    if name == "knn":
        return make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=1))
    raise ValueError(f"--base must be one of {BASE_ESTIMATORS}, got {name!r}.")


def load_table(path, *, label_column=None, x_key: str = "X", y_key: str = "y"):
    """Load ``(X, y, X_test, y_test)`` from ``.npz`` or ``.csv`` (test parts may be None).

    Parameters
    ----------
    path : str or Path
        ``.npz`` with arrays ``x_key`` and ``y_key`` (and optionally
        ``<x_key>_test`` / ``<y_key>_test``), or ``.csv`` with a header row.
    label_column : str or int, default=None
        CSV only: name or 0-based index of the label column; ``None`` means a
        column named ``label`` if present, otherwise the last column.
    x_key, y_key : str, default="X", "y"
        NPZ only: names of the feature and label arrays.

    Returns
    -------
    X, y, X_test, y_test : ndarrays (``X_test`` and ``y_test`` may be None)

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "d.csv")
    >>> _ = open(path, "w").write("a,b,label\\n1,2,cat\\n3,4,dog\\n")
    >>> X, y, _, _ = load_table(path)
    >>> X.tolist(), y.tolist()
    ([[1.0, 2.0], [3.0, 4.0]], ['cat', 'dog'])
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"--data file {str(path)!r} does not exist.")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in (x_key, y_key) if k not in data.files]
            if missing:
                raise ValueError(
                    f"{path.name} has arrays {data.files} but not {missing}; pass --x-key/--y-key "
                    "with the names of the feature and label arrays."
                )
            X, y = data[x_key], data[y_key]
            tx, ty = f"{x_key}_test", f"{y_key}_test"
            X_test = data[tx] if tx in data.files else None
            y_test = data[ty] if ty in data.files else None
        return X, y, X_test, y_test
    if suffix == ".csv":
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
        if len(rows) < 2:
            raise ValueError(f"{path.name} needs a header row and at least one data row.")
        header, body = rows[0], rows[1:]
        if label_column is None:
            col = header.index("label") if "label" in header else len(header) - 1
        elif isinstance(label_column, int) or str(label_column).lstrip("-").isdigit():
            col = int(label_column) % len(header)
        elif label_column in header:
            col = header.index(label_column)
        else:
            raise ValueError(
                f"--label-column {label_column!r} is not a column of {path.name}: {header}."
            )
        y = np.array([r[col] for r in body])
        try:
            X = np.array([[float(v) for j, v in enumerate(r) if j != col] for r in body])
        except ValueError as exc:
            raise ValueError(
                f"every column of {path.name} except the label column must be numeric ({exc}); "
                "choose the label column with --label-column."
            ) from exc
        # Integer-looking labels become integers.
        try:
            y_int = y.astype(np.int64)
            if np.all(y_int.astype(str) == y):
                y = y_int
        except ValueError:
            pass
        return X, y, None, None
    raise ValueError(f"--data must be a .npz or .csv file, got {path.name!r}.")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``certify`` sub-command."""
    parser = subparsers.add_parser(
        "certify",
        help="Fit a certified method on your .npz/.csv data and write per-row certificates.",
        description=(
            "Fit a certified classifier on FILE (.npz with arrays X, y [, X_test, y_test] or "
            ".csv with a header and a label column) and write one certificate per test row."
        ),
    )
    parser.add_argument(
        "--method",
        choices=("dpa",),
        default="dpa",
        help="certification method (default: %(default)s)",
    )
    parser.add_argument("--data", required=True, type=Path, help="input .npz or .csv file")
    parser.add_argument(
        "--test-data",
        type=Path,
        default=None,
        help="separate .npz/.csv file whose rows are certified",
    )
    parser.add_argument(
        "--label-column",
        default=None,
        help="CSV label column name or 0-based index (default: 'label' or the last)",
    )
    parser.add_argument("--x-key", default="X", help="NPZ features array (default: %(default)s)")
    parser.add_argument("--y-key", default="y", help="NPZ labels array (default: %(default)s)")
    parser.add_argument(
        "--test-size",
        type=float,
        default=0.25,
        help="fraction certified when no test data is given (default: %(default)s)",
    )
    parser.add_argument("--n-partitions", type=int, default=50, help="DPA k (default: %(default)s)")
    parser.add_argument(
        "--spread", type=int, default=1, help="Finite Aggregation spread d (default: %(default)s)"
    )
    parser.add_argument("--election", choices=("plurality", "runoff"), default="plurality")
    parser.add_argument("--threat-model", choices=("general", "label_flip"), default="general")
    parser.add_argument("--hash", choices=("digest", "pixel_sum"), default="digest")
    parser.add_argument(
        "--base",
        choices=BASE_ESTIMATORS,
        default="ridge",
        help="base estimator per partition (default: %(default)s)",
    )
    parser.add_argument("--n-jobs", type=int, default=None, help="parallel jobs for training")
    parser.add_argument("--seed", type=int, default=0, help="random_state (default: %(default)s)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("certificates.csv"),
        help="per-row certificate CSV (default: %(default)s)",
    )
    parser.set_defaults(func=run)
    return parser


def run(args) -> int:
    """Fit, certify and write the per-row certificates; returns the exit status."""
    from sklearn.model_selection import train_test_split

    from sklearn_certify import DPAClassifier
    from sklearn_certify.metrics import certified_accuracy_curve

    X, y, X_test, y_test = load_table(
        args.data, label_column=args.label_column, x_key=args.x_key, y_key=args.y_key
    )
    if args.test_data is not None:
        X_test, y_test, _, _ = load_table(
            args.test_data, label_column=args.label_column, x_key=args.x_key, y_key=args.y_key
        )
    if X_test is None:
        _, counts = np.unique(y, return_counts=True)
        stratify = y if counts.min() >= 2 else None
        X, X_test, y, y_test = train_test_split(
            X, y, test_size=args.test_size, stratify=stratify, random_state=args.seed
        )
        source = f"a {args.test_size:.0%} split of {args.data.name}"
    else:
        source = str(args.test_data.name if args.test_data else f"{args.data.name} (test arrays)")
    clf = DPAClassifier(
        _base_estimator(args.base),
        n_partitions=args.n_partitions,
        spread=args.spread,
        election=args.election,
        threat_model=args.threat_model,
        hash=args.hash,
        random_state=args.seed,
        n_jobs=args.n_jobs,
    )
    clf.fit(X, y)
    cert = clf.certify(X_test)
    columns = cert.to_dict()
    names = list(columns)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as f:
        writer = csv.writer(f)
        header = ["row", *names] + (["label", "correct"] if y_test is not None else [])
        writer.writerow(header)
        for i in range(len(cert)):
            row = [
                i,
                *(
                    columns[n][i].item() if hasattr(columns[n][i], "item") else columns[n][i]
                    for n in names
                ),
            ]
            if y_test is not None:
                label = y_test[i].item() if hasattr(y_test[i], "item") else y_test[i]
                row += [label, bool(cert.prediction[i] == y_test[i])]
            writer.writerow(row)
    print(
        f"Certified {len(cert)} rows of {source} with DPA (k={args.n_partitions}, "
        f"spread={args.spread}, {args.election}, {args.threat_model}); radius unit: {cert.unit}."
    )
    if y_test is not None:
        radii, accuracy = certified_accuracy_curve(y_test, cert)
        print("radius  certified_accuracy")
        for r, a in zip(radii, accuracy, strict=True):
            print(f"{int(r):>6}  {a:>18.4f}")
    print(f"wrote {args.out}")
    return 0
