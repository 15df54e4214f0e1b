"""From a smoothing noise level on [0, 1] data to the diffusion timestep with that noise."""

from __future__ import annotations

import numpy as np

from sklearn_certify._validation import check_positive

__all__ = ["timestep_for_sigma"]


def timestep_for_sigma(alphas_cumprod, sigma: float) -> int:
    """The first diffusion timestep whose noise reaches ``sigma`` on data in [0, 1].

    A diffusion model sees images mapped from [0, 1] to [-1, 1], which doubles every
    perturbation: Gaussian noise of standard deviation ``sigma`` on the [0, 1] image is noise
    of standard deviation ``2 * sigma`` on the model's scale. Dividing the noisy sample of
    timestep ``t``, ``sqrt(abar_t) * x + sqrt(1 - abar_t) * eps``, by ``sqrt(abar_t)`` shows
    that timestep ``t`` carries noise ``sqrt((1 - abar_t) / abar_t)`` on that scale. The
    timestep returned is the smallest ``t >= 1`` with ``sqrt((1 - abar_t) / abar_t) >= 2 *
    sigma`` (timestep 0 is never returned), which is the rule of the diffusion denoised
    smoothing code of Carlini et al. (2023).

    Parameters
    ----------
    alphas_cumprod : array-like of shape (n_timesteps,)
        The cumulative products ``abar_t`` of the schedule, decreasing from about 1, indexed
        by timestep (e.g. ``DDPMScheduler.alphas_cumprod``; a CPU torch tensor is accepted).
        They are compared in float64.
    sigma : float
        Standard deviation of the Gaussian noise on data in [0, 1]; must be > 0.

    Returns
    -------
    int
        The timestep ``t*``, an index into ``alphas_cumprod``.

    Raises
    ------
    ValueError
        If ``sigma`` is not a finite number > 0, if ``alphas_cumprod`` is not a 1-D array of
        at least 2 values in (0, 1], or if no timestep of the schedule reaches ``2 * sigma``
        (the message gives the largest ``sigma`` the schedule can serve).

    Examples
    --------
    The linear 1000-step schedule of DDPM (Ho et al., 2020), as diffusers builds it:

    >>> import numpy as np
    >>> from sklearn_certify.denoisers import timestep_for_sigma
    >>> betas = np.linspace(1e-4, 0.02, 1000, dtype=np.float32)
    >>> alphas_cumprod = np.cumprod(1 - betas)
    >>> [timestep_for_sigma(alphas_cumprod, s) for s in (0.25, 0.5, 1.0)]
    [145, 259, 396]
    """
    sigma = check_positive("sigma", sigma)
    abar = np.asarray(alphas_cumprod, dtype=np.float64)
    if abar.ndim != 1 or abar.shape[0] < 2:
        raise ValueError(
            "alphas_cumprod must be a 1-D array with one value per timestep (at least 2), "
            f"got shape {abar.shape}."
        )
    if not np.all((abar > 0) & (abar <= 1)):
        raise ValueError("alphas_cumprod must hold values in (0, 1], one per timestep.")
    noise = np.sqrt((1.0 - abar[1:]) / abar[1:])
    reached = np.flatnonzero(noise >= 2.0 * sigma)
    if reached.size == 0:
        raise ValueError(
            f"sigma={sigma} is beyond this schedule: its last timestep carries noise "
            f"{noise.max() / 2:.6g} on [0, 1] data (sqrt((1 - abar) / abar) / 2). Use a smaller "
            "sigma or a schedule with more noise."
        )
    return int(reached[0]) + 1
