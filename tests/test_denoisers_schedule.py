"""timestep_for_sigma: the official first-t rule on the linear and cosine schedules."""

import math

import numpy as np
import pytest
import torch

from sklearn_certify.denoisers import timestep_for_sigma


def linear_alphas_cumprod():
    """The linear 1000-step DDPM schedule in float32, as diffusers' DDPMScheduler builds it."""
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float32)
    return torch.cumprod(1.0 - betas, dim=0)


def cosine_alphas_cumprod(n_timesteps=4000, max_beta=0.999):
    """The cosine schedule of improved-diffusion (Nichol & Dhariwal 2021), in float64.

    beta_i = min(1 - f((i + 1) / T) / f(i / T), max_beta) with
    f(t) = cos((t + 0.008) / 1.008 * pi / 2) ** 2, and abar = cumprod(1 - beta).
    """

    def f(t):
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = np.array(
        [min(1 - f((i + 1) / n_timesteps) / f(i / n_timesteps), max_beta)
         for i in range(n_timesteps)],
        dtype=np.float64,
    )
    return np.cumprod(1.0 - betas)


def first_t_loop(alphas_cumprod, sigma):
    """The loop of the reference code, step by step: t = 1, 2, ... until the noise reaches 2σ."""
    abar = np.asarray(alphas_cumprod, dtype=np.float64)
    t, real = 0, 0.0
    while real < 2 * sigma:
        t += 1
        real = math.sqrt(1 - abar[t]) / math.sqrt(abar[t])
    return t


@pytest.mark.parametrize(("sigma", "expected"), [(0.12, 70), (0.25, 145), (0.5, 259), (1.0, 396)])
def test_linear_schedule(sigma, expected):
    assert timestep_for_sigma(linear_alphas_cumprod(), sigma) == expected


def test_linear_schedule_of_diffusers_scheduler():
    from diffusers import DDPMScheduler

    abar = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear").alphas_cumprod
    assert torch.equal(abar, linear_alphas_cumprod())
    assert [timestep_for_sigma(abar, s) for s in (0.25, 0.5, 1.0)] == [145, 259, 396]


@pytest.mark.parametrize(
    ("sigma", "expected"), [(0.12, 573), (0.25, 1158), (0.5, 1984), (1.0, 2809)]
)
def test_cosine_schedule(sigma, expected):
    assert timestep_for_sigma(cosine_alphas_cumprod(), sigma) == expected


@pytest.mark.parametrize("sigma", [1e-4, 0.01, 0.0707, 0.3, 0.77, 2.0, 5.0, 30.0])
def test_vectorized_rule_equals_the_loop(sigma):
    for abar in (linear_alphas_cumprod(), cosine_alphas_cumprod()):
        assert timestep_for_sigma(abar, sigma) == first_t_loop(abar, sigma)


def test_first_timestep_whose_noise_reaches_twice_sigma():
    abar = cosine_alphas_cumprod().astype(np.float64)
    noise = np.sqrt((1 - abar) / abar)
    t = timestep_for_sigma(abar, 0.5)
    assert noise[t] >= 1.0 > noise[t - 1]
    # exactly on a level: that timestep, not the next
    assert timestep_for_sigma(abar, noise[t] / 2) == t
    # timestep 0 is never returned, however small sigma is
    assert timestep_for_sigma(abar, 1e-12) == 1


@pytest.mark.parametrize("sigma", [0.0, -0.25, float("nan"), float("inf")])
def test_sigma_must_be_positive_and_finite(sigma):
    with pytest.raises(ValueError, match="sigma"):
        timestep_for_sigma(linear_alphas_cumprod(), sigma)


def test_sigma_must_be_a_number():
    with pytest.raises(TypeError, match="sigma"):
        timestep_for_sigma(linear_alphas_cumprod(), "0.5")


def test_sigma_beyond_the_schedule():
    with pytest.raises(ValueError, match=r"sigma=100.0 is beyond this schedule.*78\.7"):
        timestep_for_sigma(linear_alphas_cumprod(), 100.0)


@pytest.mark.parametrize(
    "abar", [np.ones((2, 3)) * 0.5, np.array([0.9]), np.array([0.9, 0.0]), np.array([1.2, 0.5])]
)
def test_bad_alphas_cumprod(abar):
    with pytest.raises(ValueError, match="alphas_cumprod"):
        timestep_for_sigma(abar, 0.5)
