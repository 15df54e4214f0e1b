"""SphereSlabDefense: radii/widths by hand, filtering, sparse input, bad input."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_certify.convex import SphereSlabDefense

# Toy data whose geometry is easy by hand: class centroids (-3, 0) and (3, 0), each class four
# points at distance 1 from its centroid.
X_TOY = np.array([[2.0, 0], [3, 1], [3, -1], [4, 0], [-2, 0], [-3, 1], [-3, -1], [-4, 0]])
Y_TOY = np.array([1, 1, 1, 1, -1, -1, -1, -1])


def test_toy_geometry_matches_hand_values():
    d = SphereSlabDefense(percentile=50).fit(X_TOY, Y_TOY)
    np.testing.assert_allclose(d.centroids_, [[-3, 0], [3, 0]])
    np.testing.assert_allclose(d.slab_direction_, [-1, 0])
    # sphere distances {1, 1, 1, 1}; slab offsets {1, 0, 0, 1} -> 50th percentile 0.5
    np.testing.assert_allclose(d.radii_, [1, 1])
    np.testing.assert_allclose(d.slab_widths_, [0.5, 0.5])
    assert list(d.classes_) == [-1, 1]


def test_percentile_uses_linear_interpolation():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = np.repeat([1, -1], 20)
    d = SphereSlabDefense(percentile=70).fit(X, y)
    mu = X[y == 1].mean(axis=0)
    expected = np.percentile(np.linalg.norm(X[y == 1] - mu, axis=1), 70)
    assert d.radii_[1] == pytest.approx(expected, rel=1e-12)
    v = d.slab_direction_
    assert np.linalg.norm(v) == pytest.approx(1.0)
    expected_s = np.percentile(np.abs((X[y == 1] - mu) @ v), 70)
    assert d.slab_widths_[1] == pytest.approx(expected_s, rel=1e-12)


def test_about_thirty_percent_of_clean_points_fail_each_constraint():
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(1, 1, (500, 4)), rng.normal(-1, 1, (500, 4))])
    y = np.repeat([1, -1], 500)
    d = SphereSlabDefense(slab=False).fit(X, y)
    assert d.contains(X, y).mean() == pytest.approx(0.70, abs=0.01)


def test_contains_and_filter():
    d = SphereSlabDefense(percentile=50).fit(X_TOY, Y_TOY)
    pts = np.array([[2.5, 0], [2, 0], [3, 0.9], [3.3, 0.97], [-2.5, 0]])
    labels = np.array([1, 1, 1, 1, 1])
    np.testing.assert_array_equal(d.contains(pts, labels), [True, False, True, False, False])
    X_kept, y_kept = d.filter(pts, labels)
    np.testing.assert_array_equal(X_kept, pts[[0, 2]])
    np.testing.assert_array_equal(y_kept, [1, 1])


def test_switching_off_constraints():
    d = SphereSlabDefense(percentile=50, slab=False).fit(X_TOY, Y_TOY)
    assert d.slab_direction_ is None and np.isinf(d.slab_widths_).all()
    assert d.contains(np.array([[3.0, 0.9]]), np.array([1]))[0]
    d = SphereSlabDefense(percentile=50, sphere=False).fit(X_TOY, Y_TOY)
    assert np.isinf(d.radii_).all()
    assert d.contains(np.array([[3.4, 100.0]]), np.array([1]))[0]


def test_sparse_matches_dense():
    rng = np.random.default_rng(2)
    X = rng.random((60, 8)) * (rng.random((60, 8)) < 0.4)
    y = np.where(rng.random(60) < 0.5, 1, -1)
    dense = SphereSlabDefense().fit(X, y)
    sparse = SphereSlabDefense().fit(sp.csr_matrix(X), y)
    for attr in ("centroids_", "slab_direction_", "radii_", "slab_widths_"):
        np.testing.assert_allclose(getattr(sparse, attr), getattr(dense, attr), rtol=1e-10)
    np.testing.assert_array_equal(sparse.contains(sp.csr_matrix(X), y), dense.contains(X, y))
    X_kept, _ = sparse.filter(sp.csc_matrix(X), y)
    assert sp.issparse(X_kept) and X_kept.shape[0] == dense.contains(X, y).sum()


def test_data_dependent_filter_uses_the_given_data_centroids():
    oracle = SphereSlabDefense(percentile=50).fit(X_TOY, Y_TOY)
    dd = SphereSlabDefense(percentile=50, data_dependent=True).fit(X_TOY, Y_TOY)
    np.testing.assert_allclose(dd.radii_, oracle.radii_)
    # Poison of class +1 far to the right drags the +1 centroid along.
    poison = np.tile([[5.0, 0.0]], (16, 1))
    X_all = np.vstack([X_TOY, poison])
    y_all = np.concatenate([Y_TOY, np.ones(16, dtype=int)])
    assert not oracle.contains(poison, np.ones(16, dtype=int)).any()
    # new +1 centroid (12 + 80) / 20 = 4.6: the poison is 0.4 away, inside sphere and slab
    assert dd.contains(X_all, y_all)[-16:].all()
    np.testing.assert_allclose(dd.distances(X_all, y_all)[0][-1], 0.4)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"percentile": 0}, r"'percentile' parameter .* range \(0.0, 100.0\]"),
        ({"percentile": 101}, "percentile"),
        ({"percentile": float("nan")}, "percentile"),
        ({"percentile": "70"}, "percentile"),
        ({"sphere": 1}, "'sphere' parameter .* 'bool'"),
        ({"slab": None}, "slab"),
        ({"data_dependent": "yes"}, "data_dependent"),
    ],
)
def test_bad_parameters(kwargs, match):
    # scikit-learn's parameter validation: InvalidParameterError is a ValueError and a TypeError
    with pytest.raises(InvalidParameterError, match=match):
        SphereSlabDefense(**kwargs).fit(X_TOY, Y_TOY)


def test_parameter_constraints_cover_every_parameter():
    assert set(SphereSlabDefense._parameter_constraints) == set(SphereSlabDefense().get_params())
    # integer and numpy values are fine
    d = SphereSlabDefense(percentile=np.float64(50.0), sphere=np.bool_(True)).fit(X_TOY, Y_TOY)
    np.testing.assert_allclose(d.radii_, SphereSlabDefense(percentile=50).fit(X_TOY, Y_TOY).radii_)


def test_bad_labels_offer_a_mapping():
    with pytest.raises(ValueError, match=r"np.where\(y == 1, 1, -1\)"):
        SphereSlabDefense().fit(X_TOY, (Y_TOY + 1) // 2)
    with pytest.raises(ValueError, match="binary"):
        SphereSlabDefense().fit(X_TOY, np.arange(8) % 3)
    with pytest.raises(ValueError, match=r"np.where\(y == 'seven', 1, -1\)"):
        SphereSlabDefense().fit(X_TOY, np.where(Y_TOY == 1, "seven", "one"))


def test_class_with_one_point_nan_and_coincident_centroids():
    with pytest.raises(ValueError, match="at least 2"):
        SphereSlabDefense().fit(X_TOY[:5], Y_TOY[:5])
    X_nan = X_TOY.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        SphereSlabDefense().fit(X_nan, Y_TOY)
    X_sym = np.array([[1.0, 0], [-1, 0], [0, 1], [0, -1]])
    with pytest.raises(ValueError, match="slab=False"):
        SphereSlabDefense().fit(X_sym, np.array([1, 1, -1, -1]))
    with pytest.raises(ValueError, match="features"):
        SphereSlabDefense().fit(X_TOY, Y_TOY).contains(np.ones((1, 3)), np.array([1]))
