"""Denoisers trained by this project and shipped inside the package."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from sklearn_certify.denoisers._ddpm import DDPMDenoiser

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

__all__ = ["BUNDLED", "bundled_path", "load_bundled"]

#: Names of the shipped denoisers and what each was trained on.
BUNDLED = {
    "digits": "sklearn's 8x8 digits, rows of load_digits_for_denoising(split='denoiser')",
}


def bundled_path(name: str) -> Path:
    """The folder of a shipped denoiser, in the layout :meth:`DDPMDenoiser.from_pretrained` reads.

    Parameters
    ----------
    name : {"digits"}
        Which denoiser.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> from sklearn_certify.denoisers import bundled_path
    >>> sorted(p.name for p in bundled_path("digits").iterdir())
    ['model_index.json', 'provenance.json', 'scheduler', 'unet']
    """
    if name not in BUNDLED:
        raise ValueError(f"name must be one of {sorted(BUNDLED)}, got {name!r}.")
    return Path(str(files("sklearn_certify") / "data" / "denoisers" / name))


def load_bundled(
    name: str = "digits",
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
) -> DDPMDenoiser:
    """Load a denoiser that ships with the package.

    ``"digits"`` is a DDPM (``diffusers.UNet2DModel``, block channels (32, 64), about 0.65 M
    parameters, linear 1000-step schedule) trained by ``scripts/train_digits_denoiser.py``
    on exactly the rows of ``load_digits_for_denoising(split="denoiser")``. It denoises
    arrays of shape (n, 64) or (n, 1, 8, 8) in [0, 1]. It is a trusted denoiser only for
    digits it never saw: certify on ``load_digits_for_denoising(split="train")`` /
    ``"test"``, never on :func:`~sklearn_certify.datasets.load_digits`, whose ``"train"``
    split contains all its training rows (:func:`check_trusted_denoiser` refuses them).

    Parameters
    ----------
    name : {"digits"}, default="digits"
        Which denoiser.
    batch_size : int, default=256
        Images per UNet call.
    device : str or torch.device, default=None
        Where the UNet runs; ``None`` is the CPU.

    Returns
    -------
    DDPMDenoiser

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify.datasets import load_digits_for_denoising
    >>> from sklearn_certify.denoisers import load_bundled
    >>> X, _ = load_digits_for_denoising(split="test")
    >>> noise = np.random.default_rng(0).normal(scale=0.25, size=X.shape)
    >>> X_noisy = X + noise.astype(np.float32)
    >>> X_denoised = load_bundled("digits").denoise(X_noisy, sigma=0.25)
    >>> gain = np.mean((X_noisy - X) ** 2) / np.mean((X_denoised - X) ** 2)
    >>> bool(gain > 5)
    True
    """
    return DDPMDenoiser.from_pretrained(bundled_path(name), batch_size=batch_size, device=device)
