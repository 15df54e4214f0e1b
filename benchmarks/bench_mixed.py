"""Benchmark PartitionedRABClassifier (DPA x RAB) on digits: its frontier and its cost.

Run ``python benchmarks/bench_mixed.py`` (``--write`` records the ``## bench_mixed`` section
of ``RESULTS.md``). On the bundled digits (1,347 training rows, 450 test rows, ten classes),
with one MLP (64-64-10, SGD with momentum, batch 32) trained by the vectorized engine:

* certified accuracy at each (inserted or deleted rows ``r``, l2 budget ``eps``) of the mixed
  classifier for ``k`` partitions x ``N`` members, against RAB with ``N`` members, Finite
  Aggregation with ``k`` partitions and spread ``N`` (the same ``k x N`` members on about
  ``n / k`` rows each, so the same training cost as the mixed classifier and RAB) and DPA
  with ``k`` partitions (``N`` times cheaper). RAB certifies ``r = 0`` only, DPA and FA
  ``eps = 0`` only (a perturbation of total l2 norm ``eps`` may touch any number of rows,
  each moved by the content hash);
* the cost of training the ``k x N`` members: the mixed classifier against FA (same members
  and rows, no noise view), RAB and one net on all rows, and the noise view applied once per
  member (``view_once=True``) or to every step's batch (``False``) instead of ``"auto"``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch
from skorch import NeuralNetClassifier

from sklearn_certify import DPAClassifier, RABClassifier
from sklearn_certify.datasets import load_digits
from sklearn_certify.partition import PartitionedRABClassifier

EPS = (0.0, 0.1, 0.25, 0.5, 1.0)


class MLP(torch.nn.Module):
    """64 pixels -> 64 hidden units -> 10 logits."""

    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(64, 64)
        self.out = torch.nn.Linear(64, 10)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


def _net(epochs: int) -> NeuralNetClassifier:
    return NeuralNetClassifier(
        MLP,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=epochs,
        batch_size=32,
        lr=0.1,
        optimizer__momentum=0.9,
        iterator_train__shuffle=True,
        train_split=None,
        verbose=0,
    )


def _timed_fit(model, X, y) -> float:
    start = time.perf_counter()
    model.fit(X, y)
    return time.perf_counter() - start


def _mixed_grid(model, X_test, y_test, rows) -> np.ndarray:
    """Certified accuracy ``(len(rows), len(EPS))`` of a fitted mixed classifier."""
    front = model.frontier(X_test)
    correct = front.prediction == y_test
    return np.array([[np.mean(correct & front.certified(r, e)) for e in EPS] for r in rows])


def _rab_grid(model, X_test, y_test, rows) -> np.ndarray:
    cert = model.certify(X_test)
    ok = (cert.prediction == y_test) & ~cert.abstain
    grid = np.zeros((len(rows), len(EPS)))
    grid[0] = [np.mean(ok & (cert.radius > e)) for e in EPS]
    return grid


def _dpa_grid(model, X_test, y_test, rows) -> np.ndarray:
    cert = model.certify(X_test)
    ok = (cert.prediction == y_test) & ~cert.abstain
    grid = np.zeros((len(rows), len(EPS)))
    grid[:, 0] = [np.mean(ok & (cert.radius >= r)) for r in rows]
    return grid


def _frontier_rows(args, X, y, X_test, y_test) -> list:
    """(setting, members, fit seconds, clean accuracy, grid) for every classifier."""
    out = []
    N = args.members
    rab = RABClassifier(
        _net(args.epochs),
        n_estimators=N,
        sigma=args.sigma,
        alpha=args.alpha,
        test_noise=False,
        random_state=0,
    )
    seconds = _timed_fit(rab, X, y)
    grid = _rab_grid(rab, X_test, y_test, args.rows)
    out.append((f"RAB, N={N}", N, seconds, rab.score(X_test, y_test), grid))
    print(out[-1][0], f"fit {seconds:.1f} s", f"clean {out[-1][3]:.3f}")
    for k in args.partitions:
        mixed = PartitionedRABClassifier(
            _net(args.epochs),
            n_partitions=k,
            n_estimators=N,
            sigma=args.sigma,
            alpha=args.alpha,
            rows=args.rows,
            random_state=0,
        )
        seconds = _timed_fit(mixed, X, y)
        grid = _mixed_grid(mixed, X_test, y_test, args.rows)
        out.append((f"mixed, k={k} x N={N}", k * N, seconds, mixed.score(X_test, y_test), grid))
        for name, spread in ((f"FA, k={k}, spread {N}", N), (f"DPA, k={k}", 1)):
            dpa = DPAClassifier(_net(args.epochs), n_partitions=k, spread=spread, random_state=0)
            seconds = _timed_fit(dpa, X, y)
            grid = _dpa_grid(dpa, X_test, y_test, args.rows)
            out.append((name, k * spread, seconds, dpa.score(X_test, y_test), grid))
        for row in out[-3:]:
            print(row[0], f"fit {row[2]:.1f} s", f"clean {row[3]:.3f}")
    return out


def _view_costs(args, X, y) -> list:
    """Fit seconds of the first mixed setting with the noise view applied once / per step."""
    k, N = args.partitions[0], args.members
    costs = []
    for view_once in (True, False):
        model = PartitionedRABClassifier(
            _net(args.epochs),
            n_partitions=k,
            n_estimators=N,
            sigma=args.sigma,
            alpha=args.alpha,
            rows=args.rows,
            random_state=0,
        )
        model._view_once = view_once  # the class's "auto", overridden on this instance only
        costs.append((f"view_once={view_once}", _timed_fit(model, X, y)))
        print(costs[-1][0], f"{costs[-1][1]:.1f} s")
    one = _net(args.epochs)
    costs.append(("one net on all rows", _timed_fit(one, X, y)))
    return costs


def _section(args, rows, costs) -> str:
    header = " | ".join(f"eps {e:g}" for e in EPS)
    lines = [
        f"| classifier | members | fit | clean accuracy | r | {header} |",
        "|---|---|---|---|---|" + "---|" * len(EPS),
    ]
    for name, members, seconds, clean, grid in rows:
        for i, r in enumerate(args.rows):
            cells = " | ".join(f"{v:.3f}" for v in grid[i])
            first = f"{name} | {members} | {seconds:.1f} s | {clean:.3f}" if i == 0 else " | | |"
            lines.append(f"| {first} | {r} | {cells} |")
    k, N = args.partitions[0], args.members
    cost_lines = [f"| mixed k={k} x N={N} | fit |", "|---|---|"]
    cost_lines += [f"| {name} | {seconds:.1f} s |" for name, seconds in costs]
    return (
        "## bench_mixed\n\n"
        f"Machine: {platform.machine()}, Python {platform.python_version()}, torch "
        f"{torch.__version__}, CPU, torch threads {torch.get_num_threads()}, load "
        f"{os.getloadavg()[0]:.1f}. Command: `python benchmarks/bench_mixed.py --write` "
        f"(N={N} members, partitions {list(args.partitions)}, sigma {args.sigma}, alpha "
        f"{args.alpha}, {args.epochs} epochs; one fit each on a shared machine, so fit times "
        "are indicative).\n\n"
        "Certified accuracy on the 450 digits test rows against r inserted or deleted "
        "training rows plus training-feature perturbations of total l2 norm below eps, MLP "
        "64-64-10 on the vectorized engine. Mixed: PartitionedRABClassifier (rows keyed by "
        "their training order, each partition's bounds at alpha / k, clopper-pearson). RAB: "
        "test_noise=False, r = 0 only. FA / DPA: content-hashed, eps = 0 only.\n\n"
        + "\n".join(lines)
        + "\n\nTraining cost of the first mixed setting: its fit with the noise view applied "
        "once per member to every training row (`view_once=True`) or to each step's batch "
        '(`False`); the table above has `"auto"`, FA the same members and rows with no '
        "view.\n\n" + "\n".join(cost_lines) + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=40)
    parser.add_argument("--partitions", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--rows", type=int, nargs="+", default=[0, 1, 2, 4, 8])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--sigma", type=float, default=0.5)
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    X, y = load_digits(split="train")
    X_test, y_test = load_digits(split="test")
    rows = _frontier_rows(args, X, y, X_test, y_test)
    costs = _view_costs(args, X, y)
    section = _section(args, rows, costs)
    print(section)
    if args.write:
        from _results import write_section

        write_section(section)


if __name__ == "__main__":
    main()
