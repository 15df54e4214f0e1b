"""Train a small DDPM on trusted images, reproducibly, and refuse the data being certified."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from sklearn_certify._validation import check_open_unit, check_positive, check_scalar_int
from sklearn_certify.denoisers._base import overlapping_rows
from sklearn_certify.denoisers._ddpm import DDPMDenoiser, import_diffusers, move_unet

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

__all__ = ["train_ddpm_denoiser"]


def _trusted_images(X, image_shape) -> tuple[np.ndarray, tuple[int, int, int]]:
    if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
        raise TypeError(f"X_trusted must be numeric, got dtype {X.dtype}.")
    if X.ndim == 4:
        shape = tuple(X.shape[1:]) if image_shape is None else tuple(image_shape)
    elif X.ndim == 2:
        if image_shape is None:
            raise ValueError(
                "X_trusted holds flat rows (n, d); give image_shape=(channels, height, width)."
            )
        shape = tuple(image_shape)
    else:
        raise ValueError(
            f"X_trusted must be rows (n, d) or images (n, C, H, W), got shape {X.shape}."
        )
    if len(shape) != 3 or math.prod(shape) != math.prod(X.shape[1:]):
        raise ValueError(
            f"image_shape={shape} does not fit X_trusted of shape {X.shape}: one image must "
            "be (channels, height, width) with as many values as a row."
        )
    if X.shape[0] < 2:
        raise ValueError(f"X_trusted needs at least 2 rows, got {X.shape[0]}.")
    if not np.all(np.isfinite(X)) or X.min() < 0 or X.max() > 1:
        raise ValueError("X_trusted must be clean images with every value in [0, 1].")
    return X.reshape(X.shape[0], *shape).astype(np.float32), shape


def _check_refused(digests: np.ndarray, refuse) -> None:
    shared = overlapping_rows(digests, refuse)
    if shared.size:
        raise ValueError(
            f"{shared.size} rows of refuse (first: row {shared[0]}) are also rows of X_trusted. "
            "Train the denoiser on trusted data that is disjoint from the data the classifier "
            "certifies: a denoiser fit on the training set moves with every poisoned row and "
            "voids the certificate."
        )


def train_ddpm_denoiser(
    X_trusted,
    *,
    refuse=None,
    image_shape: tuple[int, int, int] | None = None,
    block_out_channels: Sequence[int] = (32, 64),
    layers_per_block: int = 1,
    n_steps: int = 3000,
    batch_size: int = 128,
    learning_rate: float = 2e-3,
    ema_decay: float = 0.999,
    random_state: int = 0,
    device: str | torch.device = "cpu",
    verbose: bool = False,
) -> DDPMDenoiser:
    """Train a small DDPM noise predictor on trusted images and return its denoiser.

    The model is a ``diffusers.UNet2DModel`` (plain ResNet blocks, one down/upsampling
    per extra entry of ``block_out_channels``, self-attention in the middle block) under
    the linear 1000-step ``DDPMScheduler`` of Ho et al. (2020). Training is the standard
    DDPM objective: images mapped to [-1, 1], a uniform timestep ``t`` in 1..999 and fresh
    Gaussian noise per draw, and the mean squared error of the predicted noise; AdamW with
    a one-cycle learning rate; the returned weights are an exponential moving average of
    the iterates.

    Every random draw comes from generators seeded by ``random_state``, so on CPU two runs
    with the same arguments, torch version and thread count
    (:func:`torch.set_num_threads`) give bit-identical weights.

    Parameters
    ----------
    X_trusted : array-like of shape (n, d) or (n, C, H, W)
        Clean trusted images with values in [0, 1]. They must not be the data a classifier
        will be certified on (see ``refuse``).
    refuse : array-like of shape (m, d) or (m, C, H, W), default=None
        The data the classifier will be trained and certified on. If any of its rows is
        also a row of ``X_trusted`` (same content digest,
        :func:`~sklearn_certify.partition.row_digests`), training is refused: a denoiser
        fit on the data being certified moves with every poisoned row and voids the
        certificate.
    image_shape : tuple of int, default=None
        ``(channels, height, width)``; required for flat rows.
    block_out_channels : sequence of int, default=(32, 64)
        Channels of each UNet level; height and width must be divisible by
        ``2 ** (len(block_out_channels) - 1)``, and every entry by 8 (the group norm's
        groups).
    layers_per_block : int, default=1
        ResNet blocks per level.
    n_steps : int, default=3000
        Optimizer steps.
    batch_size : int, default=128
        Images per step (drawn with replacement).
    learning_rate : float, default=2e-3
        Peak learning rate of the one-cycle schedule.
    ema_decay : float, default=0.999
        Decay of the weight average that is returned.
    random_state : int, default=0
        Seed of the initial weights, the batches, the timesteps and the noise.
    device : str or torch.device, default="cpu"
        Where to train; the returned denoiser stays there.
    verbose : bool, default=False
        Print the loss every 500 steps.

    Returns
    -------
    DDPMDenoiser
        With ``training_digests`` set to the digests of ``X_trusted``'s rows, which
        :meth:`DDPMDenoiser.save_pretrained` writes and :func:`check_trusted_denoiser` reads.

    Examples
    --------
    >>> from sklearn_certify.datasets import load_digits_for_denoising
    >>> from sklearn_certify.denoisers import train_ddpm_denoiser
    >>> X_trusted, _ = load_digits_for_denoising(split="denoiser")
    >>> X_train, _ = load_digits_for_denoising(split="train")
    >>> denoiser = train_ddpm_denoiser(X_trusted, refuse=X_train, image_shape=(1, 8, 8),
    ...                                block_out_channels=(8, 16), n_steps=2)
    >>> denoiser.denoise(X_train[:2], sigma=0.5).shape
    (2, 64)
    >>> train_ddpm_denoiser(X_train, refuse=X_train, image_shape=(1, 8, 8))
    Traceback (most recent call last):
    ...
    ValueError: 809 rows of refuse (first: row 0) are also rows of X_trusted...
    """
    import torch

    from sklearn_certify.partition import row_digests

    X_trusted = np.asarray(X_trusted)
    images, shape = _trusted_images(X_trusted, image_shape)
    # digests of the rows as given (not of the float32 copy), as check_trusted_denoiser sees X
    digests = row_digests(X_trusted)
    if refuse is not None:
        _check_refused(digests, refuse)
    blocks = tuple(
        check_scalar_int("block_out_channels", c, min_value=8) for c in block_out_channels
    )
    if not blocks or any(c % 8 for c in blocks):
        raise ValueError(
            f"block_out_channels must be a non-empty sequence of multiples of 8, got "
            f"{tuple(block_out_channels)}."
        )
    factor = 2 ** (len(blocks) - 1)
    if shape[1] % factor or shape[2] % factor:
        raise ValueError(
            f"images of {shape[1]}x{shape[2]} cannot be downsampled {len(blocks) - 1} times; "
            "use fewer block_out_channels."
        )
    layers_per_block = check_scalar_int("layers_per_block", layers_per_block, min_value=1)
    n_steps = check_scalar_int("n_steps", n_steps, min_value=1)
    batch_size = check_scalar_int("batch_size", batch_size, min_value=1)
    learning_rate = check_positive("learning_rate", learning_rate)
    ema_decay = check_open_unit("ema_decay", ema_decay)
    random_state = check_scalar_int("random_state", random_state, min_value=0)

    diffusers = import_diffusers()
    scheduler = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(random_state)
        unet = diffusers.UNet2DModel(
            sample_size=shape[1] if shape[1] == shape[2] else shape[1:],
            in_channels=shape[0],
            out_channels=shape[0],
            block_out_channels=blocks,
            layers_per_block=layers_per_block,
            down_block_types=("DownBlock2D",) * len(blocks),
            up_block_types=("UpBlock2D",) * len(blocks),
            norm_num_groups=8,
        )
    move_unet(unet, device).train()
    average = [p.detach().clone() for p in unet.parameters()]
    optimizer = torch.optim.AdamW(unet.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=learning_rate, total_steps=n_steps, pct_start=0.05
    )
    generator = torch.Generator().manual_seed(random_state)
    x0_all = torch.from_numpy(2.0 * images - 1.0)
    abar = scheduler.alphas_cumprod
    n_timesteps = abar.shape[0]
    start = time.perf_counter()
    for step in range(n_steps):
        rows = torch.randint(0, x0_all.shape[0], (batch_size,), generator=generator)
        timesteps = torch.randint(1, n_timesteps, (batch_size,), generator=generator)
        noise = torch.randn((batch_size, *shape), generator=generator)
        a = abar[timesteps].view(-1, 1, 1, 1)
        x_t = (a.sqrt() * x0_all[rows] + (1 - a).sqrt() * noise).to(device)
        loss = torch.mean((unet(x_t, timesteps.to(device)).sample - noise.to(device)) ** 2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            for avg, param in zip(average, unet.parameters(), strict=True):
                avg.lerp_(param, 1.0 - ema_decay)
        if verbose and (step + 1) % 500 == 0:
            elapsed = time.perf_counter() - start
            print(f"step {step + 1}/{n_steps}  loss {loss.item():.4f}  {elapsed:.0f}s")
    with torch.no_grad():
        for avg, param in zip(average, unet.parameters(), strict=True):
            param.copy_(avg)
    return DDPMDenoiser(unet, scheduler, image_shape=shape, training_digests=digests)
