"""Attack evaluation (exact fit, LinearSVC bisection), plotting, data-dependent estimate."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_certify.convex import (
    SphereSlabDefense,
    bound_curve,
    constrained_linear_fit,
    data_dependent_estimate,
    evaluate_attack,
    upper_bound,
)
from sklearn_certify.datasets import load_digits_1v7
from sklearn_certify.plotting import plot_bound_curve


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits_1v7(split="train")
    X_test, y_test = load_digits_1v7(split="test")
    return X, y, X_test, y_test


def test_constrained_fit_respects_the_ball_and_is_optimal(digits):
    X, y, _, _ = digits
    w, b = constrained_linear_fit(X, y, rho_sq=0.8)
    assert w @ w + b * b <= 0.8 * (1 + 1e-6)
    loss = np.maximum(0, 1 - y * (X @ w + b)).mean()
    # no random point of the ball does better
    rng = np.random.default_rng(0)
    for _ in range(20):
        theta = rng.normal(size=65)
        theta *= np.sqrt(0.8) / np.linalg.norm(theta)
        assert loss <= np.maximum(0, 1 - y * (X @ theta[:-1] + theta[-1])).mean() + 1e-9


def test_evaluate_reports_consistent_quantities(digits):
    X, y, X_test, y_test = digits
    res = upper_bound(X, y, 0.1, rho_sq=0.8, max_iter=300)
    ev = evaluate_attack(X, y, res.poison_X, res.poison_y, X_test, y_test, rho_sq=0.8)
    n, k = X.shape[0], res.n_poison
    assert ev.total_train_loss == pytest.approx(
        ev.clean_train_loss + k / n * ev.poison_train_loss
    )
    scores = X_test @ ev.coef + ev.intercept
    assert ev.test_error == pytest.approx(np.mean(np.where(scores >= 0, 1, -1) != y_test))
    assert ev.test_loss == pytest.approx(np.maximum(0, 1 - y_test * scores).mean())
    assert ev.norm_sq <= 0.8 * (1 + 1e-6)
    assert ev.solver_status in ("optimal", "optimal_inaccurate")
    # sparse inputs give the same model
    ev_sp = evaluate_attack(sp.csr_matrix(X), y, sp.csr_matrix(res.poison_X), res.poison_y,
                            sp.csr_matrix(X_test), y_test, rho_sq=0.8)
    assert ev_sp.total_train_loss == pytest.approx(ev.total_train_loss, abs=1e-6)


def test_no_poison_is_the_clean_fit(digits):
    X, y, X_test, y_test = digits
    ev = evaluate_attack(X, y, np.empty((0, 64)), np.empty(0), X_test, y_test, rho_sq=0.8)
    assert np.isnan(ev.poison_train_loss)
    assert ev.total_train_loss == pytest.approx(ev.clean_train_loss)


def test_linear_svc_bisection_matches_the_exact_fit(digits):
    X, y, X_test, y_test = digits
    res = upper_bound(X, y, 0.05, rho_sq=0.8, max_iter=300)
    exact = evaluate_attack(X, y, res.poison_X, res.poison_y, X_test, y_test, rho_sq=0.8)
    svc = evaluate_attack(X, y, res.poison_X, res.poison_y, X_test, y_test, rho_sq=0.8,
                          learner="linear_svc")
    assert 0.8 <= svc.norm_sq <= 0.81 + 1e-9
    assert svc.weight_decay > 0
    # a slightly larger ball can only fit a bit better than the exact rho ball
    assert svc.total_train_loss == pytest.approx(exact.total_train_loss, abs=0.01)


def test_evaluate_errors(digits):
    X, y, X_test, y_test = digits
    P, py = X[:3], y[:3]
    with pytest.raises(ValueError, match="learner"):
        evaluate_attack(X, y, P, py, X_test, y_test, rho_sq=0.8, learner="svm")
    with pytest.raises(ValueError, match="linear_svc"):
        evaluate_attack(X, y, P, py, X_test, y_test, rho_sq=0.8, loss="logistic",
                        learner="linear_svc")
    with pytest.raises(ValueError, match="poison_y"):
        evaluate_attack(X, y, P, np.array([0, 1, 1]), X_test, y_test, rho_sq=0.8)
    with pytest.raises(ValueError, match="X_test"):
        evaluate_attack(X, y, P, py, X_test[:, :5], y_test, rho_sq=0.8)


def test_plot_bound_curve(digits):
    X, y, X_test, y_test = digits
    curve = bound_curve(X, y, [0.0, 0.05], rho_sq=0.8, X_test=X_test, y_test=y_test,
                        max_iter=100)
    ax = plot_bound_curve(curve, title="digits")
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[0] == "U* (bound on train loss)"
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), curve.upper_bounds)
    assert ax.right_ax.get_lines()[0].get_label() == "attack: test error"
    with pytest.raises(TypeError, match="BoundCurve"):
        plot_bound_curve({"upper_bounds": [1]})
    no_eval = bound_curve(X, y, [0.0, 0.05], rho_sq=0.8, max_iter=50, evaluate=False)
    assert np.isnan(no_eval.attack_test_error).all()
    assert not hasattr(plot_bound_curve(no_eval), "right_ax")


def test_bound_curve_csv(tmp_path, digits):
    X, y, _, _ = digits
    curve = bound_curve(X, y, [0.0, 0.1], rho_sq=0.8, max_iter=100)
    curve.to_csv(tmp_path / "c.csv")
    rows = (tmp_path / "c.csv").read_text().strip().splitlines()
    assert rows[0].split(",")[:4] == ["epsilon", "epsilon_effective", "n_poison", "upper_bound"]
    assert len(rows) == 3
    assert float(rows[2].split(",")[3]) == pytest.approx(curve.upper_bounds[1])
    with pytest.raises(ValueError, match="X_test"):
        bound_curve(X, y, [0.1], rho_sq=0.8, X_test=X)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        bound_curve(X, y, [0.1, 1.5], rho_sq=0.8)


def _blobs(seed, shift, n=40, d=6):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(shift, 1, (n, d)), rng.normal(-shift, 1, (n, d))])
    return X, np.repeat([1, -1], n)


def test_data_dependent_estimate_is_labelled_and_its_attack_is_feasible():
    X, y = _blobs(0, 1.0)
    est = data_dependent_estimate(X, y, 0.1, rho_sq=1.0, lr=0.1, max_iter=15, n_splits=3,
                                  n_check_splits=10, random_state=0)
    assert est.is_certificate is False
    assert "NOT" in type(est).__doc__
    assert est.n_failed_solves == 0
    assert est.masses.sum() == pytest.approx(est.epsilon_effective)
    assert est.poison_X.shape == (8, 6)
    assert np.isfinite(est.estimate)
    assert est.estimate == pytest.approx(est.trace["checkpoint_estimate"].min())
    # the poison passes the data-dependent defence computed on clean + poison
    defense = SphereSlabDefense(data_dependent=True).fit(X, y)
    X_all = np.vstack([X, est.poison_X])
    y_all = np.concatenate([y, est.poison_y])
    assert defense.contains(X_all, y_all, rtol=1e-5)[-8:].all()
    # same seed, same estimate
    again = data_dependent_estimate(X, y, 0.1, rho_sq=1.0, lr=0.1, max_iter=15, n_splits=3,
                                    n_check_splits=10, random_state=0)
    assert again.estimate == est.estimate


def test_data_dependent_is_weaker_than_oracle_when_centroids_can_move():
    # the estimate exceeds the oracle bound: moving the centroids lets poison look clean
    X, y = _blobs(1, 0.3)
    oracle = upper_bound(X, y, 0.1, rho_sq=1.0, max_iter=300)
    est = data_dependent_estimate(X, y, 0.1, rho_sq=1.0, lr=0.1, max_iter=30, n_splits=3,
                                  n_check_splits=20, random_state=0)
    assert est.estimate > oracle.upper_bound
    sparse = data_dependent_estimate(sp.csr_matrix(X), y, 0.1, rho_sq=1.0, lr=0.1,
                                     max_iter=3, n_splits=1, n_check_splits=2, random_state=0)
    assert np.isfinite(sparse.estimate)


def test_data_dependent_errors():
    X, y = _blobs(0, 1.0)
    with pytest.raises(ValueError, match="sphere or the slab"):
        data_dependent_estimate(X, y, 0.1, rho_sq=1.0,
                                defense=SphereSlabDefense(sphere=False, slab=False))
    with pytest.raises(ValueError, match="rho_sq"):
        data_dependent_estimate(X, y, 0.1, rho_sq=0.0)
    with pytest.raises(ValueError, match=r"np.where"):
        data_dependent_estimate(X, (y + 1) // 2, 0.1, rho_sq=1.0)
