"""Fingerprint every certificate the certified estimators return, to show a refactor changes none.

``python benchmarks/dpa_fingerprint.py --out A.npz`` fits, with fixed ``random_state``, on
digits: ``DPAClassifier`` for every engine, spread, election and threat model (sklearn and
skorch bases); ``RABClassifier`` for the three ``bound`` statistics (sklearn and skorch bases,
both engines, with and without test noise); ``DenoisedSmoothingClassifier`` without a
denoiser and with the bundled one (on a few rows); and ``RandomizedSmoothingClassifier``
(sklearn and skorch bases). It saves each certificate's arrays (prediction, radius, abstain,
votes, p_lower, p_upper), ``predict_proba`` and, for the ensembles, the members' scores.
``--families`` restricts the run to some of them. ``--compare REV`` does this for the
working tree and for the git revision ``REV`` (checked out into a temporary worktree and run
in a subprocess, so the two versions never share a process) and reports how many arrays are
bit-identical. Both runs use one OpenMP/BLAS thread: members now always train with one
thread, while revisions before that used torch's default thread count, which changes a
loop-trained net's outputs in their last bits.

Exit status: 0 when everything is identical (or only ``--out`` was asked), 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _cases():
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.tree import DecisionTreeClassifier
    from skorch import NeuralNetClassifier

    class MLP(torch.nn.Module):
        def __init__(self, hidden=16):
            super().__init__()
            self.l1 = torch.nn.Linear(64, hidden)
            self.l2 = torch.nn.Linear(hidden, 10)

        def forward(self, x):
            return self.l2(torch.relu(self.l1(x)))

    def net(**kw):
        return NeuralNetClassifier(
            MLP,
            criterion=torch.nn.CrossEntropyLoss,
            optimizer=torch.optim.SGD,
            optimizer__momentum=0.9,
            lr=0.05,
            max_epochs=4,
            batch_size=16,
            iterator_train__shuffle=True,
            **kw,
        )

    tree = DecisionTreeClassifier(random_state=0)
    cases = {}
    for engine in ("loop", "vectorized"):
        for spread, election in ((1, "plurality"), (1, "runoff"), (3, "plurality"), (3, "runoff")):
            cases[f"net-{engine}-d{spread}-{election}"] = dict(
                estimator=net(), n_partitions=12, spread=spread, election=election, engine=engine
            )
        cases[f"net-{engine}-labelflip"] = dict(
            estimator=net(), n_partitions=10, threat_model="label_flip", engine=engine
        )
    for spread, election in ((1, "plurality"), (1, "runoff"), (4, "plurality"), (4, "runoff")):
        cases[f"tree-d{spread}-{election}"] = dict(
            estimator=tree, n_partitions=15, spread=spread, election=election
        )
    cases["logreg-runoff"] = dict(
        estimator=LogisticRegression(max_iter=200), n_partitions=20, election="runoff"
    )
    cases["knn-pixelsum"] = dict(
        estimator=KNeighborsClassifier(3), n_partitions=20, hash="pixel_sum", pixels=True
    )
    cases["tree-labelflip"] = dict(estimator=tree, n_partitions=25, threat_model="label_flip")
    cases["tree-empty-partitions"] = dict(estimator=tree, n_partitions=300, election="runoff")
    return cases


def _smoothing_cases():
    """``{name: (unfitted estimator, n_train_rows, n_test_rows)}`` of the smoothing families."""
    import torch
    from sklearn.linear_model import LogisticRegression
    from skorch import NeuralNetClassifier

    from sklearn_certify import DenoisedSmoothingClassifier, RABClassifier
    from sklearn_certify.denoisers import load_bundled
    from sklearn_certify.smoothing import RandomizedSmoothingClassifier

    class MLP(torch.nn.Module):
        def __init__(self, hidden=16):
            super().__init__()
            self.l1 = torch.nn.Linear(64, hidden)
            self.l2 = torch.nn.Linear(hidden, 10)

        def forward(self, x):
            return self.l2(torch.relu(self.l1(x)))

    def net():
        return NeuralNetClassifier(
            MLP,
            criterion=torch.nn.CrossEntropyLoss,
            optimizer__momentum=0.9,
            max_epochs=8,
            lr=0.05,
            batch_size=32,
            verbose=0,
        )

    def logreg():
        return LogisticRegression(max_iter=300)

    alphas = {"clopper-pearson": 0.05, "simultaneous": 0.05, "hoeffding": 0.2}
    cases = {}
    for bound, alpha in alphas.items():
        common = dict(n_estimators=12, sigma=0.25, alpha=alpha, bound=bound, random_state=3)
        cases[f"rab-logreg-{bound}"] = (RABClassifier(logreg(), **common), 400, 60)
        for engine in ("loop", "vectorized"):
            cases[f"rab-net-{engine}-{bound}"] = (
                RABClassifier(net(), engine=engine, **common),
                400,
                60,
            )
    cases["rab-net-vectorized-no-test-noise"] = (
        RABClassifier(net(), n_estimators=12, sigma=0.25, test_noise=False, random_state=3),
        400,
        60,
    )
    for engine in ("loop", "vectorized"):
        cases[f"denoised-none-net-{engine}"] = (
            DenoisedSmoothingClassifier(
                net(),
                None,
                n_estimators=12,
                sigma=0.25,
                alpha=0.05,
                engine=engine,
                random_state=3,
            ),
            400,
            60,
        )
    cases["denoised-none-logreg"] = (
        DenoisedSmoothingClassifier(logreg(), None, n_estimators=12, sigma=0.25, random_state=3),
        400,
        60,
    )
    cases["denoised-bundled-net"] = (
        DenoisedSmoothingClassifier(
            net(), load_bundled("digits"), n_estimators=4, sigma=0.25, alpha=0.2, random_state=3
        ),
        60,
        20,
    )
    cases["cohen-logreg"] = (
        RandomizedSmoothingClassifier(logreg(), n_samples=200, alpha=0.01, random_state=3),
        400,
        30,
    )
    cases["cohen-net"] = (
        RandomizedSmoothingClassifier(net(), n_samples=200, alpha=0.01, random_state=3),
        400,
        30,
    )
    return cases


def _dpa_arrays(X, y, X_test) -> dict:
    from sklearn_certify import DPAClassifier

    arrays = {}
    X, y = X[:900], y[:900]
    for name, params in _cases().items():
        # hash="pixel_sum" hashes integer pixel values: give it the digits scaled to 0..255
        pixels = params.pop("pixels", False)
        X_fit, X_eval = (np.round(X * 255), np.round(X_test * 255)) if pixels else (X, X_test)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf = DPAClassifier(random_state=7, **params).fit(X_fit, y)
            cert = clf.certify(X_eval)
            scores = clf.member_scores(X_eval)
        arrays[f"{name}/prediction"] = cert.prediction
        arrays[f"{name}/radius"] = cert.radius
        arrays[f"{name}/abstain"] = cert.abstain
        arrays[f"{name}/votes"] = cert.votes
        arrays[f"{name}/scores"] = scores
        print(f"{name}: mean radius {cert.radius.mean():.3f}", flush=True)
    return arrays


def _smoothing_arrays(X, y, X_test) -> dict:
    from sklearn_certify.datasets import load_digits_for_denoising

    # the bundled denoiser saw part of load_digits' train split: certify on rows it never saw
    unseen = (
        *load_digits_for_denoising(split="train"),
        load_digits_for_denoising(split="test")[0],
    )
    arrays = {}
    for name, (clf, n_train, n_test) in _smoothing_cases().items():
        X_fit, y_fit, X_eval = (X, y, X_test) if "bundled" not in name else unseen
        X_eval = X_eval[:n_test]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(X_fit[:n_train], y_fit[:n_train])
            cert = clf.certify(X_eval)
            arrays[f"{name}/proba"] = clf.predict_proba(X_eval)
            if hasattr(clf, "member_scores"):
                arrays[f"{name}/scores"] = clf.member_scores(X_eval)
        for key in ("prediction", "radius", "abstain", "votes", "p_lower", "p_upper"):
            value = getattr(cert, key, None)
            if value is not None:
                arrays[f"{name}/{key}"] = value
        print(f"{name}: mean radius {cert.radius.mean():.3f}", flush=True)
    return arrays


FAMILIES = {"dpa": _dpa_arrays, "smoothing": _smoothing_arrays}


def fingerprint(path: str, families=tuple(FAMILIES)) -> None:
    """Fit every case of ``families`` and save its certificate arrays to ``path`` (.npz)."""
    import sklearn_certify
    from sklearn_certify.datasets import load_digits

    print(f"fingerprinting {Path(sklearn_certify.__file__).parent}", flush=True)

    X, y = load_digits(split="train")
    X_test, _ = load_digits(split="test")
    arrays = {}
    for family in families:
        arrays.update(FAMILIES[family](X, y, X_test))
    np.savez(path, **arrays)


def compare(rev: str, families=tuple(FAMILIES)) -> int:
    """Fingerprint the working tree and ``rev``; return 0 if all arrays are bit-identical."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "rev"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev],
            check=True,
            capture_output=True,
        )
        try:
            paths = {}
            for label, source in (("working tree", ROOT), (rev, tree)):
                out = Path(tmp) / f"{label.replace(' ', '_')}.npz"
                env = dict(os.environ, PYTHONPATH=str(source), OMP_NUM_THREADS="1")
                command = [sys.executable, __file__, "--out", str(out), "--families", *families]
                subprocess.run(command, check=True, env=env, cwd=source)
                paths[label] = out
            new, old = (np.load(p) for p in paths.values())
            differing = [
                k for k in old.files if k in new.files and not np.array_equal(old[k], new[k])
            ]
            missing = sorted(set(old.files) ^ set(new.files))
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True
            )
    identical = len(old.files) - len(differing) - len(set(old.files) - set(new.files))
    print(f"{len(old.files)} arrays compared against {rev}: {identical} bit-identical.")
    if differing or missing:
        print("DIFFERENT:", *differing, *(f"missing {m}" for m in missing), sep="\n  ")
        return 1
    print("All certificates and member scores are bit-identical.")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write this version's fingerprint to this .npz")
    parser.add_argument("--compare", metavar="REV", help="compare the working tree with REV")
    parser.add_argument(
        "--families",
        nargs="+",
        choices=list(FAMILIES),
        default=list(FAMILIES),
        help="which estimators to fingerprint (default: all)",
    )
    args = parser.parse_args()
    if args.out:
        fingerprint(args.out, args.families)
    if args.compare:
        return compare(args.compare, args.families)
    return 0


if __name__ == "__main__":
    sys.exit(main())
