"""The pieces upper_bound and data_dependent_estimate share: input checks, clean loss, step."""

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_certify.convex import data_dependent_estimate, upper_bound
from sklearn_certify.convex._checks import check_data, check_run_inputs
from sklearn_certify.convex._dual_averaging import DualAveraging, poison_gradient
from sklearn_certify.convex._losses import (
    LOSSES,
    loss_slope,
    loss_value,
    margins,
    mean_loss_and_gradient,
)

X_TOY = np.array([[2.0, 0], [3, 1], [3, -1], [4, 0], [-2, 0], [-3, 1], [-3, -1], [-4, 0]])
Y_TOY = np.array([1, 1, 1, 1, -1, -1, -1, -1])


def _data(seed=0, n=30, d=5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * (rng.random((n, d)) < 0.6)
    y = np.where(rng.random(n) < 0.5, 1, -1)
    return X, y, rng.normal(size=d), float(rng.normal())


def test_dual_averaging_is_lazy_projection_onto_the_ball():
    rng = np.random.default_rng(0)
    lr, rho_sq = 0.3, 2.0
    opt = DualAveraging(4, lr=lr, rho_sq=rho_sq)
    assert np.array_equal(opt.w, np.zeros(4)) and opt.b == 0.0 and opt.lam == 1 / lr
    z, lam = np.zeros(5), 1 / lr
    for _ in range(50):
        g = rng.normal(size=5)
        opt.step(g[:4], float(g[4]))
        z -= g
        lam = max(lam, np.linalg.norm(z) / np.sqrt(rho_sq))
        np.testing.assert_allclose(np.append(opt.w, opt.b), z / lam, rtol=1e-12, atol=1e-15)
        assert opt.lam == pytest.approx(lam, rel=1e-12)
        assert opt.w @ opt.w + opt.b**2 <= rho_sq * (1 + 1e-12)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("sparse", [False, True])
def test_mean_loss_and_gradient(loss, sparse):
    X, y, w, b = _data()
    A = sp.csr_matrix(X) if sparse else X
    value, g_w, g_b = mean_loss_and_gradient(loss, A, y, w, b)
    m = y * (X @ w + b)
    np.testing.assert_allclose(margins(A, y, w, b), m, rtol=1e-12)
    assert value == pytest.approx(loss_value(loss, m).mean(), rel=1e-12)
    slope = loss_slope(loss, m) * y
    np.testing.assert_allclose(g_w, X.T @ slope / len(y), rtol=1e-12, atol=1e-15)
    assert g_b == pytest.approx(slope.mean(), rel=1e-12, abs=1e-15)
    if loss != "hinge":  # smooth: the gradient is the derivative
        step = 1e-6
        e = np.zeros_like(w)
        e[1] = step
        up = mean_loss_and_gradient(loss, X, y, w + e, b)[0]
        down = mean_loss_and_gradient(loss, X, y, w - e, b)[0]
        assert g_w[1] == pytest.approx((up - down) / (2 * step), rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("loss", LOSSES)
def test_poison_gradient_is_the_weighted_sum_over_the_points(loss):
    rng = np.random.default_rng(1)
    points = rng.normal(size=(4, 3))
    labels = np.array([1, 1, -1, -1])
    w, b = rng.normal(size=3), 0.2
    masses = np.array([0.01, 0.02, 0.0, 0.05])
    point_margins = margins(points, labels, w, b)
    g_w, g_b = poison_gradient(loss, points, labels, point_margins, masses)
    slopes = loss_slope(loss, point_margins) * masses * labels
    np.testing.assert_allclose(g_w, (slopes[:, None] * points).sum(axis=0), rtol=1e-12)
    assert g_b == pytest.approx(slopes.sum(), rel=1e-12)
    # one point may be given as a vector, with scalar label, margin and mass
    one_w, one_b = poison_gradient(loss, points[0], 1, point_margins[0], 0.01)
    two_w, two_b = poison_gradient(loss, points[:1], labels[:1], point_margins[:1], 0.01)
    assert np.array_equal(one_w, two_w) and one_b == two_b


def test_check_data_names_the_arguments():
    X, y = check_data(X_TOY.astype(int), Y_TOY.tolist(), min_per_class=2)
    assert X.dtype == np.float64 and y.dtype == np.int64
    with pytest.raises(ValueError, match="X_test has 2 features, expected 3"):
        check_data(X_TOY, Y_TOY, names=("X_test", "y_test"), n_features=3)
    with pytest.raises(ValueError, match=r"y_test must hold labels"):
        check_data(X_TOY, Y_TOY + 1, names=("X_test", "y_test"))
    checked = check_run_inputs(X_TOY.astype(int), Y_TOY, 0, 1, 1, 3)
    assert checked[0].dtype == np.float64 and checked[1].dtype == np.int64
    assert [type(v) for v in checked[2:]] == [float, float, float, int]


@pytest.mark.parametrize("run", [upper_bound, data_dependent_estimate])
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"epsilon": 1.0}, ValueError, r"\[0, 1\)"),
        ({"epsilon": "0.1"}, TypeError, "epsilon"),
        ({"rho_sq": 0.0}, ValueError, "rho_sq"),
        ({"lr": -1.0}, ValueError, "lr"),
        ({"lr": True}, TypeError, "lr"),
        ({"max_iter": 0}, ValueError, "max_iter"),
        ({"max_iter": 2.5}, TypeError, "max_iter"),
        ({"y": (Y_TOY + 1) // 2}, ValueError, r"np.where\(y == 1, 1, -1\)"),
        ({"y": Y_TOY[:4]}, ValueError, "rows"),
        ({"X": X_TOY[:5], "y": Y_TOY[:5]}, ValueError, "at least 2"),
    ],
)
def test_both_runs_share_the_input_checks(run, kwargs, error, match):
    args = {"X": X_TOY, "y": Y_TOY, "epsilon": 0.25, "rho_sq": 0.04, "max_iter": 3, **kwargs}
    with pytest.raises(error, match=match):
        run(args.pop("X"), args.pop("y"), args.pop("epsilon"), **args)
