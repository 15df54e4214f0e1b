"""Benchmark test-time smoothing (RandomizedSmoothingClassifier.certify) against its floor.

Run ``python benchmarks/bench_cohen.py`` (``--device cuda`` for a GPU, ``--write`` to record
the result in ``RESULTS.md``). On the bundled digits (1,347 training rows) it trains a skorch
MLP 64-128-128-10 with Gaussian augmentation (``sigma=0.25``), then certifies ``--rows`` test
rows with ``n_select=100``, ``n_samples=10,000``, ``alpha=0.001`` and ``batch_size=1000``,
with one torch thread. The floor is the same work written by hand with no keying: per row,
``n_select + n_samples`` draws of plain ``torch.randn`` in the same batches, the same forward
passes (the module in eval mode under ``no_grad``), argmax and ``bincount``. The two run
interleaved, ``--repeats`` times each; the minima are compared. Target: certify <= 1.1x the
floor.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from skorch import NeuralNetClassifier

from sklearn_certify import RandomizedSmoothingClassifier
from sklearn_certify.datasets import load_digits
from sklearn_certify.metrics import certified_accuracy

RADII = (0.0, 0.25, 0.5)


class MLP(torch.nn.Module):
    """Three-layer perceptron on flat digits."""

    def __init__(self, hidden: int = 128):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(64, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, 10),
        )

    def forward(self, x):
        return self.layers(x)


def floor_certify(module, X, n_draws: int, batch_size: int, sigma: float, device) -> np.ndarray:
    """The floor: plain ``randn`` noise, the same forward passes, class counts per row."""
    counts = np.zeros((len(X), 10), dtype=np.int64)
    module.eval()
    with torch.no_grad():
        for i, row in enumerate(torch.as_tensor(X).to(device)):
            total = torch.zeros(10, dtype=torch.int64, device=device)
            for lo in range(0, n_draws, batch_size):
                n = min(batch_size, n_draws - lo)
                noise = torch.randn((n, row.shape[0]), device=device) * sigma
                label = module(row + noise).argmax(dim=1)
                total += torch.bincount(label, minlength=10)
            counts[i] = total.cpu().numpy()
    return counts


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--write", action="store_true", help="record in RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    X, y = load_digits(split="train")
    X_test, y_test = load_digits(split="test")
    X_test, y_test = X_test[: args.rows], y_test[: args.rows]
    net = NeuralNetClassifier(
        MLP,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        lr=0.05,
        max_epochs=40,
        batch_size=64,
        iterator_train__shuffle=True,
        train_split=None,
        verbose=0,
        device=args.device,
    )
    clf = RandomizedSmoothingClassifier(
        net,
        sigma=0.25,
        n_select=100,
        n_samples=args.samples,
        alpha=0.001,
        batch_size=1000,
        random_state=0,
    )
    start = time.perf_counter()
    clf.fit(X, y)
    fit_seconds = time.perf_counter() - start
    module = clf.estimator_.module_
    draws = clf.n_select + clf.n_samples
    certify_times, floor_times = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        cert = clf.certify(X_test)
        _synchronize(args.device)
        certify_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        floor_counts = floor_certify(module, X_test, draws, clf.batch_size, 0.25, args.device)
        _synchronize(args.device)
        floor_times.append(time.perf_counter() - start)
    assert np.all(cert.votes.sum(axis=1) == args.samples)
    assert np.all(floor_counts.sum(axis=1) == draws)
    ratio = min(certify_times) / min(floor_times)
    accuracy = {r: certified_accuracy(y_test, cert, r) for r in RADII}
    # the floor's top class agrees with the certified one on nearly every row
    agree = float(np.mean(floor_counts.argmax(1) == clf.classes_.searchsorted(cert.prediction)))
    print(
        f"device {args.device}, torch threads {torch.get_num_threads()}: fit {fit_seconds:.2f} s; "
        f"certify {min(certify_times):.2f} s, floor {min(floor_times):.2f} s, ratio {ratio:.3f}; "
        f"certified accuracy {accuracy}; top class agrees with the floor's on {agree:.3f}"
    )
    if args.write:
        from _results import write_section

        machine = f"{platform.machine()}, {platform.python_version()}, torch {torch.__version__}"
        write_section(
            "## bench_cohen\n\n"
            f"Machine: {args.device} ({machine}), {torch.get_num_threads()} torch thread(s). "
            f"Command: `python benchmarks/bench_cohen.py --write` (rows {args.rows}, "
            f"repeats {args.repeats}).\n\n"
            f"`RandomizedSmoothingClassifier.certify` on {args.rows} digits (MLP 64-128-128-10, "
            f"n_select=100, n_samples={args.samples}, alpha=0.001, sigma=0.25, batch 1000) "
            "against the floor written by hand in the benchmark: the same number of draws "
            "with plain `torch.randn`, the same forward passes, argmax and bincount, no "
            "keying. Minimum of the interleaved repeats. Target: <= 1.1x.\n\n"
            "| measure | result | target |\n|---|---|---|\n"
            f"| certify / floor | {min(certify_times):.2f} s / {min(floor_times):.2f} s = "
            f"**{ratio:.3f}** | <= 1.1 |\n"
            f"| fit (40 epochs, Gaussian augmentation) | {fit_seconds:.2f} s | recorded |\n"
            "| certified accuracy at radius 0 / 0.25 / 0.5 | "
            + " / ".join(f"{accuracy[r]:.3f}" for r in RADII)
            + " | recorded |\n"
            f"| rows whose floor top class is the certified class | {agree:.3f} | recorded |\n"
        )


if __name__ == "__main__":
    main()
