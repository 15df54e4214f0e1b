"""Counter-based keyed random numbers: the same draw wherever and in whatever batch it is computed.

A member's randomness must be a function of its key and the row (and epoch, step, ...) alone,
never of which other rows or members share a batch. torch's generators are streams (what a
draw returns depends on everything drawn before it), so these draws hash their keys instead:
each key is hashed to 32-bit uniforms with the PCG output permutation (Jarzynski & Olano, "Hash
Functions for GPU Rendering", 2020), nested over the key's words. The hashing is integer
arithmetic on int64 tensors, identical on CPU and GPU.
"""

from __future__ import annotations

import math

__all__ = ["keyed_normal"]

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
