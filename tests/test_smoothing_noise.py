"""Keyed Gaussian noise: a standard normal, a function of (seed, row, feature) and nothing else."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sklearn_certify._keyed import KeyedDraws, draw_block_size
from sklearn_certify.smoothing import GaussianNoiseView, keyed_draws, keyed_normal


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


# --- keyed_draws: consecutive draws at randn's speed -------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**63 - 1),
    start=st.integers(0, 5000),
    cuts=st.lists(st.integers(0, 3000), min_size=1, max_size=5),
    width=st.sampled_from([1, 3, 64, 784]),
)
def test_keyed_draws_depend_on_draw_number_not_on_the_range_asked(seed, start, cuts, width):
    """A draw is the same in any range and in any split of a stream into batches."""
    stop = start + max(cuts) + 1
    whole = keyed_draws(seed, start, stop, (width,), dtype=torch.float32)
    assert whole.shape == (stop - start, width)
    stream = KeyedDraws(seed, start, (width,), dtype=torch.float32)
    pieces, at = [], start
    for cut in sorted(set(cuts)):
        pieces.append(stream.take(start + cut - at))
        at = start + cut
    pieces.append(stream.take(stop - at))
    assert torch.equal(torch.cat(pieces), whole)
    lo = start + cuts[0] // 2
    assert torch.equal(
        keyed_draws(seed, lo, stop, (width,), dtype=torch.float32), whole[lo - start :]
    )


def test_keyed_draws_are_standard_normal_and_independent_across_blocks_and_seeds():
    block = draw_block_size(8)
    assert block == 2048 and draw_block_size(784) == 16 and draw_block_size(10**6) == 1
    z = keyed_draws(11, 0, 3 * block, (8,), dtype=torch.float64).numpy()
    flat = z.ravel()
    assert abs(flat.mean()) < 0.01 and abs(flat.std() - 1) < 0.01
    assert stats.kstest(flat, "norm").pvalue > 1e-3
    # neighbouring blocks, and the same block under another seed, are uncorrelated
    other_seed = keyed_draws(12, 0, block, (8,), dtype=torch.float64).numpy()
    pairs = np.column_stack([z[:block].ravel(), z[block : 2 * block].ravel(), other_seed.ravel()])
    assert _uncorrelated(pairs)
    # float32 and float64 callers add the same noise (drawn in float32)
    single = keyed_draws(11, 5, 500, (8,), dtype=torch.float32)
    assert torch.equal(single.double(), keyed_draws(11, 5, 500, (8,), dtype=torch.float64))
    assert keyed_draws(11, 7, 7, (8,)).shape == (0, 8)
