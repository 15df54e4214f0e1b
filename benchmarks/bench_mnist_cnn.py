"""DPA and RAB of a BatchNorm CNN on real MNIST digits: vectorized engine, loop engine, one net.

Run ``python benchmarks/bench_mnist_cnn.py`` (``--quick`` for a smoke run, ``--write`` to update
the ``## bench_mnist_cnn`` section of ``benchmarks/RESULTS.md``, ``--device cuda`` on a GPU).
Every net is ``make_mnist_net(batch_norm=True, milestones=(m,), crop_padding=2, channels=8)``:
two 3x3 conv blocks with BatchNorm, SGD with momentum and a MultiStepLR schedule (the learning
rate divided by 10 at epoch ``m``, two thirds of the way), random 28x28 crops of the images
padded by 2 pixels. The data are the 3,750 training digits of
``load_mnist(shape="image", split="train")``; the first 500 test digits are certified.

Cases (all in one process, timings the minimum of ``--repeats`` interleaved fits):

* ``first_call``: the first and the second vectorized DPA fit in a fresh process, both under
  cProfile, and how much of the difference is spent importing modules (``torch._dynamo``,
  which torch imports when the first optimizer is built, in particular);
* ``dpa``: ``DPAClassifier(net, n_partitions=--members)`` with ``engine="vectorized"`` and
  ``engine="loop"``, against one net fitted on all 3,750 rows for the same epochs;
* ``rab``: ``RABClassifier(net, n_estimators=--members, sigma=--sigma)`` the same way (every
  member trains on all rows). ``--loop-members M`` times the loop engine on the first M members
  only and extrapolates to all of them (members are independent and equally costly); the
  output then says so (``loop_extrapolated``);
* ``contention`` (``--contention``): one net and the vectorized DPA fit for one epoch with 2
  torch threads and with 1, while a busy-loop process keeps one CPU core busy, then with 2
  threads and ``OMP_WAIT_POLICY=PASSIVE`` in a fresh process.

Each case prints one JSON line: the speed-up of the vectorized engine over the loop engine,
the ensemble's fit time over one net's, certified accuracy of each ensemble on the 500 test
digits, and how often the two engines' members and votes agree.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import platform
import pstats
import subprocess
import sys
import time
import warnings

import numpy as np
import torch
from _results import write_section
from sklearn.base import clone

from sklearn_certify import DPAClassifier, RABClassifier
from sklearn_certify.datasets import load_mnist
from sklearn_certify.ensemble import EngineFallbackWarning
from sklearn_certify.metrics import certified_accuracy_curve
from sklearn_certify.nets import make_mnist_net

#: Targets of the issue, for a GPU: loop / vectorized, and ensemble fit / one net.
TARGETS = {"speedup": 10.0, "dpa": 1.0, "rab": 2.5}
#: Radii reported: DPA in poisoned rows, RAB in multiples of sigma (l2 in pixel units).
DPA_RADII = (0, 2, 5, 10, 15)
RAB_SIGMAS = (0, 0.25, 0.5, 1.0)
N_TEST = 500
#: The DPA case also times the vectorized fit without BatchNorm and without the crops.
ABLATIONS = {
    "vectorized_no_batch_norm": {"batch_norm": False},
    "vectorized_no_crops": {"crop_padding": 0},
}


def make_net(args, epochs: int | None = None, batch_norm: bool = True, crop_padding: int = 2):
    """The benchmark's CNN: BatchNorm, MultiStepLR at two thirds, random crops (padding 2)."""
    epochs = args.epochs if epochs is None else epochs
    return make_mnist_net(
        batch_norm=batch_norm,
        max_epochs=epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        channels=args.channels,
        milestones=(epochs - epochs // 3,),
        crop_padding=crop_padding,
        device=args.device,
    )


def ensemble(case: str, net, members: int, engine: str, sigma: float):
    if case == "dpa":
        return DPAClassifier(net, n_partitions=members, engine=engine, random_state=0)
    return RABClassifier(net, n_estimators=members, sigma=sigma, engine=engine, random_state=0)


def timed_fit(estimator, X, y) -> float:
    """Seconds to fit ``estimator``; an engine fallback is an error, small partitions are not."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "members see few rows": expected for DPA
        warnings.simplefilter("error", EngineFallbackWarning)
        estimator.fit(X, y)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def load_data(quick: bool):
    X, y = load_mnist(shape="image", split="train")
    X_test, y_test = load_mnist(shape="image", split="test")
    n_train, n_test = (600, 100) if quick else (len(X), N_TEST)
    return X[:n_train], y[:n_train], X_test[:n_test], y_test[:n_test]


# ---------------------------------------------------------------- first call
def _profile_entry(stats: pstats.Stats, file_end: str, function: str) -> float:
    """Cumulative seconds of the profiled function ``function`` of a file ending ``file_end``."""
    found = [
        value[3]
        for (file, _, name), value in stats.stats.items()
        if file.endswith(file_end) and name == function
    ]
    return max(found, default=0.0)


def _top_self_time(stats: pstats.Stats, n: int = 3) -> list[list]:
    """The ``n`` functions with the most self time: ``[name, seconds]``."""
    entries = sorted(stats.stats.items(), key=lambda item: -item[1][2])[:n]
    return [
        [name if file == "~" else f"{os.path.basename(file)}:{line}({name})", value[2]]
        for (file, line, name), value in entries
    ]


def _profiled_fit(estimator, X, y) -> tuple[float, pstats.Stats]:
    profiler = cProfile.Profile()
    profiler.enable()
    seconds = timed_fit(estimator, X, y)
    profiler.disable()
    return seconds, pstats.Stats(profiler)


def first_call(args, data) -> dict:
    """Time the process's first and second vectorized DPA fit; find the imports in the first."""
    X, y, _, _ = data
    net = make_net(args)
    fits, imports = [], []
    for _ in range(2):
        seconds, stats = _profiled_fit(ensemble("dpa", net, args.members, "vectorized", 0), X, y)
        fits.append(seconds)
        imports.append(
            {
                "all": _profile_entry(stats, "<frozen importlib._bootstrap>", "_find_and_load"),
                "torch._dynamo": _profile_entry(stats, "torch/_dynamo/__init__.py", "<module>"),
                "top": _top_self_time(stats),
            }
        )
    return {
        "case": "first_call",
        "device": args.device,
        "members": args.members,
        "first_fit_s": fits[0],
        "second_fit_s": fits[1],
        "first_minus_second_s": fits[0] - fits[1],
        "imports_in_first_s": imports[0]["all"],
        "torch_dynamo_import_in_first_s": imports[0]["torch._dynamo"],
        "imports_in_second_s": imports[1]["all"],
        "top_self_time_first": imports[0]["top"],
        "top_self_time_second": imports[1]["top"],
        "load_average": os.getloadavg()[0],
        "note": "both fits under cProfile",
    }


# ---------------------------------------------------------------- ensembles
def _votes(labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Plurality label of each row of member labels (ties to the smallest class)."""
    counts = (labels[:, :, None] == classes[None, None, :]).sum(axis=1)
    return classes[np.argmax(counts, axis=1)]


def agreement(vectorized, loop, X_test) -> dict:
    """Share of (digit, member) labels and of votes on which the two engines agree."""
    loop_labels = np.ma.filled(loop.predict_members(X_test), -1)
    vec_labels = np.ma.filled(vectorized.predict_members(X_test), -1)[:, : loop_labels.shape[1]]
    classes = vectorized.classes_
    return {
        "member_agreement": float(np.mean(vec_labels == loop_labels)),
        "vote_agreement": float(
            np.mean(_votes(vec_labels, classes) == _votes(loop_labels, classes))
        ),
    }


def certified(case: str, clf, X_test, y_test, sigma: float) -> dict:
    """Clean accuracy (correct, not abstaining) and certified accuracy at the case's radii."""
    cert = clf.certify(X_test)
    radii = DPA_RADII if case == "dpa" else tuple(s * sigma for s in RAB_SIGMAS)
    _, accuracy = certified_accuracy_curve(y_test, cert, radii=radii)
    return {f"{r:g}": float(a) for r, a in zip(radii, accuracy, strict=True)}


def run_case(case: str, args, data) -> dict:
    X, y, X_test, y_test = data
    net = make_net(args)
    n_loop = args.members if case == "dpa" or not args.loop_members else args.loop_members
    n_loop = min(n_loop, args.members)
    fits = {
        "vectorized": ensemble(case, net, args.members, "vectorized", args.sigma),
        "loop": ensemble(case, net, n_loop, "loop", args.sigma),
        "one_net": clone(net),
    }
    if case == "dpa":  # where the vectorized time goes: the same fit without each feature
        for name, settings in ABLATIONS.items():
            fits[name] = ensemble(case, make_net(args, **settings), args.members, "vectorized", 0)
    times = {name: [] for name in fits}
    for _ in range(args.repeats):  # interleaved: a burst of load hits every fit
        for name, estimator in fits.items():
            times[name].append(timed_fit(estimator, X, y))
    best = {name: min(seconds) for name, seconds in times.items()}
    loop_s = best["loop"] * args.members / n_loop
    row = {
        "case": case,
        "device": args.device,
        "members": args.members,
        "rows": len(X),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "channels": args.channels,
        "torch_threads": torch.get_num_threads(),
        "one_net_s": best["one_net"],
        "vectorized_s": best["vectorized"],
        "loop_s": loop_s,
        "loop_members_measured": n_loop,
        "loop_measured_s": best["loop"],
        "loop_extrapolated": n_loop < args.members,
        "speedup": loop_s / best["vectorized"],
        "fit_over_one_net": best["vectorized"] / best["one_net"],
        "target_speedup_gpu": TARGETS["speedup"],
        "target_fit_over_one_net_gpu": TARGETS[case],
        "one_net_accuracy": float(np.mean(fits["one_net"].predict(X_test) == y_test)),
        "certified_vectorized": certified(case, fits["vectorized"], X_test, y_test, args.sigma),
        "certified_loop": (
            certified(case, fits["loop"], X_test, y_test, args.sigma)
            if n_loop == args.members
            else None
        ),
        **agreement(fits["vectorized"], fits["loop"], X_test),
    }
    if case == "rab":
        row["sigma"] = args.sigma
    row.update({f"{name}_s": best[name] for name in ABLATIONS if name in best})
    return row


# ---------------------------------------------------------------- contention
@contextlib.contextmanager
def busy_core():
    """A child process spinning on one CPU core for the duration of the block."""
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        yield
    finally:
        child.kill()
        child.wait()


def _contention_times(args, data, threads: int) -> dict:
    X, y, _, _ = data
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        net = make_net(args, epochs=1)
        return {
            "one_net_s": timed_fit(clone(net), X, y),
            "dpa_vectorized_s": timed_fit(
                ensemble("dpa", net, args.members, "vectorized", 0), X, y
            ),
        }
    finally:
        torch.set_num_threads(previous)


def _passive_child(args) -> dict:
    """The 2-thread times in a fresh process with ``OMP_WAIT_POLICY=PASSIVE``."""
    command = [sys.executable, __file__, "--_contention-child", "--members", str(args.members)]
    command += ["--device", args.device, "--channels", str(args.channels)]
    command += ["--batch-size", str(args.batch_size), "--lr", str(args.lr)]
    command += ["--quick"] * args.quick
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def contention(args, data) -> dict:
    """One-epoch fits with one core kept busy: 2 torch threads, 1 thread, 2 threads passive."""
    _contention_times(args, data, 1)  # warm-up (imports, first optimizer), not timed
    with busy_core():
        timings = {
            "2 threads": _contention_times(args, data, 2),
            "1 thread": _contention_times(args, data, 1),
            "2 threads, OMP_WAIT_POLICY=PASSIVE": _passive_child(args),
        }
    return {"case": "contention", "members": args.members, "epochs": 1, "timings": timings}


# ---------------------------------------------------------------- report
def machine() -> str:
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{os.cpu_count()}-core {cpu} container, Python {platform.python_version()}, "
        f"torch {torch.__version__}, {gpu}; torch threads {torch.get_num_threads()}"
    )


def _case_line(r: dict) -> str:
    loop = f"{r['loop_s']:.1f} s"
    if r["loop_extrapolated"]:
        measured = f"{r['loop_members_measured']} members: {r['loop_measured_s']:.1f} s"
        loop += f" (extrapolated from {measured})"
    cert = ", ".join(f"{k}: {v:.3f}" for k, v in r["certified_vectorized"].items())
    name = (
        f"DPA k={r['members']}"
        if r["case"] == "dpa"
        else f"RAB N={r['members']}, sigma={r['sigma']:g}"
    )
    return (
        f"| {name} | {r['one_net_s']:.1f} s | {r['vectorized_s']:.1f} s | {loop} | "
        f"{r['speedup']:.2f}x | {r['fit_over_one_net']:.2f} (GPU target <= "
        f"{r['target_fit_over_one_net_gpu']:g}) | {r['one_net_accuracy']:.3f} | {cert} | "
        f"{r['member_agreement']:.3f} / {r['vote_agreement']:.3f} |"
    )


def _header(args, sizes: tuple[int, int], wall: float) -> str:
    shared = "; the CPU is shared with another worker, so single fits vary" * (args.device == "cpu")
    return (
        f"Machine: {machine()}. Device: `{args.device}`. Command: `python "
        f"benchmarks/bench_mnist_cnn.py {' '.join(sys.argv[1:])}` ({wall:.0f} s wall; 1-minute "
        f"load average when written: {os.getloadavg()[0]:.1f}{shared}). Net: "
        f"`make_mnist_net(batch_norm=True, milestones=(m,), crop_padding=2, "
        f"channels={args.channels})`, epochs {args.epochs}, batch {args.batch_size}, lr "
        f"{args.lr:g} (SGD, momentum 0.9) divided by 10 at epoch m = "
        f"{args.epochs - args.epochs // 3}; {sizes[0]} real MNIST training digits, the first "
        f"{sizes[1]} test digits certified. Times: minimum of {args.repeats} interleaved "
        f"fit(s). The targets are for a GPU (vectorized >= {TARGETS['speedup']:g}x loop, DPA "
        f"fit <= {TARGETS['dpa']:g}x one net, RAB N=100 fit <= {TARGETS['rab']:g}x one net)."
    )


def section(rows: list[dict], args, sizes: tuple[int, int], wall: float) -> str:
    lines = [
        "## bench_mnist_cnn",
        "",
        _header(args, sizes, wall),
        "",
        "| ensemble | one net, all rows | vectorized fit | loop fit | vectorized speed-up "
        "| fit / one net | one net's accuracy | certified accuracy (vectorized) at radius | "
        "engines agree: member labels / votes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_case_line(r) for r in rows if r["case"] in ("dpa", "rab")]
    lines.append("")
    lines.append(
        "Radius: DPA in inserted or deleted training rows, RAB in l2 distance of the training "
        "features (pixel units). The loop engine's certified accuracy, where it trained every "
        "member: "
        + "; ".join(
            f"{r['case']} " + ", ".join(f"{k}: {v:.3f}" for k, v in r["certified_loop"].items())
            for r in rows
            if r.get("certified_loop")
        )
        + "."
    )
    for r in rows:
        if r["case"] == "dpa":
            lines += ["", _ablation_line(r)]
        if r["case"] == "first_call":
            lines += ["", _first_call_line(r)]
        if r["case"] == "contention":
            lines += ["", *_contention_lines(r)]
    return "\n".join(lines) + "\n"


def _ablation_line(r: dict) -> str:
    full, bn, crops = r["vectorized_s"], r["vectorized_no_batch_norm_s"], r["vectorized_no_crops_s"]
    return (
        f"Where the vectorized DPA time goes: the same fit takes {bn:.2f} s without BatchNorm "
        f"(BatchNorm, with statistics over each member's real rows, costs {full - bn:.2f} s, "
        f"{(full - bn) / full:.0%} of "
        f"{full:.2f} s) and {crops:.2f} s without the random crops ({full - crops:.2f} s, "
        f"{(full - crops) / full:.0%})."
    )


def _first_call_line(r: dict) -> str:
    first, second = r["top_self_time_first"], r["top_self_time_second"]

    def top(entries):
        return ", ".join(f"`{name}` {seconds:.2f} s" for name, seconds in entries)

    return (
        f"First call: the process's first vectorized DPA fit took {r['first_fit_s']:.2f} s and "
        f"the second {r['second_fit_s']:.2f} s (both under cProfile). Of the "
        f"{r['first_minus_second_s']:.2f} s difference, {r['imports_in_first_s']:.2f} s is "
        f"importing modules ({r['torch_dynamo_import_in_first_s']:.2f} s of it `torch._dynamo`, "
        "which `torch.optim` imports lazily (its `@torch._disable_dynamo` methods) the first "
        "time any optimizer is built, so a first loop-engine or single-net fit pays it too); "
        "the second fit imports "
        f"{r['imports_in_second_s']:.2f} s. Most self time in the first fit: {top(first)}; in "
        f"the second: {top(second)}."
    )


def _contention_lines(r: dict) -> list[str]:
    lines = [
        f"CPU contention: one-epoch fits while a busy-loop process keeps one of the "
        f"{os.cpu_count()} cores busy (torch's intra-op threads are OpenMP threads, whose "
        "barriers spin-wait on a core that is not theirs):",
        "",
        f"| torch threads | one net | DPA k={r['members']}, vectorized |",
        "|---|---|---|",
    ]
    lines += [
        f"| {name} | {t['one_net_s']:.1f} s | {t['dpa_vectorized_s']:.1f} s |"
        for name, t in r["timings"].items()
    ]
    return lines


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--cases", default="dpa,rab", help="comma-separated: dpa, rab")
    parser.add_argument("--members", type=int, default=50, help="DPA's k and RAB's N")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--sigma", type=float, default=0.25, help="RAB's noise (pixel units)")
    parser.add_argument("--repeats", type=int, default=2, help="fits timed (the fastest)")
    parser.add_argument(
        "--loop-members", type=int, default=None, help="RAB: time the loop on M members only"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--contention", action="store_true", help="add the contention case")
    parser.add_argument("--quick", action="store_true", help="tiny settings for a smoke run")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument("--_contention-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.members, args.epochs, args.repeats = min(args.members, 5), 1, 1
        args.channels, args.loop_members = 4, args.loop_members and min(args.loop_members, 2)
    return args


def main(argv=None) -> None:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = load_data(args.quick)
    if args._contention_child:
        _contention_times(args, data, 1)  # warm-up
        print(json.dumps(_contention_times(args, data, 2)), flush=True)
        return
    start = time.perf_counter()
    rows = [first_call(args, data)]
    print(json.dumps(rows[-1]), flush=True)
    for case in args.cases.split(","):
        rows.append(run_case(case, args, data))
        print(json.dumps(rows[-1]), flush=True)
    if args.contention:
        rows.append(contention(args, data))
        print(json.dumps(rows[-1]), flush=True)
    sizes = (len(data[0]), len(data[2]))
    text = section(rows, args, sizes, time.perf_counter() - start)
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
