"""Benchmark training-set smoothing (RABClassifier): cost, memory, certify speed, and bounds.

Run ``python benchmarks/bench_smoothing.py`` (``--quick`` for a smoke run, ``--write`` to update
the ``## bench_smoothing`` section of ``benchmarks/RESULTS.md``, ``--device cuda`` for a GPU).
Ratios compare runs made in the same invocation on the same data and net:

* ``fit``: ``RABClassifier(net, n_estimators=100)`` on the 1,797 bundled digits (MLP
  64-128-10, 10 epochs, batch 32, SGD with momentum) against one skorch net fit on all of
  them (``train_split=None``); minimum of ``--repeats`` interleaved runs;
* ``loop``: the same RAB fit with ``engine="loop"`` (one skorch fit per member), once;
* the arithmetic floor, timed with ``fit``: the same steps of N stacked MLPs written by hand
  (``torch.baddbmm`` forward, autograd backward, ``torch.optim.SGD(foreach=True)``), on noisy
  copies drawn beforehand, with no engine, scheduling or per-member bookkeeping: what any
  ensemble of N such nets must compute on this machine;
* ``scaling``: N=100 and N=1000 in fresh subprocesses, fit seconds and peak RSS (``VmHWM``),
  and the seconds to certify 10,000 rows with the N=1000 ensemble;
* ``mnist``: MNIST-shaped generated data (60,000 x 784), MLP 784-128-10, N=100, one epoch,
  batch 64, peak RSS in a fresh subprocess (the noisy copies of all members would take
  100 x 60,000 x 784 x 4 bytes = 19 GB);
* ``bounds``: certified accuracy of the three ``bound`` options on the digits test split
  (the same 100 members certified three ways), for ``sigma`` 0.25 and 0.5 and both
  ``test_noise`` settings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings

import numpy as np
import torch
from _results import write_section
from skorch import NeuralNetClassifier

from sklearn_certify import RABClassifier
from sklearn_certify.datasets import load_digits
from sklearn_certify.metrics import certified_accuracy

BOUND_RADII = (0.1, 0.25, 0.5)


class MLP(torch.nn.Module):
    """Two-layer perceptron used by every case."""

    def __init__(self, n_in: int = 64, hidden: int = 128, n_out: int = 10):
        super().__init__()
        self.hidden = torch.nn.Linear(n_in, hidden)
        self.out = torch.nn.Linear(hidden, n_out)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


def make_net(n_in=64, *, epochs=10, batch_size=32, device="cpu"):
    return NeuralNetClassifier(
        MLP,
        module__n_in=n_in,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        lr=0.1 if n_in == 64 else 0.05,
        max_epochs=epochs,
        batch_size=batch_size,
        iterator_train__shuffle=True,
        train_split=None,
        verbose=0,
        device=device,
    )


def mnist_shaped(n: int = 60_000, seed: int = 0):
    """Generated data of MNIST's shape: 10 class prototypes plus noise, clipped to [0, 1]."""
    rng = np.random.default_rng(seed)
    prototypes = rng.random((10, 784), dtype=np.float32)
    y = rng.integers(0, 10, n)
    X = rng.standard_normal((n, 784), dtype=np.float32)
    X *= 0.5
    X += prototypes[y]
    return np.clip(X, 0, 1, out=X), y.astype(np.int64)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def stacked_floor(X, y, n_members, *, epochs, batch_size=32, hidden=128, device="cpu"):
    """Seconds to train ``n_members`` stacked MLPs by hand: what any such ensemble computes."""
    g = torch.Generator().manual_seed(0)
    n, d = X.shape
    n_classes = int(y.max()) + 1
    labels = torch.as_tensor(y, device=device)
    noise = 0.25 * torch.randn(n_members, n, d, generator=g)
    noisy = (torch.as_tensor(X, dtype=torch.float32) + noise).to(device)
    shapes = [(d, hidden), (1, hidden), (hidden, n_classes), (1, n_classes)]
    w1, b1, w2, b2 = (
        (0.1 * torch.randn(n_members, *shape, generator=g)).to(device).requires_grad_()
        for shape in shapes
    )
    optimizer = torch.optim.SGD([w1, b1, w2, b2], lr=0.1, momentum=0.9, foreach=True)
    _sync(device)
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(n, generator=g).to(device)
        for batch in order.split(batch_size):
            hidden_out = torch.relu(torch.baddbmm(b1, noisy[:, batch], w1))
            logits = torch.baddbmm(b2, hidden_out, w2)
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, n_classes), labels[batch].repeat(n_members), reduction="sum"
            ) / len(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    _sync(device)
    return time.perf_counter() - start


def case_fit(args) -> dict:
    X, y = load_digits()
    epochs = 2 if args.quick else 10
    net = make_net(epochs=epochs, device=args.device)
    single, rab, floor = [], [], []
    for _ in range(args.repeats):
        floor.append(stacked_floor(X, y, args.n_small, epochs=epochs, device=args.device))
        t, _ = timed(lambda: net.fit(X, y))
        single.append(t)
        clf = RABClassifier(net, n_estimators=args.n_small, sigma=0.25, random_state=0)
        t, _ = timed(lambda clf=clf: (clf.fit(X, y), _sync(args.device)))
        rab.append(t)
    row = dict(case="fit", n_estimators=args.n_small, epochs=epochs, single=min(single))
    row.update(rab=min(rab), single_all=single, rab_all=rab, ratio=min(rab) / min(single))
    row.update(floor=min(floor), floor_all=floor)
    if "loop" in args.cases:
        clf = RABClassifier(
            net, n_estimators=args.n_small, sigma=0.25, engine="loop", random_state=0
        )
        row["loop"], _ = timed(lambda: clf.fit(X, y))
        row["speedup"] = row["loop"] / row["rab"]
    return row


def child(args) -> None:
    """Runs in a fresh process: one fit (and for digits a 10,000-row certify), peak RSS."""
    if args.child == "mnist":
        X, y = mnist_shaped(6_000 if args.quick else 60_000)
        net = make_net(784, epochs=1, batch_size=64, device=args.device)
        X_test = X[:1000]
    else:
        X, y = load_digits()
        net = make_net(epochs=2 if args.quick else 10, device=args.device)
        rng = np.random.default_rng(0)
        X_test = np.clip(
            X[rng.integers(0, len(X), 10_000)]
            + rng.normal(0, 0.05, (10_000, 64)).astype(np.float32),
            0,
            1,
        ).astype(np.float32)
    before = _status_kib("VmRSS")
    clf = RABClassifier(net, n_estimators=args.n, sigma=0.25, random_state=0)
    seconds, _ = timed(lambda: (clf.fit(X, y), _sync(args.device)))
    peak_fit = _status_kib("VmHWM")
    certify_seconds, cert = timed(lambda: clf.certify(X_test))
    out = dict(
        child=args.child,
        n_estimators=args.n,
        rss_before_fit_mib=before / 1024,
        peak_rss_fit_mib=peak_fit / 1024,
        fit_seconds=seconds,
        certify_rows=len(X_test),
        certify_seconds=certify_seconds,
        peak_rss_mib=_status_kib("VmHWM") / 1024,
        abstained=float(cert.abstain.mean()),
    )
    print(json.dumps(out), flush=True)


def run_child(args, what: str, n: int) -> dict:
    cmd = [sys.executable, __file__, "--child", what, "--n", str(n), "--device", args.device]
    if args.quick:
        cmd.append("--quick")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def case_bounds(args) -> list:
    X, y = load_digits(split="train")
    X_test, y_test = load_digits(split="test")
    net = make_net(epochs=2 if args.quick else 10, device=args.device)
    rows = []
    for test_noise in (False, True):
        for sigma in (0.25, 0.5):
            clf = RABClassifier(
                net,
                n_estimators=args.n_small,
                sigma=sigma,
                test_noise=test_noise,
                random_state=0,
            ).fit(X, y)
            for bound in ("clopper-pearson", "simultaneous", "hoeffding"):
                cert = clf.set_params(bound=bound).certify(X_test)  # same members, new bound
                rows.append(
                    dict(
                        case="bounds",
                        test_noise=test_noise,
                        sigma=sigma,
                        bound=bound,
                        clean=float(np.mean(clf.predict(X_test) == y_test)),
                        abstained=float(cert.abstain.mean()),
                        **{
                            f"cert_{r}": float(certified_accuracy(y_test, cert, r))
                            for r in BOUND_RADII
                        },
                    )
                )
                print(json.dumps(rows[-1]), flush=True)
    return rows


def machine(device: str) -> str:
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{os.cpu_count()}-core {cpu}, Linux, Python {platform.python_version()}, torch "
        f"{torch.__version__}, {gpu}; torch threads {torch.get_num_threads()}; device `{device}`"
    )


def write_results(fit, scaling, mnist, bounds, args) -> None:
    lines = [
        "## bench_smoothing" + (" (GPU)" if args.device.startswith("cuda") else ""),
        "",
        f"Machine: {machine(args.device)}. Command: `python benchmarks/bench_smoothing.py"
        f"{' --device ' + args.device if args.device != 'cpu' else ''} --write`. 1-minute load "
        f"average when written: {os.getloadavg()[0]:.1f}.",
        "",
        "| measure | result | target |",
        "|---|---|---|",
    ]
    if fit:
        lines.append(
            f"| RAB N={fit['n_estimators']} fit / one skorch net fit (digits MLP 64-128-10, "
            f"{fit['epochs']} epochs, batch 32) | {fit['rab']:.2f} s / {fit['single']:.2f} s = "
            f"**{fit['ratio']:.1f}** | <= 2.5 |"
        )
        lines.append(
            f"| arithmetic floor: the same steps of {fit['n_estimators']} stacked MLPs by hand "
            f"(no engine) / one net; RAB fit / floor | {fit['floor']:.2f} s / "
            f"{fit['single']:.2f} s = **{fit['floor'] / fit['single']:.1f}**; "
            f"**{fit['rab'] / fit['floor']:.2f}** | recorded |"
        )
        if "speedup" in fit:
            lines.append(
                f"| vectorized vs loop engine, N={fit['n_estimators']} | {fit['loop']:.1f} s / "
                f"{fit['rab']:.2f} s = **{fit['speedup']:.1f}x** | >= 25x |"
            )
    if scaling:
        small, big = scaling
        lines.append(
            f"| N={big['n_estimators']} fit / N={small['n_estimators']} fit (fresh processes) | "
            f"{big['fit_seconds']:.1f} s / {small['fit_seconds']:.1f} s = "
            f"**{big['fit_seconds'] / small['fit_seconds']:.1f}x** | <= 11x |"
        )
        lines.append(
            f"| peak RSS of the fit, N={big['n_estimators']} / N={small['n_estimators']} | "
            f"{big['peak_rss_fit_mib']:.0f} MiB / {small['peak_rss_fit_mib']:.0f} MiB = "
            f"**{big['peak_rss_fit_mib'] / small['peak_rss_fit_mib']:.2f}x** | <= 1.2x |"
        )
        lines.append(
            f"| certify {big['certify_rows']:,} rows with N={big['n_estimators']} | "
            f"**{big['certify_seconds']:.1f} s** | seconds (recorded) |"
        )
    if mnist:
        lines.append(
            f"| MNIST-shaped (60,000 x 784), N={mnist['n_estimators']}, 1 epoch: peak RSS | "
            f"**{mnist['peak_rss_fit_mib'] / 1024:.2f} GiB** (fit {mnist['fit_seconds']:.0f} s; "
            f"{mnist['rss_before_fit_mib'] / 1024:.2f} GiB before) | <= 4 GiB |"
        )
    lines.append("")
    if fit and not args.device.startswith("cuda"):
        lines += [
            "Where the time goes on this CPU: the N=100 fit runs 570 steps (10 epochs of 57 "
            "batches), each one batched forward and backward of 100 MLPs on 32 rows, about 180 "
            "MFLOP, so about 100 GFLOP in all; in a profile, autograd's backward and the linear "
            "layers take most of it, the keyed noise (computed once per member) about a tenth. "
            "The same steps written by hand, with no engine at all, take "
            f"{fit['floor']:.2f} s: {fit['floor'] / fit['single']:.1f} times one net, so no "
            "engine can reach 2.5 on this machine, and the RAB fit costs "
            f"{fit['rab'] / fit['floor']:.2f} times that floor. One net does a hundredth of the "
            "arithmetic and spends its time in skorch's per-step overhead "
            f"({fit['single'] / (10 * 57) * 1e3:.1f} ms a step in all), which is also why the "
            f"loop engine (100 such fits) is only {fit.get('speedup', float('nan')):.1f} times "
            "slower. "
            "On an H200 the same fit is 1.5 times one net and 56 times faster than the loop "
            "engine (GPU section below).",
            "",
        ]
    if bounds:
        lines += [
            f"Certified accuracy of the three bounds on the digits test split (N={args.n_small} "
            "MLP members, alpha=0.001; the same members certified three ways):",
            "",
            "| test_noise | sigma | bound | clean accuracy | abstained | "
            + " | ".join(f"certified at {r}" for r in BOUND_RADII)
            + " |",
            "|---|---|---|---|---|" + "---|" * len(BOUND_RADII),
        ]
        for r in bounds:
            lines.append(
                f"| {r['test_noise']} | {r['sigma']} | {r['bound']} | {r['clean']:.3f} | "
                f"{r['abstained']:.2f} | "
                + " | ".join(f"{r[f'cert_{x}']:.3f}" for x in BOUND_RADII)
                + " |"
            )
        lines.append("")
    section = "\n".join(lines)
    write_section(section)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--cases", default="fit,loop,scaling,mnist,bounds", help="comma-separated subset"
    )
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument("--child", choices=("digits", "mnist"), help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=100, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", UserWarning)
    if args.child:
        child(args)
        return 0
    args.cases = set(args.cases.split(","))
    args.n_small = 10 if args.quick else 100
    if args.quick:
        args.repeats = 1
    fit = scaling = mnist = None
    bounds = []
    if args.cases & {"fit", "loop"}:
        fit = case_fit(args)
        print(json.dumps(fit), flush=True)
    if "scaling" in args.cases:
        scaling = [run_child(args, "digits", n) for n in (args.n_small, 10 * args.n_small)]
        print(json.dumps(scaling), flush=True)
    if "mnist" in args.cases:
        mnist = run_child(args, "mnist", args.n_small)
        print(json.dumps(mnist), flush=True)
    if "bounds" in args.cases:
        bounds = case_bounds(args)
    if args.write:
        write_results(fit, scaling, mnist, bounds, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
