"""Keyed Gaussian noise: a standard normal, a function of (seed, row, feature) and nothing else."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sklearn_certify.smoothing import GaussianNoiseView, keyed_normal


def _draw(seeds, rows, shape=(16,), dtype=torch.float64):
    return keyed_normal(torch.as_tensor(seeds), torch.as_tensor(rows), shape, dtype=dtype)


def test_marginal_is_standard_normal():
    z = _draw(np.arange(8), np.tile(np.arange(2000), (8, 1)), (16,)).numpy().ravel()
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert stats.kstest(z, "norm").pvalue > 1e-3
    # tails: the fraction beyond 3 sigma matches the normal's 0.27%
    assert abs(np.mean(np.abs(z) > 3) - 2 * stats.norm.sf(3)) < 0.001


def _uncorrelated(samples: np.ndarray) -> bool:
    """Pairwise correlations of the columns all within what independence allows.

    Under independence ``corr * sqrt(n)`` is about standard normal; the threshold is the
    two-sided ``1e-6`` quantile after a Bonferroni correction over the pairs.
    """
    n, k = samples.shape
    corr = np.corrcoef(samples.T)[np.triu_indices(k, 1)]
    threshold = stats.norm.isf(1e-6 / (2 * corr.size)) / np.sqrt(n)
    return bool(np.abs(corr).max() < threshold)


def test_members_rows_and_features_are_uncorrelated():
    z = _draw(np.arange(20), np.tile(np.arange(500), (20, 1)), (30,)).numpy()
    assert _uncorrelated(z.reshape(20, -1).T)  # members
    assert _uncorrelated(z.reshape(-1, 30))  # features
    rows = z[0]  # (500, 30): neighbouring rows
    assert _uncorrelated(np.stack([rows[:-1].ravel(), rows[1:].ravel()], axis=1))


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**63 - 1),
    st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=6),
    st.integers(0, 5),
)
def test_a_value_depends_only_on_its_seed_row_and_feature(seed, rows, position):
    """Any batch that holds (seed, row) gives that row the same noise."""
    position = position % len(rows)
    alone = _draw([seed], [[rows[position]]])[0, 0]
    batch = _draw([seed, seed ^ 1], [rows, rows[::-1]])[0, position]
    assert torch.equal(alone, batch)


def test_different_seeds_rows_and_dtypes():
    a = _draw([1], [[0, 1]])
    assert not torch.equal(a[0, 0], a[0, 1])
    assert not torch.equal(a, _draw([2], [[0, 1]]))
    as32 = _draw([1], [[0, 1]], dtype=torch.float32)
    assert as32.dtype == torch.float32
    torch.testing.assert_close(as32, a.float())
    images = _draw([1], [[0]], (1, 8, 8))
    assert images.shape == (1, 1, 1, 8, 8)
    torch.testing.assert_close(images.reshape(1, 1, 64), _draw([1], [[0]], (64,)))


def test_view_adds_sigma_times_the_keyed_noise_and_refuses_test_time_use():
    X = torch.ones(2, 3, 4)
    rows = torch.tensor([[4, 5, 6], [4, 5, 6]])
    seeds = torch.tensor([9, 10])
    out = GaussianNoiseView(0.3)(X, rows, torch.tensor([0, 1]), seeds)
    torch.testing.assert_close(out, X + 0.3 * keyed_normal(seeds, rows, (4,)).float())
    with pytest.raises(ValueError, match="training view"):
        GaussianNoiseView(0.3)(X, None, torch.tensor([0, 1]), seeds)
