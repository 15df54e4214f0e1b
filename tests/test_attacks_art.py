"""The ART adapter: exact accounting with any ``poison`` object, and ART's own backdoor."""

import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier

from sklearn_certify import DPAClassifier
from sklearn_certify.attacks import ARTPoisoningAttack, evaluate_under_attack
from sklearn_certify.datasets import load_digits

X, Y = (a[:200] for a in load_digits(digits=(0, 1, 7)))


class Brighten:
    """ART's ``poison`` signature: rows and one-hot labels in, poisoned rows and labels out."""

    def __init__(self, rows_out=None):
        self.rows_out = rows_out

    def poison(self, x, y=None):
        out = np.clip(x + 0.25, 0, 1)
        return (out if self.rows_out is None else out[: self.rows_out]), y


@pytest.mark.parametrize("mode", ["modify", "insert"])
def test_the_result_is_measured_not_taken_from_the_attack(mode):
    attack = ARTPoisoningAttack(Brighten(), source_label=1, mode=mode, random_state=0)
    res = attack.poison(X, Y, 7)
    assert res.spent == 7 and res.relabeled.size == 0
    assert np.all(Y[res.info["poisoned_from"]] == 1)
    if mode == "modify":
        assert res.cost("l2") > 0 and res.added.size == 0
        assert np.array_equal(res.changed, np.sort(res.info["poisoned_from"]))
    else:
        assert res.added.size == 7 and res.cost("l2") is None and res.cost("samples") == 7
    again = attack.poison(X, Y, 9)
    assert set(res.info["poisoned_from"]) < set(again.info["poisoned_from"])


def test_a_target_label_relabels_rows_of_other_classes():
    res = ARTPoisoningAttack(Brighten(), target_label=0, random_state=0).poison(X, Y, 5)
    assert res.relabeled.size == 5 and np.all(res.y[res.changed] == 0)
    assert np.all(Y[res.changed] != 0)


@pytest.mark.parametrize(
    ("params", "budget", "match"),
    [
        (dict(attack=Brighten(rows_out=2)), 4, "one poisoned row of the same shape"),
        (dict(attack=Brighten(), source_label=3), 1, "source_label=3 is not one of"),
        (dict(attack=Brighten(), source_label=1), 500, "budget=500 is more than"),
    ],
)
def test_bad_attacks_and_options_are_refused(params, budget, match):
    with pytest.raises(ValueError, match=match):
        ARTPoisoningAttack(**params).poison(X, Y, budget)
    with pytest.raises(ValueError, match="attack"):
        ARTPoisoningAttack(object()).poison(X, Y, 1)


def test_arts_backdoor_against_dpa():
    """ART's four-pixel pattern (add_pattern_bd), inserted with label 0, against DPA."""
    poisoning = pytest.importorskip("art.attacks.poisoning")
    perturbations = pytest.importorskip("art.attacks.poisoning.perturbations")

    def pattern(x):
        images = np.asarray(x).reshape(-1, 8, 8)
        return perturbations.add_pattern_bd(images, pixel_value=1).reshape(len(images), -1)

    attack = ARTPoisoningAttack(
        poisoning.PoisoningAttackBackdoor(pattern),
        target_label=0,
        mode="insert",
        trigger=pattern,
        random_state=0,
    )
    X_train, y_train = load_digits(split="train")
    X_test, y_test = load_digits(split="test")
    clf = DPAClassifier(DecisionTreeClassifier(random_state=0), n_partitions=10, random_state=0)
    rows = evaluate_under_attack(clf, attack, X_train, y_train, X_test, y_test, [0, 5, 300])
    assert not any(row["violation"] for row in rows)
    assert [row["cost"] for row in rows] == [0, 5, 300] and rows[0]["n_certified"] > 0
    assert rows[-1]["attack_success"] > rows[0]["attack_success"]
