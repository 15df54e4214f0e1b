"""Data augmentation keyed by (member key, row id, epoch): the same draw in any batch.

An ensemble member trained with random crops, flips or noise must see, in a given epoch, the
same augmented copy of a training row whether it is trained on its own (loop engine) or
stacked with other members in a chunk of the vectorized engine, where one call augments a
``(M members, W rows, ...)`` tensor. A draw from torch's generators cannot give that: a
generator is a stream, so what row ``w`` of member ``m`` receives would depend on how many
values were drawn before it, that is on which rows and members share the batch. Partition
independence would be lost (adding a member could change what another one learned).

So every random choice here is a hash of its coordinates instead of the next value of a
stream. The member key and the epoch are hashed into one 63-bit seed per purpose (a salt
tells the crop-and-flip seed from the noise seed), and that seed and the row id are hashed
with the counter-based PCG hash of :mod:`sklearn_certify.smoothing._noise` into the row's
words. The crop offsets and the flip bit are read from those words under three further
salts, and the noise is :func:`~~sklearn_certify.smoothing.keyed_normal` under the
noise seed. Every step is integer arithmetic on int64 tensors, elementwise over
``(M, W)``, so a row's draws are a function of ``(key, row id, epoch)`` alone and are the same
on CPU and GPU.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING

from sklearn_certify._keyed import _MASK32, _pcg, _row_keys, keyed_normal

if TYPE_CHECKING:
    import torch

__all__ = ["PADDING_MODES", "KeyedAugmentation"]

#: The ``padding_mode`` values :class:`KeyedAugmentation` accepts (as in torchvision).
PADDING_MODES = ("constant", "reflect", "replicate")

# Salts: one per member-epoch seed (crop and flip vs noise), one per draw read from a row.
_SEED_SALT = {"crop_flip": 0x68E31DA4, "noise": 0xB5297A4D}
_DRAW_SALT = {"dy": 0x1B56C4E9, "dx": 0x7FEB352D, "flip": 0x846CA68B}


def _member_epoch_seeds(keys, epochs, purpose: str):
    """A 63-bit seed per member, hashed from its key, its epoch and ``purpose``'s salt."""
    words = (keys & _MASK32, keys >> 32, epochs & _MASK32, epochs >> 32)
    state = _pcg(words[0] ^ _SEED_SALT[purpose])
    for word in words[1:]:
        state = _pcg(word ^ state)
    second = _pcg(state ^ _SEED_SALT[purpose])
    return (state << 31) | (second >> 1)


def _uniform_below(words, n: int):
    """Map 32-bit hash words to ``{0, ..., n - 1}`` (multiply-shift; bias below n / 2**32)."""
    return (words * n) >> 32


class KeyedAugmentation:
    """Random crop, horizontal flip and Gaussian noise keyed by (member key, row id, epoch).

    ``aug(x, row_ids, keys, epochs)`` augments a stack of batches, one per member: row ``w``
    of member ``m`` is transformed with draws that are a function of ``keys[m]``,
    ``row_ids[m, w]`` and ``epochs[m]`` only, never of the other rows or members of the call,
    so a member trained alone and one trained in a stacked chunk see the same augmented rows.
    A row gets a new draw in every epoch and from every key.

    In order, each row is

    1. cropped at random (``crop_padding > 0``), as torchvision's
       ``RandomCrop(size=(H, W), padding=crop_padding, padding_mode=...)``: padded by
       ``p = crop_padding`` on every side of its last two axes, then the ``H x W`` window at
       offsets ``(dy, dx)`` is taken, ``dy`` and ``dx`` each uniform on ``{0, ..., 2p}``;
    2. flipped left-right with probability 1/2 (``flip=True``), after the crop;
    3. shifted by ``noise_std`` times standard normal noise, one draw per element
       (``noise_std > 0``), keyed by (key, epoch) and row through
       :func:`~~sklearn_certify.smoothing.keyed_normal`.

    The crop offsets, the flip bit and the noise use distinct salts of the hash, so they are
    independent of one another. :meth:`draws` returns the offsets and flip bits a call uses.

    Parameters
    ----------
    crop_padding : int, default=0
        Padding ``p`` of the random crop, in pixels; 0 turns cropping off.
    flip : bool, default=False
        Whether to flip each row left-right (last axis) with probability 1/2.
    noise_std : float, default=0.0
        Standard deviation of the additive Gaussian noise, in the units of ``x``; 0 turns
        noise off.
    padding_mode : {"constant", "reflect", "replicate"}, default="constant"
        How the crop pads: zeros, reflection without repeating the edge, or repetition of the
        edge (torchvision's ``"edge"``), as in :func:`torch.nn.functional.pad`.

    Notes
    -----
    Crops and flips need image rows, shaped ``(C, H, W)`` or ``(H, W)``; noise alone works on
    rows of any shape. With every setting off the call returns ``x`` itself. Ids must satisfy
    ``0 <= row_ids < 2**32`` and keys and epochs must be non-negative; these value ranges are
    documented rather than checked, since checking would synchronise a GPU on every batch.

    Examples
    --------
    >>> import torch
    >>> from sklearn_certify.ensemble._augment import KeyedAugmentation
    >>> aug = KeyedAugmentation(crop_padding=1, flip=True)
    >>> x = torch.arange(16.0).reshape(1, 1, 1, 4, 4).repeat(2, 3, 1, 1, 1)  # (M, W, C, H, W)
    >>> rows = torch.tensor([[0, 1, 2], [2, 1, 0]])
    >>> keys, epochs = torch.tensor([5, 6]), torch.tensor([0, 0])
    >>> out = aug(x, rows, keys, epochs)
    >>> out.shape
    torch.Size([2, 3, 1, 4, 4])

    Member 0's row 2, augmented alone, is what it got in the batch:

    >>> alone = aug(x[:1, 2:], rows[:1, 2:], keys[:1], epochs[:1])
    >>> bool(torch.equal(alone[0, 0], out[0, 2]))
    True
    >>> dy, dx, flipped = aug.draws(rows, keys, epochs)
    >>> dy.shape, bool(((dy >= 0) & (dy <= 2)).all()), flipped.dtype
    (torch.Size([2, 3]), True, torch.bool)
    """

    def __init__(
        self,
        crop_padding: int = 0,
        flip: bool = False,
        noise_std: float = 0.0,
        padding_mode: str = "constant",
    ):
        self.crop_padding = _check_crop_padding(crop_padding)
        self.flip = _check_flip(flip)
        self.noise_std = _check_noise_std(noise_std)
        self.padding_mode = _check_padding_mode(padding_mode)

    def __repr__(self) -> str:
        return (
            f"KeyedAugmentation(crop_padding={self.crop_padding}, flip={self.flip}, "
            f"noise_std={self.noise_std}, padding_mode={self.padding_mode!r})"
        )

    def __call__(
        self, x: torch.Tensor, row_ids: torch.Tensor, keys: torch.Tensor, epochs: torch.Tensor
    ) -> torch.Tensor:
        """Augment ``x`` row by row, each row keyed by (its member's key, its id, its epoch).

        Parameters
        ----------
        x : torch.Tensor of shape (M, W, *row_shape)
            Floating-point rows, ``W`` per member; ``row_shape`` is ``(C, H, W)`` or ``(H, W)``
            when cropping or flipping.
        row_ids : torch.Tensor of int64 of shape (M, W)
            The rows' ids in the training set, ``0 <= row_ids < 2**32``.
        keys : torch.Tensor of int64 of shape (M,)
            Non-negative member keys (e.g. ``member_seed(seed, m, "view")``).
        epochs : torch.Tensor of int64 of shape (M,)
            Non-negative epoch of each member; members may be in different epochs.

        Returns
        -------
        torch.Tensor
            The augmented rows, with the shape, dtype and device of ``x`` (``x`` itself when
            every setting is off).
        """
        import torch

        _check_x(x)
        row_ids, keys, epochs = _check_ids(row_ids, keys, epochs, tuple(x.shape[:2]))
        if row_ids.device != x.device:
            raise ValueError(f"row_ids is on {row_ids.device} but x is on {x.device}.")
        if self.crop_padding or self.flip:
            _check_image_rows(x, self)
            dy, dx, flipped = self.draws(row_ids, keys, epochs)
            x = self._crop_and_flip(x, dy, dx, flipped)
        if self.noise_std:
            seeds = _member_epoch_seeds(keys, epochs, "noise")
            noise = keyed_normal(seeds, row_ids, tuple(x.shape[2:]), dtype=x.dtype)
            x = torch.add(x, noise, alpha=self.noise_std)
        return x

    def draws(
        self, row_ids: torch.Tensor, keys: torch.Tensor, epochs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The crop offsets and flip bits of every (member, row).

        Parameters
        ----------
        row_ids : torch.Tensor of int64 of shape (M, W)
            The rows' ids in the training set, ``0 <= row_ids < 2**32``.
        keys : torch.Tensor of int64 of shape (M,)
            Non-negative member keys.
        epochs : torch.Tensor of int64 of shape (M,)
            Non-negative epoch of each member.

        Returns
        -------
        dy, dx : torch.Tensor of int64 of shape (M, W)
            Offsets of the crop window in the padded row, on ``{0, ..., 2 * crop_padding}``
            (all 0 when ``crop_padding=0``): the window starts ``dy`` rows down and ``dx``
            columns right of the padded row's corner.
        flip : torch.Tensor of bool of shape (M, W)
            Whether the row is flipped left-right after the crop (all False when
            ``flip=False``).

        Examples
        --------
        >>> import torch
        >>> from sklearn_certify.ensemble._augment import KeyedAugmentation
        >>> aug = KeyedAugmentation(crop_padding=2, flip=True)
        >>> rows, keys = torch.arange(1000)[None], torch.tensor([3])
        >>> dy, dx, flip = aug.draws(rows, keys, torch.tensor([0]))
        >>> sorted(dy.unique().tolist()), round(flip.double().mean().item(), 1)
        ([0, 1, 2, 3, 4], 0.5)
        >>> dy1, dx1, flip1 = aug.draws(rows, keys, torch.tensor([1]))  # the next epoch
        >>> bool(torch.equal(dy, dy1))
        False
        """
        import torch

        row_ids, keys, epochs = _check_ids(row_ids, keys, epochs)
        seeds = _member_epoch_seeds(keys, epochs, "crop_flip")
        first, second = _row_keys(seeds, row_ids)
        n_offsets = 2 * self.crop_padding + 1
        dy = _uniform_below(_pcg(first ^ _DRAW_SALT["dy"]), n_offsets)
        dx = _uniform_below(_pcg(second ^ _DRAW_SALT["dx"]), n_offsets)
        flip_words = _pcg(first ^ _pcg(second ^ _DRAW_SALT["flip"]))
        flipped = torch.bitwise_right_shift(flip_words, 31).bool()
        return dy, dx, flipped if self.flip else torch.zeros_like(flipped)

    def _crop_and_flip(self, x, dy, dx, flipped):
        """Pad each row's last two axes, then gather its (possibly mirrored) window."""
        import torch

        height, width = x.shape[-2:]
        p = self.crop_padding
        flat = x.reshape(-1, 1, height, width)  # one channel per entry: F.pad's 4-D layout
        if p:
            flat = torch.nn.functional.pad(flat, (p, p, p, p), mode=self.padding_mode)
        padded = flat.reshape(dy.numel(), -1, height + 2 * p, width + 2 * p)  # (M * W, C, ., .)
        dy, dx, flipped = dy.reshape(-1, 1), dx.reshape(-1, 1), flipped.reshape(-1, 1)
        steps_y = torch.arange(height, device=x.device)
        steps_x = torch.arange(width, device=x.device)
        rows = dy + steps_y  # (M * W, H)
        cols = dx + torch.where(flipped, width - 1 - steps_x, steps_x)  # (M * W, W)
        batch = torch.arange(dy.shape[0], device=x.device)
        window = padded[batch[:, None, None], :, rows[:, :, None], cols[:, None, :]]
        # advanced indices separated by a slice put their broadcast axes first: (N, H, W, C)
        return window.permute(0, 3, 1, 2).reshape(x.shape)


def _check_crop_padding(value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"crop_padding must be a non-negative int, got {value!r}.")
    if value < 0:
        raise ValueError(f"crop_padding must be a non-negative int, got {value}.")
    return int(value)


def _check_flip(value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"flip must be True or False, got {value!r}.")
    return value


def _check_noise_std(value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"noise_std must be a real number, got {value!r}.")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"noise_std must be finite and >= 0, got {value}.")
    return float(value)


def _check_padding_mode(value) -> str:
    if value not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {value!r}.")
    return value


def _check_x(x) -> None:
    import torch

    if not (torch.is_tensor(x) and x.is_floating_point() and x.dim() >= 2):
        kind = f"{x.dtype} of shape {tuple(x.shape)}" if torch.is_tensor(x) else type(x).__name__
        raise TypeError(f"x must be a floating-point tensor of shape (M, W, ...), got {kind}.")


def _check_ids(row_ids, keys, epochs, batch_shape=None):
    """Check ids and keys: integer tensors of shapes (M, W), (M,), (M,) on one device.

    ``batch_shape`` is ``x.shape[:2]`` when there is an ``x``; returns the three as int64.
    """
    import torch

    values = {"row_ids": row_ids, "keys": keys, "epochs": epochs}
    for name, value in values.items():
        if not torch.is_tensor(value) or value.is_floating_point() or value.dtype == torch.bool:
            raise TypeError(f"{name} must be an integer tensor, got {value!r}.")
    if batch_shape is None:
        batch_shape = tuple(row_ids.shape) if row_ids.dim() == 2 else None
        if batch_shape is None:
            raise ValueError(f"row_ids must have shape (M, W), got {tuple(row_ids.shape)}.")
    n_members = batch_shape[0]
    expected = {"row_ids": tuple(batch_shape), "keys": (n_members,), "epochs": (n_members,)}
    for name, shape in expected.items():
        if tuple(values[name].shape) != shape:
            raise ValueError(
                f"{name} must have shape {shape} (M members, W rows), "
                f"got {tuple(values[name].shape)}."
            )
        if values[name].device != row_ids.device:
            raise ValueError(f"{name} is on {values[name].device} but row_ids on {row_ids.device}.")
    return [value.to(torch.int64) for value in values.values()]


def _check_image_rows(x, aug: KeyedAugmentation) -> None:
    """Crops and flips need (C, H, W) or (H, W) rows, large enough for reflect padding."""
    row_shape = tuple(x.shape[2:])
    setting = f"crop_padding={aug.crop_padding}" if aug.crop_padding else "flip=True"
    if len(row_shape) not in (2, 3):
        raise ValueError(
            f"KeyedAugmentation with {setting} needs image rows of shape (C, H, W) or (H, W), "
            f"got rows of shape {row_shape}; reshape the rows to (C, H, W), e.g. "
            "X.reshape(len(X), 1, 28, 28) for flattened 28 x 28 images."
        )
    if aug.padding_mode == "reflect" and aug.crop_padding >= min(row_shape[-2:]):
        raise ValueError(
            f"padding_mode='reflect' needs crop_padding < the image's height and width, got "
            f"crop_padding={aug.crop_padding} for images of size {row_shape[-2:]}."
        )
