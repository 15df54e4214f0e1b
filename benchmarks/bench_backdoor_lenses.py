"""One- and four-pixel backdoors through two lenses (DPA, RAB), and RAB with DP-SGD members.

Run ``python benchmarks/bench_backdoor_lenses.py`` (``--quick`` for a smoke run, ``--write``
to update the ``## bench_backdoor_lenses`` section of ``benchmarks/RESULTS.md``). The fuller
settings of ``examples/plot_seed_backdoor_dpa_rab.py``, on the bundled digits (1,347
training rows, 450 test rows), every member a skorch net on the vectorized engine:

* DPA (k = 50 and 100 softmax regressions) against the dirty-label backdoor (triggered
  digits of other classes inserted with label 0, l2 norm 1), one and four pixels, up to 400
  poisons; each poison costs one row;
* DPA and RAB (N = 50 at sigma 0.5 and 1.0, N = 200 at sigma 0.5, ``test_noise=False``)
  against the clean-label backdoor (training zeros triggered and replaced, labels kept), at
  trigger norms 0.1 and 1, up to all 133 training zeros; DPA counts two rows per poison,
  RAB the l2 norm of the whole change;
* RAB (N = 50, sigma 0.5) whose members train with DP-SGD (clipping norm C = 1, noise
  multipliers 0.5, 2 and 5; also clipping alone and plain SGD at smaller learning rates)
  against the four-pixel clean-label backdoor of norm 0.1, and certified on the clean test
  digits with softmax-regression members (N = 50 and 200) and 64-32-10 MLP members (N = 50).

Every attack goes through :func:`sklearn_certify.attacks.evaluate_under_attack`, which
poisons, refits with the same seed and counts certified predictions the attack changed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from _results import write_section

from sklearn_certify import DPAClassifier, RABClassifier
from sklearn_certify.attacks import BackdoorAttack, evaluate_under_attack
from sklearn_certify.bounds import clopper_pearson_lower, cohen_radius
from sklearn_certify.datasets import load_digits
from sklearn_certify.ensemble import CertifiedNeuralNetClassifier, DPSGDStep
from sklearn_certify.metrics import certified_accuracy
from sklearn_certify.nets import DigitsMLP

TRIGGERS = ("one_pixel", "four_pixel")
RADII = (0.0, 0.1, 0.25, 0.5)
ALPHA = 0.001
NOISES = (0.5, 2.0, 5.0)


@dataclass
class Case:
    """One estimator against one attack at several budgets, and what the harness measured."""

    group: str
    estimator: str
    trigger: str
    make: object = field(repr=False)
    attack: BackdoorAttack = field(repr=False)
    budgets: list
    rows: list = field(default_factory=list)
    seconds: float = float("nan")


def member(step=None, *, module="linear", max_epochs=10, batch_size=32, lr=0.1):
    """A softmax regression (``module="linear"``) or 64-32-10 MLP trained with SGD."""
    if module == "linear":
        spec = dict(module=torch.nn.Linear, module__in_features=64, module__out_features=10)
    else:
        spec = dict(module=DigitsMLP, module__hidden=32)
    return CertifiedNeuralNetClassifier(
        **spec,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        lr=lr,
        max_epochs=max_epochs,
        batch_size=batch_size,
        iterator_train__shuffle=True,
        training_step=step,
    )


def dpa(k):
    return lambda: DPAClassifier(
        member(max_epochs=30, batch_size=16), n_partitions=k, random_state=0
    )


def rab(n, sigma, step=None, **member_params):
    return lambda: RABClassifier(
        member(step, **member_params),
        n_estimators=n,
        sigma=sigma,
        alpha=ALPHA,
        test_noise=False,
        random_state=0,
    )


def backdoor(trigger, strength, **kwargs):
    return BackdoorAttack(trigger, target_label=0, strength=strength, random_state=0, **kwargs)


def dp_steps(lr_controls=False):
    """The training steps compared: plain SGD, clipping alone, DP-SGD at each noise."""
    steps = {"plain SGD": (None, {}), "clipping only": (DPSGDStep(1.0, 0.0), {})}
    if lr_controls:
        steps |= {f"plain SGD, lr {lr:g}": (None, {"lr": lr}) for lr in (0.05, 0.02)}
    steps |= {f"DP-SGD, noise {s:g}": (DPSGDStep(1.0, s), {}) for s in NOISES}
    return steps


def attack_cases(quick):
    """Every (estimator, attack, budgets) the harness runs."""
    dirty_budgets = [0, 5, 10, 20, 40] if quick else [0, 5, 10, 20, 40, 100, 200, 400]
    clean_budgets = [0, 5, 10, 20, 40] if quick else [0, 5, 10, 20, 40, 80, 133]
    dpas = {"DPA k=50": dpa(50)} if quick else {"DPA k=50": dpa(50), "DPA k=100": dpa(100)}
    rabs = {"RAB N=50, sigma 0.5": rab(50, 0.5)}
    if not quick:
        rabs |= {"RAB N=50, sigma 1": rab(50, 1.0), "RAB N=200, sigma 0.5": rab(200, 0.5)}
    cases = []
    for trigger in TRIGGERS:
        dirty = backdoor(trigger, 1.0)
        cases += [Case("dirty", n, trigger, f, dirty, dirty_budgets) for n, f in dpas.items()]
        for strength, group, makers in ((0.1, "clean 0.1", dpas | rabs), (1.0, "clean 1", dpas)):
            attack = backdoor(trigger, strength, variant="clean_label", mode="modify")
            cases += [Case(group, n, trigger, f, attack, clean_budgets) for n, f in makers.items()]
        attack = backdoor(trigger, 1.0, variant="clean_label", mode="modify")
        cases.append(
            Case("clean 1", "RAB N=50, sigma 0.5", trigger, rab(50, 0.5), attack, clean_budgets)
        )
    attack = backdoor("four_pixel", 0.1, variant="clean_label", mode="modify")
    for name, (step, params) in dp_steps().items():
        cases.append(
            Case(
                "dp attack",
                f"RAB N=50, {name}",
                "four_pixel",
                rab(50, 0.5, step, **params),
                attack,
                [0, 5, 10, 20, 40],
            )
        )
    return cases


def run_attacks(cases, X, y, X_test, y_test):
    for case in cases:
        start = time.perf_counter()
        case.rows = evaluate_under_attack(
            case.make(), case.attack, X, y, X_test, y_test, case.budgets
        )
        case.seconds = time.perf_counter() - start
        cells = ", ".join(f"{r['budget']}: {r['certified_accuracy']:.3f}" for r in case.rows)
        print(
            f"[{case.group}] {case.estimator}, {case.trigger} ({case.seconds:.0f} s): {cells}",
            flush=True,
        )


def dp_lens(quick, X, y, X_test, y_test):
    """RAB certified on clean test digits, for each member kind and training step."""
    kinds = [("softmax regression", 50, "linear")]
    if not quick:
        kinds += [("softmax regression", 200, "linear"), ("MLP 64-32-10", 50, "mlp")]
    out = []
    for kind, n, module in kinds:
        for name, (step, params) in dp_steps(lr_controls=True).items():
            clf = rab(n, 0.5, step, module=module, **params)()
            start = time.perf_counter()
            clf.fit(X, y)
            seconds = time.perf_counter() - start
            cert = clf.certify(X_test)
            row = dict(
                members=f"{kind}, N={n}",
                step=name,
                fit=seconds,
                accuracy=clf.score(X_test, y_test),
                abstained=cert.abstain.mean(),
            )
            row |= {r: certified_accuracy(y_test, cert, r) for r in RADII}
            out.append(row)
            print(
                f"[dp lens] {row['members']}, {name}: fit {seconds:.1f} s, "
                + ", ".join(f"{r}: {row[r]:.3f}" for r in RADII),
                flush=True,
            )
    return out


def largest_radius(n, sigma):
    """The largest radius n members can certify (a unanimous vote of the estimating ones)."""
    estimating = n - int(np.ceil(n / 10))
    return float(cohen_radius(clopper_pearson_lower(estimating, estimating, ALPHA), sigma))


# --------------------------------------------------------------------------- writing
def _pivot(cases, group, cell):
    """Rows (estimator, trigger) by columns (budget) of ``cell(row)``."""
    chosen = [c for c in cases if c.group == group]
    budgets = chosen[0].budgets
    lines = [
        "| estimator | trigger | "
        + " | ".join(str(b) for b in budgets)
        + f" | clean accuracy at {budgets[0]} / {budgets[-1]} | seconds |",
        "|---|---|" + "---|" * (len(budgets) + 2),
    ]
    for c in chosen:
        cells = " | ".join(cell(r) for r in c.rows)
        clean = f"{c.rows[0]['clean_accuracy']:.3f} / {c.rows[-1]['clean_accuracy']:.3f}"
        lines.append(f"| {c.estimator} | {c.trigger} | {cells} | {clean} | {c.seconds:.0f} |")
    return lines


def _cert_success(row):
    return f"{row['certified_accuracy']:.3f} / {row['attack_success']:.3f}"


def _costs(cases, group):
    """The cost of each budget, per trigger and unit the group's certificates count."""
    costs = {}
    for c in cases:
        if c.group == group:
            key = (c.trigger, c.rows[0]["radius_unit"])
            costs.setdefault(key, ", ".join(f"{r['budget']}: {r['cost']:.3g}" for r in c.rows))
    return [f"- {trigger}, {unit}: {text}" for (trigger, unit), text in costs.items()]


def _beats_plain(lens):
    """Per training step: in how many (members, radius) cells it certified more than plain SGD."""
    plain = {row["members"]: row for row in lens if row["step"] == "plain SGD"}
    counts = {}
    for row in lens:
        if row["step"] != "plain SGD":
            won, total = counts.get(row["step"], (0, 0))
            base = plain[row["members"]]
            won += sum(row[r] > base[r] for r in RADII)
            counts[row["step"]] = (won, total + len(RADII))
    return "; ".join(f"{step}: {won} of {total}" for step, (won, total) in counts.items())


def write_results(cases, lens, wall, quick):
    violations = sum(r["violation"] for c in cases for r in c.rows)
    changed = sum(r["n_certified_changed"] for c in cases for r in c.rows)
    command = "python benchmarks/bench_backdoor_lenses.py --write" + (" --quick" * quick)
    lines = [
        "## bench_backdoor_lenses",
        "",
        f"Machine: {os.cpu_count()}-core {platform.machine()}, Linux, Python "
        f"{platform.python_version()}, torch {torch.__version__}, no GPU; torch threads "
        f"{torch.get_num_threads()}. Command: `{command}` ({wall:.0f} s wall; 1-minute load "
        f"average when written: {os.getloadavg()[0]:.1f}; the machine is shared, so times "
        "are indicative). Bundled digits, 1,347 training and 450 test rows; members are "
        "skorch nets on the vectorized engine (softmax regression unless stated; DPA 30 "
        "epochs batch 16, RAB 10 epochs batch 32, SGD lr 0.1 momentum 0.9); RAB with "
        f"`test_noise=False`, alpha {ALPHA}. Attacks through `evaluate_under_attack` on the "
        "405 test digits that are not 0; target label 0. Each cell is **certified accuracy / "
        "attack success** at that many poisoned rows; `seconds` is the harness's time for "
        f"the row (all refits). Certified predictions the attacks changed: **{changed}**; "
        f"violations flagged: **{violations}**.",
        "",
        "**Dirty-label backdoor, inserted (trigger norm 1), against DPA** (cost: one row per "
        "poison; `clean accuracy` is the poisoned model's on all 450 test digits).",
        "",
        *_pivot(cases, "dirty", _cert_success),
        "",
        "**Clean-label backdoor, replacing training zeros, trigger norm 0.1** (DPA: two rows "
        "per poison; RAB: l2 norm of the whole change, 0.1 sqrt(r)). Largest radius RAB can "
        "certify: "
        f"{largest_radius(50, 0.5):.3f} (N=50, sigma 0.5), {largest_radius(50, 1.0):.3f} "
        f"(N=50, sigma 1), {largest_radius(200, 0.5):.3f} (N=200, sigma 0.5).",
        "",
        *_pivot(cases, "clean 0.1", _cert_success),
        "",
        "Costs in the certificates' units:",
        "",
        *_costs(cases, "clean 0.1"),
        "",
        "**The same, trigger norm 1.**",
        "",
        *_pivot(cases, "clean 1", _cert_success),
        "",
        *_costs(cases, "clean 1"),
        "",
        "**RAB with DP-SGD members against the four-pixel clean-label backdoor (norm 0.1)** "
        "(N=50, sigma 0.5, clipping norm 1; the same members otherwise).",
        "",
        *_pivot(cases, "dp attack", _cert_success),
        "",
        "**RAB with DP-SGD members, certified on the 450 clean test digits** (sigma 0.5; "
        "`fit` is one fit of the ensemble; certified accuracy at each l2 radius):",
        "",
        "| members | training step | fit | clean accuracy | abstained | "
        + " | ".join(f"certified at {r:g}" for r in RADII)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(RADII),
    ]
    for row in lens:
        cells = " | ".join(f"{row[r]:.3f}" for r in RADII)
        lines.append(
            f"| {row['members']} | {row['step']} | {row['fit']:.1f} s | {row['accuracy']:.3f} "
            f"| {row['abstained']:.3f} | {cells} |"
        )
    lines += [
        "",
        "(members, radius) cells of this table in which a step certified more than plain SGD "
        f"with the same members: {_beats_plain(lens)}.",
    ]
    write_section("\n".join(lines) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer budgets and members")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # small members: one thread each is fastest on a CPU
    warnings.simplefilter("ignore", UserWarning)
    X, y = load_digits(split="train")
    X_test, y_test = load_digits(split="test")
    start = time.perf_counter()
    cases = attack_cases(args.quick)
    run_attacks(cases, X, y, X_test, y_test)
    lens = dp_lens(args.quick, X, y, X_test, y_test)
    wall = time.perf_counter() - start
    print(f"total {wall:.0f} s")
    if args.write:
        write_results(cases, lens, wall, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
