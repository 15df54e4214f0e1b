"""MixedAttack: faint feature changes on many rows, then a few arbitrary rows, one budget.

What is checked: the pair unit ``"rows+l2"`` (hand vectors of the cost, budget checks); the
feature stage takes the largest row count whose l2 norm fits (and one more would not), the
row stage spends its rows, and the composed result is described against the clean set; an
attack with an l2 budget gets the norm itself; stages that do the other stage's job are
refused; the test-time part follows ``test_trigger``.
"""

from typing import ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_certify.attacks import (
    BackdoorAttack,
    LabelFlipAttack,
    MixedAttack,
    PoisoningAttack,
    PoisonResult,
    StealthyRadiusAttack,
)
from sklearn_certify.attacks._base import assemble
from sklearn_certify.datasets import load_digits

X, Y = load_digits(digits=(1, 7), split="train")
PROPERTY = settings(max_examples=20, deadline=None)


def _faint(strength=0.05, seed=0):
    return BackdoorAttack(
        target_label=7, variant="clean_label", mode="modify", strength=strength, random_state=seed
    )


def _strong(seed=1):
    return BackdoorAttack(target_label=7, mode="insert", random_state=seed)


class ShiftFirstRow(PoisoningAttack):
    """An l2-budget attack: moves row 0 by exactly ``budget`` along the first feature."""

    _parameter_constraints: ClassVar[dict] = {}
    unit = "l2"

    @property
    def changes(self):
        return frozenset({"features"})

    def _poison(self, X, y, budget, *, model, target, rng):
        rows = np.array([0]) if budget > 0 else np.zeros(0, np.int64)
        X_rows = X[:1].astype(float).copy()
        X_rows.reshape(1, -1)[0, 0] += budget
        X_new, y_new, source = assemble(X, y, rows=rows, X_rows=X_rows[: rows.size])
        return PoisonResult.from_poisoned(X, y, X_new, y_new, source, budget=budget, unit=self.unit)


# ------------------------------------------------------------------ the pair unit
def test_rows_plus_l2_counts_moved_and_relabeled_rows_and_the_other_nudges():
    """Hand vectors: row 1 nudged by (3, 4) (l2 5), row 2 relabeled and moved (a row, its
    features free), row 3 deleted, one row inserted: (3 rows, l2 5)."""
    X0 = np.zeros((4, 2))
    y0 = np.array([0, 0, 0, 1])
    X_new = np.array([[0.0, 0.0], [3.0, 4.0], [9.0, 9.0], [1.0, 1.0]])
    y_new = np.array([0, 0, 1, 1])
    res = PoisonResult.from_poisoned(X0, y0, X_new, y_new, [0, 1, 2, -1], budget=4, unit="rows")
    assert res.cost("rows+l2") == (3, 5.0)
    assert res.cost("rows") == 4 and res.cost("l2") is None  # l2 alone cannot measure it
    nudge_only = PoisonResult.from_poisoned(
        X0, y0, X_new[:2], y0[:2], [0, 1], budget=1, unit="rows"
    )
    assert nudge_only.cost("rows+l2") == (2, 5.0)  # rows 2 and 3 deleted, row 1 nudged


@pytest.mark.parametrize(
    "budget, error, match",
    [
        (3, TypeError, r"pair \(rows, l2\)"),
        ((2,), TypeError, r"pair \(rows, l2\)"),
        ((1.5, 0.1), TypeError, "integer"),
        ((-1, 0.1), ValueError, ">= 0"),
        ((1, float("nan")), ValueError, "finite"),
        ((1, -0.5), ValueError, "finite"),
    ],
)
def test_a_bad_pair_budget_is_refused_before_poisoning(budget, error, match):
    with pytest.raises(error, match=match):
        MixedAttack(_strong(), _faint()).validate_budget(X, Y, budget)


# ------------------------------------------------------------------ the stages
@PROPERTY
@given(rows=st.integers(0, 6), l2=st.floats(0.0, 0.6), strength=st.sampled_from([0.03, 0.05, 0.1]))
def test_the_trigger_goes_on_as_many_rows_as_the_norm_allows_then_the_rows_are_spent(
    rows, l2, strength
):
    attack = MixedAttack(_strong(), _faint(strength))
    res = attack.poison(X, Y, (rows, l2))
    spent_rows, spent_l2 = res.cost("rows+l2")
    assert spent_rows == rows == res.added.size and spent_l2 <= l2
    nudged = res.changed.size
    assert res.relabeled.size == 0 and res.removed.size == 0
    # the faint stage alone, one row more, would not fit (or there is no row left to trigger)
    try:
        more = _faint(strength).poison(X, Y, nudged + 1)
    except ValueError as exc:
        assert "more than the" in str(exc) and nudged == 134
    else:
        assert more.cost("l2") > l2
    # inserted rows are the strong backdoor's rows on top of the faint stage, labelled 7
    stage1 = _faint(strength).poison(X, Y, nudged)
    stage2 = _strong().poison(np.array(stage1.X), np.array(stage1.y), rows)
    np.testing.assert_array_equal(res.X, stage2.X)
    np.testing.assert_array_equal(res.y, stage2.y)
    assert set(res.y[res.added].tolist()) <= {7}


def test_an_l2_budget_attack_gets_the_norm_itself():
    res = MixedAttack(_strong(), ShiftFirstRow()).poison(X, Y, (1, 0.25))
    assert res.cost("rows+l2") == (1, 0.25)
    assert res.changed.tolist() == [0]


def test_stage_info_is_kept():
    res = MixedAttack(_strong(), _faint()).poison(X, Y, (1, 0.1))
    assert set(res.info) == {"feature_stage", "row_stage"} and res.unit == "rows+l2"


@pytest.mark.parametrize(
    "row_attack, feature_attack, error, match",
    [
        (ShiftFirstRow(), _faint(), ValueError, "row_attack must count rows"),
        (_strong(), StealthyRadiusAttack(target_class=7), ValueError, "l2 budget or count rows"),
        (MixedAttack(_strong(), _faint()), _faint(), TypeError, "single attack"),
    ],
)
def test_stages_of_the_wrong_kind_are_refused_before_poisoning(
    row_attack, feature_attack, error, match
):
    with pytest.raises(error, match=match):
        MixedAttack(row_attack, feature_attack).validate_budget(X, Y, (1, 0.1))


def test_a_feature_stage_that_relabels_is_refused():
    dirty = BackdoorAttack(target_label=7, mode="modify", strength=0.05, random_state=0)
    with pytest.raises(ValueError, match="must change features only"):
        MixedAttack(_strong(), dirty).poison(X, Y, (1, 0.2))


def test_a_row_stage_that_only_nudges_features_overspends_l2_and_is_refused():
    nudging = _faint(strength=1.0, seed=3)  # clean-label: changes features, not labels
    with pytest.raises(ValueError, match="counts in l2"):
        MixedAttack(nudging, _faint()).poison(X, Y, (3, 0.1))


def test_a_row_stage_that_relabels_costs_rows():
    flips = LabelFlipAttack(random_state=0)
    res = MixedAttack(flips, _faint()).poison(X, Y, (3, 0.2))
    assert res.cost("rows+l2")[0] == 3 and res.relabeled.size == 3


# ------------------------------------------------------------------ what it declares
def test_declarations_are_the_stages():
    attack = MixedAttack(_strong(), _faint())
    assert attack.changes == {"rows", "features"}
    assert not attack.per_target
    nearest = MixedAttack(LabelFlipAttack("nearest"), _faint())
    assert nearest.per_target and nearest.reads_model
    assert MixedAttack(_strong(), ShiftFirstRow()).changes == {"rows", "features"}


def test_test_time_part_follows_test_trigger():
    X_test, y_test = load_digits(digits=(1, 7), split="test")
    strong, faint = _strong(), _faint(strength=0.5)
    by_rows = MixedAttack(strong, faint)
    by_features = MixedAttack(strong, faint, test_trigger="feature_attack")
    np.testing.assert_array_equal(by_rows.test_inputs(X_test), strong.test_inputs(X_test))
    np.testing.assert_array_equal(by_features.test_inputs(X_test), faint.test_inputs(X_test))
    np.testing.assert_array_equal(by_rows.evaluation_rows(y_test), np.flatnonzero(y_test != 7))
    clean, poisoned = np.array([1, 1, 7]), np.array([7, 1, 7])
    assert by_rows.succeeded(clean, poisoned, clean).tolist() == [True, False, True]
    with pytest.raises(ValueError, match="test_trigger"):
        MixedAttack(strong, faint, test_trigger="both").poison(X, Y, (0, 0.0))
