"""Every certificate family of the demo on the bundled digits: certified accuracy and cost.

Run ``python benchmarks/bench_families.py`` (``--write`` to update the ``## bench_families``
section of ``benchmarks/RESULTS.md``). It runs ``python -m sklearn_certify demo`` at its
default size (DPA with 30 CNNs, RAB and denoised smoothing with 100 MLPs, test-time
smoothing with 10,000 draws; one torch thread) and, for the cost columns, fits one base
network of each family alone on the same training rows (best of 3), so the fit time reads as
a multiple of one model.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from _results import write_section
from sklearn.base import clone

from sklearn_certify.cli import main
from sklearn_certify.cli._families import FAMILIES, build_estimator, load_family_data
from sklearn_certify.cli.demo import FULL


def _one_model_seconds(key: str, settings: dict) -> float:
    """Seconds to fit one base network of family ``key`` on its training rows (best of 3)."""
    X, y, *_ = load_family_data(key, None, None)
    clf = build_estimator(key, settings)
    times = []
    for _ in range(3):
        net = clone(clf.estimator)
        start = time.perf_counter()
        net.fit(X.astype("float32"), y.astype("int64"))
        times.append(time.perf_counter() - start)
    return min(times)


def _radius_cells(family: dict, key: str) -> str:
    radius, accuracy = family["curve"]["radius"], family["curve"]["certified_accuracy"]
    cells = []
    for r in (0, *FAMILIES[key].radii):
        at = [a for rr, a in zip(radius, accuracy, strict=True) if rr >= r]
        cells.append(f"{r:g}: {at[0] if at else 0.0:.3f}")
    return ", ".join(cells)


def _section(summary: dict, one_model: dict, wall: float) -> str:
    lines = [
        "## bench_families",
        "",
        f"Machine: {os.cpu_count()}-core {platform.machine()}, Python "
        f"{platform.python_version()}, torch {torch.__version__}, no GPU; one torch thread. "
        "Command: `python benchmarks/bench_families.py --write` (runs `python -m "
        f"sklearn_certify demo` at its default size: {wall:.0f} s wall for the demo). "
        f"1-minute load average when written: {os.getloadavg()[0]:.1f}. `one model`: one "
        "base network of the family fitted alone on the same rows (best of 3); the fit "
        "time is also given as a multiple of it. Times vary with the load; the ratios are "
        "taken in one run.",
        "",
        "| family | radius counts | holds | train / test digits | certified accuracy at radius "
        "| fit (x one model) | certify |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, family in summary["families"].items():
        base = one_model[key]
        lines.append(
            f"| {family['family']} | {family['radius_counts']} | {family['holds']} | "
            f"{family['n_train']} / {family['n_test']} | {_radius_cells(family, key)} | "
            f"{family['fit_seconds']:.1f} s ({family['fit_seconds'] / base:.1f}x) | "
            f"{family['certify_seconds']:.1f} s |"
        )
    lines.append("")
    lines.append(
        "`one model`: " + ", ".join(f"{key} {s:.1f} s" for key, s in one_model.items()) + "."
    )
    return "\n".join(lines)


def main_(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    settings = {**FULL, "spread": 1, "election": "plurality", "device": "cpu", "seed": 0}
    settings["verbose"] = 0
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        main(["demo", "--out", out])
        wall = time.perf_counter() - start
        summary = json.loads((Path(out) / "certified_accuracy.json").read_text())
    one_model = {key: _one_model_seconds(key, settings) for key in summary["families"]}
    section = _section(summary, one_model, wall)
    print(section)
    if args.write:
        write_section(section)


if __name__ == "__main__":
    main_()
