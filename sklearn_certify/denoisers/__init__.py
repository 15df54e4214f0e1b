"""Denoisers for denoised smoothing: one-shot diffusion denoising, identity, any callable.

A denoiser is any object with ``denoise(X_noisy, sigma) -> X`` (same shape as the input,
values on the data's [0, 1] scale) or a plain callable with that signature
(:func:`as_denoiser`). :class:`DDPMDenoiser` denoises in one UNet call with a diffusers DDPM
at the timestep :func:`timestep_for_sigma` picks for the noise level; :func:`load_bundled`
gives the one trained on sklearn's digits; :func:`train_ddpm_denoiser` trains one on trusted
data. A denoiser used for certification must never be trained on the data being certified
(:func:`check_trusted_denoiser`).

diffusers is imported only when a DDPM is built or loaded, so ``import sklearn_certify``
stays fast.
"""

from sklearn_certify.denoisers._base import (
    Denoiser,
    IdentityDenoiser,
    as_denoiser,
    check_data_range,
    check_trusted_denoiser,
    overlapping_rows,
)
from sklearn_certify.denoisers._bundled import BUNDLED, bundled_path, load_bundled
from sklearn_certify.denoisers._ddpm import DDPMDenoiser
from sklearn_certify.denoisers._schedule import timestep_for_sigma
from sklearn_certify.denoisers._train import train_ddpm_denoiser

__all__ = [
    "BUNDLED",
    "DDPMDenoiser",
    "Denoiser",
    "IdentityDenoiser",
    "as_denoiser",
    "bundled_path",
    "check_data_range",
    "check_trusted_denoiser",
    "load_bundled",
    "overlapping_rows",
    "timestep_for_sigma",
    "train_ddpm_denoiser",
]
