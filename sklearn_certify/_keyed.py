"""Counter-based keyed random numbers: the same draw wherever and in whatever batch it is computed.

A member's randomness must be a function of its key and the row (and epoch, step, ...) alone,
never of which other rows or members share a batch. torch's generators are streams (what a
draw returns depends on everything drawn before it), so these draws hash their keys instead:
each key is hashed to 32-bit uniforms with the PCG output permutation (Jarzynski & Olano, "Hash
Functions for GPU Rendering", 2020), nested over the key's words. The hashing is integer
arithmetic on int64 tensors, identical on CPU and GPU.

Where the draws a caller needs are numbered consecutively (the Monte Carlo draws of one test
row), :func:`keyed_draws` is as fast as ``torch.randn``: it cuts the draw numbers into blocks
of a fixed size and draws each block with torch's generator seeded by a hash of (key, block),
so a draw still depends on its key and number alone, not on which range a caller asks for.
"""

from __future__ import annotations

import math

__all__ = ["KeyedDraws", "draw_block_size", "keyed_draws", "keyed_normal"]

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


#: Values drawn per generator call of :func:`keyed_draws` (about this many; a block holds a
#: power of two of rows).
_BLOCK_VALUES = 1 << 14
_MASK64 = (1 << 64) - 1


def _splitmix64(value: int) -> int:
    """The SplitMix64 finaliser (Steele, Lea & Flood, 2014) of a 64-bit word."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def draw_block_size(row_numel: int) -> int:
    """Draws per block of :func:`keyed_draws` for rows of ``row_numel`` values.

    A power of two, ``1 .. 4096``, about ``2**14 / row_numel``: a function of the row's size
    alone, so a draw's block never depends on a batch size or a caller's range.
    """
    rows = max(1, (_BLOCK_VALUES // max(1, int(row_numel))))
    return min(4096, 1 << (rows.bit_length() - 1))


class KeyedDraws:
    """Consecutive keyed draws ``start, start + 1, ...``, each block drawn once.

    :meth:`take` returns the next ``n`` draws; the block it is in the middle of is kept for the
    next call, so reading a row's draws batch by batch draws every block exactly once,
    whatever the batch size.
    """

    def __init__(self, seed: int, start: int, row_shape, *, dtype=None, device=None):
        import torch

        self.seed = int(seed)
        self.position = int(start)
        self.row_shape = tuple(int(d) for d in row_shape)
        self.dtype = torch.get_default_dtype() if dtype is None else dtype
        self.block = draw_block_size(math.prod(self.row_shape))
        self.generator = torch.Generator(device=device or "cpu")
        self._index, self._drawn = None, None

    def _seeded(self, index: int):
        self.generator.manual_seed(_splitmix64(self.seed ^ _splitmix64(index)) >> 1)
        return self.generator

    def _block(self, index: int):
        """Block ``index``, drawn once and kept while a caller reads it piece by piece."""
        import torch

        if index != self._index:
            self._drawn = torch.randn(
                (self.block, *self.row_shape),
                generator=self._seeded(index),
                device=self.generator.device,
            )
            self._index = index
        return self._drawn

    def take(self, n: int):
        """The next ``n`` draws, shape ``(n, *row_shape)``, in ``dtype``.

        A block read whole is drawn straight into the result; one read in part is kept for
        the next call.
        """
        import torch

        device = self.generator.device
        out = torch.empty((int(n), *self.row_shape), device=device)
        at, stop = 0, int(n)
        while at < stop:
            index, offset = divmod(self.position, self.block)
            count = min(stop - at, self.block - offset)
            if count == self.block and index != self._index:
                torch.randn(
                    (self.block, *self.row_shape),
                    generator=self._seeded(index),
                    out=out[at : at + count],
                )
            else:
                out[at : at + count] = self._block(index)[offset : offset + count]
            at += count
            self.position += count
        return out.to(self.dtype)


def keyed_draws(seed: int, start: int, stop: int, row_shape, *, dtype=None, device=None):
    """Consecutive standard normal draws keyed by ``seed``, from ``start`` up to ``stop``.

    Draw ``i`` is row ``i % B`` of block ``i // B`` (``B = draw_block_size(numel)``), and a
    block is ``torch.randn((B, *row_shape))`` from a generator on ``device`` seeded with a
    SplitMix64 hash of ``(seed, block)``. So draw ``i`` is the same whatever range it is asked
    with, on a given kind of device: CPU generators (Mersenne Twister) and CUDA generators
    (Philox) give different, equally valid, draws. The draws are made in float32 and cast to
    ``dtype``, so float32 and float64 callers add the same noise. ``KeyedDraws`` reads
    them batch by batch.

    Parameters
    ----------
    seed : int
        Non-negative key (63-bit), e.g. a row's noise seed.
    start, stop : int
        Draw numbers, ``0 <= start <= stop < 2**63``.
    row_shape : tuple of int
        Shape of one draw.
    dtype : torch.dtype, default=None
        Floating dtype of the result (default ``torch.get_default_dtype()``).
    device : torch.device or str, default=None
        Where to draw (default: the CPU).

    Returns
    -------
    draws : torch.Tensor
        Shape ``(stop - start, *row_shape)``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_certify.smoothing import keyed_draws
    >>> z = keyed_draws(7, 0, 3000, (64,))
    >>> z.shape
    torch.Size([3000, 64])
    >>> bool(torch.equal(keyed_draws(7, 1000, 1010, (64,)), z[1000:1010]))
    True
    """
    return KeyedDraws(seed, start, row_shape, dtype=dtype, device=device).take(stop - start)
