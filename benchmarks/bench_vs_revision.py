"""Time DPA training in the working tree against a git revision, interleaved on one machine.

``python benchmarks/bench_vs_revision.py --rev REV [--write]`` checks ``REV`` out into a
temporary worktree and times, alternating between the two versions (each run in a fresh
subprocess, so they never share a process), the cases of ``bench_dpa.py`` whose cost a
refactor of the engine could change:

* ``digits``: ``DPAClassifier`` with the digits MLP (k=100, 20 epochs, batch 16), whole fit;
* ``mnist``: ``fit_members`` alone on the MNIST-shaped data (k=1200, 2 epochs, batch 64).

Each subprocess reports the minimum of ``--repeats`` timed runs after one warm-up; the table
gives, per version, the minimum and the median over ``--rounds`` alternations. A shared
machine drifts over minutes, which is why the two versions alternate instead of running one
after the other. ``--write`` puts the table in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from inspect import signature
from pathlib import Path

from _results import write_section

ROOT = Path(__file__).resolve().parents[1]
CASES = ("digits", "mnist")


def time_case(case: str, repeats: int) -> float:
    """Minimum seconds of ``repeats`` runs of ``case`` (after a warm-up), in this process."""
    import numpy as np

    # the helpers of the version being timed (the child runs in that version's checkout)
    sys.path.insert(0, str(Path.cwd() / "benchmarks"))
    from bench_dpa import fit_dpa, make_net, mnist_shaped

    import sklearn_certify.ensemble as engine
    from sklearn_certify.datasets import load_digits
    from sklearn_certify.partition import bucket_of_rows

    warnings.simplefilter("ignore")
    if case == "digits":
        X, y = load_digits()
        net = make_net(64, 64, epochs=20, batch_size=16, lr=0.05, device="cpu")

        def run():
            fit_dpa(net, X, y, 100, "vectorized")

    else:
        X, y = mnist_shaped()
        k = 1200
        buckets = bucket_of_rows(X, k)
        subsets = [np.flatnonzero(buckets == j) for j in range(k)]
        net = make_net(784, 128, epochs=2, batch_size=64, lr=0.05, device="cpu")
        # the base seed is fit_members' seed= (random_state= before the rename)
        seed_name = "seed" if "seed" in signature(engine.fit_members).parameters else "random_state"
        kw = {"n_classes": 10, seed_name: 0}

        def run():
            if hasattr(engine, "MemberPlan"):  # the engine after the member-plan redesign
                engine.fit_members(net, X, y, engine.MemberPlan(subsets, n_members_total=k), **kw)
            else:
                engine.fit_members(net, X, y, subsets, n_members_total=k, **kw)

    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def _subprocess_time(source: Path, case: str, repeats: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(source))
    out = subprocess.run(
        [sys.executable, __file__, "--child", case, "--repeats", str(repeats)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=source,
    )
    return float(out.stdout.strip().splitlines()[-1])


def compare(rev: str, rounds: int, repeats: int) -> dict:
    """``{case: {"working tree": [...], rev: [...]}}`` seconds, alternating the versions."""
    results = {case: {"working tree": [], rev: []} for case in CASES}
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "rev"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev],
            check=True,
            capture_output=True,
        )
        try:
            for _ in range(rounds):
                for case in CASES:
                    for label, source in (("working tree", ROOT), (rev, tree)):
                        seconds = _subprocess_time(source, case, repeats)
                        results[case][label].append(seconds)
                        print(json.dumps({"case": case, "version": label, "s": seconds}))
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True
            )
    return results


def table(results: dict, rev: str) -> str:
    lines = [
        f"| case | working tree: min / median | {rev}: min / median | ratio of minima |",
        "|---|---|---|---|",
    ]
    for case, by_version in results.items():
        new, old = by_version["working tree"], by_version[rev]
        lines.append(
            f"| {case} | {min(new):.3f} s / {statistics.median(new):.3f} s | "
            f"{min(old):.3f} s / {statistics.median(old):.3f} s | {min(new) / min(old):.2f} |"
        )
    return "\n".join(lines)


def write(results: dict, rev: str, rounds: int, repeats: int) -> None:
    section = "\n".join(
        [
            "## bench_vs_revision",
            "",
            f"Working tree against `{rev}`, same machine, {rounds} alternating rounds (each a "
            f"fresh process timing the minimum of {repeats} runs after a warm-up). Command: "
            f"`python benchmarks/bench_vs_revision.py --rev {rev} --write`. 1-minute load "
            f"average when written: {os.getloadavg()[0]:.1f}.",
            "",
            table(results, rev),
            "",
        ]
    )
    write_section(section)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(time_case(args.child, args.repeats))
        return 0
    if not args.rev:
        parser.error("--rev is required")
    results = compare(args.rev, args.rounds, args.repeats)
    print(table(results, args.rev))
    if args.write:
        write(results, args.rev, args.rounds, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
