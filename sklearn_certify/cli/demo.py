"""``python -m sklearn_certify demo``: DPA with a small CNN on the bundled digits.

Trains :class:`~sklearn_certify.DPAClassifier` with a small skorch CNN per
partition through the vectorized ensemble engine, certifies the test split,
prints the certified-accuracy table (attack size 0..max) and writes into the
``--out`` folder the per-sample certificates (``certificates.csv``, whose
``row`` column indexes ``load_digits(split="test")``) and the curve as CSV,
JSON and PNG (``certified_accuracy.*``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sklearn_certify.cli._outputs import (
    CERTIFICATE_OUTPUTS,
    accuracy_summary,
    curve_title,
    prepare_out_dir,
    write_certificates,
    write_curve,
)
from sklearn_certify.cli._parser import CLIError, out_folder, positive_int, seed

__all__ = ["DigitsCNN", "add_parser", "make_digits_net", "run"]

#: ``--quick`` settings: partitions, epochs, training rows, test rows.
QUICK = {"n_partitions": 5, "epochs": 10, "n_train": 400, "n_test": 100}
#: Settings without ``--quick``.
FULL = {"n_partitions": 30, "epochs": 30}


class DigitsCNN(nn.Module):
    """Two 3x3 conv blocks and a linear head for (n, 1, 8, 8) digit images.

    Parameters
    ----------
    channels : int, default=16
        Channels of the first conv block (the second has twice as many).
    n_classes : int, default=10
        Output logits.
    """

    def __init__(self, channels: int = 16, n_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(2 * channels * 4, n_classes)

    def forward(self, X):
        return self.head(self.features(X).flatten(1))


def make_digits_net(
    *,
    max_epochs: int = 30,
    lr: float = 0.05,
    batch_size: int = 16,
    channels: int = 16,
    device: str = "cpu",
):
    """The skorch net the demo trains on every partition.

    Parameters
    ----------
    max_epochs : int, default=30
        Epochs per member.
    lr : float, default=0.05
        SGD learning rate (momentum 0.9).
    batch_size : int, default=16
        Mini-batch size.
    channels : int, default=16
        Width of :class:`DigitsCNN`.
    device : str, default="cpu"
        Torch device, e.g. ``"cuda"``.

    Returns
    -------
    skorch.NeuralNetClassifier
        Unfitted net whose module is the class :class:`DigitsCNN`.

    Examples
    --------
    >>> net = make_digits_net(max_epochs=2)
    >>> net.max_epochs, net.module.__name__
    (2, 'DigitsCNN')
    """
    from skorch import NeuralNetClassifier

    return NeuralNetClassifier(
        DigitsCNN,
        module__channels=channels,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        lr=lr,
        max_epochs=max_epochs,
        batch_size=batch_size,
        iterator_train__shuffle=True,
        train_split=None,
        device=device,
        verbose=0,
    )


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``demo`` sub-command.

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
        "demo",
        help="DPA with a small CNN on the bundled digits: certified-accuracy table and figure",
        description=(
            "Train DPAClassifier (one small skorch CNN per partition, vectorized engine) on "
            "scikit-learn's bundled digits, certify the test split and write into the --out "
            "folder the certified accuracy against the number of inserted+deleted training "
            "rows (certified_accuracy.csv, .json, .png) and the per-sample certificates "
            "(certificates.csv; its 'row' column indexes the 450 test digits)."
        ),
    )
    parser.add_argument(
        "--out",
        default=Path("sklearn_certify_demo"),
        type=out_folder,
        metavar="DIR",
        help="output folder, created if missing (default: %(default)s)",
    )
    parser.add_argument(
        "--n-partitions",
        type=positive_int,
        default=None,
        metavar="K",
        help=f"number of partitions k, one CNN each (default: {FULL['n_partitions']}; "
        f"{QUICK['n_partitions']} with --quick)",
    )
    parser.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help=f"training epochs per member (default: {FULL['epochs']}; {QUICK['epochs']} with "
        "--quick)",
    )
    parser.add_argument(
        "--spread",
        type=positive_int,
        default=1,
        metavar="D",
        help="Finite Aggregation spread d: each digit trains d of the k*d members "
        "(default: %(default)s, plain DPA)",
    )
    parser.add_argument(
        "--election",
        choices=("plurality", "runoff"),
        default="plurality",
        help="how the members' outputs are combined: plurality vote, or the run-off election "
        "of Rezaei et al. 2023 over the members' scores (default: %(default)s)",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help="torch device the members train on, e.g. cuda (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=seed, default=0, help="seeds the members (default: %(default)s)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"tiny setting for smoke tests: the first {QUICK['n_train']} training and "
        f"{QUICK['n_test']} test digits, and unless given, --n-partitions "
        f"{QUICK['n_partitions']} and --epochs {QUICK['epochs']}",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show a progress bar while the members train"
    )
    parser.set_defaults(func=run)
    return parser


def _check_device(name: str) -> None:
    """Refuse a torch device that does not exist or is not available here."""
    try:
        torch.zeros(1, device=torch.device(name))
    except (RuntimeError, AssertionError, ValueError) as exc:
        raise CLIError(
            f"--device {name!r} cannot be used here ({' '.join(str(exc).split())}); "
            "use --device cpu."
        ) from exc


def _table(radii, accuracy) -> str:
    lines = ["radius  certified_accuracy"]
    lines += [f"{int(r):>6}  {a:>18.4f}" for r, a in zip(radii, accuracy, strict=True)]
    return "\n".join(lines)


def _digits(quick: bool):
    from sklearn_certify.datasets import load_digits

    X, y = load_digits(shape="image", split="train")
    X_test, y_test = load_digits(shape="image", split="test")
    if quick:
        n, m = QUICK["n_train"], QUICK["n_test"]
        X, y, X_test, y_test = X[:n], y[:n], X_test[:m], y_test[:m]
    return X, y, X_test, y_test


def _settings(args) -> tuple[int, int]:
    defaults = QUICK if args.quick else FULL
    k = defaults["n_partitions"] if args.n_partitions is None else args.n_partitions
    epochs = defaults["epochs"] if args.epochs is None else args.epochs
    return k, epochs


def _fit_and_certify(clf, X, y, X_test):
    """Fit, certify ``X_test``; return the certificate and the fit and certify seconds."""
    start = time.perf_counter()
    clf.fit(X, y)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    cert = clf.certify(X_test)
    return cert, fit_s, time.perf_counter() - start


def _summary(args, k: int, epochs: int, n_train: int, cert, y_test, times) -> dict:
    from sklearn_certify.metrics import certified_accuracy, median_certified_radius

    median = median_certified_radius(y_test, cert)
    return {
        "method": "dpa" if args.spread == 1 else "finite_aggregation",
        "election": args.election,
        "n_partitions": k,
        "spread": args.spread,
        "epochs": epochs,
        "n_train": n_train,
        "n_test": len(cert),
        "unit": cert.unit,
        "clean_accuracy": certified_accuracy(y_test, cert),
        "median_certified_radius": None if np.isnan(median) else median,
        "fit_seconds": round(times[0], 2),
        "certify_seconds": round(times[1], 2),
        "seed": args.seed,
        "row_column": 'index into load_digits(split="test")',
    }


def run(args) -> int:
    """Run the demo.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options of the ``demo`` sub-command.

    Returns
    -------
    int
        Exit status 0 (errors raise :class:`~sklearn_certify.cli._parser.CLIError`).
    """
    from sklearn_certify import DPAClassifier
    from sklearn_certify.metrics import certified_accuracy_curve

    k, epochs = _settings(args)
    _check_device(args.device)
    X, y, X_test, y_test = _digits(args.quick)
    if k > X.shape[0]:
        raise CLIError(f"--n-partitions {k} is more than the {X.shape[0]} training digits.")
    paths = prepare_out_dir(args.out, CERTIFICATE_OUTPUTS, [])
    clf = DPAClassifier(
        make_digits_net(max_epochs=epochs, device=args.device),
        n_partitions=k,
        spread=args.spread,
        election=args.election,
        engine="vectorized",
        random_state=args.seed,
        verbose=int(args.verbose),
    )
    print(
        f"Training {k * args.spread} CNN members on {X.shape[0]} digits "
        f"({epochs} epochs each, vectorized engine, device={args.device}) ...",
        flush=True,
    )
    cert, *times = _fit_and_certify(clf, X, y, X_test)
    radii, accuracy = certified_accuracy_curve(y_test, cert)
    member_acc = float(np.mean(clf.predict_members(X_test) == y_test[:, None]))
    summary = _summary(args, k, epochs, X.shape[0], cert, y_test, times)
    summary["mean_member_accuracy"] = member_acc
    write_certificates(paths["certificates"], cert, np.arange(len(cert)), clf.classes_, y_test)
    title = curve_title(k, args.spread, args.election, "digits")
    write_curve(paths, radii, accuracy, summary, unit=cert.unit, title=title)
    print(_table(radii, accuracy))
    print(
        f"{accuracy_summary(y_test, cert)}; mean member accuracy {member_acc:.3f}; "
        f"fit {times[0]:.1f} s, certify {times[1]:.2f} s"
    )
    for path in paths.values():
        print(f"wrote {path}")
    return 0
