"""evaluate_under_attack checks every budget and the attack/estimator pairing before any fit."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

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
    PoisonResult,
    SphereSlabAttack,
    StealthyRadiusAttack,
    evaluate_under_attack,
)
from sklearn_certify.attacks._base import CHANGES, measures
from sklearn_certify.attacks._evaluate import _radius_unit, check_evaluation
from sklearn_certify.datasets import load_digits

X, Y = load_digits(digits=(1, 7), split="train")
X_TEST, Y_TEST = load_digits(digits=(1, 7), split="test")


@pytest.fixture
def no_fit(monkeypatch):
    """Fail the test if anything is trained: refusals must come before the first fit."""

    def fit(self, X, y):
        raise AssertionError(f"{type(self).__name__} was trained before the refusal")

    for cls in (DPAClassifier, RABClassifier, RandomizedSmoothingClassifier):
        monkeypatch.setattr(cls, "fit", fit)


def _dpa(**kwargs):
    return DPAClassifier(DecisionTreeClassifier(), n_partitions=5, random_state=0, **kwargs)


def _rab():
    return RABClassifier(LogisticRegression(), n_estimators=4, sigma=1.0, random_state=0)


def _cohen():
    return RandomizedSmoothingClassifier(LogisticRegression(), n_samples=20, random_state=0)


IMPOSSIBLE_LAST_BUDGET = [
    (_dpa(), BackdoorAttack(target_label=1), "budget=100000 is more than the"),
    (_dpa(), LabelFlipAttack(random_state=0), "budget=100000 is more than the"),
    (_dpa(), LabelFlipAttack("nearest"), "not labelled 7 \\(the rarest label\\)"),
    (_dpa(), SphereSlabAttack(), "budget=100000 must be below"),
    (_dpa(), FeatureCollisionAttack(), "Against evaluated test point 0: budget=100000 is more"),
    (_rab(), FeatureCollisionAttack(), "Against evaluated test point 0: budget=100000 is more"),
    (
        _rab(),
        BackdoorAttack(target_label=1, variant="clean_label", mode="modify"),
        "budget=100000 is more than the",
    ),
]


@pytest.mark.parametrize(("estimator", "attack", "match"), IMPOSSIBLE_LAST_BUDGET)
def test_an_impossible_last_budget_is_refused_before_any_fit(no_fit, estimator, attack, match):
    with pytest.raises(ValueError, match=match):
        evaluate_under_attack(estimator, attack, X, Y, X_TEST[:3], Y_TEST[:3], [0, 2, 100_000])


PAIRINGS = [
    (_rab(), LabelFlipAttack(), ValueError, "changes labels, which a certificate counting l2"),
    (_rab(), BackdoorAttack(target_label=1), ValueError, "inserts or deletes rows, which a"),
    (
        _dpa(threat_model="label_flip"),
        FeatureCollisionAttack(),
        ValueError,
        "changes features, which a certificate counting label_flips",
    ),
    (_dpa(threat_model="label_flip"), PartitionInsertionAttack(), ValueError, "does not cover"),
    (_rab(), PartitionInsertionAttack(), TypeError, "content-hashed partitions of a DPAClassifier"),
    (_cohen(), BackdoorAttack(target_label=1), ValueError, "budgets: 2 rows poisons the training"),
    (
        _dpa(threat_model="label_flip"),
        StealthyRadiusAttack(target_class=1),
        ValueError,
        "changes features, which a certificate counting label_flips",
    ),
]


@pytest.mark.parametrize(("estimator", "attack", "error", "match"), PAIRINGS)
def test_an_attack_outside_the_threat_model_is_refused_before_any_fit(
    no_fit, estimator, attack, error, match
):
    with pytest.raises(error, match=match):
        evaluate_under_attack(estimator, attack, X, Y, X_TEST[:3], Y_TEST[:3], [0, 2])
    with pytest.raises(error, match=match):
        check_evaluation(estimator, attack, X, Y, X_TEST[:3], Y_TEST[:3], [0, 2])


@pytest.mark.parametrize(
    "estimator",
    [
        _dpa(),
        _dpa(threat_model="label_flip"),
        _rab(),
        DenoisedSmoothingClassifier(LogisticRegression(), n_estimators=4, random_state=0),
        _cohen(),
    ],
    ids=["dpa", "dpa-label-flip", "rab", "denoised", "cohen"],
)
def test_the_unit_read_before_fit_is_the_certificate_unit(estimator):
    """The pairing is checked with the unit each certificate will have once fitted."""
    unit = _radius_unit(estimator)
    assert estimator.fit(X, Y).certify(X_TEST[:2]).unit == unit


def test_budget_zero_alone_passes_the_checks(no_fit):
    """Budget 0 poisons nothing: every certificate measures it, and the checks say so."""
    check_evaluation(_cohen(), BackdoorAttack(target_label=1), X, Y, X_TEST, Y_TEST, [0])
    check_evaluation(_rab(), LabelFlipAttack(), X, Y, X_TEST, Y_TEST, [0])


@pytest.mark.parametrize(
    "attack",
    [
        BackdoorAttack(target_label=1, random_state=0),
        BackdoorAttack(target_label=7, variant="clean_label", mode="modify", random_state=0),
        LabelFlipAttack(target_label=7, random_state=0),
        FeatureCollisionAttack(eps_linf=0.05),
    ],
    ids=["dirty", "clean-modify", "flips-to-7", "collision"],
)
def test_validate_budget_refuses_exactly_what_poison_refuses(attack):
    """The largest budget validate_budget accepts is the largest poison can spend."""
    target = X_TEST[0] if attack.per_target else None
    with pytest.raises(ValueError, match="is more than the") as info:
        attack.validate_budget(X, Y, 100_000, target=target)
    limit = int(str(info.value).split("more than the ")[1].split()[0])
    attack.validate_budget(X, Y, limit, target=target)
    if not attack.per_target:  # a per-target poisoning at the limit runs an optimisation
        assert attack.poison(X, Y, limit).spent == limit
    with pytest.raises(ValueError, match=f"budget={limit + 1} is more than the {limit}"):
        attack.poison(X, Y, limit + 1, target=target)


def test_the_pairing_follows_the_costs_poison_results_measure():
    """measures() agrees with PoisonResult.cost on a result making each kind of change."""
    x, y = np.zeros((3, 2)), np.array([0, 0, 1])
    made = {
        "rows": (np.zeros((2, 2)), y[:2], [0, 1]),
        "features": (np.array([[0.0, 1.0], [0.0, 0.0], [0.0, 0.0]]), y, [0, 1, 2]),
        "labels": (x, np.array([1, 0, 1]), [0, 1, 2]),
    }
    for kind in CHANGES:
        result = PoisonResult.from_poisoned(x, y, *made[kind], budget=1, unit="rows")
        assert result.changes == {kind}
        for unit in ("rows", "samples", "label_flips", "l2", "linf"):
            assert (result.cost(unit) is not None) == measures(unit, {kind}), (kind, unit)
