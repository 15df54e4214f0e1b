"""Helpers of benchmarks/bench_seed_experiments.py: the memoising denoiser and the success count."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from sklearn_certify import DenoisedSmoothingClassifier
from sklearn_certify.datasets import load_digits_for_denoising
from sklearn_certify.denoisers import load_bundled

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_seed_experiments import MemoDenoiser, flipped_to_base


class RowwiseDenoiser:
    """A row-wise function that records every row it is asked to denoise."""

    data_range = (0.0, 1.0)
    training_digests = frozenset({"abc"})

    def __init__(self):
        self.seen = []

    def denoise(self, X, sigma):
        X = np.asarray(X)
        self.seen.extend((sigma, row.tobytes()) for row in X)
        return np.tanh(X * sigma) + X.sum(axis=1, keepdims=True)


@settings(max_examples=50, deadline=None)
@given(
    batches=st.lists(
        st.tuples(
            st.lists(st.integers(0, 5), min_size=1, max_size=8),
            st.sampled_from([0.25, 0.5]),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_memo_returns_the_denoisers_rows_and_asks_for_each_distinct_row_once(batches):
    pool = np.random.default_rng(0).random((6, 3))
    inner, reference = RowwiseDenoiser(), RowwiseDenoiser()
    memo = MemoDenoiser(inner)
    for rows, sigma in batches:
        out = memo.denoise(pool[rows], sigma)
        np.testing.assert_array_equal(out, reference.denoise(pool[rows], sigma))
    asked = {(sigma, pool[i].tobytes()) for rows, sigma in batches for i in rows}
    assert sorted(inner.seen) == sorted(asked)


def test_memo_takes_torch_tensors_and_keeps_the_denoisers_checks():
    inner = RowwiseDenoiser()
    memo = MemoDenoiser(inner)
    rows = torch.tensor([[0.1, 0.2], [0.3, 0.4]], dtype=torch.float32)
    np.testing.assert_array_equal(memo.denoise(rows, 0.5), inner.denoise(rows.numpy(), 0.5))
    assert memo.data_range == (0.0, 1.0) and memo.training_digests == frozenset({"abc"})
    # float32 and float64 copies of a row are different inputs
    memo.denoise(rows.double(), 0.5)
    assert len(memo.memo) == 4


def test_memo_over_the_bundled_ddpm_trains_the_same_members():
    X, y = load_digits_for_denoising(split="train", digits=(1, 7))
    X_test, _ = load_digits_for_denoising(split="test", digits=(1, 7))
    bundled = load_bundled("digits")

    def fit(denoiser, X_train, y_train=y):
        return DenoisedSmoothingClassifier(
            LogisticRegression(), denoiser, n_estimators=3, sigma=0.25, random_state=0
        ).fit(X_train, y_train)

    memo = MemoDenoiser(bundled)
    fit(memo, X)  # fills the memo with the clean rows' noisy copies
    poisoned = X.copy()
    poisoned[:5] = np.clip(poisoned[:5] + 0.1, 0, 1)
    with_memo, without = fit(memo, poisoned), fit(bundled, poisoned)
    for a, b in zip(with_memo.estimators_, without.estimators_, strict=True):
        np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-4)
    np.testing.assert_array_equal(with_memo.predict(X_test), without.predict(X_test))
    with pytest.raises(ValueError, match="rows the denoiser was trained on"):
        fit(memo, *load_digits_for_denoising(split="denoiser", digits=(1, 7)))


def test_success_counts_targets_moved_into_the_base_class_only():
    before = [1, 6, 1, 3, 6]
    after = [6, 6, 1, 6, 1]
    base = [6, 6, 6, 5, 6]
    # moved to base; already base; unmoved; moved but not to base; moved away from base
    assert flipped_to_base(before, after, base).tolist() == [True, False, False, False, False]
