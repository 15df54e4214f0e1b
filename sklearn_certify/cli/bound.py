"""``python -m sklearn_certify bound``: Steinhardt et al. sphere/slab bound curve to CSV and PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

PAPER_EPSILONS = (0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.1, 0.2, 0.3)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``bound`` sub-command."""
    parser = subparsers.add_parser(
        "bound",
        help="certified upper bound curve for linear models under the sphere/slab defence",
        description=(
            "Compute the Steinhardt, Koh & Liang (2017) upper bound U* on the poisoned "
            "training hinge loss of a norm-constrained linear SVM under the oracle "
            "sphere+slab defence, the candidate attack's losses and test error, for a grid "
            "of poison fractions. Labels must be -1/+1. Writes bound_curve.csv and "
            "bound_curve.png to --out."
        ),
    )
    parser.add_argument(
        "--data",
        default="digits-1v7",
        help="'digits-1v7' (bundled), or a .npz with arrays X, y (optionally X_test, y_test), "
        "or a .csv with a header whose label column is --label-column (default: last).",
    )
    parser.add_argument("--label-column", default=None, help="label column of a .csv file")
    parser.add_argument(
        "--epsilons",
        type=float,
        nargs="+",
        default=list(PAPER_EPSILONS),
        help="poison fractions in [0, 1) (default: the paper's grid 0 .. 0.3)",
    )
    parser.add_argument(
        "--rho-sq", type=float, default=0.8, help="squared radius of ||w||^2 + b^2 (default 0.8)"
    )
    parser.add_argument(
        "--percentile",
        type=float,
        default=70.0,
        help="sphere/slab percentile of the clean data (default 70)",
    )
    parser.add_argument("--max-iter", type=int, default=2000, help="iterations T (default 2000)")
    parser.add_argument("--lr", type=float, default=0.1, help="step size eta (default 0.1)")
    parser.add_argument("--oracle", choices=("closed_form", "cvxpy"), default="closed_form")
    parser.add_argument("--loss", choices=("hinge", "logistic", "squared_hinge"), default="hinge")
    parser.add_argument(
        "--learner",
        choices=("constrained", "linear_svc"),
        default="constrained",
        help="defender's model used to score the candidate attack",
    )
    parser.add_argument("--attack", choices=("iterates", "sampled"), default="iterates")
    parser.add_argument(
        "--test-size",
        type=float,
        default=0.25,
        help="held-out fraction when the data has no test split (default 0.25)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", default=".", help="output folder (default: current folder)")
    parser.set_defaults(func=run)
    return parser


def _split(X, y, test_size, seed):
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_size < 1.0:
        raise SystemExit(f"--test-size must lie strictly between 0 and 1, got {test_size}.")
    return train_test_split(X, y, test_size=test_size, stratify=y, random_state=seed)


def load_data(spec: str, *, label_column=None, test_size=0.25, seed=0):
    """Return ``X, y, X_test, y_test`` for the ``--data`` argument."""
    if spec == "digits-1v7":
        from sklearn_certify.datasets import load_digits_1v7

        X, y = load_digits_1v7(split="train", test_size=test_size)
        X_test, y_test = load_digits_1v7(split="test", test_size=test_size)
        return X, y, X_test, y_test
    path = Path(spec)
    if not path.is_file():
        raise SystemExit(f"--data: no such file {spec!r} (or use 'digits-1v7').")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            missing = {"X", "y"} - set(data.files)
            if missing:
                raise SystemExit(f"--data: {spec} lacks arrays {sorted(missing)}.")
            X, y = data["X"], data["y"]
            if "X_test" in data.files and "y_test" in data.files:
                return X, y, data["X_test"], data["y_test"]
        X, X_test, y, y_test = _split(X, y, test_size, seed)
        return X, y, X_test, y_test
    if path.suffix == ".csv":
        import csv

        with open(path, newline="") as handle:
            header = next(csv.reader(handle))
        table = np.genfromtxt(path, delimiter=",", skip_header=1, dtype=np.float64, ndmin=2)
        column = len(header) - 1 if label_column is None else None
        if column is None:
            if label_column not in header:
                raise SystemExit(f"--label-column {label_column!r} is not in the header {header}.")
            column = header.index(label_column)
        y = table[:, column]
        X = np.delete(table, column, axis=1)
        X, X_test, y, y_test = _split(X, y, test_size, seed)
        return X, y, X_test, y_test
    raise SystemExit(f"--data: expected 'digits-1v7', a .npz or a .csv file, got {spec!r}.")


def run(args) -> int:
    """Compute the curve, print it, write the CSV and the PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sklearn_certify.convex import SphereSlabDefense, bound_curve
    from sklearn_certify.plotting import plot_bound_curve

    X, y, X_test, y_test = load_data(
        args.data, label_column=args.label_column, test_size=args.test_size, seed=args.seed
    )
    curve = bound_curve(
        X,
        y,
        args.epsilons,
        rho_sq=args.rho_sq,
        X_test=X_test,
        y_test=y_test,
        defense=SphereSlabDefense(percentile=args.percentile),
        lr=args.lr,
        max_iter=args.max_iter,
        oracle=args.oracle,
        loss=args.loss,
        attack=args.attack,
        learner=args.learner,
        random_state=args.seed,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = out / "bound_curve.csv", out / "bound_curve.png"
    curve.to_csv(csv_path)
    ax = plot_bound_curve(curve, title=f"sphere+slab bound, {args.data}")
    ax.figure.tight_layout()
    ax.figure.savefig(png_path, dpi=120)
    plt.close(ax.figure)
    print(
        f"{'epsilon':>8} {'eps_eff':>8} {'U*':>9} {'atk total':>10} {'test loss':>10} "
        f"{'test err':>9}"
    )
    for i in range(len(curve.epsilons)):
        print(
            f"{curve.epsilons[i]:8.3f} {curve.epsilons_effective[i]:8.4f} "
            f"{curve.upper_bounds[i]:9.5f} {curve.attack_total_train_loss[i]:10.5f} "
            f"{curve.attack_test_loss[i]:10.5f} {curve.attack_test_error[i]:9.4f}"
        )
    print(f"wrote {csv_path} and {png_path}")
    return 0
