"""``python -m sklearn_certify demo``: every certificate family side by side on the bundled digits.

Fits four certified classifiers on scikit-learn's bundled digits and certifies
their test digits: DPA (one small skorch CNN per partition, vectorized engine),
RAB (training-set smoothing), denoised smoothing (the bundled DDPM denoiser, on
the digits it never saw) and test-time smoothing (Cohen et al.). It prints one
table, family by family: what the radius counts, whether it holds exactly or
with probability ``1 - alpha``, and the certified accuracy at reference radii;
and writes into the ``--out`` folder that table (``families.csv``), the
certified-accuracy curves (``certified_accuracy.csv``, ``.json``), one figure
with a panel per family (``certified_accuracy.png``; the radii have different
units, so no two families share an axis) and the per-sample certificates of
each family (``certificates_<family>.csv``, with the metadata file
``certificates_<family>.meta.json`` that says what they certify).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch

from sklearn_certify.cli._families import (
    ALPHA,
    FAMILIES,
    build_estimator,
    load_family_data,
    mean_member_accuracy,
)
from sklearn_certify.cli._outputs import certificate_files, prepare_out_dir, write_certificates
from sklearn_certify.cli._parser import CLIError, out_folder, positive_int, seed

__all__ = ["add_parser", "run"]

#: ``--quick`` settings: DPA partitions and epochs, training and test rows, smoothing members,
#: test-time draws, epochs of the smoothing MLPs.
QUICK = {
    "n_partitions": 5,
    "epochs": 10,
    "n_train": 400,
    "n_test": 100,
    "n_members": 20,
    "n_samples": 1000,
    "mlp_epochs": 5,
}
#: Settings without ``--quick`` (every row of each split).
FULL = {
    "n_partitions": 30,
    "epochs": 30,
    "n_train": None,
    "n_test": None,
    "n_members": 100,
    "n_samples": 10000,
    "mlp_epochs": 10,
}


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
        help="every certificate family side by side on the bundled digits: one table, one figure",
        description=(
            "Fit DPA (one small CNN per partition), RAB, denoised smoothing (bundled DDPM "
            "denoiser) and test-time smoothing on scikit-learn's bundled digits, certify their "
            "test digits, print one table (what each radius counts, whether it holds exactly or "
            f"with probability 1 - alpha = {1 - ALPHA:g}, certified accuracy at reference "
            "radii) and write into the --out folder families.csv (the table), "
            "certified_accuracy.csv/.json (the curves), certified_accuracy.png (a panel per "
            "family) and certificates_<family>.csv (per-sample certificates; their 'row' "
            "column indexes the family's test split) with certificates_<family>.meta.json "
            "(what they certify: estimator, parameters, seed, data digests, versions). About "
            "two minutes on 2 CPU cores."
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
        "--families",
        nargs="+",
        choices=tuple(FAMILIES),
        default=list(FAMILIES),
        metavar="FAMILY",
        help=f"which families to run, of {', '.join(FAMILIES)} (default: all)",
    )
    parser.add_argument(
        "--n-partitions",
        type=positive_int,
        default=None,
        metavar="K",
        help=f"DPA: number of partitions k, one CNN each (default: {FULL['n_partitions']}; "
        f"{QUICK['n_partitions']} with --quick)",
    )
    parser.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help=f"DPA: training epochs per CNN (default: {FULL['epochs']}; {QUICK['epochs']} with "
        "--quick)",
    )
    parser.add_argument(
        "--spread",
        type=positive_int,
        default=1,
        metavar="D",
        help="DPA: Finite Aggregation spread d, each digit trains d of the k*d members "
        "(default: %(default)s, plain DPA)",
    )
    parser.add_argument(
        "--election",
        choices=("plurality", "runoff"),
        default="plurality",
        help="DPA: how the members' outputs are combined, plurality vote or the run-off "
        "election of Rezaei et al. 2023 over their scores (default: %(default)s)",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help="torch device the networks run on, e.g. cuda (default: %(default)s)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="torch CPU threads (default: %(default)s: the networks are tiny, and one thread "
        "per process is fastest on a CPU)",
    )
    parser.add_argument(
        "--seed", type=seed, default=0, help="seeds every family (default: %(default)s)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"tiny setting for smoke tests: the first {QUICK['n_train']} training and "
        f"{QUICK['n_test']} test digits of each family, {QUICK['n_members']} smoothing "
        f"members, {QUICK['n_samples']} test-time draws and unless given, --n-partitions "
        f"{QUICK['n_partitions']} and --epochs {QUICK['epochs']}",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also show the ensemble engine's progress bar while members train",
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


def _settings(args) -> dict:
    settings = dict(QUICK if args.quick else FULL)
    for name in ("n_partitions", "epochs"):
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    settings.update(
        spread=args.spread,
        election=args.election,
        device=args.device,
        seed=args.seed,
        verbose=int(args.verbose),
    )
    return settings


def _describe(key: str, s: dict) -> str:
    """The family's name with its size, e.g. ``"DPA (k=30 CNNs)"``."""
    if key == "dpa":
        method = "DPA" if s["spread"] == 1 else f"Finite Aggregation d={s['spread']}"
        runoff = ", run-off" if s["election"] == "runoff" else ""
        return f"{method} (k={s['n_partitions']} CNNs{runoff})"
    if key == "cohen":
        return f"test-time smoothing (sigma 0.5, {s['n_samples']} draws)"
    sigma = 0.5 if key == "rab" else 0.25
    return f"{FAMILIES[key].name} ({s['n_members']} MLPs, sigma {sigma})"


def _output_names(keys) -> dict[str, str]:
    names = {
        "table": "families.csv",
        "csv": "certified_accuracy.csv",
        "json": "certified_accuracy.json",
        "png": "certified_accuracy.png",
    }
    for key in keys:
        files = certificate_files(f"certificates_{key}.csv")
        names.update({key: files["certificates"], f"{key}_metadata": files["metadata"]})
    return names


@contextlib.contextmanager
def _torch_threads(n: int):
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _certify_family(key: str, settings: dict, data) -> dict:
    """Fit and certify one family; return its certificate, timings and what it reports."""
    from sklearn_certify.metrics import certified_accuracy_curve, median_certified_radius

    X, y, X_test, y_test, source = data
    clf = build_estimator(key, settings)
    start = time.perf_counter()
    clf.fit(X, y)
    fitted = time.perf_counter()
    cert = clf.certify(X_test)
    done = time.perf_counter()
    extra = {"command": "demo", "family": key, "data": source}
    cert = cert.with_metadata(clf, X_train=X, y_train=y, X_test=X_test, extra=extra)
    median = median_certified_radius(y_test, cert)
    return {
        "classifier": clf,
        "cert": cert,
        "y_test": y_test,
        "curve": certified_accuracy_curve(y_test, cert),
        "summary": {
            "family": _describe(key, settings),
            "estimator": type(clf).__name__,
            "attacker": FAMILIES[key].attacker,
            "radius_counts": FAMILIES[key].counts,
            "unit": cert.unit,
            "holds": FAMILIES[key].holds,
            "alpha": None if FAMILIES[key].exact else ALPHA,
            "n_train": len(X),
            "n_test": len(cert),
            "row_column": f"index into {source}",
            "abstained": float(cert.abstain.mean()),
            "median_certified_radius": None if np.isnan(median) else float(median),
            "mean_member_accuracy": mean_member_accuracy(clf, X_test, y_test),
            "fit_seconds": round(fitted - start, 2),
            "certify_seconds": round(done - fitted, 2),
        },
    }


def _table_rows(results: dict) -> list[dict]:
    """One row per family and reference radius (radius 0 first)."""
    from sklearn_certify.metrics import certified_accuracy

    rows = []
    for key, result in results.items():
        summary = result["summary"]
        for radius in (0, *FAMILIES[key].radii):
            accuracy = certified_accuracy(result["y_test"], result["cert"], radius)
            rows.append(
                {
                    "family": key,
                    "name": summary["family"].split(" (")[0],
                    "radius_counts": summary["radius_counts"],
                    "unit": summary["unit"],
                    "holds": summary["holds"],
                    "radius": radius,
                    "certified_accuracy": round(float(accuracy), 4),
                    "n_test": summary["n_test"],
                }
            )
    return rows


def _format_table(rows: list[dict]) -> str:
    widths = (19, 38, 13, 6, 18)
    names = ("family", "radius counts", "holds", "radius", "certified accuracy")
    lines = [
        "  ".join(
            n.ljust(w) if i < 3 else n.rjust(w)
            for i, (n, w) in enumerate(zip(names, widths, strict=True))
        ).rstrip()
    ]
    previous = None
    for row in rows:
        first = row["family"] != previous
        previous = row["family"]
        cells = [row["name"], row["radius_counts"], row["holds"]] if first else ["", "", ""]
        cells += [f"{row['radius']:g}", f"{row['certified_accuracy']:.3f}"]
        lines.append(
            "  ".join(
                c.ljust(w) if i < 3 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
        )
    return "\n".join(lines)


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _curve_rows(results: dict) -> list[dict]:
    return [
        {"family": key, "unit": result["cert"].unit, "radius": float(r), "certified_accuracy": a}
        for key, result in results.items()
        for r, a in zip(*result["curve"], strict=True)
    ]


def _write_json(path: Path, results: dict, settings: dict, seconds: float) -> None:
    payload = {"settings": settings, "total_seconds": round(seconds, 1), "families": {}}
    for key, result in results.items():
        radii, accuracy = result["curve"]
        curve = {"radius": radii.tolist(), "certified_accuracy": accuracy.tolist()}
        payload["families"][key] = {**result["summary"], "curve": curve}
    path.write_text(json.dumps(payload, indent=2))


def _write_figure(path: Path, results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sklearn_certify.plotting import plot_certified_accuracy

    ncols = 2 if len(results) > 1 else 1
    nrows = -(-len(results) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(5 * ncols, 3.8 * nrows), squeeze=False, layout="constrained"
    )
    for ax, (key, result) in zip(axes.flat, results.items(), strict=False):
        plot_certified_accuracy(
            result["curve"],
            ax=ax,
            xlabel=f"radius: {FAMILIES[key].counts}",
            title=f"{result['summary']['family']}\nholds {FAMILIES[key].holds_words}",
        )
    for ax in axes.flat[len(results) :]:
        ax.set_visible(False)
    fig.suptitle("Certified accuracy on the bundled digits (each panel's radius has its own unit)")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fit_all(keys, settings: dict, data: dict) -> dict:
    from tqdm.auto import tqdm

    results = {}
    progress = tqdm(keys, desc="certifying families", unit="family")
    for key in progress:
        progress.set_postfix_str(FAMILIES[key].name)
        results[key] = _certify_family(key, settings, data[key])
    progress.close()
    return results


def _report(results: dict, paths: dict, rows: list[dict]) -> None:
    print(_format_table(rows))
    print(
        f"w.p. >= {1 - ALPHA:g}: the certificate holds with probability at least 1 - alpha over "
        "the smoothing noise; 'exactly': always."
    )
    for result in results.values():
        s = result["summary"]
        print(
            f"  {s['family']}, {s['n_train']} training / {s['n_test']} test digits, fit "
            f"{s['fit_seconds']:.1f} s, certify {s['certify_seconds']:.1f} s:\n"
            f"    the attacker {s['attacker']}"
        )
    for path in paths.values():
        print(f"wrote {path}")


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
    settings = _settings(args)
    _check_device(args.device)
    keys = [key for key in FAMILIES if key in args.families]
    data = {key: load_family_data(key, settings["n_train"], settings["n_test"]) for key in keys}
    if "dpa" in data and settings["n_partitions"] > len(data["dpa"][0]):
        raise CLIError(
            f"--n-partitions {settings['n_partitions']} is more than the "
            f"{len(data['dpa'][0])} training digits."
        )
    paths = prepare_out_dir(args.out, _output_names(keys), [])
    start = time.perf_counter()
    with _torch_threads(args.threads):
        results = _fit_all(keys, settings, data)
    rows = _table_rows(results)
    _write_csv(paths["table"], rows)
    _write_csv(paths["csv"], _curve_rows(results))
    _write_json(paths["json"], results, settings, time.perf_counter() - start)
    _write_figure(paths["png"], results)
    for key, result in results.items():
        cert = result["cert"]
        write_certificates(paths[key], cert, np.arange(len(cert)), result["y_test"])
    _report(results, paths, rows)
    return 0
