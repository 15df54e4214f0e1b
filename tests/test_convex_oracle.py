"""Argmax oracle: the 2-D hand example, closed form vs cvxpy, box and user constraints."""

import math

import cvxpy as cp
import numpy as np
import pytest

from sklearn_certify.convex import (
    ClosedFormOracle,
    CvxpyOracle,
    SphereSlabDefense,
    max_linear_sphere_slab,
    worst_case_point,
)
from sklearn_certify.datasets import load_digits_1v7

SQRT3 = math.sqrt(3.0)


def hand_defense():
    """Reference section 8.1: mu_+ = (2, 0), mu_- = (-2, 0), r = (1.5, 2), s = (2, 1)."""
    d = SphereSlabDefense()
    d.classes_ = np.array([-1, 1])
    d.n_features_in_ = 2
    d.centroids_ = np.array([[-2.0, 0.0], [2.0, 0.0]])
    d.slab_direction_ = np.array([-1.0, 0.0])
    d.radii_ = np.array([1.5, 2.0])
    d.slab_widths_ = np.array([2.0, 1.0])
    d.sphere_, d.slab_, d.data_dependent_ = True, True, False
    return d


@pytest.mark.parametrize("oracle", [ClosedFormOracle(), CvxpyOracle()])
def test_one_argmax_step_by_hand(oracle):
    oracle.fit(hand_defense())
    w = np.array([1.0, 1.0])
    pts = oracle.worst_points(w)
    # class +1: the slab binds -> (1, -sqrt 3), hinge sqrt 3
    np.testing.assert_allclose(pts[1], [1.0, -SQRT3], atol=1e-6)
    # class -1: slab inactive (s >= r) -> mu + 1.5 w/||w||, hinge 1 - 2 + 1.5 sqrt 2
    np.testing.assert_allclose(pts[0], [-0.939340, 1.060660], atol=1e-6)
    x, label, margin, _ = worst_case_point(oracle, w, 0.0)
    assert label == 1 and margin == pytest.approx(1 - SQRT3, abs=1e-6)
    assert 1 - margin == pytest.approx(1.732051, abs=1e-6)
    # with b = 0.5 the points are unchanged but class -1 now has the larger hinge
    x, label, margin, _ = worst_case_point(oracle, w, 0.5)
    assert label == -1
    assert 1 - margin == pytest.approx(1.621320, abs=1e-6)
    np.testing.assert_allclose(x, [-0.939340, 1.060660], atol=1e-6)


def test_closed_form_edge_cases():
    mu = np.array([1.0, 2.0, 3.0])
    v = np.array([0.0, 0.0, 2.0])  # normalised inside
    # c = 0: every feasible point is optimal, the centre is returned
    np.testing.assert_array_equal(max_linear_sphere_slab(np.zeros(3), mu, v, 1.0, 0.1), mu)
    # c parallel to v with a binding slab: only the slab offset remains
    x = max_linear_sphere_slab(np.array([0.0, 0.0, 5.0]), mu, v, 1.0, 0.1)
    np.testing.assert_allclose(x, mu + np.array([0, 0, 0.1]))
    # no slab: tangent point of the sphere
    x = max_linear_sphere_slab(np.array([3.0, 4.0, 0.0]), mu, None, 2.0, np.inf)
    np.testing.assert_allclose(x, mu + np.array([1.2, 1.6, 0]))
    with pytest.raises(ValueError, match="finite sphere radius"):
        max_linear_sphere_slab(np.ones(3), mu, v, np.inf, 0.1)


def _random_defense(d, seed):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(0.5, 1, (40, d)), rng.normal(-0.5, 1, (40, d))])
    y = np.repeat([1, -1], 40)
    return SphereSlabDefense(percentile=rng.uniform(30, 90)).fit(X, y)


@pytest.mark.parametrize("seed", range(4))
def test_closed_form_agrees_with_cvxpy_on_random_thetas(seed):
    defense = _random_defense(20, seed)
    closed = ClosedFormOracle().fit(defense)
    solver = CvxpyOracle().fit(defense)
    rng = np.random.default_rng(100 + seed)
    for _ in range(10):
        w = rng.normal(size=20) * rng.choice([0.01, 1.0, 100.0])
        a, b = closed.worst_points(w), solver.worst_points(w)
        # the objective (hence the loss) agrees to 1e-6, the points closely too
        np.testing.assert_allclose(a @ w, b @ w, atol=1e-6 * max(1.0, np.linalg.norm(w)))
        np.testing.assert_allclose(a, b, atol=1e-4)
        assert defense.contains(a, np.array([-1, 1])).all()


def test_cvxpy_problem_is_dpp_and_compiled_once():
    defense = _random_defense(10, 7)
    oracle = CvxpyOracle().fit(defense)
    for problem, _, c in oracle.problems_:
        assert problem.is_dcp(dpp=True)
        assert isinstance(c, cp.Parameter)
    w = np.ones(10)
    first = oracle.worst_points(w)
    cached = [p._cache.param_prog for p, _, _ in oracle.problems_]
    second = oracle.worst_points(-w)
    assert [p._cache.param_prog for p, _, _ in oracle.problems_] == cached
    assert not np.allclose(first, second)
    rebuilt = CvxpyOracle(compile_once=False).fit(defense)
    np.testing.assert_allclose(rebuilt.worst_points(-w), second, atol=1e-6)


def test_box_constraint_keeps_pixels_in_range():
    X, y = load_digits_1v7(split="train")
    defense = SphereSlabDefense().fit(X, y)
    free = ClosedFormOracle().fit(defense)
    boxed = CvxpyOracle(box=(0.0, 1.0)).fit(defense)
    rng = np.random.default_rng(0)
    w = rng.normal(size=64)
    p_free, p_box = free.worst_points(w), boxed.worst_points(w)
    assert p_free.min() < -1e-3 or p_free.max() > 1 + 1e-3  # the closed form leaves [0, 1]
    assert p_box.min() >= -1e-7 and p_box.max() <= 1 + 1e-7
    assert defense.contains(p_box, np.array([-1, 1])).all()
    # a smaller feasible set can only lower the worst loss: margins can only grow
    labels = np.array([-1, 1])
    assert np.all(labels * (p_box @ w) >= labels * (p_free @ w) - 1e-7)


def test_user_constraints_callable():
    defense = _random_defense(5, 3)
    seen = []

    def first_feature_fixed(x, label):
        seen.append(label)
        return [x[0] == 0.25 * label]

    oracle = CvxpyOracle(constraints=first_feature_fixed).fit(defense)
    pts = oracle.worst_points(np.ones(5))
    np.testing.assert_allclose(pts[:, 0], [-0.25, 0.25], atol=1e-7)
    assert sorted(seen) == [-1, 1]


def test_oracle_errors():
    defense = SphereSlabDefense(sphere=False).fit(*load_digits_1v7(split="train"))
    with pytest.raises(ValueError, match="sphere"):
        ClosedFormOracle().fit(defense)
    with pytest.raises(RuntimeError, match="unbounded"):
        CvxpyOracle().fit(defense).worst_points(np.ones(64))
    # a slab alone becomes bounded with a box
    pts = CvxpyOracle(box=(0, 1)).fit(defense).worst_points(np.ones(64))
    assert np.all((pts >= -1e-7) & (pts <= 1 + 1e-7))
