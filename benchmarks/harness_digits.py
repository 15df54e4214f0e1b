"""Every certified estimator against a real attack on digits: the harness's table, measured.

Run ``python benchmarks/harness_digits.py`` (``--quick`` for a smoke run, ``--write`` to
update the ``## harness_digits`` section of ``benchmarks/RESULTS.md``). Each case fits one
estimator on the bundled digits' training split, poisons it with one attack at several
budgets, refits with the same ``random_state`` and certifies with
:func:`sklearn_certify.attacks.evaluate_under_attack`. The column that matters is
``certified_changed``: 0 for the partition certificates (DPA, Finite Aggregation, run-off,
SS-DPA), at most ``n_tolerated`` certified changes for the smoothing certificates.

The cases:

* DPA (trees, k=40), Finite Aggregation (trees, k=20, spread 4) and run-off (logistic
  regression, k=40) under the four-pixel dirty-label backdoor (triggered digits inserted
  with label 0);
* SS-DPA (``threat_model="label_flip"``, trees, k=40) under random label flips to 3;
* DPA with a 1-nearest-neighbour base (k=11) under partition insertion on 20 test digits,
  the attack that is optimal against it (``uncertified_changed`` near 1: the radius is tight);
* RAB (50 logistic regressions, sigma 0.5) under the clean-label four-pixel backdoor with a
  faint trigger, counted with the trigger on the test input (``test_noise=True``);
* RAB (100 skorch MLPs, sigma 0.5, ``test_noise=False``) under feature collision on 20 test
  digits (l2 0.5 per poisoned row);
* test-time smoothing (an MLP trained with Gaussian augmentation, sigma 0.5) against the
  backdoor's test-time trigger alone (its certificate covers the test input only);
* denoised smoothing (the bundled DDPM, 50 MLP members, sigma 0.25) under the clean-label
  backdoor, on the digits the denoiser never saw.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings

import numpy as np
import torch
from _results import write_section
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier
from skorch import NeuralNetClassifier

from sklearn_certify import (
    DenoisedSmoothingClassifier,
    DPAClassifier,
    RABClassifier,
    RandomizedSmoothingClassifier,
)
from sklearn_certify.attacks import (
    BackdoorAttack,
    FeatureCollisionAttack,
    LabelFlipAttack,
    PartitionInsertionAttack,
    evaluate_under_attack,
)
from sklearn_certify.datasets import load_digits, load_digits_for_denoising
from sklearn_certify.denoisers import load_bundled

COLUMNS = (
    "budget",
    "cost",
    "clean_accuracy",
    "attack_success",
    "certified_accuracy",
    "n_certified",
    "n_certified_changed",
    "n_tolerated",
    "uncertified_changed",
)


class MLP(torch.nn.Module):
    """64 pixels -> 64 hidden units -> 10 logits."""

    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(64, 64)
        self.out = torch.nn.Linear(64, 10)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


def make_net(epochs: int = 10) -> NeuralNetClassifier:
    return NeuralNetClassifier(
        MLP,
        criterion=torch.nn.CrossEntropyLoss,  # the module outputs logits
        max_epochs=epochs,
        batch_size=32,
        lr=0.1,
        optimizer__momentum=0.9,
        iterator_train__shuffle=True,
        train_split=None,
        verbose=0,
    )


def trees(k: int, **params) -> DPAClassifier:
    return DPAClassifier(
        DecisionTreeClassifier(random_state=0), n_partitions=k, random_state=0, **params
    )


def cases(quick: bool) -> list[tuple]:
    """(name, estimator, attack, budgets, data, number of test points or None for all)."""
    backdoor = BackdoorAttack("four_pixel", target_label=0, strength=2.0, random_state=0)
    faint = BackdoorAttack(
        "four_pixel",
        target_label=0,
        variant="clean_label",
        mode="modify",
        strength=0.05,
        random_state=0,
    )
    n_rab = 10 if quick else 50
    n_targets = 3 if quick else 20
    return [
        ("DPA, trees, k=40", trees(40), backdoor, [0, 5, 10, 20, 100, 400], "digits", None),
        (
            "Finite Aggregation, trees, k=20, spread 4",
            trees(20, spread=4),
            backdoor,
            [0, 5, 10, 20, 100, 400],
            "digits",
            None,
        ),
        (
            "DPA run-off, logistic regression, k=40",
            DPAClassifier(
                LogisticRegression(max_iter=300),
                n_partitions=40,
                election="runoff",
                random_state=0,
            ),
            backdoor,
            [0, 5, 10, 20, 100],
            "digits",
            None,
        ),
        (
            "SS-DPA (label flips), trees, k=40",
            trees(40, threat_model="label_flip"),
            LabelFlipAttack(target_label=3, random_state=0),
            [0, 5, 10, 20, 100, 400],
            "digits",
            None,
        ),
        (
            "DPA, 1-NN, k=11",
            DPAClassifier(KNeighborsClassifier(1), n_partitions=11, random_state=0),
            PartitionInsertionAttack(random_state=0),
            [0, 1, 2, 3, 4, 5, 6],
            "digits",
            n_targets,
        ),
        (
            f"RAB, {n_rab} logistic regressions, sigma 0.5",
            RABClassifier(
                LogisticRegression(max_iter=200),
                n_estimators=n_rab,
                sigma=0.5,
                alpha=0.01,
                random_state=0,
            ),
            faint,
            [0, 27, 67, 133],
            "digits",
            None,
        ),
        (
            "RAB, 100 MLPs, sigma 0.5, test_noise=False",
            RABClassifier(
                make_net(),
                n_estimators=100,
                sigma=0.5,
                alpha=0.01,
                test_noise=False,
                random_state=0,
            ),
            FeatureCollisionAttack(eps_linf=None, eps_l2=0.5, n_steps=50, random_state=0),
            [0, 1, 4],
            "digits",
            n_targets,
        ),
        (
            "test-time smoothing, MLP, sigma 0.5",
            RandomizedSmoothingClassifier(
                make_net(), sigma=0.5, n_select=100, n_samples=1000, alpha=0.01, random_state=0
            ),
            BackdoorAttack("four_pixel", target_label=0, strength=0.5, random_state=0),
            [0],
            "digits",
            None,
        ),
        (
            f"denoised smoothing, bundled DDPM, {n_rab} MLPs, sigma 0.25",
            DenoisedSmoothingClassifier(
                make_net(),
                load_bundled("digits"),
                n_estimators=n_rab,
                sigma=0.25,
                alpha=0.01,
                random_state=0,
            ),
            faint,
            [0, 10, 40],
            "denoising",
            None,
        ),
    ]


def load(data: str):
    if data == "digits":
        return (*load_digits(split="train"), *load_digits(split="test"))
    return (
        *load_digits_for_denoising(split="train"),
        *load_digits_for_denoising(split="test"),
    )


def run(quick: bool) -> list[dict]:
    results = []
    for name, estimator, attack, budgets, data, n_test in cases(quick):
        X, y, X_test, y_test = load(data)
        if n_test is not None:
            X_test, y_test = X_test[:n_test], y_test[:n_test]
        if quick:
            budgets = budgets[:2]
        start = time.perf_counter()
        rows = evaluate_under_attack(estimator, attack, X, y, X_test, y_test, budgets)
        seconds = time.perf_counter() - start
        print(f"{name}: {type(attack).__name__}, {seconds:.0f} s", flush=True)
        for row in rows:
            print("  " + ", ".join(f"{c}={row[c]}" for c in COLUMNS), flush=True)
        results.append(dict(name=name, attack=type(attack).__name__, rows=rows, seconds=seconds))
    return results


def _cell(value) -> str:
    if isinstance(value, float):
        return "-" if np.isnan(value) else f"{value:.3g}"
    return str(value)


def write_results(results: list[dict]) -> None:
    lines = [
        "## harness_digits",
        "",
        f"Machine: {os.cpu_count()}-core {platform.machine()}, Python "
        f"{platform.python_version()}, torch {torch.__version__}, no GPU. Command: "
        "`python benchmarks/harness_digits.py --write`. Every estimator on the bundled digits "
        "(1,347 training and 450 test rows; denoised smoothing: the 809 / 270 rows the bundled "
        "denoiser never saw) against one attack. `cost` is the poisoning's size in the "
        "certificate's unit (samples, label flips, or l2 norm, with the test-time trigger "
        "counted where the certificate covers the test input); `n_certified` counts the "
        "predictions certified at that cost, `n_certified_changed` those the attack moved "
        "(must be 0 for the partition certificates, at most `n_tolerated` for the smoothing "
        "ones); `uncertified_changed` is the fraction of the other predictions it moved.",
        "",
    ]
    violations = sum(row["violation"] for r in results for row in r["rows"])
    for r in results:
        lines += [
            f"**{r['name']}**, {r['attack']} ({r['seconds']:.0f} s)",
            "",
            "| " + " | ".join(COLUMNS) + " |",
            "|" + "---|" * len(COLUMNS),
        ]
        lines += ["| " + " | ".join(_cell(row[c]) for c in COLUMNS) + " |" for row in r["rows"]]
        lines.append("")
    lines += [f"Violations flagged by the harness: **{violations}**.", ""]
    write_section("\n".join(lines))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, two budgets")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # small nets: one thread each is fastest on a CPU
    warnings.simplefilter("ignore", UserWarning)
    results = run(args.quick)
    if args.write:
        write_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
