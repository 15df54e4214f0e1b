"""Benchmark the DP lens (DPVoteClassifier) against DPA at a similar training cost.

Run ``python benchmarks/bench_dp.py`` (``--write`` records the ``## bench_dp`` section of
``RESULTS.md``). On the bundled digits (1,347 training rows, 450 test rows, ten classes) both
certify against inserted or deleted training rows (unit ``"samples"``):

* DPA, ``k`` partitions of a 64-32-10 MLP (SGD with momentum, 30 epochs, batch 16);
* ``DPVoteClassifier``: ``N`` members of the same MLP trained with full-batch DP-SGD
  (``max_grad_norm=1``, ``expected_batch_size`` the number of rows), for a few noise
  multipliers, ``alpha=0.001``, ``delta=1e-5``; ``epsilon`` from Opacus's RDP accountant.

Both run on the vectorized engine; ``fit`` is the minimum of ``--repeats`` runs. The table
lists certified accuracy at several poison counts.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from skorch import NeuralNetClassifier

from sklearn_certify import DPAClassifier, DPVoteClassifier
from sklearn_certify.datasets import load_digits
from sklearn_certify.metrics import certified_accuracy

RADII = (0, 1, 2, 5, 10, 20)


class MLP(torch.nn.Module):
    def __init__(self, hidden: int = 32):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10)
        )

    def forward(self, x):
        return self.layers(x)


def _net(**kw):
    params = dict(criterion=torch.nn.CrossEntropyLoss, train_split=None, verbose=0)
    params.update(kw)
    return NeuralNetClassifier(MLP, **params)


def _run(make, X, y, X_test, y_test, repeats: int) -> dict:
    times = []
    for _ in range(repeats):
        clf = make()
        start = time.perf_counter()
        clf.fit(X, y)
        times.append(time.perf_counter() - start)
    cert = clf.certify(X_test)
    return {
        "fit": min(times),
        "accuracy": {r: certified_accuracy(y_test, cert, r) for r in RADII},
        "clf": clf,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--noise", type=float, nargs="+", default=[10.0, 30.0, 100.0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    X, y = load_digits(split="train")
    X_test, y_test = load_digits(split="test")
    rows = []
    for k in (25, 50):
        out = _run(
            lambda k=k: DPAClassifier(
                _net(max_epochs=30, batch_size=16, lr=0.05, optimizer__momentum=0.9),
                n_partitions=k,
                random_state=0,
            ),
            X,
            y,
            X_test,
            y_test,
            args.repeats,
        )
        rows.append((f"DPA, k={k}", "-", out))
        print(rows[-1][0], f"fit {out['fit']:.1f} s", out["accuracy"])
    for noise in args.noise:
        out = _run(
            lambda noise=noise: DPVoteClassifier(
                _net(max_epochs=args.steps, lr=2.0),
                n_estimators=args.members,
                noise_multiplier=noise,
                expected_batch_size=len(X),
                random_state=0,
            ),
            X,
            y,
            X_test,
            y_test,
            args.repeats,
        )
        eps = out["clf"].epsilon_
        rows.append((f"DP vote, N={args.members}, noise {noise:g}", f"{eps:.2f}", out))
        print(rows[-1][0], f"epsilon {eps:.2f}", f"fit {out['fit']:.1f} s", out["accuracy"])
    if args.write:
        from _results import write_section

        header = " | ".join(f"r={r}" for r in RADII)
        table = [
            f"| ensemble | epsilon (delta 1e-5) | fit | {header} |",
            "|---|---|---|" + "---|" * len(RADII),
        ]
        for name, eps, out in rows:
            acc = " | ".join(f"{out['accuracy'][r]:.3f}" for r in RADII)
            table.append(f"| {name} | {eps} | {out['fit']:.1f} s | {acc} |")
        write_section(
            "## bench_dp\n\n"
            f"Machine: {platform.machine()}, Python {platform.python_version()}, torch "
            f"{torch.__version__}, CPU, torch threads {torch.get_num_threads()}. Command: "
            f"`python benchmarks/bench_dp.py --write` (members {args.members}, DP-SGD steps "
            f"{args.steps}, repeats {args.repeats}; the machine is shared, so fit times are "
            "indicative).\n\n"
            "Certified accuracy against r inserted or deleted training rows on the 450 digits "
            "test rows (unit samples for both), MLP 64-32-10. DPA: k partitions, 30 epochs. "
            "DP vote: members trained with full-batch DP-SGD (clipping norm 1, every row in "
            "every step, so no subsampling amplification), alpha = 0.001; the radius comes "
            "from group privacy at the members' (epsilon, delta).\n\n" + "\n".join(table) + "\n"
        )


if __name__ == "__main__":
    main()
