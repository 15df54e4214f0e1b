"""Benchmark DenoisedSmoothingClassifier: what denoising costs, and whether it certifies more.

Run ``python benchmarks/bench_denoised_smoothing.py`` (``--quick`` for a smoke run, ``--write``
to update the ``## bench_denoised_smoothing`` section of ``benchmarks/RESULTS.md``,
``--device cuda`` for a GPU). On the digits that the bundled denoiser never saw
(``load_digits_for_denoising``: 809 training and 270 test rows), with members that are a
skorch MLP 64-64-10 (20 epochs, batch 32, SGD with momentum):

* ``cost``: ``n_estimators=100``, ``sigma=0.25``: fit seconds with the identity denoiser
  (plain noisy copies, i.e. RAB without test noise) and with the bundled DDPM, and the share
  of the DDPM fit spent inside the denoiser (timed around its ``denoise`` calls);
* ``quality``: for ``sigma`` 0.1, 0.25 and 0.5 and ``n_estimators=50``: clean accuracy,
  abstentions and certified accuracy at l2 radii 0.05, 0.1, 0.25 and 0.5, for the identity,
  the DDPM, and the DDPM with every member warm-started from a net trained on the
  denoiser's own trusted rows (``init=``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings

import torch
from _results import write_section
from skorch import NeuralNetClassifier

from sklearn_certify import DenoisedSmoothingClassifier
from sklearn_certify.datasets import load_digits_for_denoising
from sklearn_certify.denoisers import load_bundled
from sklearn_certify.metrics import certified_accuracy

RADII = (0.05, 0.1, 0.25, 0.5)


class MLP(torch.nn.Module):
    """64 pixels -> 64 hidden units -> 10 logits."""

    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(64, 64)
        self.out = torch.nn.Linear(64, 10)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


def make_net(epochs: int, device: str):
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
        device=device,
    )


class TimedDenoiser:
    """Forwards to a denoiser and adds up the seconds spent in it."""

    def __init__(self, denoiser, device: str):
        self.denoiser = denoiser
        self.device = device
        self.seconds = 0.0

    def denoise(self, X_noisy, sigma):
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = self.denoiser.denoise(X_noisy, sigma)
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - start
        return out


def case_cost(args, data, denoiser) -> dict:
    X, y, _, _ = data
    net = make_net(args.epochs, args.device)
    n = 10 if args.quick else 100
    start = time.perf_counter()
    DenoisedSmoothingClassifier(net, None, n_estimators=n, sigma=0.25, random_state=0).fit(X, y)
    identity = time.perf_counter() - start
    timed = TimedDenoiser(denoiser, args.device)
    start = time.perf_counter()
    DenoisedSmoothingClassifier(net, timed, n_estimators=n, sigma=0.25, random_state=0).fit(X, y)
    ddpm = time.perf_counter() - start
    return dict(case="cost", n_estimators=n, identity=identity, ddpm=ddpm, denoise=timed.seconds)


def case_quality(args, data, denoiser) -> list:
    X, y, X_test, y_test = data
    X_trusted, y_trusted = load_digits_for_denoising(split="denoiser")
    net = make_net(args.epochs, args.device)
    pretrained = make_net(args.epochs, args.device).fit(X_trusted, y_trusted)
    n = 10 if args.quick else 50
    rows = []
    for sigma in (0.1, 0.25, 0.5):
        for name, den, init in (
            ("identity", None, None),
            ("DDPM", denoiser, None),
            ("DDPM + init", denoiser, pretrained),
        ):
            clf = DenoisedSmoothingClassifier(
                net, den, n_estimators=n, sigma=sigma, init=init, random_state=0
            ).fit(X, y)
            cert = clf.certify(X_test)
            rows.append(
                dict(
                    case="quality",
                    sigma=sigma,
                    training=name,
                    clean=float(clf.score(X_test, y_test)),
                    abstained=float(cert.abstain.mean()),
                    **{f"cert_{r}": float(certified_accuracy(y_test, cert, r)) for r in RADII},
                )
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def write(cost, quality, args) -> None:
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    lines = [
        "## bench_denoised_smoothing" + (" (GPU)" if args.device.startswith("cuda") else ""),
        "",
        f"Machine: {os.cpu_count()}-core {cpu}, torch {torch.__version__}, {gpu}; torch "
        f"threads {torch.get_num_threads()}; device `{args.device}`. Command: "
        f"`python benchmarks/bench_denoised_smoothing.py --write`. 1-minute load average when "
        f"written: {os.getloadavg()[0]:.1f}. Members: skorch MLP 64-64-10, {args.epochs} epochs; "
        "data: the digits the bundled denoiser never saw (809 train, 270 test).",
        "",
    ]
    if cost:
        lines += [
            f"Fit of {cost['n_estimators']} members at sigma 0.25: identity (plain noisy copies) "
            f"**{cost['identity']:.1f} s**, bundled DDPM **{cost['ddpm']:.1f} s**, of which "
            f"{cost['denoise']:.1f} s ({cost['denoise'] / cost['ddpm']:.0%}) inside the "
            "denoiser (each member's copy denoised once).",
            "",
        ]
    if quality:
        lines += [
            "| sigma | training | clean accuracy | abstained | "
            + " | ".join(f"certified at {r}" for r in RADII)
            + " |",
            "|---|---|---|---|" + "---|" * len(RADII),
        ]
        for r in quality:
            lines.append(
                f"| {r['sigma']} | {r['training']} | {r['clean']:.3f} | {r['abstained']:.2f} | "
                + " | ".join(f"{r[f'cert_{x}']:.3f}" for x in RADII)
                + " |"
            )
        lines.append("")
    section = "\n".join(lines)
    write_section(section)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 members, 2 epochs")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--cases", default="cost,quality", help="comma-separated subset")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    args.epochs = 2 if args.quick else 20
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", UserWarning)
    cases = set(args.cases.split(","))
    data = (
        *load_digits_for_denoising(split="train"),
        *load_digits_for_denoising(split="test"),
    )
    denoiser = load_bundled("digits", device=args.device)
    cost = case_cost(args, data, denoiser) if "cost" in cases else None
    if cost:
        print(json.dumps(cost), flush=True)
    quality = case_quality(args, data, denoiser) if "quality" in cases else []
    if args.write:
        write(cost, quality, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
