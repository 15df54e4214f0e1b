"""PartitionedRABClassifier under attack: the harness holds the frontier to real poisonings.

What is checked: the harness's pieces (fresh keys for inserted rows, a poisoning's footprint
on the partitions, the rows a frontier has to spare, the Poisson-binomial tail of partition
misses against brute force); a mixed attack (a faint clean-label trigger on many rows plus a
few inserted triggered rows) inside the frontier changes no certified prediction beyond the
tolerance, while the same attack outside it moves most predictions; a frontier that claims
too much is caught; keys and pair budgets are checked before training.
"""

import itertools
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from sklearn_certify import DPAClassifier, RABClassifier, bounds
from sklearn_certify.attacks import (
    BackdoorAttack,
    CertificateViolationError,
    LabelFlipAttack,
    MixedAttack,
    PoisonResult,
    evaluate_under_attack,
)
from sklearn_certify.attacks._evaluate import _refit
from sklearn_certify.attacks._frontier import FrontierCheck, _tail_beyond, poisoned_row_key
from sklearn_certify.datasets import load_digits
from sklearn_certify.partition import PartitionedRABClassifier


@pytest.fixture(scope="module")
def digits17():
    X, y = load_digits(digits=(1, 7), split="train")
    X_test, y_test = load_digits(digits=(1, 7), split="test")
    return X, y, X_test, y_test


def _ids(n, seed=0):
    """Unique, unordered row ids (an id column unrelated to the row order)."""
    return np.random.default_rng(seed).permutation(10**6)[:n]


def _mixed(strength=0.05, insert_strength=3.0):
    faint = BackdoorAttack(
        target_label=7, variant="clean_label", mode="modify", strength=strength, random_state=0
    )
    strong = BackdoorAttack(target_label=7, mode="insert", strength=insert_strength, random_state=1)
    return MixedAttack(strong, faint)


def _clf(n_estimators=60, **kw):
    params = dict(n_partitions=9, n_estimators=n_estimators, sigma=0.5, alpha=0.01, rows=(0, 2))
    return PartitionedRABClassifier(LogisticRegression(), random_state=0, **{**params, **kw})


# ------------------------------------------------------------------ the harness's pieces
@settings(max_examples=60, deadline=None)
@given(
    p=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6),
    slack=st.integers(-1, 6),
)
def test_the_miss_tail_is_the_poisson_binomial_tail(p, slack):
    """Brute force over every pattern of misses."""
    p = np.array(p)
    truth = 0.0
    for pattern in itertools.product([0, 1], repeat=p.size):
        hits = np.array(pattern)
        if hits.sum() > slack:
            truth += np.prod(np.where(hits == 1, p, 1 - p))
    got = _tail_beyond(p[None, :], np.array([slack]))[0]
    assert got == pytest.approx(truth, abs=1e-12)


def test_poisoned_rows_keep_their_keys_and_inserted_rows_get_fresh_ones():
    X0, y0 = np.zeros((4, 2)), np.array([0, 1, 0, 1])
    # clean row 1 deleted, rows 0, 2, 3 kept (row 2 nudged), two rows inserted
    X_new = np.array([[0.0, 0.0], [0.0, 0.1], [0.0, 0.0], [5.0, 5.0], [6.0, 6.0]])
    res = PoisonResult.from_poisoned(
        X0, y0, X_new, np.array([0, 0, 1, 1, 0]), [0, 2, 3, -1, -1], budget=3, unit="rows"
    )
    keys = poisoned_row_key(np.array([40, 10, 30, 20]), res)
    assert keys.tolist() == [40, 30, 20, 41, 42]


def test_the_footprint_is_the_touched_partitions_and_each_partitions_l2_share(digits17):
    X, y, _, _ = digits17
    keys = _ids(len(X))
    model = _clf(n_estimators=2).fit(X, y, row_key=keys)
    X_new, y_new = np.array(X, dtype=float), np.array(y)
    X_new[[3, 5]] += 0.1  # two nudges, l2 0.8 each (64 features)
    y_new[7] = 1 if y[7] == 7 else 7  # a relabel
    keep = np.setdiff1d(np.arange(len(X)), [11])  # a deletion
    X_new = np.concatenate([X_new[keep], X[:1]])
    y_new = np.concatenate([y_new[keep], y[:1]])
    res = PoisonResult.from_poisoned(
        X, y, X_new, y_new, np.concatenate([keep, [-1]]), budget=5, unit="rows"
    )
    check = FrontierCheck(model, X[:2], keys)
    touched, share = check.footprint(res)
    part = model.partition_of_row_
    inserted = model.assign_partitions([keys.max() + 1])[0]
    assert set(np.flatnonzero(touched)) == {part[7], part[11], inserted}
    expected = np.zeros(9)
    np.add.at(expected, part[[3, 5]], 64 * 0.1**2)
    np.testing.assert_allclose(share, np.sqrt(expected))


def test_the_slack_is_how_many_more_rows_the_frontier_covers(digits17):
    X, y, X_test, _ = digits17
    model = _clf(n_estimators=20).fit(X, y)
    check = FrontierCheck(model, X_test, np.arange(len(X)))
    front = check.frontier
    rows = np.arange(len(X_test)) % 3
    l2 = np.where(np.arange(len(X_test)) % 2 == 0, 0.0, 0.2)
    slack = check.slack(rows, l2)
    _, eps = bounds.mixed_radius_frontier(
        front.partition_votes, front.partition_radius, 2, np.arange(12)
    )
    for i in range(len(X_test)):
        covered = [(e > l2[i]) or (l2[i] == 0 and e > 0) for e in eps[i, rows[i] :]]
        expected = (covered.index(False) if False in covered else len(covered)) - 1
        assert slack[i] == expected
    assert (slack >= 1).any() and (slack == -1).any()


def test_a_keyed_refit_keeps_every_kept_row_in_its_partition(digits17):
    X, y, _, _ = digits17
    keys = _ids(len(X))
    clean = _clf(n_estimators=2).fit(X, y, row_key=keys)
    res = LabelFlipAttack(random_state=0).poison(X, y, 2)
    deleted = PoisonResult.from_poisoned(
        X,
        y,
        np.concatenate([X[1:], X[:3]]),
        np.concatenate([y[1:], y[:3]]),
        np.concatenate([np.arange(1, len(X)), [-1, -1, -1]]),
        budget=4,
        unit="rows",
    )
    for result in (res, deleted):
        poisoned = _refit(_clf(n_estimators=2), clean, result, keys)
        kept = np.asarray(result.source) >= 0
        np.testing.assert_array_equal(
            poisoned.partition_of_row_[kept], clean.partition_of_row_[result.source[kept]]
        )


# ------------------------------------------------------------------ a mixed attack
def test_a_mixed_attack_inside_the_frontier_changes_no_certified_prediction(digits17):
    """A four-pixel trigger of l2 0.05 on as many sevens as the norm allows, plus inserted
    sevens carrying the full trigger, with the triggered ones at test time. Inside the
    frontier (up to 4 rows with l2 0.3) nothing certified moves; far outside it (60 rows)
    the backdoor works on most ones, none of them certified."""
    X, y, X_test, y_test = digits17
    budgets = [(0, 0.0), (2, 0.32), (4, 0.3), (60, 0.5)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a violation would warn
        table = evaluate_under_attack(
            _clf(), _mixed(), X, y, X_test, y_test, budgets, row_key=_ids(len(X))
        )
    by_budget = {row["budget"]: row for row in table}
    assert [row["radius_unit"] for row in table] == ["rows+l2"] * 4
    for budget in budgets[:3]:
        row = by_budget[budget]
        assert row["n_certified"] >= 30 and row["n_certified_changed"] == 0
        assert row["failure_bound"] < 0.05 and not row["violation"]
        assert row["cost"][0] == budget[0] and row["cost"][1] <= budget[1]
    outside = by_budget[(60, 0.5)]
    assert outside["n_certified"] == 0
    assert outside["attack_success"] > 0.8 and outside["uncertified_changed"] > 0.8


class Overclaiming(PartitionedRABClassifier):
    """Claims every voting partition certain (p_lower 1) with a hundredfold radius."""

    def _frontier_batch(self, scores, abstain):
        out = super()._frontier_batch(scores, abstain)
        voting = out["partition_votes"] >= 0
        out["partition_radius"] = out["partition_radius"] * 100
        out["partition_p_lower"] = np.where(voting, 1.0, 0.0)
        out["eps"] = out["eps"] * 100
        return out

    def _aggregate(self, scores, abstain):
        out = super()._aggregate(scores, abstain)
        out["radius"] = out["radius"] * 100
        return out


def test_a_frontier_that_claims_too_much_is_caught(digits17):
    """A strong clean-label trigger (l2 3 on every seven) moves many triggered ones; a
    certificate claiming a hundredfold radius covers them and is reported."""
    X, y, X_test, y_test = digits17
    attack = MixedAttack(
        _mixed().row_attack, _mixed(strength=3.0).feature_attack, test_trigger="feature_attack"
    )
    clf = Overclaiming(
        LogisticRegression(), n_partitions=9, n_estimators=20, sigma=0.5, alpha=0.01, random_state=0
    )
    with pytest.raises(CertificateViolationError, match="more than the"):
        evaluate_under_attack(clf, attack, X, y, X_test, y_test, [(0, 30.0)], on_violation="raise")
    honest = evaluate_under_attack(
        _clf(n_estimators=20), attack, X, y, X_test, y_test, [(0, 30.0)]
    )[0]
    assert honest["n_certified"] == 0 and honest["uncertified_changed"] > 0.3


def test_an_attack_in_rows_alone_is_measured_as_rows_and_no_l2(digits17):
    X, y, X_test, y_test = digits17
    attack = BackdoorAttack(target_label=7, mode="insert", strength=3.0, random_state=1)
    table = evaluate_under_attack(_clf(n_estimators=20), attack, X, y, X_test, y_test, [0, 2])
    assert [row["cost"] for row in table] == [(0, 0.0), (2, 0.0)]
    assert table[1]["n_certified"] > 0 and not table[1]["violation"]


def test_a_mixed_attack_against_dpa_costs_samples_and_is_refused_by_rab(digits17):
    X, y, X_test, y_test = digits17
    dpa = DPAClassifier(KNeighborsClassifier(1), n_partitions=11, random_state=0)
    table = evaluate_under_attack(dpa, _mixed(), X, y, X_test, y_test, [(1, 0.11)])
    assert table[0]["cost"] == 1 + 2 * 4  # one insertion, four nudged rows (l2 0.05 each)
    rab = RABClassifier(LogisticRegression(), n_estimators=5, random_state=0)
    with pytest.raises(ValueError, match="inserts or deletes rows"):
        evaluate_under_attack(rab, _mixed(), X, y, X_test, y_test, [(1, 0.1)])


# ------------------------------------------------------------------ checks before training
@pytest.mark.parametrize(
    "estimator, row_key, match",
    [
        ("dpa", np.arange(270), "row_key is for a classifier partitioned"),
        ("mixed", np.arange(5), "row_key has 5 entries but X has 270 rows"),
        ("mixed", np.zeros(270, np.int64), "row_key must be unique"),
        ("mixed", np.linspace(0, 1, 270), "array of integers"),
    ],
)
def test_bad_row_keys_are_refused_before_training(digits17, estimator, row_key, match):
    X, y, X_test, y_test = digits17
    clf = (
        DPAClassifier(KNeighborsClassifier(1), n_partitions=11, random_state=0)
        if estimator == "dpa"
        else _clf(n_estimators=2)
    )
    error = TypeError if match == "array of integers" else ValueError
    with pytest.raises(error, match=match):
        evaluate_under_attack(clf, _mixed(), X, y, X_test, y_test, [(0, 0.0)], row_key=row_key)


def test_one_pair_is_one_budget_and_a_bad_pair_is_refused(digits17):
    X, y, X_test, y_test = digits17
    table = evaluate_under_attack(_clf(n_estimators=2), _mixed(), X, y, X_test, y_test, (1, 0.1))
    assert [row["budget"] for row in table] == [(1, 0.1)]
    with pytest.raises(TypeError, match=r"budgets: .*pair \(rows, l2\)"):
        evaluate_under_attack(_clf(n_estimators=2), _mixed(), X, y, X_test, y_test, [1, 2, 3])


# ------------------------------------------------------------------ attacks reading the partitions
def test_nearest_label_flips_go_one_per_partition_prediction_voters_first(digits17):
    """Against the mixed classifier the nearest flips read its keyed partitions: each flip
    takes the nearest flippable row of another partition, partitions whose members vote for
    the prediction first; through the harness no certified prediction moves."""
    X, y, X_test, y_test = digits17
    model = _clf(n_estimators=20).fit(X, y)
    target = X_test[0]
    res = LabelFlipAttack("nearest").poison(X, y, 4, model=model, target=target)
    parts = model.partition_of_row_[res.relabeled]
    assert np.unique(parts).size == 4
    np.testing.assert_array_equal(np.sort(res.info["buckets"]), np.sort(parts))
    prediction = model.certify(target[None]).prediction[0]
    members = model.predict_members(target[None])[0].reshape(9, 20)
    voting_for_prediction = (members == prediction).sum(axis=1)
    assert voting_for_prediction[parts].min() >= np.sort(voting_for_prediction)[-4]
    table = evaluate_under_attack(
        _clf(n_estimators=20), LabelFlipAttack("nearest"), X, y, X_test[:6], y_test[:6], [0, 2]
    )
    assert [row["cost"] for row in table] == [(0, 0.0), (2, 0.0)]
    assert not any(row["violation"] for row in table)


def test_partition_insertion_is_refused_against_keyed_partitions(digits17):
    """Its copies are steered by DPA's content hash; keyed partitions take no such steering."""
    from sklearn_certify.attacks import PartitionInsertionAttack

    X, y, X_test, y_test = digits17
    with pytest.raises(TypeError, match="content-hashed partitions of a DPAClassifier"):
        evaluate_under_attack(
            _clf(n_estimators=2), PartitionInsertionAttack(), X, y, X_test, y_test, [1]
        )


def test_the_frontier_check_reads_only_fitted_state(digits17):
    """Parameters changed after fit move neither the frontier nor the failure bound."""
    X, y, X_test, _ = digits17
    model = _clf(n_estimators=20).fit(X, y)
    res = _mixed().poison(X, y, (2, 0.3))
    keys = np.arange(len(X))
    before = FrontierCheck(model, X_test, keys)
    slack = before.slack(np.full(len(X_test), 2), np.full(len(X_test), 0.3))
    bound = before.failure_bound([res] * len(X_test), np.maximum(slack, 0))
    model.set_params(alpha=0.5, sigma=3.0, bound="hoeffding", n_partitions=2, rows=(0,))
    after = FrontierCheck(model, X_test, keys)
    np.testing.assert_array_equal(
        after.slack(np.full(len(X_test), 2), np.full(len(X_test), 0.3)), slack
    )
    np.testing.assert_array_equal(
        after.failure_bound([res] * len(X_test), np.maximum(slack, 0)), bound
    )
    assert (slack >= 0).any() and (bound < 1).all()
