"""Algorithm 1: the known-optimum run, soundness on digits, monotonicity, bad input."""

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_certify.convex import (
    CvxpyOracle,
    SphereSlabDefense,
    bound_curve,
    constrained_linear_fit,
    evaluate_attack,
    n_poison_points,
    upper_bound,
)
from sklearn_certify.convex._losses import loss_value
from sklearn_certify.datasets import load_digits_1v7

X_TOY = np.array([[2.0, 0], [3, 1], [3, -1], [4, 0], [-2, 0], [-3, 1], [-3, -1], [-4, 0]])
Y_TOY = np.array([1, 1, 1, 1, -1, -1, -1, -1])

#: Tolerance of "attack loss <= U*" on digits: the exact constrained fit is solved by
#: an interior-point method to ~1e-8; U* itself is computed in closed form.
SOLVER_TOL = 1e-6


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits_1v7(split="train")
    X_test, y_test = load_digits_1v7(split="test")
    return X, y, X_test, y_test


@pytest.mark.parametrize("max_iter", [10, 100, 1000])
def test_whole_run_with_known_optimum(max_iter):
    defense = SphereSlabDefense(percentile=50)
    res = upper_bound(X_TOY, Y_TOY, 0.25, rho_sq=0.04, defense=defense, max_iter=max_iter)
    assert res.upper_bound == pytest.approx(0.525, abs=1e-9)
    assert res.clean_loss == pytest.approx(0.4, abs=1e-9)
    assert res.poison_loss == pytest.approx(0.5, abs=1e-9)
    assert res.theta @ res.theta == pytest.approx(0.04, abs=1e-12)
    assert res.n_poison == 2 and res.epsilon_effective == 0.25
    # at theta_0 = 0 the classes tie (+1 wins) and every point is optimal (the centre is
    # returned); afterwards the iterates alternate between the two symmetric worst points
    np.testing.assert_allclose(res.iterates_X[:5], [[3, 0], [-2.5, 0], [2.5, 0], [-2.5, 0],
                                                    [2.5, 0]])
    np.testing.assert_array_equal(res.iterates_y[:5], [1, -1, 1, -1, 1])
    # the candidate attack attains the bound: it is tight here
    assert sorted(res.poison_y.tolist()) == [-1, 1]
    ev = evaluate_attack(X_TOY, Y_TOY, res.poison_X, res.poison_y, X_TOY, Y_TOY, rho_sq=0.04)
    assert ev.total_train_loss == pytest.approx(0.525, abs=1e-6)


def test_bound_is_recorded_before_the_update_and_is_the_minimum():
    res = upper_bound(X_TOY, Y_TOY, 0.25, rho_sq=0.04,
                      defense=SphereSlabDefense(percentile=50), max_iter=50)
    trace = res.trace
    # theta_0 = 0: every margin is 0, so the first recorded value is 1 + eps * 1
    assert trace["upper_bound"][0] == pytest.approx(1.25)
    assert trace["norm_sq"][0] == 0.0
    assert res.upper_bound == trace["upper_bound"].min()
    assert trace["upper_bound"][res.best_iteration] == res.upper_bound
    assert np.all(np.diff(trace["lambda"]) >= 0) and trace["lambda"][0] >= 1 / 0.1
    assert np.all(trace["norm_sq"] <= 0.04 * (1 + 1e-12))
    np.testing.assert_allclose(
        trace["upper_bound"], trace["clean_loss"] + 0.25 * trace["poison_loss"]
    )


def test_effective_epsilon_is_rounded(digits):
    X, y, _, _ = digits
    n = X.shape[0]
    res = upper_bound(X, y, 0.01, rho_sq=0.8, max_iter=50)
    assert res.n_poison == n_poison_points(0.01, n) == round(0.01 * n)
    assert res.epsilon_effective == res.n_poison / n
    assert res.upper_bound == pytest.approx(
        res.clean_loss + res.epsilon_effective * res.poison_loss
    )


def test_epsilon_zero_equals_clean_constrained_svm_loss(digits):
    X, y, _, _ = digits
    w, b = constrained_linear_fit(X, y, rho_sq=0.8)
    svm_loss = loss_value("hinge", y * (X @ w + b)).mean()
    res = upper_bound(X, y, 0.0, rho_sq=0.8, max_iter=2000)
    assert res.upper_bound >= svm_loss - SOLVER_TOL  # any theta in the ball is >= the optimum
    assert res.upper_bound == pytest.approx(svm_loss, abs=1e-5)


@pytest.mark.parametrize("attack", ["iterates", "sampled"])
def test_attack_never_beats_the_bound_on_digits(digits, attack):
    X, y, X_test, y_test = digits
    defense = SphereSlabDefense().fit(X, y)
    for seed, eps in enumerate([0.01, 0.05, 0.1, 0.3]):
        res = upper_bound(X, y, eps, rho_sq=0.8, defense=defense, max_iter=1000,
                          attack=attack, random_state=seed)
        assert res.poison_X.shape == (res.n_poison, X.shape[1])
        assert defense.contains(res.poison_X, res.poison_y).all()
        ev = evaluate_attack(X, y, res.poison_X, res.poison_y, X_test, y_test, rho_sq=0.8)
        assert ev.total_train_loss <= res.upper_bound + SOLVER_TOL
        # the candidate attack is a real attack: it raises the training loss
        assert ev.total_train_loss > 0.17


def test_sampled_attack_is_reproducible(digits):
    X, y, _, _ = digits
    a = upper_bound(X, y, 0.1, rho_sq=0.8, max_iter=200, attack="sampled", random_state=3)
    b = upper_bound(X, y, 0.1, rho_sq=0.8, max_iter=200, attack="sampled", random_state=3)
    np.testing.assert_array_equal(a.poison_X, b.poison_X)
    # paper variant: with max_iter == n_poison the attack is every iterate
    k = a.n_poison
    full = upper_bound(X, y, 0.1, rho_sq=0.8, max_iter=k)
    np.testing.assert_array_equal(full.poison_X, full.iterates_X)


def test_curve_is_monotone_and_bounds_the_attack(digits):
    X, y, X_test, y_test = digits
    eps = [0.0, 0.02, 0.05, 0.1, 0.2]
    curve = bound_curve(X, y, eps, rho_sq=0.8, X_test=X_test, y_test=y_test, max_iter=500)
    assert np.all(np.diff(curve.upper_bounds) >= 0)
    assert np.all(curve.upper_bounds <= curve.upper_bounds_single_run)
    assert np.all(curve.attack_total_train_loss <= curve.upper_bounds + SOLVER_TOL)
    assert np.all((curve.attack_test_error >= 0) & (curve.attack_test_error <= 1))
    # pooled values are bounds certified by some run's theta at this epsilon
    for i, e in enumerate(curve.epsilons_effective):
        assert curve.upper_bounds[i] == pytest.approx(
            min(r.clean_loss + e * r.poison_loss for r in curve.results)
        )


@pytest.mark.parametrize("loss", ["logistic", "squared_hinge"])
def test_other_losses(digits, loss):
    X, y, X_test, y_test = digits
    res = upper_bound(X, y, 0.1, rho_sq=0.8, max_iter=500, loss=loss)
    ev = evaluate_attack(X, y, res.poison_X, res.poison_y, X_test, y_test, rho_sq=0.8,
                         loss=loss)
    assert ev.total_train_loss <= res.upper_bound + SOLVER_TOL
    clean = upper_bound(X, y, 0.0, rho_sq=0.8, max_iter=500, loss=loss)
    assert clean.upper_bound < res.upper_bound


def test_sparse_input_matches_dense(digits):
    X, y, _, _ = digits
    dense = upper_bound(X, y, 0.1, rho_sq=0.8, max_iter=300)
    sparse = upper_bound(sp.csr_matrix(X), y, 0.1, rho_sq=0.8, max_iter=300)
    assert sparse.upper_bound == pytest.approx(dense.upper_bound, abs=1e-10)


def test_cvxpy_oracle_gives_the_same_bound(digits):
    X, y, _, _ = digits
    closed = upper_bound(X, y, 0.1, rho_sq=0.8, max_iter=100)
    solver = upper_bound(X, y, 0.1, rho_sq=0.8, max_iter=100, oracle="cvxpy")
    assert solver.upper_bound == pytest.approx(closed.upper_bound, abs=1e-6)


def test_box_oracle_bound_is_lower(digits):
    X, y, _, _ = digits
    free = upper_bound(X, y, 0.1, rho_sq=0.8, max_iter=100)
    boxed = upper_bound(X, y, 0.1, rho_sq=0.8, max_iter=100, oracle=CvxpyOracle(box=(0, 1)))
    assert np.all((boxed.poison_X >= -1e-7) & (boxed.poison_X <= 1 + 1e-7))
    assert boxed.upper_bound <= free.upper_bound + 1e-9


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"epsilon": 1.0}, ValueError, r"\[0, 1\)"),
        ({"epsilon": -0.1}, ValueError, r"\[0, 1\)"),
        ({"epsilon": "0.1"}, TypeError, "epsilon"),
        ({"rho_sq": 0.0}, ValueError, "rho_sq"),
        ({"rho_sq": -1.0}, ValueError, "rho_sq"),
        ({"max_iter": 1}, ValueError, "max_iter"),
        ({"lr": 0.0}, ValueError, "lr"),
        ({"loss": "log"}, ValueError, "loss"),
        ({"attack": "all"}, ValueError, "attack"),
        ({"oracle": "exact"}, ValueError, "oracle"),
        ({"oracle": 3}, TypeError, "oracle"),
        ({"defense": SphereSlabDefense(data_dependent=True)}, ValueError, "estimate"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    args = {"epsilon": 0.25, "rho_sq": 0.04, "max_iter": 10, **kwargs}
    epsilon = args.pop("epsilon")
    with pytest.raises(error, match=match):
        upper_bound(X_TOY, Y_TOY, epsilon, **args)


def test_bad_data():
    with pytest.raises(ValueError, match=r"np.where\(y == 1, 1, -1\)"):
        upper_bound(X_TOY, (Y_TOY + 1) // 2, 0.1, rho_sq=1.0)
    X_nan = X_TOY.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        upper_bound(X_nan, Y_TOY, 0.1, rho_sq=1.0)
    with pytest.raises(ValueError, match="at least 2"):
        upper_bound(X_TOY[:5], Y_TOY[:5], 0.1, rho_sq=1.0)
    with pytest.raises(ValueError, match="rows"):
        upper_bound(X_TOY, Y_TOY[:4], 0.1, rho_sq=1.0)


def test_bound_curve_refuses_bad_settings_before_any_bound(monkeypatch):
    """Every epsilon and the learner are checked before the first (costly) bound."""
    from sklearn_certify.convex import _curve, bound_curve
    from sklearn_certify.datasets import load_digits_1v7

    def no_bound(*args, **kwargs):
        raise AssertionError("a bound was computed before the settings were refused")

    monkeypatch.setattr(_curve, "upper_bound", no_bound)
    X, y = load_digits_1v7(split="train")
    with pytest.raises(ValueError, match=r"max_iter=50 .* epsilons 0\.99 .*at least"):
        bound_curve(X, y, [0.01, 0.99], rho_sq=0.04, max_iter=50)
    with pytest.raises(ValueError, match=r"linear_svc.*hinge"):
        bound_curve(X, y, [0.01], rho_sq=0.04, evaluate=True, learner="linear_svc",
                    loss="logistic")
