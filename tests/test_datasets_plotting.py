import matplotlib
import numpy as np
import pytest

from sklearn_certify.datasets import load_digits, load_digits_1v7
from sklearn_certify.plotting import plot_certified_accuracy

matplotlib.use("Agg")


def test_digits_shapes_ranges_and_split():
    X, _y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert X.min() == 0.0 and X.max() == 1.0
    Xi, _ = load_digits(shape="image")
    assert Xi.shape == (1797, 1, 8, 8) and np.array_equal(Xi.reshape(-1, 64), X)
    Xr, _ = load_digits(raw=True)
    assert Xr.dtype == np.uint8 and Xr.max() == 16 and np.allclose(Xr / 16, X)
    Xtr, _ytr = load_digits(split="train")
    Xte, yte = load_digits(split="test")
    assert len(Xtr) + len(Xte) == 1797 and len(Xte) == 450
    # stratified and disjoint
    assert np.bincount(yte).min() >= 43
    train_rows = {r.tobytes() for r in Xtr}
    assert sum(r.tobytes() in train_rows for r in Xte) < 10  # only exact duplicate images


def test_digits_1v7_labels():
    X, y = load_digits_1v7()
    _Xd, yd = load_digits(digits=(1, 7))
    assert set(np.unique(y)) == {-1, 1}
    assert np.array_equal(y == 1, yd == 7) and X.dtype == np.float64


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(shape="square"), "shape"),
        (dict(digits=(1, 12)), "digits"),
        (dict(split="valid"), "split"),
        (dict(split="test", test_size=1.5), "test_size"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_digits(**kwargs)


def test_plot_certified_accuracy_draws_one_step_line_per_curve():
    ax = plot_certified_accuracy(
        {"a": ([0, 1, 2], [0.9, 0.5, 0.1]), "b": (np.array([0, 3]), np.array([0.8, 0.2]))},
        xlabel="poisoned samples",
        title="t",
    )
    assert len(ax.get_lines()) == 2 and ax.get_xlabel() == "poisoned samples"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    _x, yv = ax.get_lines()[0].get_data()
    assert list(yv)[:1] == [0.9]


def test_plot_rejects_malformed_curves():
    with pytest.raises(ValueError, match="same length"):
        plot_certified_accuracy(([0, 1], [0.5]))
