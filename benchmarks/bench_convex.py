"""Benchmarks for sklearn_certify.convex (Steinhardt et al. sphere/slab bounds).

Run: ``python benchmarks/bench_convex.py [--quick]``. Prints markdown tables to
paste into benchmarks/RESULTS.md (section ``## bench_convex``).

1. ``bound_curve`` on digits 1-vs-7, 9 epsilons, T=2000, closed-form oracle.
2. cvxpy oracle: compile once (DPP) vs rebuilding the problem at every step, and
   closed form vs cvxpy; U* of the runs compared.
3. Scaling of ``upper_bound`` in n and d, dense and sparse (per-iteration time,
   extrapolated to T=2000).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from sklearn_certify.convex import (
    ClosedFormOracle,
    CvxpyOracle,
    SphereSlabDefense,
    bound_curve,
    upper_bound,
)
from sklearn_certify.datasets import load_digits_1v7

EPS_ORACLE = 0.1
EPSILONS = [0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.1, 0.2, 0.3]


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def bench_curve():
    X, y = load_digits_1v7(split="train")
    X_test, y_test = load_digits_1v7(split="test")
    _, t_bound = timed(bound_curve, X, y, EPSILONS, rho_sq=0.8, max_iter=2000, evaluate=False)
    curve, t_full = timed(bound_curve, X, y, EPSILONS, rho_sq=0.8, max_iter=2000,
                          X_test=X_test, y_test=y_test)
    n, d = X.shape
    print(f"\n### bound_curve, digits 1-vs-7 (n={n}, d={d}), 9 epsilons, T=2000, closed form\n")
    print("| what | seconds |\n|---|---|")
    print(f"| bounds only (9 runs of Algorithm 1) | {t_bound:.2f} |")
    print(f"| bounds + exact constrained SVM on each attack (cvxpy) | {t_full:.2f} |")
    print("\n| epsilon | eps_eff | U* | attack total train loss | attack test loss | "
          "test error |\n|---|---|---|---|---|---|")
    for i, e in enumerate(curve.epsilons):
        print(f"| {e:.2f} | {curve.epsilons_effective[i]:.4f} | {curve.upper_bounds[i]:.5f} | "
              f"{curve.attack_total_train_loss[i]:.5f} | {curve.attack_test_loss[i]:.5f} | "
              f"{curve.attack_test_error[i]:.4f} |")


def bench_oracles(t_rebuild: int, t_full: int):
    X, y = load_digits_1v7(split="train")
    defense = SphereSlabDefense().fit(X, y)
    args = dict(rho_sq=0.8, defense=defense)
    rows = []
    res_cf_short, t_cf_short = timed(upper_bound, X, y, EPS_ORACLE, max_iter=t_rebuild,
                                     oracle=ClosedFormOracle(), **args)
    res_dpp_short, t_dpp_short = timed(upper_bound, X, y, EPS_ORACLE, max_iter=t_rebuild,
                                       oracle=CvxpyOracle(), **args)
    res_reb, t_reb = timed(upper_bound, X, y, EPS_ORACLE, max_iter=t_rebuild,
                           oracle=CvxpyOracle(compile_once=False), **args)
    rows.append((f"cvxpy rebuild each step, T={t_rebuild}", t_reb, res_reb.upper_bound))
    rows.append((f"cvxpy compiled once (DPP), T={t_rebuild}", t_dpp_short,
                 res_dpp_short.upper_bound))
    rows.append((f"closed form, T={t_rebuild}", t_cf_short, res_cf_short.upper_bound))
    loose = {"solver": "CLARABEL", "solver_options": {}}
    res_reb_l, t_reb_l = timed(upper_bound, X, y, EPS_ORACLE, max_iter=t_rebuild,
                               oracle=CvxpyOracle(compile_once=False, **loose), **args)
    res_dpp_l, t_dpp_l = timed(upper_bound, X, y, EPS_ORACLE, max_iter=t_rebuild,
                               oracle=CvxpyOracle(**loose), **args)
    rows.append((f"cvxpy rebuild each step, Clarabel default tolerances, T={t_rebuild}",
                 t_reb_l, res_reb_l.upper_bound))
    rows.append((f"cvxpy compiled once, Clarabel default tolerances, T={t_rebuild}",
                 t_dpp_l, res_dpp_l.upper_bound))
    res_cf, t_cf = timed(upper_bound, X, y, EPS_ORACLE, max_iter=t_full, oracle="closed_form",
                         **args)
    res_dpp, t_dpp = timed(upper_bound, X, y, EPS_ORACLE, max_iter=t_full, oracle=CvxpyOracle(),
                           **args)
    rows.append((f"cvxpy compiled once (DPP), T={t_full}", t_dpp, res_dpp.upper_bound))
    rows.append((f"closed form, T={t_full}", t_cf, res_cf.upper_bound))
    # U(theta) at identical thetas: both oracles score the closed-form run's iterates
    cvx = CvxpyOracle().fit(defense)
    cf = ClosedFormOracle().fit(defense)
    rng = np.random.default_rng(0)
    gaps = []
    for _ in range(50):
        w = rng.normal(size=X.shape[1])
        w *= np.sqrt(0.8) / np.linalg.norm(w)
        labels = np.array([-1, 1])
        gaps.append(np.abs(labels * (cvx.worst_points(w) @ w)
                           - labels * (cf.worst_points(w) @ w)).max())
    print(f"\n### Oracles on digits 1-vs-7, epsilon={EPS_ORACLE} (d={X.shape[1]})\n")
    print("| oracle | seconds | U* |\n|---|---|---|")
    for name, t, u in rows:
        print(f"| {name} | {t:.2f} | {u:.8f} |")
    print(f"\n- compile-once vs rebuild (T={t_rebuild}): **{t_reb / t_dpp_short:.1f}x** with the "
          f"oracle's default tight tolerances (1e-10), **{t_reb_l / t_dpp_l:.1f}x** with "
          "Clarabel's default tolerances")
    print(f"- closed form vs cvxpy compiled once (T={t_full}): **{t_dpp / t_cf:.0f}x**")
    print(f"- U* difference, rebuild vs compile-once (T={t_rebuild}): "
          f"{abs(res_reb.upper_bound - res_dpp_short.upper_bound):.1e}; with default "
          f"tolerances vs closed form: {abs(res_dpp_l.upper_bound - res_cf_short.upper_bound):.1e}")
    print(f"- U* difference, cvxpy vs closed form (T={t_rebuild}): "
          f"{abs(res_dpp_short.upper_bound - res_cf_short.upper_bound):.1e}; "
          f"(T={t_full}): {abs(res_dpp.upper_bound - res_cf.upper_bound):.1e}")
    print(f"- worst-case loss at the same theta, cvxpy vs closed form, 50 random thetas: "
          f"max difference {max(gaps):.1e}")


def _data(n, d, sparse, rng):
    y = np.where(rng.random(n) < 0.5, 1, -1)
    if sparse:
        X = sp.random(n, d, density=0.05, format="csr", random_state=rng, dtype=np.float64)
        return sp.csr_matrix(sp.diags(1.0 + 0.5 * (y == 1)) @ X), y
    X = rng.normal(size=(n, d)) + 0.3 * y[:, None] / np.sqrt(d) * 10
    return X, y


def bench_scaling(ns, ds, n_iter):
    rng = np.random.default_rng(0)
    print(f"\n### Scaling of upper_bound (closed form); T={n_iter} timed, "
          "extrapolated to T=2000\n")
    print("OpenBLAS threads: 'default' (one per core) and 1 (threadpoolctl). Matrix-vector "
          "products are memory-bound; on a shared, loaded machine the extra thread mostly "
          "waits.\n")
    print("| n | d | storage | ms / iteration (default threads) | ms / iteration (1 thread) | "
          "T=2000, best (s) |\n|---|---|---|---|---|---|")
    for sparse in (False, True):
        for n in ns:
            for d in ds:
                X, y = _data(n, d, sparse, rng)
                defense = SphereSlabDefense().fit(X, y)
                eps = min(0.1, n_iter / n)  # round(eps * n) <= T; cost per step is eps-free
                run = dict(rho_sq=1.0, defense=defense, max_iter=n_iter)
                _, t_default = timed(upper_bound, X, y, eps, **run)
                with threadpool_limits(limits=1, user_api="blas"):
                    _, t_one = timed(upper_bound, X, y, eps, **run)
                kind = "sparse (5% nnz)" if sparse else "dense"
                best = min(t_default, t_one) / n_iter
                print(f"| {n:,} | {d:,} | {kind} | {t_default / n_iter * 1e3:.2f} | "
                      f"{t_one / n_iter * 1e3:.2f} | {best * 2000:.1f} |")
                del X


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    args = parser.parse_args()
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, "
          f"Python {platform.python_version()}, numpy {np.__version__}")
    bench_curve()
    if args.quick:
        bench_oracles(t_rebuild=50, t_full=200)
        bench_scaling([1000, 10000], [10, 100], n_iter=20)
    else:
        bench_oracles(t_rebuild=300, t_full=2000)
        bench_scaling([1000, 10000, 100000], [10, 100, 1000], n_iter=50)


if __name__ == "__main__":
    main()
