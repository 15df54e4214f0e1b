"""The two seed experiments of the gallery at fuller settings.

Run ``python benchmarks/bench_seed_experiments.py`` (``--quick`` for a smoke run,
``--write`` to update the ``## bench_seed_experiments`` section of
``benchmarks/RESULTS.md``).

1. **Clean-label poisoning against the denoising defence** (Hong, Carlini & Kurakin 2024,
   Tables 1-2, in small; gallery: ``plot_clean_label_denoising.py``). Feature collision
   (:class:`~sklearn_certify.attacks.FeatureCollisionAttack`, 40 poisoned rows per target)
   against a ridge head on the frozen hidden layer of a network pretrained on the trusted
   digits, at l_inf 0.1 and 0.2 and l2 0.8 and 1.6 per image, on 50 random test targets;
   undefended, trained on plain noisy copies, and
   :class:`~sklearn_certify.DenoisedSmoothingClassifier` with the bundled DDPM, each at
   sigma 0.1, 0.25, 0.5 and 1.0 (5 members). Attack success: the poisoned model puts the
   target in the base class while the same defence trained on clean data did not.
2. **The limits of the sphere/slab bound** (Steinhardt, Koh & Liang 2017; gallery:
   ``plot_convex_bound_limits.py``) on digits 1 vs 7 and 8 vs 9: U* and its candidate
   attack against epsilon (2,000 steps and the paper's ``epsilon * n``), against the
   defence percentile (with the clean points the defence removes and the model trained on
   what passes), and a defence refit on the poisoned data, dragged by an iterated attack,
   next to :func:`~sklearn_certify.convex.data_dependent_estimate`.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
import torch
from _results import write_section
from sklearn.base import clone
from sklearn.linear_model import RidgeClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sklearn_certify import DenoisedSmoothingClassifier
from sklearn_certify.attacks import FeatureCollisionAttack, SphereSlabAttack
from sklearn_certify.convex import (
    SphereSlabDefense,
    bound_curve,
    constrained_linear_fit,
    data_dependent_estimate,
    evaluate_attack,
    n_poison_points,
    upper_bound,
)
from sklearn_certify.datasets import load_digits, load_digits_for_denoising
from sklearn_certify.denoisers import load_bundled

SIGMAS = (0.1, 0.25, 0.5, 1.0)
ATTACK_BUDGETS = {  # per-image budget: FeatureCollisionAttack keyword arguments
    "l_inf 0.1": {"eps_linf": 0.1},
    "l_inf 0.2": {"eps_linf": 0.2},
    "l2 0.8": {"eps_linf": None, "eps_l2": 0.8},
    "l2 1.6": {"eps_linf": None, "eps_l2": 1.6},
}
POISONED_ROWS = 40
RHO_SQ, STEPS = 0.8, 2000
PAIRS = ((1, 7), (8, 9))
EPSILONS = (0.0, 0.01, 0.02, 0.03, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
PERCENTILES = (50, 60, 70, 80, 90, 95, 100)
DRAG_EPSILONS = (0.02, 0.05, 0.1, 0.2, 0.3)


# --------------------------------------------------------------------------------------
# 1. clean-label poisoning against the denoising defence
# --------------------------------------------------------------------------------------


class MemoDenoiser:
    """A row-wise denoiser that denoises each distinct (sigma, noisy row) once.

    A poisoned training set differs from the clean one in a few rows, and a member's noise
    on a row depends on the member and the row's position only, so refitting on many
    poisoned sets meets the same noisy rows again and again. The bundled DDPM treats every
    row on its own (up to float32 rounding that depends on the batch size), so remembering
    its output changes nothing but the time. ``data_range`` and ``training_digests`` are
    the wrapped denoiser's, so ``fit`` keeps checking the data against them.

    Parameters
    ----------
    denoiser : object with ``denoise(X_noisy, sigma)``
        A denoiser that treats rows independently.

    Examples
    --------
    >>> import numpy as np
    >>> class Halve:
    ...     calls = 0
    ...     def denoise(self, X, sigma):
    ...         Halve.calls += len(X)
    ...         return X / 2
    >>> memo = MemoDenoiser(Halve())
    >>> memo.denoise(np.ones((2, 3)), 0.5).tolist()
    [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]
    >>> _ = memo.denoise(np.vstack([np.ones(3), np.zeros(3)]), 0.5)
    >>> Halve.calls  # the row of ones was denoised once, the row of zeros once
    2
    """

    def __init__(self, denoiser):
        self.denoiser = denoiser
        self.data_range = getattr(denoiser, "data_range", None)
        self.training_digests = getattr(denoiser, "training_digests", None)
        self.memo: dict = {}

    def denoise(self, X_noisy, sigma: float) -> np.ndarray:
        """The wrapped denoiser's rows for ``X_noisy``, each computed once per sigma."""
        rows = np.asarray(X_noisy.cpu() if torch.is_tensor(X_noisy) else X_noisy)
        keys = [(float(sigma), rows.dtype.str, row.tobytes()) for row in rows]
        new: dict = {}  # each distinct unseen row, at its first position
        for i, key in enumerate(keys):
            if key not in self.memo and key not in new:
                new[key] = i
        if new:
            out = np.asarray(self.denoiser.denoise(rows[list(new.values())], sigma))
            self.memo.update(zip(new, out, strict=True))
        return np.stack([self.memo[key] for key in keys])


def flipped_to_base(before, after, base) -> np.ndarray:
    """Where an attack succeeded: ``after`` is the base class and ``before`` was not.

    Examples
    --------
    >>> flipped_to_base([1, 6, 1], [6, 6, 1], [6, 6, 6]).tolist()
    [True, False, False]
    """
    before, after, base = (np.asarray(a) for a in (before, after, base))
    return (before != base) & (after == base)


def frozen_features(X_trusted, y_trusted, seed: int = 0):
    """The hidden layer of a 64-32-10 network trained on trusted digits, frozen."""
    torch.manual_seed(seed)
    hidden, output = torch.nn.Linear(64, 32), torch.nn.Linear(32, 10)
    optimizer = torch.optim.Adam([*hidden.parameters(), *output.parameters()], lr=0.01)
    for _ in range(300):
        optimizer.zero_grad()
        logits = output(torch.relu(hidden(torch.as_tensor(X_trusted))))
        torch.nn.functional.cross_entropy(logits, torch.as_tensor(y_trusted)).backward()
        optimizer.step()
    hidden.requires_grad_(False)
    return lambda x: torch.relu(hidden(x))


def run_denoising(n_targets: int, n_members: int, sigmas) -> dict:
    X, y = load_digits_for_denoising(split="train")
    X_test, y_test = load_digits_for_denoising(split="test")
    features = frozen_features(*load_digits_for_denoising(split="denoiser"))

    def head_input(rows):
        with torch.no_grad():
            return features(torch.as_tensor(np.asarray(rows, dtype=np.float32))).numpy()

    victim = make_pipeline(FunctionTransformer(head_input), RidgeClassifier())
    memo = MemoDenoiser(load_bundled("digits"))

    def smoothing(denoiser, sigma):
        return lambda: DenoisedSmoothingClassifier(
            clone(victim), denoiser, n_estimators=n_members, sigma=sigma, random_state=0
        )

    defences = {("none", 0.0): lambda: clone(victim)}
    for sigma in sigmas:
        defences["noise", sigma] = smoothing(None, sigma)
    for sigma in sigmas:
        defences["DDPM", sigma] = smoothing(memo, sigma)

    targets = np.random.default_rng(0).choice(len(X_test), n_targets, replace=False)
    start = time.perf_counter()
    poisonings = {
        name: [
            FeatureCollisionAttack(features, n_steps=50, **kwargs).poison(
                X, y, POISONED_ROWS, target=X_test[i]
            )
            for i in targets
        ]
        for name, kwargs in ATTACK_BUDGETS.items()
    }
    attack_seconds = time.perf_counter() - start
    costs = {name: np.mean([r.cost("l2") for r in res]) for name, res in poisonings.items()}
    rows = []
    for (defence, sigma), make in defences.items():
        start = time.perf_counter()
        clean_model = make().fit(X, y)
        before = clean_model.predict(X_test[targets])
        row = {
            "defence": defence,
            "sigma": sigma,
            "clean accuracy": clean_model.score(X_test, y_test),
        }
        for name, results in poisonings.items():
            after, accuracy = [], []
            for j, res in enumerate(results):
                model = make().fit(np.array(res.X), np.array(res.y))
                after.append(model.predict(X_test[targets[j] : targets[j] + 1])[0])
                accuracy.append(model.score(X_test, y_test))
            base = [res.info["base_label"] for res in results]
            row[name] = (flipped_to_base(before, after, base).mean(), np.mean(accuracy))
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
        print(
            f"{defence} {sigma}: "
            + ", ".join(f"{a} {row[a][0]:.2f}" for a in ATTACK_BUDGETS)
            + f" ({row['seconds']:.0f} s)",
            flush=True,
        )
    return {
        "rows": rows,
        "costs": costs,
        "attack_seconds": attack_seconds,
        "n_targets": n_targets,
        "n_members": n_members,
        "n_train": len(X),
    }


# --------------------------------------------------------------------------------------
# 2. the limits of the sphere/slab bound
# --------------------------------------------------------------------------------------


def digit_pair(a: int, b: int, split: str):
    """Digits ``a`` (label -1) and ``b`` (label +1), float64 pixels in [0, 1]."""
    X, y = load_digits(digits=(a, b), split=split)
    return X.astype(np.float64), np.where(y == b, 1, -1)


def by_epsilon(X, y, X_test, y_test, epsilons) -> list[dict]:
    curve = bound_curve(
        X, y, list(epsilons), rho_sq=RHO_SQ, max_iter=STEPS, X_test=X_test, y_test=y_test
    )
    rows = []
    for i, eps in enumerate(epsilons):
        k = n_poison_points(eps, len(X))
        short_bound = short_attack = float("nan")
        if k:
            short = upper_bound(X, y, eps, rho_sq=RHO_SQ, max_iter=k)
            short_bound = short.upper_bound
            short_attack = evaluate_attack(
                X, y, short.poison_X, short.poison_y, X_test, y_test, rho_sq=RHO_SQ
            ).total_train_loss
        rows.append(
            {
                "epsilon": eps,
                "n_poison": k,
                f"U* T={STEPS}": curve.upper_bounds[i],
                f"attack T={STEPS}": curve.attack_total_train_loss[i],
                "U* T=eps n": short_bound,
                "attack T=eps n": short_attack,
                "attack test loss": curve.attack_test_loss[i],
                "attack test error": curve.attack_test_error[i],
            }
        )
    return rows


def by_percentile(X, y, X_test, y_test, eps, percentiles) -> list[dict]:
    budget = n_poison_points(eps, len(X))
    rows = []
    for percentile in percentiles:
        poisoned = SphereSlabAttack(percentile=percentile, max_iter=STEPS).poison(X, y, budget)
        P, P_y = poisoned.X[poisoned.added], poisoned.y[poisoned.added]
        defence = SphereSlabDefense(percentile=percentile).fit(X, y)
        keep, keep_p = defence.contains(X, y), defence.contains(P, P_y)
        w, b = constrained_linear_fit(
            np.vstack([X[keep], P[keep_p]]),
            np.concatenate([y[keep], P_y[keep_p]]),
            rho_sq=RHO_SQ,
        )
        margin = y_test * (X_test @ w + b)
        attack = evaluate_attack(X, y, P, P_y, X_test, y_test, rho_sq=RHO_SQ)
        rows.append(
            {
                "percentile": percentile,
                "U*": poisoned.info["upper_bound"],
                "attack train loss": attack.total_train_loss,
                "clean kept": keep.mean(),
                "poison kept": keep_p.mean(),
                "filtered model test loss": np.maximum(0, 1 - margin).mean(),
                "filtered model test error": np.mean(margin <= 0),
            }
        )
    return rows


def dragged_attack(X, y, X_test, y_test, eps, rounds):
    """The oracle candidate moved, ``rounds`` times, to the edge of the defence refit on it.

    Returns the training loss (per clean point) of the constrained model on the clean
    points and the poison that passes the defence fitted on clean plus that poison, after
    each round, and the fraction of the last poison that passes.
    """
    defence = SphereSlabDefense().fit(X, y)
    losses = []
    for _ in range(rounds):
        step = upper_bound(X, y, eps, rho_sq=RHO_SQ, defense=defence, max_iter=STEPS)
        defence = SphereSlabDefense().fit(
            np.vstack([X, step.poison_X]), np.concatenate([y, step.poison_y])
        )
        kept = defence.contains(step.poison_X, step.poison_y)
        losses.append(
            evaluate_attack(
                X, y, step.poison_X[kept], step.poison_y[kept], X_test, y_test, rho_sq=RHO_SQ
            ).total_train_loss
        )
    return losses, float(kept.mean())


def by_data_dependence(X, y, X_test, y_test, epsilons, oracle, rounds, estimate_iter):
    rows = []
    for eps in epsilons:
        losses, kept = dragged_attack(X, y, X_test, y_test, eps, rounds)
        estimate = data_dependent_estimate(
            X,
            y,
            eps,
            rho_sq=RHO_SQ,
            lr=0.1,
            max_iter=estimate_iter,
            n_splits=5,
            n_check_splits=50,
            random_state=0,
        )
        rows.append(
            {
                "epsilon": eps,
                "oracle U*": oracle[eps],
                "dragged attack, round 1": losses[0],
                f"round {rounds}": losses[-1],
                "poison kept": kept,
                "data_dependent_estimate": estimate.estimate,
            }
        )
    return rows


def run_convex(quick: bool) -> dict:
    epsilons = EPSILONS[::3] if quick else EPSILONS
    drag_epsilons = DRAG_EPSILONS[-2:] if quick else DRAG_EPSILONS
    rounds, estimate_iter = (2, 10) if quick else (8, 60)
    out = {"rounds": rounds, "estimate_iter": estimate_iter, "pairs": {}}
    for a, b in PAIRS:
        start = time.perf_counter()
        X, y = digit_pair(a, b, "train")
        X_test, y_test = digit_pair(a, b, "test")
        eps_rows = by_epsilon(X, y, X_test, y_test, sorted(set(epsilons) | set(drag_epsilons)))
        oracle = {row["epsilon"]: row[f"U* T={STEPS}"] for row in eps_rows}
        out["pairs"][a, b] = {
            "n": len(X),
            "epsilon": eps_rows,
            "percentile": by_percentile(X, y, X_test, y_test, 0.1, PERCENTILES),
            "data_dependent": by_data_dependence(
                X, y, X_test, y_test, drag_epsilons, oracle, rounds, estimate_iter
            ),
            "seconds": time.perf_counter() - start,
        }
        print(f"digits {a} vs {b}: {out['pairs'][a, b]['seconds']:.0f} s", flush=True)
    return out


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------


def _cell(value) -> str:
    if isinstance(value, tuple):
        return f"{value[0]:.2f} ({value[1]:.3f})"
    if isinstance(value, float | np.floating):
        return "-" if np.isnan(value) else f"{value:.4g}"
    return str(value)


def markdown(rows: list[dict]) -> list[str]:
    columns = [c for c in rows[0] if c != "seconds"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row[c]) for c in columns) + " |" for row in rows]
    return [*lines, ""]


def report(denoising: dict, convex: dict, seconds: float, argv: list[str]) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    command = " ".join(["python benchmarks/bench_seed_experiments.py", *argv])
    lines = [
        "## bench_seed_experiments",
        "",
        f"Machine: {os.cpu_count()}-core {platform.machine()}, Python "
        f"{platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
        f"no GPU; torch threads 1. Command: `{command}` ({seconds / 60:.1f} min wall; "
        f"1-minute load average when written: {load:.1f}).",
        "",
        "### Clean-label poisoning against the denoising defence (seed 002, Tables 1-2 in small)",
        "",
        f"Feature collision, {POISONED_ROWS} poisoned training rows of the base class (of "
        f"{denoising['n_train']}) per target, {denoising['n_targets']} random test targets "
        "of the digits the bundled denoiser never saw; the victim is a ridge head on the "
        "frozen hidden layer (32 units) of a network pretrained on the denoiser's trusted "
        f"digits. `noise` and `DDPM` are DenoisedSmoothingClassifier ensembles of "
        f"{denoising['n_members']} such heads trained on plain and on DDPM-denoised noisy "
        "copies. Cells: attack success (fraction of targets put in the base class that "
        "the same defence trained on clean data did not put there), and in brackets the "
        "mean clean accuracy of the poisoned models on the 270 test digits. With "
        f"{denoising['n_targets']} targets a success rate has a standard error of up to "
        f"{0.5 / np.sqrt(denoising['n_targets']):.2f}. Crafting all poisons took "
        f"{denoising['attack_seconds']:.0f} s. Mean l2 norm of the whole training change: "
        + ", ".join(f"{a} {c:.1f}" for a, c in denoising["costs"].items())
        + ".",
        "",
        *markdown(denoising["rows"]),
        "### Limits of the sphere/slab bound (seed 003)",
        "",
        f"Hinge loss, `||w||^2 + b^2 <= {RHO_SQ}`, oracle sphere and slab at the 70th "
        "percentile unless stated; losses are per clean point, as U* counts them. `T=eps "
        "n` runs Algorithm 1 for `round(epsilon * n)` steps (the paper's setting), "
        f"`T={STEPS}` for {STEPS:,}. The percentile table is at epsilon 0.1 with the library's "
        "SphereSlabAttack; `filtered model` is the constrained SVM trained on the clean "
        "and poison points that pass that defence. The dragged attack refits the defence "
        "(centroids, radii, slab widths) on clean plus current poison and reruns the bound "
        f"against it, {convex['rounds']} rounds; its loss counts only the poison that "
        "passes the defence fitted on clean plus that poison (`poison kept`). "
        f"data_dependent_estimate: {convex['estimate_iter']} steps, 5 splits per step, 50 "
        "per checkpoint, an estimate, not a bound.",
        "",
    ]
    for (a, b), tables in convex["pairs"].items():
        lines += [
            f"**digits {a} vs {b}** (n = {tables['n']}; {tables['seconds']:.0f} s)",
            "",
            *markdown(tables["epsilon"]),
            *markdown(tables["percentile"]),
            *markdown(tables["data_dependent"]),
        ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run at small sizes")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # a tiny network and a tiny UNet: one thread is fastest
    warnings.simplefilter("ignore", UserWarning)
    start = time.perf_counter()
    if args.quick:
        denoising = run_denoising(n_targets=4, n_members=2, sigmas=(0.25,))
    else:
        denoising = run_denoising(n_targets=50, n_members=5, sigmas=SIGMAS)
    convex = run_convex(args.quick)
    flags = [f for f, on in (("--quick", args.quick), ("--write", args.write)) if on]
    section = report(denoising, convex, time.perf_counter() - start, flags)
    print(section)
    if args.write:
        write_section(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
