"""Tiny random UNets and noisy images for the denoiser tests."""

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def one_thread():
    """One torch/OpenMP thread: tiny UNets slow down by orders of magnitude when oversubscribed."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(previous)


def tiny_unet(channels=1, size=8, seed=0):
    """A random two-level diffusers UNet2DModel with a few thousand parameters."""
    from diffusers import UNet2DModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return UNet2DModel(
            sample_size=size,
            in_channels=channels,
            out_channels=channels,
            block_out_channels=(8, 16),
            layers_per_block=1,
            norm_num_groups=4,
            down_block_types=("DownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "UpBlock2D"),
        )


def noisy_images(shape, sigma=0.5, seed=0):
    """Uniform clean values in [0, 1] plus Gaussian noise of standard deviation ``sigma``."""
    rng = np.random.default_rng(seed)
    clean = rng.uniform(0, 1, size=shape)
    return (clean + sigma * rng.standard_normal(shape)).astype(np.float32)
