"""Gaussian noise keyed by (member seed, row, feature): the same draw wherever it is computed.

Training-set smoothing needs noise ``d_m[i]`` for member ``m`` and training row ``i`` that is a
function of ``(seed_, m, i)`` alone: member ``m`` must see the same noisy copy of row
``i`` in every epoch, on every engine and device, whatever other members or rows are in the
batch (the user guide's rule "one noisy copy per member"). torch's generators are streams:
what a draw returns depends on everything drawn before it. So the noise is computed from a
counter-based hash instead: each (seed, row, pair of features) key is hashed to two independent
32-bit uniforms (the PCG output permutation of Jarzynski & Olano, "Hash Functions for GPU
Rendering", 2020, nested over the key's words), and the Box-Muller transform turns them into
two independent standard normal draws, one per feature of the pair. The hashing is integer
arithmetic on int64 tensors, so the uniforms are identical on CPU and GPU; the transform runs
in float64.
"""

from __future__ import annotations

import math

__all__ = ["GaussianNoiseView", "keyed_normal"]

_MASK32 = 0xFFFFFFFF
_FEATURE_SALT = (0x9E3779B9, 0x85EBCA6B)  # one word per uniform of a pair


def _pcg(v):
    """The PCG-RXS-M-XS 32-bit hash of every entry of an int64 tensor holding 32-bit words."""
    import torch

    state = (v * 747796405 + 2891336453) & _MASK32
    word = torch.bitwise_right_shift(state, torch.bitwise_right_shift(state, 28) + 4)
    word = ((word ^ state) * 277803737) & _MASK32
    return torch.bitwise_right_shift(word, 22) ^ word


def _row_keys(seeds, row_ids):
    """Two 32-bit keys per (member, row): ``seeds`` (M,) and ``row_ids`` (M, W) int64."""
    seed_lo = (seeds & _MASK32)[:, None]
    seed_hi = (seeds >> 32)[:, None]
    first = _pcg(seed_lo ^ _pcg(seed_hi ^ _pcg(row_ids & _MASK32)))
    return first, _pcg(first ^ _FEATURE_SALT[0])


def keyed_normal(seeds, row_ids, feature_shape, *, dtype=None):
    """Standard normal noise ``(M, W, *feature_shape)`` keyed by member seed, row and feature.

    Entry ``[m, w, j]`` depends only on ``seeds[m]``, ``row_ids[m, w]`` and the feature index
    ``j`` (the flat position in ``feature_shape``): the same arguments give the same value in
    any batch, on any device.

    Parameters
    ----------
    seeds : torch.Tensor of int64 of shape (M,)
        Non-negative member seeds (e.g. ``member_seed(seed, m, "view")``).
    row_ids : torch.Tensor of int64 of shape (M, W)
        Row indices, ``0 <= row_ids < 2**32``, on the same device as ``seeds``.
    feature_shape : tuple of int
        Shape of one row.
    dtype : torch.dtype, default=None
        Floating dtype of the result (default ``torch.get_default_dtype()``).

    Returns
    -------
    noise : torch.Tensor
        Shape ``(M, W, *feature_shape)``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_certify.smoothing import keyed_normal
    >>> seeds = torch.tensor([7, 8]); rows = torch.tensor([[0, 1, 2], [2, 1, 0]])
    >>> z = keyed_normal(seeds, rows, (4,))
    >>> z.shape
    torch.Size([2, 3, 4])
    >>> bool(torch.equal(keyed_normal(seeds[:1], rows[:1, 2:], (4,))[0, 0], z[0, 2]))
    True
    """
    import torch

    dtype = torch.get_default_dtype() if dtype is None else dtype
    n_features = math.prod(feature_shape)
    n_pairs = (n_features + 1) // 2  # one pair of uniforms gives two normals (cos and sin)
    first, second = _row_keys(seeds, row_ids)
    pairs = torch.arange(n_pairs, device=row_ids.device, dtype=torch.int64)
    u1 = _pcg(first[..., None] ^ _pcg(pairs ^ _FEATURE_SALT[0]))
    u2 = _pcg(second[..., None] ^ _pcg(pairs ^ _FEATURE_SALT[1]))
    scale = 1.0 / 4294967296.0
    radius = torch.sqrt(-2.0 * torch.log((u1.to(torch.float64) + 0.5) * scale))
    angle = (2.0 * math.pi * scale) * (u2.to(torch.float64) + 0.5)
    z = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=-1)
    z = z.reshape(*row_ids.shape, 2 * n_pairs)[..., :n_features].to(dtype)
    return z.reshape(*row_ids.shape, *feature_shape)


class GaussianNoiseView:
    """Member view adding ``sigma`` times keyed Gaussian noise: one noisy copy per member.

    ``view(X, row_ids, member_ids, seeds)`` returns ``X + sigma * keyed_normal(seeds,
    row_ids, ...)``: member ``m`` sees row ``i`` as ``X[i] + d_m[i]`` with ``d_m[i]`` a
    function of its seed (hence of ``(seed_, m)``) and ``i`` only, the same in every
    epoch and for both engines.

    Parameters
    ----------
    sigma : float
        Noise standard deviation, in the units of the features.

    Examples
    --------
    >>> import torch
    >>> from sklearn_certify.smoothing import GaussianNoiseView
    >>> view = GaussianNoiseView(0.5)
    >>> X = torch.zeros(2, 3, 4); rows = torch.arange(3).repeat(2, 1)
    >>> out = view(X, rows, torch.tensor([0, 1]), torch.tensor([11, 12]))
    >>> out.shape, bool(torch.equal(out, view(X, rows, torch.tensor([0, 1]),
    ...                                         torch.tensor([11, 12]))))
    (torch.Size([2, 3, 4]), True)
    """

    def __init__(self, sigma: float):
        self.sigma = float(sigma)

    def __call__(self, X, row_ids, member_ids, seeds):
        if row_ids is None:
            raise ValueError(
                "GaussianNoiseView keys its noise by training row; it is a training view, not "
                "a test-time one."
            )
        noise = keyed_normal(seeds, row_ids, tuple(X.shape[2:]), dtype=X.dtype)
        return X + self.sigma * noise

    def __repr__(self) -> str:
        return f"GaussianNoiseView(sigma={self.sigma})"
