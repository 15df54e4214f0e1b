"""The harness on small digits problems: DPA in each variant holds against every attack."""

import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits

from sklearn_certify import Certificate, DPAClassifier
from sklearn_certify.attacks import (
    BackdoorAttack,
    CertificateViolationError,
    CertificateViolationWarning,
    LabelFlipAttack,
    PartitionInsertionAttack,
    SphereSlabAttack,
    evaluate_under_attack,
)
from sklearn_certify.datasets import load_digits
from sklearn_certify.metrics import certified_accuracy
from sklearn_certify.plotting import plot_attack_vs_certificate

matplotlib.use("Agg")

COLUMNS = {
    "attack",
    "estimator",
    "budget",
    "budget_unit",
    "cost",
    "radius_unit",
    "n_points",
    "clean_accuracy",
    "attack_success",
    "certified_accuracy",
    "n_certified",
    "certified_changed",
    "n_certified_changed",
    "failure_bound",
    "n_tolerated",
    "changed_tolerance",
    "uncertified_changed",
    "violation",
}


@pytest.fixture(autouse=True)
def _quiet():
    """One BLAS thread per worker; DPA's small-partition and run-off tie warnings are expected."""
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="sklearn_certify")
        yield


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(split="train")
    X_test, y_test = load_digits(split="test")
    # test points without a near-duplicate among the training rows, so a near-copy is always
    # a member's nearest neighbour
    distance = pairwise_distances(X_test, X).min(axis=1)
    far = np.flatnonzero(distance > 0.2)
    return X, y, X_test, y_test, far


def _no_violation(rows):
    assert rows and all(set(row) == COLUMNS for row in rows)
    assert all(row["n_certified_changed"] == 0 and not row["violation"] for row in rows)
    assert all(
        row["certified_changed"] in (0.0,) or np.isnan(row["certified_changed"]) for row in rows
    )


def test_partition_insertion_radius_holds_and_one_more_flips(digits):
    """1-NN DPA: r copies never move a prediction certified at r, r + 1 always do."""
    X, y, X_test, y_test, far = digits
    clf = DPAClassifier(KNeighborsClassifier(1), n_partitions=11, random_state=0)
    points = far[:6]
    radii = clf.fit(X, y).certify(X_test[points]).radius
    budgets = list(range(int(radii.max()) + 2))
    rows = evaluate_under_attack(
        clf, PartitionInsertionAttack(random_state=0), X, y, X_test[points], y_test[points], budgets
    )
    _no_violation(rows)
    for row in rows:
        b = row["budget"]
        assert row["cost"] == b and row["radius_unit"] == "samples"
        assert row["n_certified"] == int(np.sum(radii >= b))
        assert row["attack_success"] == np.mean(radii < b)  # exactly the uncertified flip
        if row["n_certified"] < len(points):
            assert row["uncertified_changed"] == 1.0
    assert rows[-1]["n_certified"] == 0 and rows[-1]["attack_success"] == 1.0


@pytest.mark.parametrize(
    ("params", "attack", "budgets"),
    [
        (dict(n_partitions=15), PartitionInsertionAttack(random_state=1), [0, 3, 6, 8]),
        (dict(n_partitions=8, spread=2), PartitionInsertionAttack(random_state=1), [0, 2, 4, 5]),
        (
            dict(n_partitions=11, election="runoff"),
            PartitionInsertionAttack(random_state=1),
            [0, 2, 4, 6],
        ),
        (
            dict(n_partitions=15, threat_model="label_flip"),
            LabelFlipAttack("nearest"),
            [0, 3, 6, 8],
        ),
    ],
    ids=["dpa", "fa-spread2", "runoff", "ss-dpa"],
)
def test_targeted_attacks_never_move_certified_predictions(digits, params, attack, budgets):
    X, y, X_test, y_test, far = digits
    clf = DPAClassifier(KNeighborsClassifier(1), random_state=0, **params)
    rows = evaluate_under_attack(clf, attack, X, y, X_test[far[6:11]], y_test[far[6:11]], budgets)
    _no_violation(rows)
    unit = "label_flips" if params.get("threat_model") == "label_flip" else "samples"
    assert [row["radius_unit"] for row in rows] == [unit] * len(budgets)
    assert rows[0]["attack_success"] == 0.0 and rows[-1]["attack_success"] > 0
    # the attack moves predictions once they are no longer certified
    assert np.nanmax([row["uncertified_changed"] for row in rows]) > 0.5


@pytest.mark.parametrize(
    ("params", "base"),
    [
        (dict(n_partitions=10), DecisionTreeClassifier(random_state=0)),
        (dict(n_partitions=5, spread=2), DecisionTreeClassifier(random_state=0)),
        (dict(n_partitions=10, election="runoff"), LogisticRegression(max_iter=200)),
    ],
    ids=["dpa", "fa-spread2", "runoff"],
)
def test_backdoor_never_moves_certified_predictions(digits, params, base):
    X, y, X_test, y_test, _ = digits
    clf = DPAClassifier(base, random_state=0, **params)
    attack = BackdoorAttack("four_pixel", target_label=0, strength=2.0, random_state=0)
    rows = evaluate_under_attack(clf, attack, X, y, X_test[:120], y_test[:120], [0, 2, 5, 200])
    _no_violation(rows)
    assert rows[0]["n_points"] == int(np.sum(y_test[:120] != 0))  # triggered non-targets
    assert [row["cost"] for row in rows] == [0, 2, 5, 200]
    certified = [row["certified_accuracy"] for row in rows]
    assert certified == sorted(certified, reverse=True) and certified[-1] == 0.0
    assert rows[-1]["attack_success"] > rows[0]["attack_success"]


def test_clean_row_matches_the_clean_certificate(digits):
    X, y, X_test, y_test, _ = digits
    clf = DPAClassifier(DecisionTreeClassifier(random_state=0), n_partitions=10, random_state=0)
    rows = evaluate_under_attack(
        clf, LabelFlipAttack(random_state=0), X, y, X_test[:100], y_test[:100], [0, 1, 3]
    )
    cert = clf.fit(X, y).certify(X_test[:100])
    for row in rows:
        # a label flip costs two samples under the general threat model
        assert row["cost"] == 2 * row["budget"]
        assert row["certified_accuracy"] == certified_accuracy(y_test[:100], cert, row["cost"])
    assert rows[0]["clean_accuracy"] == clf.score(X_test[:100], y_test[:100])
    frame = pd.DataFrame(rows)
    assert list(frame["budget"]) == [0, 1, 3] and frame["violation"].dtype == bool


def test_random_label_flips_against_ss_dpa(digits):
    X, y, X_test, y_test, _ = digits
    clf = DPAClassifier(
        DecisionTreeClassifier(random_state=0),
        n_partitions=10,
        threat_model="label_flip",
        random_state=0,
    )
    rows = evaluate_under_attack(
        clf,
        LabelFlipAttack(target_label=3, random_state=0),
        X,
        y,
        X_test[:100],
        y_test[:100],
        [0, 2, 4],
    )
    _no_violation(rows)
    assert [row["cost"] for row in rows] == [0, 2, 4]  # flips are SS-DPA's own unit
    assert rows[0]["n_points"] == int(np.sum(y_test[:100] != 3))


def test_sphere_slab_attack_against_dpa():
    X, y = load_digits(digits=(1, 7), split="train")
    X_test, y_test = load_digits(digits=(1, 7), split="test")
    clf = DPAClassifier(LogisticRegression(max_iter=200), n_partitions=6, random_state=0)
    rows = evaluate_under_attack(
        clf, SphereSlabAttack(max_iter=100), X, y, X_test, y_test, [0, 2, 20]
    )
    _no_violation(rows)
    assert [row["cost"] for row in rows] == [0, 2, 20] and rows[0]["clean_accuracy"] > 0.9


# ---------------------------------------------------------------- violations are loud
class OverclaimingDPA(DPAClassifier):
    """A DPA whose certificate claims three more samples than it can hold."""

    def certify(self, X):
        cert = super().certify(X)
        radius = np.where(cert.abstain, 0, cert.radius + 3)
        return Certificate(cert.prediction, radius, cert.abstain, cert.unit, votes=cert.votes)


def test_a_false_certificate_is_flagged(digits):
    X, y, X_test, y_test, far = digits
    clf = OverclaimingDPA(KNeighborsClassifier(1), n_partitions=7, random_state=0)
    args = (
        clf,
        PartitionInsertionAttack(random_state=0),
        X,
        y,
        X_test[far[:3]],
        y_test[far[:3]],
        [5],
    )
    with pytest.warns(CertificateViolationWarning, match="certified against it"):
        rows = evaluate_under_attack(*args)
    assert rows[0]["violation"] and rows[0]["certified_changed"] > 0
    with pytest.raises(CertificateViolationError, match="PartitionInsertionAttack at budget 5"):
        evaluate_under_attack(*args, on_violation="raise")


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (
            dict(estimator=DPAClassifier(KNeighborsClassifier(1), n_partitions=5)),
            ValueError,
            "random_state must be an int",
        ),
        (dict(estimator=KNeighborsClassifier(1)), TypeError, "fit and certify"),
        (dict(attack="backdoor"), TypeError, "attack must be a PoisoningAttack"),
        (dict(budgets=[]), ValueError, "at least one budget"),
        (dict(budgets=[-1]), ValueError, "budgets: budget must be >= 0"),
        (dict(budgets=[0.5]), TypeError, "budgets: budget counts rows"),
        (dict(X_test=np.zeros((3, 5))), ValueError, "X_test rows must have the shape"),
        (dict(y_test=np.zeros(2)), ValueError, "one label per row of X_test"),
        (dict(y_test=np.zeros(4)), ValueError, "evaluated on no row of y_test"),
        (dict(on_violation="ignore"), ValueError, "on_violation must be"),
        (
            dict(
                estimator=DPAClassifier(
                    KNeighborsClassifier(1),
                    n_partitions=5,
                    threat_model="label_flip",
                    random_state=0,
                )
            ),
            ValueError,
            "does not measure",
        ),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(change, error, match):
    X, y = load_digits(digits=(0, 1))
    args = dict(
        estimator=DPAClassifier(KNeighborsClassifier(1), n_partitions=5, random_state=0),
        attack=BackdoorAttack(target_label=0, random_state=0),
        X=X[:60],
        y=y[:60],
        X_test=X[60:64],
        y_test=y[60:64],
        budgets=[0, 2],
    )
    args.update(change)
    with pytest.raises(error, match=match):
        evaluate_under_attack(**args)


# ---------------------------------------------------------------- the figure
def test_plot_attack_vs_certificate_draws_the_table():
    rows = [
        dict(
            budget=b,
            budget_unit="samples",
            certified_accuracy=c,
            clean_accuracy=0.9,
            attack_success=s,
            violation=b == 4,
        )
        for b, c, s in [(0, 0.9, 0), (4, 0.5, 0.2)]
    ]
    ax = plot_attack_vs_certificate(pd.DataFrame(rows), title="t")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[-1] == "certified prediction changed" and ax.get_title() == "t"
    assert ax.get_xlabel() == "attack budget (inserted+deleted training rows)"
    ax = plot_attack_vs_certificate({"DPA": rows, "FA": rows})
    assert len(ax.get_lines()) == 8 and labels[0] == "certified accuracy"
    with pytest.raises(ValueError, match="different units"):
        plot_attack_vs_certificate({"a": rows, "b": [dict(rows[0], budget_unit="l2")]})
    with pytest.raises(ValueError, match="rows returned by"):
        plot_attack_vs_certificate([{"budget": 0}])
    with pytest.raises(ValueError, match="no rows"):
        plot_attack_vs_certificate([])
