"""``python -m sklearn_certify bound``: Steinhardt et al. sphere/slab bound curve to CSV and PNG.

U* bounds the defender's poisoned **training** loss under the **oracle**
sphere+slab defence (built from the clean data), not the test loss; the printed
summary and the figure say so.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from sklearn_certify.cli._outputs import prepare_out_dir
from sklearn_certify.cli._parser import (
    CLIError,
    open_fraction,
    out_folder,
    percentile,
    poison_fraction,
    positive_float,
    positive_int,
    seed,
)
from sklearn_certify.cli._tables import (
    Table,
    check_input_file,
    integer_labels,
    load_csv,
    load_npz,
    random_split,
)

__all__ = ["BOUND_OUTPUTS", "PAPER_EPSILONS", "add_parser", "load_data", "run"]

PAPER_EPSILONS = (0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.1, 0.2, 0.3)
BUNDLED = "digits-1v7"
DEFAULT_TEST_SIZE = 0.25

#: Files written into ``--out``.
BOUND_OUTPUTS = {"csv": "bound_curve.csv", "png": "bound_curve.png"}

#: What U* is, printed above the table.
MEANING = (
    "U* is a certified upper bound on the poisoned TRAINING loss (the defender's mean {loss} "
    "loss on the n clean training rows plus round(epsilon*n) poison rows, divided by n) "
    "for every attack that passes the ORACLE sphere+slab defence (built from the clean "
    "data; Steinhardt, Koh & Liang 2017). It is not a bound on test loss; it approximates "
    "the test loss only under the paper's assumptions: the defence removes no clean points, "
    "the training set is large, and train and test losses are close."
)


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        default=BUNDLED,
        metavar="DATA",
        help=f"{BUNDLED!r} (bundled digits 1 vs 7: -1 is a 1, +1 a 7), or a .npz file with "
        "arrays X, y (optionally X_test, y_test), or a .csv file whose first line is a header "
        "(the label column is found by name, see --label-column); labels must be -1 and +1 "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--label-column",
        default=None,
        metavar="NAME",
        help=".csv only: header name of the label column (default: 'label'); columns are "
        "never picked by position",
    )
    parser.add_argument(
        "--test-size",
        type=open_fraction,
        default=None,
        metavar="FRACTION",
        help="fraction of the rows held out to measure the attack's test loss and error, when "
        "--data has no X_test: a stratified random split seeded by --seed, except for "
        f"{BUNDLED!r}, whose split has a fixed seed (default: {DEFAULT_TEST_SIZE})",
    )


def _add_bound_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--epsilons",
        type=poison_fraction,
        nargs="+",
        default=list(PAPER_EPSILONS),
        metavar="EPSILON",
        help="poison fractions, each in [0, 1): poison rows per clean training row "
        "(default: the paper's grid 0 0.01 ... 0.3)",
    )
    parser.add_argument(
        "--rho-sq",
        type=positive_float,
        default=0.8,
        help="squared radius of the defender's parameter ball ||w||^2 + b^2 <= rho_sq "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--percentile",
        type=percentile,
        default=70.0,
        help="the sphere and the slab keep this percentile of the clean rows' distances "
        "to their class centroid (default: %(default)s)",
    )
    parser.add_argument(
        "--max-iter",
        type=positive_int,
        default=2000,
        help="iterations T of the bound's online learner, at least round(epsilon * n) for "
        "every epsilon (one candidate poison row each); more give a smaller (tighter) U* "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--lr",
        type=positive_float,
        default=0.1,
        help="step size eta of the online learner (default: %(default)s)",
    )
    parser.add_argument(
        "--oracle",
        choices=("closed_form", "cvxpy"),
        default="closed_form",
        help="how the worst poison point inside the sphere+slab set is found: closed_form "
        "(exact, fast) or cvxpy (the same maximisation as a convex program, slower) "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--loss",
        choices=("hinge", "logistic", "squared_hinge"),
        default="hinge",
        help="the defender's convex margin loss, which U* bounds (default: %(default)s)",
    )
    parser.add_argument(
        "--learner",
        choices=("constrained", "linear_svc"),
        default="constrained",
        help="defender's model retrained on clean plus candidate poison rows to score the "
        "attack: constrained = the norm-constrained model solved exactly (cvxpy), "
        "linear_svc = LinearSVC tuned to that norm, as the paper's code (--loss hinge or "
        "squared_hinge only) (default: %(default)s)",
    )
    parser.add_argument(
        "--attack",
        choices=("iterates", "sampled"),
        default="iterates",
        help="the candidate attack's poison rows: iterates = the learner's last "
        "round(epsilon*n) worst points, as the paper; sampled = a random sample of them "
        "seeded by --seed, as the paper's code (default: %(default)s)",
    )


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``bound`` sub-command.

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
        "bound",
        help="upper bound on the poisoned training loss of linear models under the oracle "
        "sphere/slab defence",
        description=(
            "Compute the Steinhardt, Koh & Liang (2017) upper bound U* on the poisoned "
            "TRAINING loss of a norm-constrained linear model under the ORACLE sphere+slab "
            "defence (built from the clean data), with a candidate attack's losses and test "
            "error, for a grid of poison fractions. U* is not a bound on test loss. Labels "
            "must be -1/+1. Writes bound_curve.csv and bound_curve.png into the --out folder."
        ),
    )
    _add_data_options(parser)
    _add_bound_options(parser)
    parser.add_argument(
        "--seed",
        type=seed,
        default=0,
        help="seeds the --test-size split and the sampled attack (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=out_folder,
        default=Path("sklearn_certify_bound"),
        metavar="DIR",
        help="output folder, created if missing (default: %(default)s)",
    )
    parser.set_defaults(func=run)
    return parser


def _check_signs(y: np.ndarray, what: str, min_per_class: int) -> np.ndarray:
    classes = np.unique(y)
    if not np.all(np.isin(classes, (-1, 1))):
        shown = ", ".join(repr(c.item() if hasattr(c, "item") else c) for c in classes[:6])
        raise CLIError(
            f"--data: labels must be -1 and +1 (a binary problem), got {shown} among the "
            f"{what} rows; recode the label column or array."
        )
    for label in (-1, 1):
        count = int(np.sum(y == label))
        if count < min_per_class:
            raise CLIError(
                f"--data: the {what} rows hold {count} row(s) of class {label:+d}; each class "
                f"needs at least {min_per_class} to define the sphere and slab (a smaller "
                "--test-size leaves more training rows)."
            )
    return y.astype(np.int64)


def _file_tables(args) -> tuple[Table, Table | None]:
    path = Path(args.data)
    if not path.exists():
        raise CLIError(f"--data {args.data}: no such file (or use the bundled {BUNDLED!r}).")
    if check_input_file(path, "--data") == ".npz":
        if args.label_column is not None:
            raise CLIError("--label-column: only for .csv files; drop it.")
        train, test = load_npz(path, "--data", "X", "y", labels_required=True)
        if test is not None and test.y is None:
            raise CLIError(f"--data {path} has X_test but no y_test; save both or neither.")
        return train, test
    train = load_csv(path, "--data", args.label_column or "label", labels_required=True)
    return replace(train, y=integer_labels(train.y)[0]), None


def _bundled_tables(args, test_size: float) -> tuple[Table, Table]:
    from sklearn_certify.datasets import load_digits_1v7

    if args.label_column is not None:
        raise CLIError(f"--label-column: only for .csv files, not {BUNDLED!r}; drop it.")
    try:
        X, y = load_digits_1v7(split="train", test_size=test_size)
        X_test, y_test = load_digits_1v7(split="test", test_size=test_size)
    except ValueError as exc:
        raise CLIError(f"--test-size {test_size:g}: {exc}") from exc
    train = Table(X=X, y=y, names=None, source=BUNDLED, row_meaning="")
    return train, replace(train, X=X_test, y=y_test)


def load_data(args):
    """Return the training and held-out rows for ``--data``, and where the held-out rows are.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options (``data``, ``label_column``, ``test_size``, ``seed``).

    Returns
    -------
    X, y, X_test, y_test : ndarray
        Training and held-out rows, labels in {-1, +1}.
    held_out : str
        Which rows are held out, for the printed summary.
    """
    test_size = DEFAULT_TEST_SIZE if args.test_size is None else args.test_size
    if args.data == BUNDLED:
        train, test = _bundled_tables(args, test_size)
        held_out = f"the fixed stratified {test_size:g} split of {BUNDLED} (--test-size)"
    else:
        train, test = _file_tables(args)
        held_out = test.source if test is not None else ""
    if test is None:
        fit, rows, how = random_split(train.y, test_size, args.seed)
        held_out = (
            f"a {how} {rows.size} of the {train.y.shape[0]} rows of {train.source} "
            f"(--test-size {test_size:g}, --seed {args.seed})"
        )
        test = replace(train, X=train.X[rows], y=train.y[rows])
        train = replace(train, X=train.X[fit], y=train.y[fit])
    elif args.test_size is not None and args.data != BUNDLED:
        raise CLIError("--test-size: only for splitting --data when it has no X_test; drop it.")
    y = _check_signs(train.y, "training", 2)
    return train.X, y, test.X, _check_signs(test.y, "held-out", 0), held_out


def _check_options(args) -> None:
    """Refuse option combinations the bound or the attack's scoring cannot run."""
    if args.learner == "linear_svc" and args.loss == "logistic":
        raise CLIError(
            "--learner linear_svc trains LinearSVC, which has no --loss logistic; use --loss "
            "hinge or squared_hinge, or --learner constrained (any loss)."
        )


def _check_epsilons(args, n: int) -> None:
    """Refuse every epsilon whose poison rows exceed --max-iter, before any is computed."""
    from sklearn_certify.convex import n_poison_points

    needed = {eps: n_poison_points(eps, n) for eps in args.epsilons}
    too_many = {eps: k for eps, k in needed.items() if k > args.max_iter}
    if too_many:
        shown = " ".join(f"{eps:g}" for eps in too_many)
        most = max(too_many.values())
        raise CLIError(
            f"--epsilons {shown} with --max-iter {args.max_iter}: epsilon asks for "
            f"round(epsilon * {n}) poison rows ({n} training rows), up to {most}, and the "
            "bound's online learner yields one per iteration; raise --max-iter to at least "
            f"{most} or use smaller --epsilons."
        )


def _print_curve(curve, loss: str) -> None:
    print(MEANING.format(loss=loss))
    print(
        f"{'epsilon':>8} {'eps_eff':>8} {'U*':>9} {'atk train':>10} {'atk test':>10} "
        f"{'test err':>9}"
    )
    for i in range(len(curve.epsilons)):
        print(
            f"{curve.epsilons[i]:8.3f} {curve.epsilons_effective[i]:8.4f} "
            f"{curve.upper_bounds[i]:9.5f} {curve.attack_total_train_loss[i]:10.5f} "
            f"{curve.attack_test_loss[i]:10.5f} {curve.attack_test_error[i]:9.4f}"
        )
    above = curve.attack_test_loss > curve.upper_bounds
    if np.any(above):
        shown = ", ".join(f"{e:g}" for e in curve.epsilons[above])
        print(
            f"At epsilon {shown} the attacked model's test loss exceeds U*: U* bounds the "
            "training loss, not the test loss."
        )


def run(args) -> int:
    """Check everything, compute the curve, write the CSV and the PNG, print the table.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options of the ``bound`` sub-command.

    Returns
    -------
    int
        Exit status 0 (errors raise :class:`~sklearn_certify.cli._parser.CLIError`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sklearn_certify.convex import SphereSlabDefense, bound_curve
    from sklearn_certify.plotting import plot_bound_curve

    _check_options(args)
    X, y, X_test, y_test, held_out = load_data(args)
    _check_epsilons(args, X.shape[0])
    inputs = [] if args.data == BUNDLED else [("--data", Path(args.data))]
    paths = prepare_out_dir(args.out, BOUND_OUTPUTS, inputs)
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
    curve.to_csv(paths["csv"])
    name = Path(args.data).name
    title = f"U* bounds the poisoned training loss\n(oracle sphere+slab defence, {name})"
    ax = plot_bound_curve(curve, title=title)
    ax.figure.savefig(paths["png"], dpi=120)
    plt.close(ax.figure)
    _print_curve(curve, args.loss)
    print(f"Test loss and error are measured on {held_out}.")
    for path in paths.values():
        print(f"wrote {path}")
    return 0
