"""Benchmark the certificate functions against straightforward per-sample loops.

Run ``python benchmarks/bench_bounds.py`` (``--quick`` for a smoke run). Both
sides run in the same process on the same data; results are printed and
written into the ``## bench_bounds`` section of ``benchmarks/RESULTS.md``.

* ``fa_radius``: 10,000 samples, k=1200, d=16, 10 classes, against a per-sample
  loop that ports the official algorithm with numpy inside (per class: bucket
  powers, sort, cumulative sum, search). The loop is timed on a subset and its
  per-sample time scaled to the full size (stated in the output).
* ``dpa_radius``: 100,000 x 10 votes, against a per-sample loop.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
from _results import write_section

from sklearn_certify.bounds import dpa_radius, fa_radius, fa_shifts


def fa_loop(preds, n_classes, k, d):
    """Per-sample loop: the official greedy with numpy inside each sample."""
    n_buckets = k * d
    learners = (np.arange(n_buckets)[:, None] + fa_shifts(k, d)[None, :]) % n_buckets
    radii = np.empty(len(preds), dtype=np.int64)
    for i, row in enumerate(preds):
        votes = np.bincount(row, minlength=n_classes)
        y = int(np.argmax(votes))
        in_bucket = row[learners]
        best = n_buckets
        for c in range(n_classes):
            if c == y:
                continue
            gap = votes[y] - votes[c] - (c < y)
            power = (1 + (in_bucket == y).astype(np.int64) - (in_bucket == c)).sum(axis=1)
            cumulative = np.cumsum(-np.sort(-power))
            best = min(best, int(np.searchsorted(cumulative, gap, side="right")))
        radii[i] = best
    return radii


def fa_official_loop(preds, n_classes, k, d):
    """The official FA certify structure: pure Python over samples, classes and buckets."""
    n_buckets = k * d
    shifts = fa_shifts(k, d).tolist()
    radii = []
    for row in preds.tolist():
        votes = [0] * n_classes
        for p in row:
            votes[p] += 1
        y = max(range(n_classes), key=lambda c: (votes[c], -c))
        best = n_buckets
        for c in range(n_classes):
            if c == y:
                continue
            gap = votes[y] - votes[c] - (c < y)
            delta = sorted(
                (
                    sum(
                        1 + (row[(b + s) % n_buckets] == y) - (row[(b + s) % n_buckets] == c)
                        for s in shifts
                    )
                    for b in range(n_buckets)
                ),
                reverse=True,
            )
            total = r = 0
            while r < n_buckets and total + delta[r] <= gap:
                total += delta[r]
                r += 1
            best = min(best, r)
        radii.append(best)
    return np.array(radii, dtype=np.int64)


def dpa_loop(votes):
    radii = np.empty(len(votes), dtype=np.int64)
    for i, v in enumerate(votes):
        y = int(np.argmax(v))
        radii[i] = min((v[y] - v[c] - (c < y)) // 2 for c in range(len(v)) if c != y)
    return radii


def ensemble_votes(rng, n, n_learners, n_classes, agreement=0.77):
    """Learner predictions that agree with a per-sample favourite at the given rate."""
    favourite = rng.integers(0, n_classes, size=(n, 1))
    noise = rng.integers(0, n_classes, size=(n, n_learners))
    return np.where(rng.random((n, n_learners)) < agreement, favourite, noise).astype(np.int16)


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, no RESULTS.md update")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    n_fa, n_loop, n_dpa = (300, 20, 5000) if args.quick else (10_000, 150, 100_000)
    k, d, n_classes = 1200, 16, 10
    rows = []

    preds = ensemble_votes(rng, n_fa, k * d, n_classes)
    t_vec, (_, r_vec) = timed(fa_radius, preds, n_classes, k, d)
    t_loop, r_loop = timed(fa_loop, preds[:n_loop], n_classes, k, d)
    assert np.array_equal(r_vec[:n_loop], r_loop)
    t_loop_full = t_loop / n_loop * n_fa
    rows.append(
        (
            f"fa_radius, {n_fa} x (k={k}, d={d}), {n_classes} classes",
            t_vec,
            f"{t_loop_full:.1f} s (timed on {n_loop} samples, scaled)",
            t_loop_full / t_vec,
        )
    )

    n_official = 2 if args.quick else 3
    t_off, r_off = timed(fa_official_loop, preds[:n_official], n_classes, k, d)
    assert np.array_equal(r_vec[:n_official], r_off)
    t_off_full = t_off / n_official * n_fa
    rows.append(
        (
            "fa_radius, same, against the official pure-Python loop structure",
            t_vec,
            f"{t_off_full:.0f} s (timed on {n_official} samples, scaled)",
            t_off_full / t_vec,
        )
    )

    uniform = rng.integers(0, n_classes, size=(n_fa, k * d)).astype(np.int16)
    t_uni, (_, r_uni) = timed(fa_radius, uniform, n_classes, k, d)
    t_uloop, r_uloop = timed(fa_loop, uniform[:n_loop], n_classes, k, d)
    assert np.array_equal(r_uni[:n_loop], r_uloop)
    t_uloop_full = t_uloop / n_loop * n_fa
    rows.append(
        (
            "fa_radius, same, uniformly random learner votes",
            t_uni,
            f"{t_uloop_full:.1f} s (scaled)",
            t_uloop_full / t_uni,
        )
    )

    votes = rng.multinomial(1200, np.full(n_classes, 1 / n_classes), size=n_dpa)
    t_dpa, (_, r_dpa) = timed(dpa_radius, votes)
    t_dloop, r_dloop = timed(dpa_loop, votes)
    assert np.array_equal(r_dpa, r_dloop)
    rows.append(
        (f"dpa_radius, {n_dpa} x {n_classes} votes", t_dpa, f"{t_dloop:.2f} s", t_dloop / t_dpa)
    )

    machine = (
        f"{platform.processor() or platform.machine()}, {platform.system()}, numpy {np.__version__}"
    )
    lines = [
        "## bench_bounds",
        "",
        f"Machine: 2-core CPU container ({machine}). Command: `python benchmarks/bench_bounds.py`.",
        "",
        "| case | vectorized | per-sample loop | speed-up |",
        "|---|---|---|---|",
    ]
    lines += [f"| {name} | {t:.2f} s | {loop} | {ratio:.0f}x |" for name, t, loop, ratio in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        write_section(text)


if __name__ == "__main__":
    main()
