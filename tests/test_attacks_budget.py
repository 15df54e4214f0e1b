"""Every attack spends exactly its budget, says exactly what it changed, and is reproducible."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.neighbors import KNeighborsClassifier

from sklearn_certify import DPAClassifier
from sklearn_certify.attacks import (
    COST_UNITS,
    BackdoorAttack,
    LabelFlipAttack,
    PartitionInsertionAttack,
    PoisonResult,
    SphereSlabAttack,
)
from sklearn_certify.datasets import load_digits
from sklearn_certify.partition import bucket_of_rows

SEEDS = st.integers(0, 2**16)
PROPERTY = settings(max_examples=25, deadline=None)


def _small_digits():
    X, y = load_digits(digits=(0, 1, 7))
    return X[:90], y[:90]


X_SMALL, Y_SMALL = _small_digits()


@pytest.fixture(scope="module")
def dpa():
    """A small fitted DPA (1-NN members) for the attacks that read the clean model."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return {
            params.get("threat_model", "general") + str(params.get("spread", 1)): DPAClassifier(
                KNeighborsClassifier(1), random_state=0, **params
            ).fit(X_SMALL, Y_SMALL)
            for params in (
                dict(n_partitions=5),
                dict(n_partitions=3, spread=2),
                dict(n_partitions=5, threat_model="label_flip"),
            )
        }


def _check_accounting(res: PoisonResult, X, y, budget, unit):
    """The result spends ``budget`` in ``unit`` and its description matches the data."""
    assert res.unit == unit and res.budget == budget and res.spent == budget
    kept = res.source >= 0
    assert np.array_equal(np.flatnonzero(~kept), res.added)
    assert set(res.removed) == set(range(X.shape[0])) - set(res.source[kept])
    # rows not listed as changed are exactly the clean rows
    unchanged = kept & ~np.isin(res.source, res.changed)
    assert np.array_equal(res.X[unchanged], X[res.source[unchanged]])
    assert np.array_equal(res.y[unchanged], y[res.source[unchanged]])
    for unit_ in COST_UNITS:  # every unit is measured or refused, never guessed
        cost = res.cost(unit_)
        assert cost is None or np.all(np.asarray(cost) >= 0)
    # the keyed pair: rows moved or relabeled, and the l2 norm of the other kept rows' nudges
    rows, l2 = res.cost("rows+l2")
    nudged = np.setdiff1d(res.changed, res.relabeled)
    where = np.flatnonzero(np.isin(res.source, nudged))
    delta = res.X[where].astype(float) - X[res.source[where]]
    assert rows == res.added.size + res.removed.size + res.relabeled.size
    assert l2 == pytest.approx(np.linalg.norm(delta), rel=1e-12, abs=1e-12)


@PROPERTY
@given(
    seed=SEEDS,
    budget=st.integers(1, 40),
    trigger=st.sampled_from(["four_pixel", "one_pixel", "blend"]),
    variant=st.sampled_from(["dirty_label", "clean_label"]),
    mode=st.sampled_from(["insert", "modify"]),
)
def test_backdoor_spends_exactly_its_budget(seed, budget, trigger, variant, mode):
    attack = BackdoorAttack(trigger, target_label=7, variant=variant, mode=mode, random_state=seed)
    if variant == "clean_label":
        budget = min(budget, int(np.sum(Y_SMALL == 7)) - 5)
    res = attack.poison(X_SMALL, Y_SMALL, budget)
    _check_accounting(res, X_SMALL, Y_SMALL, budget, "rows")
    n_touched = res.added.size if mode == "insert" else res.changed.size
    assert n_touched == budget and res.cost("samples") == budget * (1 if mode == "insert" else 2)
    sources = res.info["poisoned_from"]
    if mode == "insert":
        poisons, labels = res.X[res.added], res.y[res.added]
    else:  # replaced in place: the changed rows are the sources
        sources = np.sort(sources)
        assert np.array_equal(res.changed, sources)
        poisons, labels = res.X[sources], res.y[sources]
    assert np.allclose(poisons, attack.apply_trigger(X_SMALL[sources]))
    assert np.all(labels == 7) and np.all((Y_SMALL[sources] == 7) == (variant == "clean_label"))
    if variant == "clean_label" and mode == "modify":  # features only: RAB's l2 unit applies
        l2 = np.sqrt(np.sum((res.X[res.changed] - X_SMALL[res.changed]) ** 2))
        assert res.cost("l2") == pytest.approx(l2) and res.cost("label_flips") is None
    else:
        assert res.cost("l2") is None


@PROPERTY
@given(seed=SEEDS, budget=st.integers(1, 60), target=st.sampled_from([None, 1]))
def test_random_label_flips_spend_exactly_their_budget(seed, budget, target):
    res = LabelFlipAttack(target_label=target, random_state=seed).poison(X_SMALL, Y_SMALL, budget)
    _check_accounting(res, X_SMALL, Y_SMALL, budget, "label_flips")
    assert res.relabeled.size == budget and res.cost("samples") == 2 * budget
    assert res.cost("l2") is None and np.array_equal(res.X, X_SMALL)
    if target is not None:
        assert np.all(res.y[res.changed] == 1)


@PROPERTY
@given(budget=st.integers(1, 30), point=st.integers(0, 89), which=st.sampled_from(["g", "lf"]))
def test_nearest_label_flips_spend_exactly_their_budget(dpa, budget, point, which):
    model = dpa["general1" if which == "g" else "label_flip1"]
    x = X_SMALL[point]
    res = LabelFlipAttack("nearest").poison(X_SMALL, Y_SMALL, budget, model=model, target=x)
    _check_accounting(res, X_SMALL, Y_SMALL, budget, "label_flips")
    # one flip per partition (all 5 hold rows to flip) before a second one in any
    parts = model.assign_partitions(X_SMALL)[res.changed]
    assert np.unique(parts).size == min(budget, 5)


@PROPERTY
@given(
    seed=SEEDS,
    budget=st.integers(1, 14),
    point=st.integers(0, 89),
    key=st.sampled_from(["general1", "general2"]),
)
def test_partition_insertion_spends_exactly_its_budget(dpa, seed, budget, point, key):
    model = dpa[key]
    x = X_SMALL[point]
    attack = PartitionInsertionAttack(random_state=seed, max_perturbation=1e-3)
    res = attack.poison(X_SMALL, Y_SMALL, budget, model=model, target=x)
    _check_accounting(res, X_SMALL, Y_SMALL, budget, "samples")
    assert res.removed.size == 0 and res.changed.size == 0 and res.cost("label_flips") is None
    copies = res.X[res.added]
    n_buckets = model.n_partitions * model.spread
    assert np.array_equal(bucket_of_rows(copies, n_buckets), res.info["buckets"])
    assert np.all(np.abs(copies - x).max(axis=1) <= 1e-3)


@PROPERTY
@given(seed=SEEDS, budget=st.integers(1, 20), point=st.integers(0, 40))
def test_pixel_sum_insertion_spends_exactly_its_budget(seed, budget, point):
    X, y = load_digits(digits=(0, 1), raw=True)
    X, y = X[:60], y[:60]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = DPAClassifier(
            KNeighborsClassifier(1), n_partitions=7, hash="pixel_sum", random_state=0
        ).fit(X, y)
    res = PartitionInsertionAttack(random_state=seed).poison(
        X, y, budget, model=model, target=X[point]
    )
    _check_accounting(res, X, y, budget, "samples")
    copies = res.X[res.added]
    assert np.all(copies == np.round(copies)) and copies.min() >= 0 and copies.max() <= 255
    assert np.array_equal(bucket_of_rows(copies, 7, hash="pixel_sum"), res.info["buckets"])
    assert np.all(np.abs(copies - X[point]).sum(axis=1) <= 3)  # at most half of k units


@settings(max_examples=8, deadline=None)
@given(seed=SEEDS, budget=st.integers(1, 12), selection=st.sampled_from(["iterates", "sampled"]))
def test_sphere_slab_attack_spends_exactly_its_budget(seed, budget, selection):
    X, y = load_digits(digits=(1, 7))
    attack = SphereSlabAttack(max_iter=40, selection=selection, random_state=seed)
    res = attack.poison(X[:60], y[:60], budget)
    _check_accounting(res, X[:60], y[:60], budget, "samples")
    assert res.removed.size == 0 and set(res.y[res.added].tolist()) <= {1, 7}


@pytest.mark.parametrize(
    "attack",
    [
        BackdoorAttack(target_label=0, mode="modify"),
        LabelFlipAttack(),
        LabelFlipAttack("nearest"),
        PartitionInsertionAttack(),
        SphereSlabAttack(max_iter=10),
    ],
    ids=["backdoor", "label-flip", "nearest-flip", "insertion", "sphere-slab"],
)
def test_zero_budget_poisons_nothing(dpa, attack):
    y = np.where(Y_SMALL == 0, 1, Y_SMALL) if isinstance(attack, SphereSlabAttack) else Y_SMALL
    target = {"target": X_SMALL[0], "model": dpa["general1"]} if attack.per_target else {}
    res = attack.poison(X_SMALL, y, 0, **target)
    assert res.is_clean and np.array_equal(res.X, X_SMALL) and np.array_equal(res.y, y)
    assert all(np.all(np.asarray(res.cost(unit)) == 0) for unit in COST_UNITS)


# ---------------------------------------------------------------- reproducibility
def _same(a: PoisonResult, b: PoisonResult) -> bool:
    return np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y)


@pytest.mark.parametrize(
    "attack",
    [
        BackdoorAttack(target_label=0, random_state=3),
        BackdoorAttack("blend", target_label=1, mode="modify", random_state=3),
        LabelFlipAttack(random_state=3),
        SphereSlabAttack(max_iter=30, selection="sampled", random_state=3),
    ],
    ids=["backdoor", "backdoor-modify", "label-flip", "sphere-slab"],
)
def test_global_attacks_are_reproducible_and_nested(attack):
    X, y = load_digits(digits=(0, 1))
    X, y = X[:80], y[:80]
    small, again, large = attack.poison(X, y, 5), attack.poison(X, y, 5), attack.poison(X, y, 9)
    assert _same(small, again)
    other = attack.set_params(random_state=4).poison(X, y, 5)
    assert not _same(small, other) or isinstance(attack, SphereSlabAttack)
    if not isinstance(attack, SphereSlabAttack):  # the bound's run depends on epsilon
        assert set(small.changed) <= set(large.changed)
        assert all(
            any(np.array_equal(r, s) for s in large.X[large.added]) for r in small.X[small.added]
        )


def test_per_target_attacks_are_reproducible(dpa):
    model, x = dpa["general1"], X_SMALL[3]
    attack = PartitionInsertionAttack(random_state=5)
    a = attack.poison(X_SMALL, Y_SMALL, 4, model=model, target=x)
    assert _same(a, attack.poison(X_SMALL, Y_SMALL, 4, model=model, target=x))
    flips = LabelFlipAttack("nearest")
    b = flips.poison(X_SMALL, Y_SMALL, 4, model=model, target=x)
    assert _same(b, flips.poison(X_SMALL, Y_SMALL, 4, model=model, target=x))


# ---------------------------------------------------------------- the accounting itself
def test_poison_result_costs_each_kind_of_change():
    X, y = np.zeros((4, 2)), np.array([0, 0, 1, 1])
    X_new = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0], [5.0, 5.0]])
    # row 0 kept, row 1 moved by (3, 4), row 2 relabelled, row 3 deleted, one row inserted
    res = PoisonResult.from_poisoned(
        X, y, X_new, [0, 0, 0, 1], [0, 1, 2, -1], budget=4, unit="rows"
    )
    assert res.changed.tolist() == [1, 2] and res.relabeled.tolist() == [2]
    assert res.removed.tolist() == [3] and res.added.tolist() == [3]
    assert (res.cost("rows"), res.cost("samples"), res.spent) == (4, 6, 4)
    assert res.feature_l2.tolist() == [5.0, 0.0] and res.feature_linf.tolist() == [4.0, 0.0]
    moved = PoisonResult.from_poisoned(
        X, y, X + np.array([[0, 1], [0, 0], [2, 0], [0, 0]]), y, range(4), budget=1, unit="l2"
    )
    assert moved.cost("l2") == pytest.approx(np.sqrt(5)) and moved.cost("linf") == 2.0
    assert moved.cost("label_flips") is None and moved.cost("samples") == 4
    assert "2 changed" in moved.describe()
    with pytest.raises(ValueError, match="unit must be one of"):
        res.cost("pixels")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(source=[0, 0, 1, 2]), ValueError, "distinct clean row indices"),
        (dict(source=[0, 1, 2]), ValueError, "origin of each of the 4"),
        (dict(unit="bytes"), ValueError, "unit must be one of"),
        (dict(X_poisoned=np.zeros((4, 3))), ValueError, "rows of shape"),
    ],
)
def test_poison_result_refuses_inconsistent_descriptions(kwargs, error, match):
    args = dict(
        X=np.zeros((4, 2)),
        y=np.zeros(4),
        X_poisoned=np.zeros((4, 2)),
        y_poisoned=np.zeros(4),
        source=[0, 1, 2, 3],
        budget=0,
        unit="rows",
    )
    args.update(kwargs)
    with pytest.raises(error, match=match):
        PoisonResult.from_poisoned(
            args.pop("X"),
            args.pop("y"),
            args.pop("X_poisoned"),
            args.pop("y_poisoned"),
            args.pop("source"),
            **args,
        )


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("attack", "budget", "kwargs", "error", "match"),
    [
        (BackdoorAttack(), -1, {}, ValueError, "budget must be >= 0"),
        (BackdoorAttack(), 2.5, {}, TypeError, "budget counts rows and must be an integer"),
        (BackdoorAttack(), True, {}, TypeError, "must be an integer"),
        (BackdoorAttack(target_label=5), 1, {}, ValueError, "target_label=5 is not one of"),
        (BackdoorAttack(), 10_000, {}, ValueError, "budget=10000 is more than the"),
        (BackdoorAttack(variant="grey"), 1, {}, ValueError, "'variant' parameter"),
        (BackdoorAttack(strength=0), 1, {}, ValueError, "'strength' parameter"),
        (BackdoorAttack(mask=np.ones(64)), 1, {}, ValueError, "mask applies to a custom"),
        (BackdoorAttack(np.ones(64), position=(1, 1)), 1, {}, ValueError, "position applies"),
        (BackdoorAttack(np.ones(5)), 1, {}, ValueError, "trigger and mask must have the shape"),
        (BackdoorAttack(position=(0, 7)), 1, {}, ValueError, "outside the 8x8 image"),
        (BackdoorAttack(image_shape=(4, 4)), 1, {}, ValueError, "image_shape must be"),
        (BackdoorAttack(clip=(1, 0)), 1, {}, ValueError, "clip must be None or"),
        (BackdoorAttack(), 1, dict(target=np.zeros(64)), ValueError, "leave target as None"),
        (LabelFlipAttack("nearest"), 1, {}, ValueError, "pass target"),
        (LabelFlipAttack("nearest"), 1, dict(target=np.zeros(3)), ValueError, "one row of shape"),
        (LabelFlipAttack("nearest"), 1, dict(target=np.zeros(64)), ValueError, "needs target_l"),
        (LabelFlipAttack(target_label=0), 10_000, {}, ValueError, "not already labelled"),
        (PartitionInsertionAttack(), 1, dict(target=np.zeros(64)), TypeError, "DPAClassifier"),
        (SphereSlabAttack(), 1, {}, ValueError, "needs two classes"),
    ],
)
def test_bad_input_names_the_parameter(attack, budget, kwargs, error, match):
    X, y = load_digits(digits=(0, 1, 7))
    with pytest.raises(error, match=match):
        attack.poison(X, y, budget, **kwargs)


def test_attacks_refuse_bad_training_sets(dpa):
    with pytest.raises(ValueError, match="at least 2-d"):
        LabelFlipAttack().poison(np.zeros(5), np.zeros(5), 1)
    with pytest.raises(ValueError, match="one label per row"):
        LabelFlipAttack().poison(np.zeros((5, 2)), np.zeros(4), 1)
    with pytest.raises(ValueError, match="NaN or infinite"):
        LabelFlipAttack().poison(np.full((5, 2), np.nan), np.zeros(5), 1)
    with pytest.raises(ValueError, match="single class"):
        LabelFlipAttack().poison(np.zeros((5, 2)), np.zeros(5), 1)
    with pytest.raises(ValueError, match="does not cover"):
        PartitionInsertionAttack().poison(
            X_SMALL, Y_SMALL, 1, model=dpa["label_flip1"], target=X_SMALL[0]
        )
    with pytest.raises(ValueError, match="not trained on X"):
        LabelFlipAttack("nearest").poison(
            X_SMALL[::-1] + 0.5, Y_SMALL, 1, model=dpa["label_flip1"], target=X_SMALL[0]
        )
    with pytest.raises(ValueError, match="budget=90 must be below"):
        SphereSlabAttack().poison(X_SMALL[Y_SMALL > 0], Y_SMALL[Y_SMALL > 0], 90)
