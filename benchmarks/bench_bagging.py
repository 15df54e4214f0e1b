"""Bagging certificates against DPA on the bundled digits, at equal training cost and beyond.

Run ``python benchmarks/bench_bagging.py`` (``--write`` to update the ``## bench_bagging``
section of ``benchmarks/RESULTS.md``). Every ensemble trains the same small MLP (64-64-10,
``sklearn_certify.nets.make_digits_mlp``, SGD with momentum, 30 epochs, batch 16) on the
vectorized engine, on the 1,347 training digits, and certifies the 450 test digits:

* ``DPAClassifier(n_partitions=k)``: k members on disjoint hash partitions of about
  ``n / k`` rows, deterministic certificate in ``"samples"`` (a modified row costs 2);
* ``CertifiedBaggingClassifier(n_estimators=k, sample_size=n // k)``: the same number of
  members on as many rows each (equal training cost), certificate in ``"rows"`` (a
  modified row costs 1) holding with probability ``1 - alpha`` (``alpha = 0.001``);
* the same bagging with ``n_estimators = 10 k`` (ten times the cost).

Certified accuracy is reported against ``r`` poisoned rows in the worst mix (modifications):
DPA certifies that when its radius is at least ``2 r``, bagging when its radius is at least
``r``. Against insertions or deletions alone DPA needs only ``r``; that column is given too.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
import torch
from _results import write_section

from sklearn_certify import CertifiedBaggingClassifier, DPAClassifier
from sklearn_certify.datasets import load_digits
from sklearn_certify.nets import make_digits_mlp

RADII = (0, 1, 2, 5, 10, 15, 20, 30, 40)


def _net(epochs: int):
    """The 64-64-10 digits MLP (SGD, momentum 0.9), batch 16."""
    return make_digits_mlp(max_epochs=epochs, lr=0.05, batch_size=16)


def _fit(clf, X, y) -> float:
    """Seconds to fit ``clf`` (the same members every time)."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # small DPA partitions
        clf.fit(X, y)
    return time.perf_counter() - start


def _result(name: str, clf, fit: float, data, modified_cost: int) -> dict:
    _, _, X_test, y_test = data
    cert = clf.certify(X_test)
    good = (cert.prediction == y_test) & ~cert.abstain
    return {
        "name": name,
        "members": len(clf.member_status_),
        "rows_trained": int(sum(len(r) for r in clf.member_rows_)),
        "fit": fit,
        "accuracy": float(np.mean(clf.predict(X_test) == y_test)),
        "modified": [float(np.mean(good & (cert.radius >= modified_cost * r))) for r in RADII],
        "inserted": [float(np.mean(good & (cert.radius >= r))) for r in RADII],
    }


def run(ks, epochs: int, scale: int, repeats: int) -> list[dict]:
    X, y = load_digits(split="train")
    X_test, y_test = load_digits(split="test")
    data = (X, y, X_test, y_test)
    n = len(X)
    _fit(DPAClassifier(_net(1), n_partitions=5, random_state=0), X, y)  # torch's one-time setup
    results = []
    for k in ks:
        common = dict(random_state=0, engine="vectorized")
        cases = {f"DPA, k={k}": (DPAClassifier(_net(epochs), n_partitions=k, **common), 2)}
        for members in (k, scale * k):
            cases[f"bagging, N={members}, s={n // k}"] = (
                CertifiedBaggingClassifier(
                    _net(epochs), n_estimators=members, sample_size=n // k, alpha=0.001, **common
                ),
                1,
            )
        times = {name: [] for name in cases}
        for _ in range(repeats):  # interleaved, so that a burst of load hits every case
            for name, (clf, _) in cases.items():
                times[name].append(_fit(clf, X, y))
        for name, (clf, cost) in cases.items():
            results.append(_result(name, clf, min(times[name]), data, cost))
        print(*(f"{r['name']}: {r['modified']}" for r in results[-3:]), sep="\n", flush=True)
    return results


def _section(results: list[dict], wall: float) -> str:
    head = " | ".join(f"r={r}" for r in RADII)
    lines = [
        "## bench_bagging",
        "",
        f"Machine: {os.cpu_count()}-core {platform.machine()} container, Python "
        f"{platform.python_version()}, torch {torch.__version__}, no GPU; torch threads "
        f"{torch.get_num_threads()}. Command: `python benchmarks/bench_bagging.py --write` "
        f"({wall:.0f} s wall; 1-minute load average when written: {os.getloadavg()[0]:.1f}). "
        "Bundled digits: 1,347 training and 450 test rows; every member is the same "
        "64-64-10 MLP (SGD, momentum 0.9, 30 epochs, batch 16) on the vectorized engine. "
        "DPA with k partitions against bagging with N = k members of s = n // k rows each "
        "(the same rows trained in all) and with N = 10 k (ten times the cost); bagging at "
        "alpha = 0.001 with the paper's simultaneous Clopper-Pearson bounds. `fit`: the "
        "fastest of 3 interleaved fits, after a warm-up fit (the machine is shared).",
        "",
        "Certified accuracy against r poisoned rows, any mix of insertions, deletions and "
        "modifications (DPA's radius counts a modification twice, so it needs 2r):",
        "",
        f"| ensemble | members | rows trained | fit | accuracy | {head} |",
        "|---|---|---|---|---|" + "---|" * len(RADII),
    ]
    for r in results:
        cells = " | ".join(f"{a:.3f}" for a in r["modified"])
        lines.append(
            f"| {r['name']} | {r['members']} | {r['rows_trained']} | {r['fit']:.1f} s | "
            f"{r['accuracy']:.3f} | {cells} |"
        )
    lines += [
        "",
        "Against r inserted or deleted rows only (DPA's radius >= r):",
        "",
        f"| ensemble | {head} |",
        "|---|" + "---|" * len(RADII),
    ]
    lines += [
        f"| {r['name']} | " + " | ".join(f"{a:.3f}" for a in r["inserted"]) + " |" for r in results
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[25, 50, 100])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--scale", type=int, default=10, help="the larger bagging's N / k")
    parser.add_argument("--repeats", type=int, default=3, help="fits timed (the fastest)")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args()
    torch.manual_seed(0)
    start = time.perf_counter()
    results = run(args.ks, args.epochs, args.scale, args.repeats)
    section = _section(results, time.perf_counter() - start)
    print(section)
    if args.write:
        write_section(section)


if __name__ == "__main__":
    main()
