"""Certificates read only what ``fit`` recorded: a parameter changed afterwards changes nothing.

For every estimator, every constructor parameter is set to another valid value after ``fit``
(``set_params``), and ``certify``, ``predict``, ``predict_proba`` and the inspection methods
must return exactly what they returned before. A new parameter without an alternative value
below fails the test, so nobody can add one that the certificate reads unnoticed.
"""

import warnings

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier
from skorch import NeuralNetClassifier

from sklearn_certify import (
    CertifiedBaggingClassifier,
    DenoisedSmoothingClassifier,
    DPAClassifier,
    DPVoteClassifier,
    RABClassifier,
)
from sklearn_certify.datasets import load_digits
from sklearn_certify.denoisers import IdentityDenoiser
from sklearn_certify.smoothing import RandomizedSmoothingClassifier
from tests._ensemble_helpers import TinyMLP


def _net(**kwargs):
    return NeuralNetClassifier(
        TinyMLP,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=2,
        lr=0.1,
        batch_size=32,
        train_split=None,
        verbose=0,
        **kwargs,
    )


CASES = {
    "dpa": lambda: DPAClassifier(LogisticRegression(max_iter=200), n_partitions=6, random_state=0),
    "fa": lambda: DPAClassifier(
        LogisticRegression(max_iter=200), n_partitions=4, spread=2, random_state=0
    ),
    "runoff": lambda: DPAClassifier(
        LogisticRegression(max_iter=200), n_partitions=6, election="runoff", random_state=0
    ),
    "ss-dpa": lambda: DPAClassifier(
        LogisticRegression(max_iter=200), n_partitions=6, threat_model="label_flip",
        random_state=0,
    ),
    "rab": lambda: RABClassifier(
        LogisticRegression(max_iter=200), n_estimators=10, sigma=0.25, alpha=0.05, random_state=0
    ),
    "rab-hoeffding-net": lambda: RABClassifier(
        _net(), n_estimators=6, sigma=0.25, alpha=0.05, bound="hoeffding", random_state=0
    ),
    "denoised": lambda: DenoisedSmoothingClassifier(
        LogisticRegression(max_iter=200), None, n_estimators=10, sigma=0.25, alpha=0.05,
        bound="simultaneous", random_state=0,
    ),
    "bagging": lambda: CertifiedBaggingClassifier(
        LogisticRegression(max_iter=200), n_estimators=10, sample_size=60, alpha=0.05,
        random_state=0,
    ),
    "bagging-fraction": lambda: CertifiedBaggingClassifier(
        LogisticRegression(max_iter=200), n_estimators=10, sample_size=0.2, alpha=0.05,
        random_state=0,
    ),
    "dp-vote": lambda: DPVoteClassifier(
        _net(), n_estimators=6, noise_multiplier=20.0, expected_batch_size=300,
        alpha=0.05, random_state=0,
    ),
    "cohen": lambda: RandomizedSmoothingClassifier(
        LogisticRegression(max_iter=200), sigma=0.25, n_select=10, n_samples=60, alpha=0.05,
        batch_size=16, n_augment=2, random_state=0,
    ),
}

#: Another valid value of every constructor parameter, given the fitted value.
OTHER = {
    "estimator": lambda v: DecisionTreeClassifier(random_state=0),
    "n_partitions": lambda v: v + 3,
    "spread": lambda v: 3 if v == 1 else 1,
    "election": lambda v: "plurality" if v == "runoff" else "runoff",
    "threat_model": lambda v: "general" if v == "label_flip" else "label_flip",
    "hash": lambda v: "pixel_sum" if v == "digest" else "digest",
    "shifts": lambda v: [0, 1, 2] if v is None else None,
    "feature_extractor": lambda v: None,
    "engine": lambda v: "loop" if v != "loop" else "vectorized",
    "random_state": lambda v: 12345,
    "n_jobs": lambda v: 2,
    "verbose": lambda v: 0 if v else 1,
    "n_estimators": lambda v: v + 5,
    "sigma": lambda v: 4 * v,
    "alpha": lambda v: v / 10,
    "bound": lambda v: "hoeffding" if v != "hoeffding" else "simultaneous",
    "n_select": lambda v: 3 if v != 3 else 4,
    "test_noise": lambda v: not v,
    "denoiser": lambda v: IdentityDenoiser(),
    "init": lambda v: {},
    "n_samples": lambda v: v + 40,
    "batch_size": lambda v: v + 5,
    "n_augment": lambda v: v + 1,
    "sample_size": lambda v: 0.5 if isinstance(v, int) else 10,
    "noise_multiplier": lambda v: v / 4,
    "max_grad_norm": lambda v: 10 * v,
    "expected_batch_size": lambda v: v + 100,
    "delta": lambda v: v / 100,
    "accountant": lambda v: "prv" if v == "rdp" else "rdp",
}

#: Nested parameters that change how a net's scores are read (its criterion).
NESTED = {"rab-hoeffding-net": {"estimator__criterion": torch.nn.NLLLoss}}


def _outputs(clf, X):
    cert = clf.certify(X)
    out = {"predict": clf.predict(X), "predict_proba": clf.predict_proba(X)}
    out.update({f"certify.{k}": v for k, v in cert.to_dict().items()})
    if hasattr(clf, "member_scores"):
        out["member_scores"] = clf.member_scores(X)
        out["predict_members"] = clf.predict_members(X).filled(-1)
    if hasattr(clf, "assign_partitions"):
        out["assign_partitions"] = clf.assign_partitions(X)
    return out


def _assert_same(before, after, what):
    assert before.keys() == after.keys()
    for key in before:
        np.testing.assert_array_equal(
            np.asarray(after[key]), np.asarray(before[key]), err_msg=f"{key} after {what}"
        )


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(split="train")
    X_test, _ = load_digits(split="test")
    return X[:300], y[:300], X_test[:25]


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_parameter_changed_after_fit_changes_nothing(case, digits):
    X, y, X_test = digits
    clf = CASES[case]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small partitions, engine fallbacks
        clf.fit(X, y)
        before = _outputs(clf, X_test)
        params = clf.get_params(deep=False)
        missing = set(params) - set(OTHER)
        assert not missing, f"give these parameters an alternative value in OTHER: {missing}"
        for name, value in params.items():
            clf.set_params(**{name: OTHER[name](value)})
            _assert_same(before, _outputs(clf, X_test), f"set_params({name}=...)")
            clf.set_params(**{name: value})
        for name, value in NESTED.get(case, {}).items():
            clf.set_params(**{name: value})
            _assert_same(before, _outputs(clf, X_test), f"set_params({name}=...)")


def test_fitted_parameters_are_recorded():
    X, y = load_digits(digits=(1, 7), split="train")
    clf = RABClassifier(LogisticRegression(), n_estimators=10, sigma=0.25, random_state=0)
    clf.fit(X, y).set_params(sigma=1.0, alpha=0.2, bound="simultaneous", n_select=3)
    recorded = (clf.sigma_, clf.alpha_, clf.bound_, clf.n_select_)
    assert recorded == (0.25, 0.001, "clopper-pearson", 1)
    dpa = DPAClassifier(LogisticRegression(), n_partitions=5, random_state=0).fit(X, y)
    dpa.set_params(n_partitions=9, threat_model="label_flip")
    assert (dpa.n_partitions_, dpa.threat_model_, dpa.certify(X[:3]).unit) == (
        5,
        "general",
        "samples",
    )


def test_failed_refit_leaves_the_estimator_unfitted():
    X, y = load_digits(digits=(1, 7), split="train")
    clf = DPAClassifier(LogisticRegression(), n_partitions=5, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="n_partitions"):
        clf.set_params(n_partitions=10_000).fit(X, y)
    with pytest.raises(Exception, match="not fitted"):
        clf.certify(X[:3])


def test_sphere_slab_defense_reads_only_what_fit_recorded():
    from sklearn_certify.convex import SphereSlabDefense, upper_bound
    from sklearn_certify.datasets import load_digits_1v7

    X, y = load_digits_1v7(split="train")
    defense = SphereSlabDefense(percentile=70).fit(X, y)
    probe_X, probe_y = X[:40] * 1.3, y[:40]

    def outputs():
        bound = upper_bound(X, y, 0.1, rho_sq=0.04, defense=defense, max_iter=30)
        return {
            "contains": defense.contains(probe_X, probe_y),
            "distances": np.stack(defense.distances(probe_X, probe_y)),
            "upper_bound": bound.upper_bound,
        }

    before = outputs()
    params = defense.get_params()
    others = {"percentile": 30, "sphere": False, "slab": False, "data_dependent": True}
    assert set(params) == set(others)
    for name, value in others.items():
        defense.set_params(**{name: value})
        _assert_same(before, outputs(), f"set_params({name}=...)")
        defense.set_params(**{name: params[name]})
