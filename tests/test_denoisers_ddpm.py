"""DDPMDenoiser on tiny random UNets: the one-shot step by hand, shapes, loading, bad input."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler, UNet2DModel

from sklearn_certify.denoisers import DDPMDenoiser, timestep_for_sigma
from tests._denoiser_helpers import noisy_images, one_thread, tiny_unet  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def denoiser():
    return DDPMDenoiser(tiny_unet(), DDPMScheduler(), batch_size=4)


def test_one_shot_step_equals_the_hand_computation(denoiser):
    sigma = 0.5
    X = noisy_images((10, 1, 8, 8), sigma)
    abar = DDPMScheduler().alphas_cumprod.double()
    t_star = timestep_for_sigma(abar, sigma)
    assert t_star == 259
    x = torch.from_numpy(X)
    x_t = abar[t_star].sqrt() * (2 * x.double() - 1)  # the noisy image scaled, no new noise
    with torch.no_grad():
        eps = denoiser.unet(x_t.float(), t_star).sample.double()
    x0 = (x_t - (1 - abar[t_star]).sqrt() * eps) / abar[t_star].sqrt()
    assert (x0.abs() > 1).any()  # the clipping below matters
    expected = ((x0.clamp(-1, 1) + 1) / 2).numpy()
    out = denoiser.denoise(X, sigma)
    np.testing.assert_allclose(out, expected, atol=2e-6)
    assert out.min() == 0.0 and out.max() == 1.0


def test_equals_diffusers_predicted_original_sample(denoiser):
    X = noisy_images((6, 1, 8, 8), 0.25)
    scheduler = DDPMScheduler()  # clip_sample=True: pred_original_sample clamped to [-1, 1]
    t_star = timestep_for_sigma(scheduler.alphas_cumprod, 0.25)
    x_t = scheduler.alphas_cumprod[t_star].sqrt() * (2 * torch.from_numpy(X) - 1)
    with torch.no_grad():
        eps = denoiser.unet(x_t, t_star).sample
    x0 = scheduler.step(eps, t_star, x_t).pred_original_sample
    np.testing.assert_allclose(denoiser.denoise(X, 0.25), ((x0 + 1) / 2).numpy(), atol=1e-6)


def test_unet_sees_the_scaled_noisy_image_at_t_star(denoiser):
    seen = []
    hook = denoiser.unet.register_forward_pre_hook(lambda module, args: seen.append(args))
    try:
        X = noisy_images((3, 64), 0.25)
        denoiser.denoise(X, 0.25)
    finally:
        hook.remove()
    (x_t, t), = seen
    abar = float(DDPMScheduler().alphas_cumprod[145])
    assert t == 145
    expected = math.sqrt(abar) * (2 * X.reshape(3, 1, 8, 8) - 1)
    np.testing.assert_allclose(x_t.numpy(), expected, rtol=1e-6, atol=1e-6)


def test_zero_noise_prediction_gives_back_the_clipped_input():
    unet = tiny_unet()
    with torch.no_grad():
        unet.conv_out.weight.zero_()
        unet.conv_out.bias.zero_()
    X = noisy_images((5, 64), 1.0)
    out = DDPMDenoiser(unet, DDPMScheduler()).denoise(X, 1.0)
    np.testing.assert_allclose(out, np.clip(X, 0, 1), atol=1e-6)


def test_deterministic_and_batch_size_invariant(denoiser):
    X = noisy_images((11, 64))
    first = denoiser.denoise(X, 0.5)
    np.testing.assert_array_equal(denoiser.denoise(X, 0.5), first)
    whole = DDPMDenoiser(denoiser.unet, denoiser.scheduler, batch_size=64).denoise(X, 0.5)
    np.testing.assert_allclose(whole, first, atol=1e-6)
    np.testing.assert_allclose(denoiser.denoise(X[5:6], 0.5), first[5:6], atol=1e-6)


def test_flat_rows_and_images_agree(denoiser):
    X = noisy_images((6, 64))
    flat = denoiser.denoise(X, 0.5)
    images = denoiser.denoise(X.reshape(6, 1, 8, 8), 0.5)
    assert flat.shape == (6, 64) and images.shape == (6, 1, 8, 8)
    np.testing.assert_array_equal(images.reshape(6, 64), flat)


def test_numpy_in_numpy_out_of_the_input_dtype(denoiser):
    X = noisy_images((3, 64)).astype(np.float64)
    out = denoiser.denoise(X, 0.5)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64


def test_tensor_in_tensor_out_usable_for_training(denoiser):
    X = torch.from_numpy(noisy_images((4, 1, 8, 8))).double()
    out = denoiser.denoise(X, 0.5)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    assert out.shape == X.shape and not out.requires_grad
    np.testing.assert_allclose(out.numpy(), denoiser.denoise(X.numpy(), 0.5))
    # not an inference-mode tensor: a model trained afterwards can save it for backward
    weight = torch.ones(64, dtype=torch.float64, requires_grad=True)
    (out.reshape(4, 64) * weight).sum().backward()


def test_empty_input(denoiser):
    assert denoiser.denoise(np.empty((0, 64), dtype=np.float32), 0.5).shape == (0, 64)


@pytest.mark.parametrize(("channels", "size"), [(3, 8), (2, 16), (4, 4)])
def test_channel_counts_and_image_sizes(channels, size):
    denoiser = DDPMDenoiser(tiny_unet(channels, size), DDPMScheduler(), batch_size=5)
    assert denoiser.image_shape == (channels, size, size)
    X = noisy_images((7, channels * size * size))
    flat = denoiser.denoise(X, 0.25)
    assert flat.shape == X.shape and 0 <= flat.min() and flat.max() <= 1
    images = denoiser.denoise(X.reshape(7, channels, size, size), 0.25)
    np.testing.assert_array_equal(images.reshape(7, -1), flat)
    # a UNet is convolutional: images larger than sample_size work too
    big = denoiser.denoise(noisy_images((2, channels, 2 * size, 2 * size)), 0.25)
    assert big.shape == (2, channels, 2 * size, 2 * size)


def test_declared_image_shape_for_flat_rows():
    denoiser = DDPMDenoiser(tiny_unet(1, 8), DDPMScheduler(), image_shape=(1, 4, 16))
    assert denoiser.denoise(noisy_images((2, 64)), 0.5).shape == (2, 64)
    seen = []
    hook = denoiser.unet.register_forward_pre_hook(lambda module, args: seen.append(args))
    denoiser.denoise(noisy_images((2, 64)), 0.5)
    hook.remove()
    assert seen[0][0].shape == (2, 1, 4, 16)


def save_layouts(denoiser, root):
    """The pipeline layout of save_pretrained and the flat layout of the hub's DDPM repos."""
    pipeline = root / "pipeline"
    denoiser.save_pretrained(pipeline)
    flat = root / "flat"
    denoiser.unet.save_pretrained(flat)
    denoiser.scheduler.save_pretrained(flat)
    return pipeline, flat


def test_from_pretrained_round_trip_without_network(denoiser, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pipeline, flat = save_layouts(denoiser, tmp_path)
    assert (pipeline / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert (pipeline / "scheduler" / "scheduler_config.json").is_file()
    assert (flat / "config.json").is_file() and (flat / "scheduler_config.json").is_file()
    X = noisy_images((5, 64))
    expected = denoiser.denoise(X, 0.5)
    for path in (pipeline, flat, str(flat)):
        loaded = DDPMDenoiser.from_pretrained(path, batch_size=2)
        assert loaded.image_shape == (1, 8, 8) and loaded.batch_size == 2
        assert loaded.training_digests is None
        for name, tensor in denoiser.unet.state_dict().items():
            assert torch.equal(loaded.unet.state_dict()[name], tensor), name
        np.testing.assert_allclose(loaded.denoise(X, 0.5), expected, atol=1e-5)
    # diffusers' own pipeline reads what save_pretrained wrote
    from diffusers import DDPMPipeline

    pipe = DDPMPipeline.from_pretrained(pipeline, local_files_only=True)
    assert pipe.unet.config.sample_size == 8


def test_provenance_round_trip(tmp_path):
    digests = np.array([bytes(range(32)), bytes(32)], dtype="S32")
    denoiser = DDPMDenoiser(tiny_unet(), DDPMScheduler(), training_digests=digests)
    denoiser.save_pretrained(tmp_path, provenance={"trained_on": "two rows"})
    record = json.loads((tmp_path / "provenance.json").read_text())
    assert record["trained_on"] == "two rows" and len(record["row_digests_sha256"]) == 2
    loaded = DDPMDenoiser.from_pretrained(tmp_path)
    np.testing.assert_array_equal(loaded.training_digests, digests)


def test_from_pretrained_needs_a_local_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"not a local directory.*snapshot_download"):
        DDPMDenoiser.from_pretrained("google/ddpm-cifar10-32")
    with pytest.raises(FileNotFoundError, match=r"unet/config\.json"):
        DDPMDenoiser.from_pretrained(tmp_path)


def test_device_argument_moves_the_unet():
    denoiser = DDPMDenoiser(tiny_unet(), DDPMScheduler(), device="cpu")
    assert denoiser.device == torch.device("cpu")
    assert "device='cpu'" in repr(denoiser)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(denoiser):
    X = noisy_images((9, 1, 8, 8))
    on_cpu = denoiser.denoise(X, 0.5)
    gpu = DDPMDenoiser(tiny_unet(), DDPMScheduler(), batch_size=4, device="cuda")
    assert gpu.device.type == "cuda"
    # cuDNN convolutions may run in TF32 on recent GPUs (1.1e-4 seen on an H200)
    np.testing.assert_allclose(gpu.denoise(X, 0.5), on_cpu, atol=1e-3)
    out = gpu.denoise(torch.from_numpy(X).cuda(), 0.5)
    assert out.device.type == "cuda"
    np.testing.assert_allclose(out.cpu().numpy(), on_cpu, atol=1e-3)
    out = gpu.denoise(torch.from_numpy(X), 0.5)  # a CPU tensor comes back on the CPU
    assert out.device.type == "cpu"


def test_import_does_not_load_diffusers():
    code = "import sys, sklearn_certify.denoisers; print('diffusers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("X", "error", "match"),
    [
        (np.zeros((2, 63), dtype=np.float32), ValueError, "rows of 63 values.*image_shape"),
        (np.zeros((2, 8, 8), dtype=np.float32), ValueError, r"\(n, d\).*\(n, C, H, W\)"),
        (np.zeros((2, 3, 8, 8), dtype=np.float32), ValueError, "3 channels, the unet takes 1"),
        (np.zeros((2, 1, 7, 7), dtype=np.float32), ValueError, "divisible"),
        (np.zeros((2, 64), dtype=np.int64), TypeError, "X_noisy must hold floating-point"),
        (np.full((2, 64), np.nan, dtype=np.float32), ValueError, "X_noisy contains NaN"),
        (
            np.full((2, 64), 16.0, dtype=np.float32),
            ValueError,
            r"X_noisy has values in \[16, 16\], outside \[0, 1\] widened by 10 \* sigma = 5",
        ),
    ],
)
def test_bad_inputs(denoiser, X, error, match):
    with pytest.raises(error, match=match):
        denoiser.denoise(X, 0.5)


def test_noisy_input_may_stray_ten_sigma_beyond_the_data_range(denoiser):
    """[0, 1] data plus noise is accepted; data on another scale (0..16 pixels) is refused."""
    assert denoiser.data_range == (0.0, 1.0)
    for edge in (-4.9, 5.9):  # within 10 * 0.5 of [0, 1]
        denoiser.denoise(np.full((1, 64), edge, dtype=np.float32), 0.5)
    for edge in (-5.1, 6.1):
        with pytest.raises(ValueError, match=r"outside \[0, 1\].*divide them by 16"):
            denoiser.denoise(np.full((1, 64), edge, dtype=np.float32), 0.5)
    with pytest.raises(ValueError, match="outside"):
        denoiser.denoise(torch.full((1, 1, 8, 8), 16.0), 0.25)


def test_a_device_torch_cannot_use_is_named():
    with pytest.raises(ValueError, match=r"device='gpu' cannot be used by this torch"):
        DDPMDenoiser(tiny_unet(), DDPMScheduler(), device="gpu")


@pytest.mark.parametrize(("sigma", "error"), [(0.0, ValueError), (-1, ValueError),
                                              (None, TypeError), (1000.0, ValueError)])
def test_bad_sigma(denoiser, sigma, error):
    with pytest.raises(error, match="sigma"):
        denoiser.denoise(np.zeros((1, 64), dtype=np.float32), sigma)


def test_bad_constructor_arguments():
    unet = tiny_unet()
    with pytest.raises(TypeError, match="unet must be a diffusers UNet2DModel"):
        DDPMDenoiser(lambda x, t: x, DDPMScheduler())
    with pytest.raises(TypeError, match="scheduler must have alphas_cumprod"):
        DDPMDenoiser(unet, object())
    with pytest.raises(ValueError, match="prediction_type='v_prediction'"):
        DDPMDenoiser(unet, DDPMScheduler(prediction_type="v_prediction"))
    variance = UNet2DModel(sample_size=8, in_channels=1, out_channels=2,
                           block_out_channels=(8, 16), norm_num_groups=4, layers_per_block=1,
                           down_block_types=("DownBlock2D", "DownBlock2D"),
                           up_block_types=("UpBlock2D", "UpBlock2D"))
    with pytest.raises(ValueError, match="out_channels == in_channels"):
        DDPMDenoiser(variance, DDPMScheduler())
    with pytest.raises(ValueError, match="image_shape must be"):
        DDPMDenoiser(unet, DDPMScheduler(), image_shape=(8, 8))
    with pytest.raises(ValueError, match="image_shape has 3 channels"):
        DDPMDenoiser(unet, DDPMScheduler(), image_shape=(3, 8, 8))
    with pytest.raises(ValueError, match="batch_size"):
        DDPMDenoiser(unet, DDPMScheduler(), batch_size=0)
