"""``python -m sklearn_certify evaluate``: a certified classifier under attack, budget by budget.

Fits the certified classifier on the clean training rows (the bundled digits, or a ``.csv`` /
``.npz`` file), then for each of ``--budgets`` poisons them with ``--attack``, refits with the
same seed and compares the predictions with the clean certificate
(:func:`sklearn_certify.attacks.evaluate_under_attack`). Writes into the ``--out`` folder
``attack_table.csv`` (one line per budget), ``attack_table.json`` (the settings and the same
rows) and ``attack_vs_certificate.png``. Every option is checked before any training.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import numpy as np

from sklearn_certify.cli._methods import (
    METHODS,
    add_method_options,
    build,
    check_fit,
    described,
    method_params,
)
from sklearn_certify.cli._outputs import prepare_out_dir
from sklearn_certify.cli._parser import (
    CLIError,
    n_jobs,
    non_negative_int,
    open_fraction,
    out_folder,
    positive_float,
    positive_int,
    seed,
)
from sklearn_certify.cli._tables import (
    check_input_file,
    integer_labels,
    load_csv,
    load_npz,
    random_split,
)

__all__ = ["ATTACKS", "EVALUATE_OUTPUTS", "add_parser", "run"]

#: The attacks ``--attack`` names.
ATTACKS = ("backdoor", "label_flip", "partition_insertion", "sphere_slab", "feature_collision")

#: Files written into ``--out``.
EVALUATE_OUTPUTS = {
    "csv": "attack_table.csv",
    "json": "attack_table.json",
    "png": "attack_vs_certificate.png",
}

#: Options that apply to some attacks only.
ATTACK_OPTIONS = {
    "--trigger": ("backdoor",),
    "--variant": ("backdoor",),
    "--poison-mode": ("backdoor",),
    "--strength": ("backdoor",),
    "--strategy": ("label_flip",),
    "--rho-sq": ("sphere_slab",),
    "--eps-linf": ("feature_collision",),
    "--eps-l2": ("feature_collision",),
}

BUNDLED = "digits"
DEFAULT_LABEL_COLUMN = "label"
DEFAULT_OUT = Path("sklearn_certify_evaluate")
DEFAULT_TEST_SIZE = 0.25
#: Test points a per-target attack is evaluated on unless --n-test says otherwise: it refits
#: the classifier once per point and budget.
DEFAULT_N_TARGETS = 20
#: Backdoor target label when --target-label is not given (the RAB paper's choice).
DEFAULT_BACKDOOR_TARGET = 0

#: Columns of the printed table: (table column, header, format).
_PRINTED = (
    ("budget", "budget", "{:>6}"),
    ("cost", "cost", "{:>5}"),
    ("clean_accuracy", "clean_acc", "{:>9.3f}"),
    ("attack_success", "success", "{:>7.3f}"),
    ("certified_accuracy", "cert_acc", "{:>8.3f}"),
    ("n_certified", "n_cert", "{:>6}"),
    ("certified_changed", "cert_changed", "{:>12.3f}"),
    ("n_tolerated", "tolerated", "{:>9}"),
)


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        default=BUNDLED,
        metavar="DATA",
        help=f"{BUNDLED!r}: scikit-learn's bundled 8x8 digits with their fixed train/test "
        "split; or a .csv file whose first line is a header (the label column is found by "
        "name, see --label-column; every other column is a numeric feature); or a .npz file "
        "with arrays X, y and optionally X_test, y_test (default: %(default)s)",
    )
    parser.add_argument(
        "--label-column",
        default=None,
        metavar="NAME",
        help=f".csv only: header name of the label column (default: {DEFAULT_LABEL_COLUMN!r}); "
        "columns are never picked by position",
    )
    parser.add_argument(
        "--digits",
        type=non_negative_int,
        nargs="+",
        default=None,
        metavar="DIGIT",
        help=f"--data {BUNDLED} only: keep these digits, e.g. --digits 1 7 for the two-class "
        "problem sphere_slab needs (default: all ten)",
    )
    parser.add_argument(
        "--test-size",
        type=open_fraction,
        default=None,
        metavar="FRACTION",
        help="files without test rows only: fraction of the rows held out at random (seeded "
        f"by --seed) as test rows (default: {DEFAULT_TEST_SIZE})",
    )
    parser.add_argument(
        "--n-test",
        type=positive_int,
        default=None,
        metavar="N",
        help="evaluate on the first N test rows (default: all of them for backdoor, "
        f"sphere_slab and random label_flip; the first {DEFAULT_N_TARGETS} for "
        "partition_insertion and nearest label_flip, which refit once per row and budget)",
    )


def _add_attack_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--attack",
        required=True,
        choices=ATTACKS,
        help="backdoor = a trigger on poisoned training rows and on the test inputs "
        "(budget: poisoned rows); label_flip = flipped training labels (budget: flips); "
        "partition_insertion = near-copies of each test row hashed into the partitions that "
        "decide its vote (budget: inserted rows); sphere_slab = the candidate attack of the "
        "sphere/slab bound (budget: inserted rows; two classes); feature_collision = rows of "
        "another class moved, within --eps-linf / --eps-l2 each, towards each test row "
        "(labels kept; budget: poisoned rows)",
    )
    parser.add_argument(
        "--budgets",
        required=True,
        type=non_negative_int,
        nargs="+",
        metavar="B",
        help="attack sizes to evaluate, in the attack's unit (see --attack), e.g. 0 5 10 20",
    )
    parser.add_argument(
        "--target-label",
        default=None,
        metavar="LABEL",
        help="the label the attack pushes predictions to (backdoor default: "
        f"{DEFAULT_BACKDOOR_TARGET}; label_flip default: a random other label, or for "
        "--strategy nearest the runner-up of the vote; partition_insertion default: the "
        "runner-up of the vote; feature_collision default: the label of the nearest "
        "training row of another class than the test row's nearest); not for sphere_slab",
    )
    parser.add_argument(
        "--trigger",
        choices=("four_pixel", "one_pixel", "blend"),
        default=None,
        help="backdoor only: the RAB paper's four-pixel or one-pixel pattern near the "
        "bottom-right corner, or a fixed Gaussian blend over the whole image, with l2 norm "
        "--strength (default: four_pixel)",
    )
    parser.add_argument(
        "--variant",
        choices=("dirty_label", "clean_label"),
        default=None,
        help="backdoor only: dirty_label poisons rows of other classes and relabels them; "
        "clean_label poisons rows of the target class and keeps their labels (default: "
        "dirty_label, or clean_label for a method whose radius does not count changed "
        "labels, such as rab)",
    )
    parser.add_argument(
        "--poison-mode",
        choices=("insert", "modify"),
        default=None,
        help="backdoor only: insert the triggered rows as new rows (one inserted row each), "
        "or replace the rows they come from (one deleted and one inserted row each) "
        "(default: insert, or modify for a method whose radius does not count inserted "
        "rows, such as rab)",
    )
    parser.add_argument(
        "--strength",
        type=positive_float,
        default=None,
        help="backdoor only: l2 norm of the trigger in feature units, before clipping to "
        "[0, 1] (default: 1.0)",
    )
    parser.add_argument(
        "--strategy",
        choices=("random", "nearest"),
        default=None,
        help="label_flip only: flip random rows, or, for each test row, the rows nearest to "
        "it, one per partition first (default: random)",
    )
    parser.add_argument(
        "--rho-sq",
        type=positive_float,
        default=None,
        help="sphere_slab only: squared radius of the linear model's parameter ball "
        "||w||^2 + b^2 <= rho_sq in the bound that finds the attack (default: 0.8)",
    )
    parser.add_argument(
        "--eps-linf",
        type=positive_float,
        default=None,
        help="feature_collision only: largest change of one feature of a poisoned row "
        "(default: 0.1)",
    )
    parser.add_argument(
        "--eps-l2",
        type=positive_float,
        default=None,
        help="feature_collision only: largest l2 norm of the change of a poisoned row "
        "(default: none)",
    )


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``evaluate`` sub-command.

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
        "evaluate",
        help="attack a certified method at several budgets and check its certificate holds",
        description=(
            "Fit a certified classifier on clean training rows, poison them with --attack at "
            "each of --budgets, refit with the same seed and write into the --out folder, per "
            "budget, the clean accuracy, the attack's success, the certified accuracy at "
            "that budget and the fraction of certified predictions the attack changed, which "
            "must be 0 for DPA and within the binomial tolerance of alpha for the smoothing "
            "methods (attack_table.csv, .json and attack_vs_certificate.png)."
        ),
    )
    _add_data_options(parser)
    add_method_options(parser)
    _add_attack_options(parser)
    parser.add_argument(
        "--on-violation",
        choices=("warn", "error"),
        default="warn",
        help="when the attack changes more certified predictions than the certificate "
        "tolerates (none for dpa): print a warning, or also exit with status 1 once the "
        "outputs are written (default: %(default)s)",
    )
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
        help="seeds the members (the same for the clean and every poisoned fit), the attack "
        "and the --test-size split (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=out_folder,
        default=DEFAULT_OUT,
        metavar="DIR",
        help="output folder, created if missing (default: %(default)s)",
    )
    parser.set_defaults(func=run)
    return parser


# ---------------------------------------------------------------------- checks
def _given(args, option: str) -> bool:
    return getattr(args, option[2:].replace("-", "_")) is not None


def _check_attack_options(args) -> None:
    """Refuse options of other attacks and attacks outside the threat model."""
    for option, attacks in ATTACK_OPTIONS.items():
        if _given(args, option) and args.attack not in attacks:
            raise CLIError(f"{option} applies to --attack {attacks[0]} only; drop it.")
    if args.attack == "sphere_slab" and args.target_label is not None:
        raise CLIError("--target-label does not apply to --attack sphere_slab; drop it.")
    if args.digits is not None and args.data != BUNDLED:
        raise CLIError(f"--digits applies to --data {BUNDLED} only; drop it.")


def _load(args):
    """Training and test rows (features, labels) and where they come from."""
    if args.data == BUNDLED:
        from sklearn_certify.datasets import load_digits

        if args.test_size is not None:
            raise CLIError(f"--test-size: --data {BUNDLED} has a fixed test split; drop it.")
        if args.label_column is not None:
            raise CLIError(f"--label-column: only for .csv files, not --data {BUNDLED}; drop it.")
        try:
            X, y = load_digits(digits=args.digits, split="train")
            X_test, y_test = load_digits(digits=args.digits, split="test")
        except ValueError as exc:
            raise CLIError(f"--digits: {exc}") from exc
        return X, y, X_test, y_test, f"the bundled digits ({X.shape[0]} training rows)"
    path = Path(args.data)
    kind = check_input_file(path, "--data")
    if kind == ".csv":
        label = args.label_column or DEFAULT_LABEL_COLUMN
        train, test = load_csv(path, "--data", label, labels_required=True), None
    else:
        if args.label_column is not None:
            raise CLIError("--label-column: only for .csv files; drop it.")
        train, test = load_npz(path, "--data", "X", "y", labels_required=True)
    if test is not None:
        if args.test_size is not None:
            raise CLIError(f"--test-size: --data {path} holds its own test rows; drop it.")
        if test.y is None:
            raise CLIError(f"--data {path}: X_test has no labels (y_test); evaluation needs them.")
        y, y_test = integer_labels(train.y, test.y)
        return train.X, y, test.X, y_test, f"{path.name}"
    y = integer_labels(train.y)[0]
    test_size = DEFAULT_TEST_SIZE if args.test_size is None else args.test_size
    fit_rows, test_rows, _ = random_split(y, test_size, args.seed)
    return (
        train.X[fit_rows],
        y[fit_rows],
        train.X[test_rows],
        y[test_rows],
        f"{path.name} ({test_rows.size} rows held out at random, --seed {args.seed})",
    )


def _target_label(args, y):
    if args.target_label is None:
        return DEFAULT_BACKDOOR_TARGET if args.attack == "backdoor" else None
    text = args.target_label
    label = (
        int(text) if np.issubdtype(y.dtype, np.integer) and text.lstrip("+-").isdigit() else text
    )
    if label not in set(np.unique(y).tolist()):
        shown = ", ".join(str(v) for v in np.unique(y)[:12])
        raise CLIError(f"--target-label {text} is not a training label (labels: {shown}).")
    return label


def _backdoor(args, target, y, unit: str):
    """The backdoor; --variant and --poison-mode default to changes the certificate counts."""
    from sklearn_certify.attacks import BackdoorAttack
    from sklearn_certify.attacks._base import measures

    if target is None or target not in set(np.unique(y).tolist()):
        raise CLIError(
            f"--attack backdoor targets label {target}, which the training rows do not "
            "have; choose one with --target-label."
        )
    variant = "dirty_label" if measures(unit, {"labels"}) else "clean_label"
    mode = "insert" if measures(unit, {"rows"}) else "modify"
    return BackdoorAttack(
        args.trigger or "four_pixel",
        target_label=target,
        variant=args.variant or variant,
        mode=args.poison_mode or mode,
        strength=1.0 if args.strength is None else args.strength,
        random_state=args.seed,
    )


def _attack(args, y, unit: str):
    from sklearn_certify import attacks

    target = _target_label(args, y)
    if args.attack == "backdoor":
        return _backdoor(args, target, y, unit)
    if args.attack == "label_flip":
        return attacks.LabelFlipAttack(
            args.strategy or "random", target_label=target, random_state=args.seed
        )
    if args.attack == "partition_insertion":
        return attacks.PartitionInsertionAttack(target_label=target, random_state=args.seed)
    if args.attack == "feature_collision":
        return attacks.FeatureCollisionAttack(
            base_label=target,
            eps_linf=0.1 if args.eps_linf is None else args.eps_linf,
            eps_l2=args.eps_l2,
            random_state=args.seed,
        )
    return attacks.SphereSlabAttack(
        rho_sq=0.8 if args.rho_sq is None else args.rho_sq, random_state=args.seed
    )


def _check_classes(args, y) -> None:
    """Refuse training rows of one label, or of more than two for sphere_slab."""
    labels = np.unique(y)
    if labels.size < 2:
        hint = "keep at least two --digits" if args.data == BUNDLED else "add rows of another label"
        raise CLIError(
            f"--data {args.data}: every training row has label {labels[0].item()!r}; an attack "
            f"and a certificate need at least two labels: {hint}."
        )
    if args.attack == "sphere_slab" and labels.size != 2:
        raise CLIError(
            f"--attack sphere_slab needs two classes, the training rows have {labels.size}; "
            f"with --data {BUNDLED} use e.g. --digits 1 7."
        )


def _test_rows(args, attack, X_test, y_test):
    """The first --n-test test rows, refused when the attack is evaluated on none of them."""
    n_test = args.n_test or (DEFAULT_N_TARGETS if attack.per_target else X_test.shape[0])
    if attack.evaluation_rows(y_test[:n_test]).size == 0:
        label = attack.target_label
        if attack.evaluation_rows(y_test).size == 0:
            raise CLIError(
                f"--attack {args.attack} is evaluated on test rows of other labels than its "
                f"target label {label} (--target-label), and every test row has label {label}: "
                "choose another --target-label, or give test rows of other labels."
            )
        raise CLIError(
            f"--n-test {n_test}: the first {n_test} test rows all have label {label}, the "
            f"target label (--target-label), and --attack {args.attack} is evaluated on rows "
            "of other labels; raise --n-test."
        )
    return X_test[:n_test], y_test[:n_test]


def _check_evaluation(args, classifier, attack, data) -> None:
    """The harness's own checks of every budget and of the pairing, before any training."""
    from sklearn_certify.attacks._evaluate import check_evaluation

    try:
        check_evaluation(classifier, attack, *data, args.budgets)
    except (TypeError, ValueError) as exc:
        budgets = " ".join(str(b) for b in args.budgets)
        raise CLIError(f"--attack {args.attack} --budgets {budgets}: {exc}") from exc


# ---------------------------------------------------------------------- outputs
def _plain(value):
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and math.isnan(value) else value


def _write(paths, rows, settings: dict, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sklearn_certify.plotting import plot_attack_vs_certificate

    with paths["csv"].open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    payload = dict(settings, rows=[{k: _plain(v) for k, v in row.items()} for row in rows])
    paths["json"].write_text(json.dumps(payload, indent=2))
    ax = plot_attack_vs_certificate(rows, title=title)
    ax.figure.savefig(paths["png"], dpi=120)
    plt.close(ax.figure)


def _table(rows) -> str:
    lines = ["  ".join(header for _, header, _ in _PRINTED)]
    for row in rows:
        cells = []
        for name, header, fmt in _PRINTED:
            value = row[name]
            if isinstance(value, float) and math.isnan(value):
                cells.append(f"{'-':>{len(header)}}")
            elif name == "cost" and isinstance(value, float):
                cells.append(f"{value:>5.3f}")
            else:
                cells.append(fmt.format(value))
        lines.append("  ".join(cells))
    return "\n".join(lines)


def run(args) -> int:
    """Check everything, evaluate the attack at each budget, write and print the table.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options of the ``evaluate`` sub-command.

    Returns
    -------
    int
        0, or 1 when the attack changed more certified predictions than the certificate
        tolerates and ``--on-violation error`` (user errors raise
        :class:`~sklearn_certify.cli._parser.CLIError`).
    """
    from sklearn_certify.attacks import evaluate_under_attack

    _check_attack_options(args)
    params = method_params(args)
    X, y, X_test, y_test, source = _load(args)
    _check_classes(args, y)
    attack = _attack(args, y, METHODS[args.method].unit(**params))
    X_test, y_test = _test_rows(args, attack, X_test, y_test)
    classifier = build(args, params)
    check_fit(classifier, X, y, args.method)
    _check_evaluation(args, classifier, attack, (X, y, X_test, y_test))
    inputs = [] if args.data == BUNDLED else [("--data", Path(args.data))]
    paths = prepare_out_dir(args.out, EVALUATE_OUTPUTS, inputs)
    method, line = described(args, params)
    print(f"{args.attack} against {line} on {source}; {X_test.shape[0]} test rows.", flush=True)
    rows = evaluate_under_attack(
        classifier, attack, X, y, X_test, y_test, args.budgets, on_violation="warn"
    )
    settings = {
        "attack": args.attack,
        "attack_params": {k: _plain(v) for k, v in attack.get_params().items()},
        **method,
        "base": args.base,
        "seed": args.seed,
        "data": source,
        "n_test": int(X_test.shape[0]),
    }
    _write(paths, rows, settings, f"{args.attack} vs {method['estimator']}")
    print(_table(rows))
    rule = (
        "cert_changed must be 0"
        if METHODS[args.method].exact
        else "at most 'tolerated' certified predictions may change (alpha's binomial tolerance)"
    )
    print(
        f"budget unit: {rows[0]['budget_unit']}; cost and certificate radius unit: "
        f"{rows[0]['radius_unit']}. {rule} (- where nothing is certified)."
    )
    for path in paths.values():
        print(f"wrote {path}")
    violated = [row["budget"] for row in rows if row["violation"]]
    if violated and args.on_violation == "error":
        print(
            f"error: --on-violation error: {args.attack} changed certified predictions at "
            f"budget(s) {violated}.",
            file=sys.stderr,
        )
        return 1
    return 0
