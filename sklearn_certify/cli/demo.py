"""``python -m sklearn_certify demo``: DPA with a small CNN on the bundled digits.

Trains :class:`~sklearn_certify.DPAClassifier` with a small skorch CNN per
partition through the vectorized ensemble engine, certifies the test split,
prints the certified-accuracy table (attack size 0..max) and writes it as CSV
and JSON together with a PNG curve and the per-sample certificates.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["DigitsCNN", "add_parser", "make_digits_net", "run"]


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
    """Register the ``demo`` sub-command."""
    parser = subparsers.add_parser(
        "demo",
        help="DPA with a small CNN on the bundled digits: certified-accuracy table and figure.",
        description=(
            "Train DPAClassifier (one small skorch CNN per partition, vectorized engine) on "
            "scikit-learn's bundled digits, certify the test split and write the certified "
            "accuracy against the number of poisoned training samples (CSV, JSON, PNG)."
        ),
    )
    parser.add_argument(
        "--out",
        default="sklearn_certify_demo",
        type=Path,
        help="output folder (created if missing; default: %(default)s)",
    )
    parser.add_argument(
        "--n-partitions", type=int, default=30, help="number of partitions k (default: %(default)s)"
    )
    parser.add_argument(
        "--epochs", type=int, default=30, help="training epochs per member (default: %(default)s)"
    )
    parser.add_argument(
        "--spread",
        type=int,
        default=1,
        help="Finite Aggregation spread d (default: %(default)s, plain DPA)",
    )
    parser.add_argument(
        "--election",
        choices=("plurality", "runoff"),
        default="plurality",
        help="vote aggregation (default: %(default)s)",
    )
    parser.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random_state (default: %(default)s)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny setting for smoke tests: 10 partitions, 3 epochs, 300 rows",
    )
    parser.set_defaults(func=run)
    return parser


def _table(radii, accuracy) -> str:
    lines = ["radius  certified_accuracy"]
    lines += [f"{int(r):>6}  {a:>18.4f}" for r, a in zip(radii, accuracy, strict=True)]
    return "\n".join(lines)


def write_outputs(out: Path, cert, y_true, radii, accuracy, summary: dict, *, title: str) -> dict:
    """Write ``certified_accuracy.csv/.json/.png`` and ``certificates.csv`` into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sklearn_certify.plotting import plot_certified_accuracy

    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": out / "certified_accuracy.csv",
        "json": out / "certified_accuracy.json",
        "png": out / "certified_accuracy.png",
        "certificates": out / "certificates.csv",
    }
    with paths["csv"].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["radius", "certified_accuracy"])
        writer.writerows([int(r), float(a)] for r, a in zip(radii, accuracy, strict=True))
    payload = dict(summary)
    payload["curve"] = {
        "radius": [int(r) for r in radii],
        "certified_accuracy": [float(a) for a in accuracy],
    }
    paths["json"].write_text(json.dumps(payload, indent=2))
    columns = cert.to_dict()
    names = list(columns)
    with paths["certificates"].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["row", "label", *names])
        for i in range(len(cert)):
            writer.writerow([i, _plain(y_true[i]), *(_plain(columns[n][i]) for n in names)])
    ax = plot_certified_accuracy(
        (radii, accuracy), xlabel=f"poisoned training {cert.unit}", title=title
    )
    ax.figure.tight_layout()
    ax.figure.savefig(paths["png"], dpi=120)
    plt.close(ax.figure)
    return paths


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def run(args) -> int:
    """Run the demo; returns the exit status."""
    from sklearn_certify import DPAClassifier
    from sklearn_certify.datasets import load_digits
    from sklearn_certify.metrics import certified_accuracy_curve, median_certified_radius

    k, epochs = args.n_partitions, args.epochs
    X, y = load_digits(shape="image", split="train")
    X_test, y_test = load_digits(shape="image", split="test")
    if args.quick:
        k, epochs = min(k, 5), min(epochs, 10)
        X, y, X_test, y_test = X[:400], y[:400], X_test[:100], y_test[:100]
    net = make_digits_net(max_epochs=epochs, device=args.device)
    clf = DPAClassifier(
        net,
        n_partitions=k,
        spread=args.spread,
        election=args.election,
        engine="vectorized",
        random_state=args.seed,
    )
    print(
        f"Training {k * args.spread} CNN members on {X.shape[0]} digits "
        f"({epochs} epochs each, vectorized engine, device={args.device}) ...",
        flush=True,
    )
    start = time.perf_counter()
    clf.fit(X, y)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    cert = clf.certify(X_test)
    certify_s = time.perf_counter() - start
    radii, accuracy = certified_accuracy_curve(y_test, cert)
    clean = float(np.mean(cert.prediction == y_test))
    median = median_certified_radius(y_test, cert)
    members = clf.predict_members(X_test)
    member_acc = float(np.mean(members == y_test[:, None]))
    summary = {
        "method": "dpa" if args.spread == 1 else "finite_aggregation",
        "election": args.election,
        "n_partitions": k,
        "spread": args.spread,
        "epochs": epochs,
        "n_train": int(X.shape[0]),
        "n_test": int(X_test.shape[0]),
        "unit": cert.unit,
        "clean_accuracy": clean,
        "mean_member_accuracy": member_acc,
        "median_certified_radius": None if np.isnan(median) else median,
        "fit_seconds": round(fit_s, 2),
        "certify_seconds": round(certify_s, 2),
        "seed": args.seed,
    }
    print(_table(radii, accuracy))
    print(
        f"clean accuracy {clean:.3f}, mean member accuracy {member_acc:.3f}, "
        f"median certified radius {summary['median_certified_radius']} {cert.unit}; "
        f"fit {fit_s:.1f} s, certify {certify_s:.2f} s"
    )
    paths = write_outputs(
        args.out, cert, y_test, radii, accuracy, summary, title=f"DPA on digits, k={k}"
    )
    for kind, path in paths.items():
        print(f"wrote {kind}: {path}")
    return 0
