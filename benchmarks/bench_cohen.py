"""Benchmark test-time smoothing (RandomizedSmoothingClassifier): fit and certify times.

Run ``python benchmarks/bench_cohen.py`` (``--device cuda`` for a GPU, ``--samples`` for the
numbers of estimation draws, ``--threads`` for torch's CPU threads). On the bundled digits
(1,347 training and 450 test rows) it trains a skorch MLP 64-128-128-10 with Gaussian
augmentation (40 epochs, batch 64, SGD with momentum, ``sigma=0.25``), then certifies the
450 test rows with ``n_select=100`` and each ``n_samples``, and reports the seconds, the
share of them spent computing the keyed noise alone, and certified accuracy at three radii.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from skorch import NeuralNetClassifier

from sklearn_certify import RandomizedSmoothingClassifier
from sklearn_certify.datasets import load_digits
from sklearn_certify.metrics import certified_accuracy
from sklearn_certify.smoothing import keyed_normal

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


def noise_seconds(n_rows: int, n_draws: int, batch_size: int, device: str) -> float:
    """Time to compute the keyed noise of ``n_rows`` rows x ``n_draws`` draws, batch by batch."""
    seed = torch.tensor([123456789], dtype=torch.int64, device=device)
    start = time.perf_counter()
    for _ in range(n_rows):
        for lo in range(0, n_draws, batch_size):
            ids = torch.arange(lo, min(lo + batch_size, n_draws), device=device)[None]
            keyed_normal(seed, ids, (64,), dtype=torch.float32)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--samples", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    X, y = load_digits(split="train")
    X_test, y_test = load_digits(split="test")
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
    print(f"device {args.device}, torch threads {torch.get_num_threads()}")
    clf = RandomizedSmoothingClassifier(net, sigma=0.25, random_state=0)
    start = time.perf_counter()
    clf.fit(X, y)
    print(f"fit: {time.perf_counter() - start:.2f} s")
    header = " ".join(f"acc@{r:<5}" for r in RADII)
    print(f"{'n_samples':>9} {'certify s':>9} {'noise s':>8} {header}")
    for n_samples in args.samples:
        clf.set_params(n_samples=n_samples)
        start = time.perf_counter()
        cert = clf.certify(X_test)
        seconds = time.perf_counter() - start
        noise = noise_seconds(len(X_test), n_samples, clf.batch_size, args.device)
        accuracy = " ".join(f"{certified_accuracy(y_test, cert, r):9.3f}" for r in RADII)
        print(f"{n_samples:>9} {seconds:>9.2f} {noise:>8.2f} {accuracy}")
        assert np.all(cert.votes.sum(axis=1) == n_samples)


if __name__ == "__main__":
    main()
