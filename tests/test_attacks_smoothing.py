"""The harness against smoothing certificates: RAB (training set) and Cohen (test input)."""

import warnings
from typing import ClassVar

import numpy as np
import pytest
from scipy import stats
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from threadpoolctl import threadpool_limits

from sklearn_certify import (
    Certificate,
    DPAClassifier,
    RABClassifier,
    RandomizedSmoothingClassifier,
)
from sklearn_certify.attacks import (
    BackdoorAttack,
    CertificateViolationError,
    CertificateViolationWarning,
    FeatureCollisionAttack,
    LabelFlipAttack,
    PoisoningAttack,
    PoisonResult,
    evaluate_under_attack,
)
from sklearn_certify.datasets import load_digits


@pytest.fixture(autouse=True)
def _one_thread():
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def ones_sevens():
    X, y = load_digits(digits=(1, 7), split="train")
    X_test, y_test = load_digits(digits=(1, 7), split="test")
    return X, y, X_test, y_test


def _rab(**params):
    options = dict(n_estimators=20, sigma=1.0, alpha=0.05, random_state=0)
    return RABClassifier(LogisticRegression(), **{**options, **params})


def _trigger_norms(attack, X):
    delta = attack.test_inputs(X).astype(float) - X.astype(float)
    return np.sqrt(np.sum(delta**2, axis=1))


def _clean_label(strength=0.1):
    return BackdoorAttack(
        target_label=1, variant="clean_label", mode="modify", strength=strength, random_state=0
    )


def test_rab_cost_adds_the_trigger_on_the_test_input(ones_sevens):
    """test_noise=True: certify the clean digit, cost sqrt(||Delta||^2 + ||delta_x||^2)."""
    X, y, X_test, y_test = ones_sevens
    attack = _clean_label()
    budgets = [0, 4, 16]
    rows = evaluate_under_attack(_rab(), attack, X, y, X_test, y_test, budgets)
    sevens = X_test[y_test == 7]
    input_norm = _trigger_norms(attack, sevens)
    cert = _rab().fit(X, y).certify(sevens)  # the clean inputs, not the triggered ones
    for row, budget in zip(rows, budgets, strict=True):
        train = attack.poison(X, y, budget).cost("l2")
        cost = np.sqrt(train**2 + input_norm**2)
        assert row["radius_unit"] == "l2" and row["cost"] == pytest.approx(cost.max())
        assert row["n_certified"] == int(np.sum(~cert.abstain & (cert.radius > cost)))
        assert not row["violation"] and row["n_certified_changed"] <= row["n_tolerated"]
        n, p = row["n_certified"], row["failure_bound"]
        assert row["n_tolerated"] == max(stats.binom.ppf(0.95, n, p), np.ceil(n * p))
        assert 0.05 <= row["failure_bound"] <= 1
    assert rows[0]["cost"] == pytest.approx(input_norm.max()) and rows[0]["n_certified"] > 0


def test_rab_without_test_noise_certifies_the_triggered_input(ones_sevens):
    X, y, X_test, y_test = ones_sevens
    attack = _clean_label()
    rows = evaluate_under_attack(_rab(test_noise=False), attack, X, y, X_test, y_test, [0, 4])
    sevens = X_test[y_test == 7]
    cert = _rab(test_noise=False).fit(X, y).certify(attack.test_inputs(sevens))
    assert rows[0]["cost"] == 0.0 and rows[1]["cost"] == attack.poison(X, y, 4).cost("l2")
    assert rows[0]["n_certified"] == int(np.sum(~cert.abstain))


@pytest.mark.parametrize(
    "attack",
    [
        BackdoorAttack(target_label=1, strength=0.1, random_state=0),
        BackdoorAttack(target_label=1, variant="clean_label", strength=0.1, random_state=0),
        LabelFlipAttack(random_state=0),
    ],
    ids=["dirty-label", "inserted", "label-flips"],
)
def test_rab_refuses_what_its_l2_radius_does_not_count(ones_sevens, attack):
    X, y, X_test, y_test = ones_sevens
    with pytest.raises(ValueError, match="certificate counting l2 does not measure"):
        evaluate_under_attack(_rab(n_estimators=4), attack, X, y, X_test, y_test, [2])


def test_a_per_target_attack_costs_each_point_its_own_poisoning(ones_sevens):
    X, y, X_test, y_test = ones_sevens
    attack = FeatureCollisionAttack(eps_linf=0.05, n_steps=5)
    rows = evaluate_under_attack(_rab(n_estimators=4), attack, X, y, X_test[:3], y_test[:3], [0, 3])
    costs = [attack.poison(X, y, 3, target=x).cost("l2") for x in X_test[:3]]
    assert rows[0]["cost"] == 0.0 and rows[1]["cost"] == pytest.approx(max(costs))
    assert rows[1]["n_points"] == 3 and not rows[1]["violation"]


def test_cohen_counts_the_test_time_trigger_alone(ones_sevens):
    X, y, X_test, y_test = ones_sevens
    clf = RandomizedSmoothingClassifier(
        LogisticRegression(), sigma=0.5, n_select=20, n_samples=200, alpha=0.01, random_state=0
    )
    attack = BackdoorAttack(target_label=1, strength=0.5, random_state=0)
    (row,) = evaluate_under_attack(clf, attack, X, y, X_test, y_test, [0])
    sevens = X_test[y_test == 7]
    assert row["radius_unit"] == "input_l2"
    assert row["cost"] == pytest.approx(_trigger_norms(attack, sevens).max())
    assert row["n_certified"] > 0 and not row["violation"]
    with pytest.raises(ValueError, match="covers a perturbation of the test input only"):
        evaluate_under_attack(clf, attack, X, y, X_test, y_test, [0, 1])


class OverconfidentRAB(RABClassifier):
    """A RAB whose bound on the top class's probability is 1 wherever it does not abstain."""

    def certify(self, X):
        cert = super().certify(X)
        p_lower = np.where(cert.abstain, cert.p_lower, 1.0)
        radius = np.where(cert.abstain, 0.0, 50.0)
        return Certificate(
            cert.prediction, radius, cert.abstain, cert.unit, p_lower, 1 - p_lower, cert.votes
        )


class TowardOnes(PoisoningAttack):
    """Moves every training 7 towards the mean 1, by a total l2 norm of ``budget``."""

    _parameter_constraints: ClassVar[dict] = {"random_state": ["random_state"]}
    unit = "l2"

    def __init__(self, random_state=None):
        self.random_state = random_state

    @property
    def reads_model(self):
        return False

    def _poison(self, X, y, budget, *, model, target, rng):
        rows = np.flatnonzero(y == 7)
        X_new = X.astype(float)
        direction = X_new[y == 1].mean(axis=0) - X_new[rows]
        X_new[rows] += direction * budget / np.linalg.norm(direction)
        return PoisonResult.from_poisoned(
            X, y, X_new, y, np.arange(len(y)), budget=budget, unit=self.unit
        )


def test_an_overconfident_smoothing_certificate_is_flagged(ones_sevens):
    X, y, X_test, y_test = ones_sevens
    clf = OverconfidentRAB(
        LogisticRegression(), n_estimators=20, sigma=1.0, alpha=0.05, random_state=0
    )
    args = (clf, TowardOnes(), X, y, X_test, y_test, [40.0])
    with pytest.warns(CertificateViolationWarning, match="leaves room for"):
        (row,) = evaluate_under_attack(*args)
    assert (
        row["failure_bound"] == pytest.approx(0.05)
        and row["n_certified_changed"] > row["n_tolerated"]
    )
    with pytest.raises(CertificateViolationError, match=r"1 - alpha = 0\.95"):
        evaluate_under_attack(*args, on_violation="raise")
    # the honest certificate covers no such cost: nothing to flag
    (row,) = evaluate_under_attack(_rab(), *args[1:])
    assert row["n_certified"] == 0 and not row["violation"]


def test_other_probabilistic_certificates_are_refused(ones_sevens):
    class Noisy(DPAClassifier):
        def __init__(self, estimator, *, alpha=0.01, random_state=None):
            super().__init__(estimator, n_partitions=3, random_state=random_state)
            self.alpha = alpha

    X, y, X_test, y_test = ones_sevens
    with pytest.raises(ValueError, match=r"ensembles .* and RandomizedSmoothingClassifier only"):
        evaluate_under_attack(
            Noisy(KNeighborsClassifier(1), random_state=0),
            _clean_label(),
            X,
            y,
            X_test,
            y_test,
            [0],
        )


def test_deterministic_certificates_tolerate_nothing(ones_sevens):
    X, y, X_test, y_test = ones_sevens
    clf = DPAClassifier(KNeighborsClassifier(1), n_partitions=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        rows = evaluate_under_attack(clf, _clean_label(), X, y, X_test, y_test, [0, 2])
    assert [(r["failure_bound"], r["n_tolerated"]) for r in rows] == [(0.0, 0), (0.0, 0)]
    assert rows[0]["changed_tolerance"] == 0.0 and rows[0]["n_certified"] > 0
    assert [r["cost"] for r in rows] == [0, 4]  # each replaced row: deleted and inserted


def test_attacks_reading_the_model_get_one_with_other_noise(ones_sevens):
    """The statistics assume a poisoning independent of the members' noise."""
    X, y, X_test, y_test = ones_sevens
    seen = []

    class Spy(BackdoorAttack):
        reads = True

        @property
        def reads_model(self):
            return self.reads

        def _poison(self, X, y, budget, *, model, target, rng):
            seen.append(model)
            return super()._poison(X, y, budget, model=model, target=target, rng=rng)

    spy = Spy(target_label=1, variant="clean_label", mode="modify", strength=0.1)
    evaluate_under_attack(_rab(n_estimators=4), spy, X, y, X_test[:20], y_test[:20], [1])
    assert seen[0].random_state == 1 and hasattr(seen[0], "seed_")
    Spy.reads = False
    evaluate_under_attack(_rab(n_estimators=4), spy, X, y, X_test[:20], y_test[:20], [1])
    assert seen[1] is None  # a model-free attack gets no model, and none is trained for it


def test_the_failure_bound_adds_alpha_and_the_finite_vote():
    from sklearn_certify.attacks._evaluate import _failure_bound, _Smoothing, _tolerated

    p_lower = np.array([0.9, 0.6, 0.52])
    cert = Certificate(
        np.zeros(3), 0.5 * stats.norm.ppf(p_lower), np.zeros(3, bool), "l2", p_lower, 1 - p_lower
    )
    cost = np.full(3, 0.05)
    q = stats.norm.cdf(stats.norm.ppf(p_lower) - 0.1)
    votes = _failure_bound(_Smoothing(0.01, 0.5, 20, "votes"), cert, cost)
    assert np.allclose(votes, 0.01 + stats.binom.cdf(10, 20, q))
    mean = _failure_bound(_Smoothing(0.01, 0.5, 20, "mean"), cert, cost)
    assert np.allclose(mean[:2], 0.01 + np.exp(-40 * (q[:2] - 0.5) ** 2)) and mean[2] == 1.0
    assert _failure_bound(None, cert, cost).tolist() == [0.0, 0.0, 0.0]
    # at least the mean count, at most all of them
    assert _tolerated(_Smoothing(0.5, 0.5, 20, "votes"), np.full(10, 0.35)) == 4
    assert _tolerated(_Smoothing(0.01, 0.5, 20, "votes"), np.ones(5)) == 5


def test_budget_zero_moves_nothing_where_certify_names_another_class():
    """An abstained point whose selection draws name another class than the full vote."""
    X, y = load_digits(split="train")
    X_test, y_test = load_digits(split="test")
    X_eval, y_eval = X_test[245:255], y_test[245:255]
    rab = _rab(n_estimators=10, n_select=5, test_noise=False)
    clean = clone(rab).fit(X, y)
    cert = clean.certify(X_eval)
    differ = clean.predict(X_eval) != cert.prediction
    assert differ.any() and cert.abstain[differ].all()  # the case this test is about
    attack = FeatureCollisionAttack(eps_linf=0.05, n_steps=1)
    (row,) = evaluate_under_attack(rab, attack, X, y, X_eval, y_eval, [0])
    assert row["attack_success"] == 0.0 and row["uncertified_changed"] == 0.0
    assert row["n_certified_changed"] == 0
