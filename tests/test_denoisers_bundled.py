"""The bundled digits denoiser: quality on held-out digits, its trusted split, its packaging."""

import configparser
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sklearn_certify.datasets import load_digits, load_digits_for_denoising
from sklearn_certify.denoisers import (
    BUNDLED,
    DDPMDenoiser,
    bundled_path,
    check_trusted_denoiser,
    load_bundled,
)
from sklearn_certify.partition import row_digests
from tests._denoiser_helpers import one_thread  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
SIGMAS = (0.1, 0.25, 0.5, 1.0)


@pytest.fixture(scope="module")
def denoiser():
    return load_bundled("digits")


@pytest.fixture(scope="module")
def provenance():
    return json.loads((bundled_path("digits") / "provenance.json").read_text())


def mse_gains(denoiser, X, seed=0):
    """MSE of the noisy images over MSE of the denoised ones; noise from one fixed seed."""
    noise = np.random.default_rng(seed).standard_normal(X.shape).astype(np.float32)
    gains = {}
    for sigma in SIGMAS:
        X_noisy = X + sigma * noise
        X_denoised = denoiser.denoise(X_noisy, sigma)
        assert X_denoised.shape == X.shape and X_denoised.dtype == np.float32
        assert 0 <= X_denoised.min() and X_denoised.max() <= 1
        gains[sigma] = np.mean((X_noisy - X) ** 2) / np.mean((X_denoised - X) ** 2)
    return gains


def test_cuts_the_mse_of_held_out_digits_at_least_5x_at_sigma_025(denoiser, provenance):
    X_test, _ = load_digits_for_denoising(split="test")
    gains = mse_gains(denoiser, X_test)
    assert gains[0.25] >= 5.0
    assert all(gain > 1.0 for gain in gains.values())
    # the numbers the training script recorded (and the user guide quotes) are these
    recorded = provenance["mse_gain_on_test_split"]
    for sigma, gain in gains.items():
        assert gain == pytest.approx(recorded[str(sigma)], abs=0.01)


def test_images_and_rows_denoise_alike(denoiser):
    X, _ = load_digits_for_denoising(split="test", shape="image")
    X_noisy = X[:20] + 0.5 * np.random.default_rng(1).standard_normal(X[:20].shape)
    X_noisy = X_noisy.astype(np.float32)
    images = denoiser.denoise(X_noisy, 0.5)
    assert images.shape == (20, 1, 8, 8)
    np.testing.assert_allclose(denoiser.denoise(X_noisy.reshape(20, 64), 0.5),
                               images.reshape(20, 64), atol=1e-6)


def test_trained_on_exactly_the_trusted_split(denoiser, provenance):
    trusted, _ = load_digits_for_denoising(split="denoiser")
    assert set(denoiser.training_digests) == set(row_digests(trusted))
    assert len(denoiser.training_digests) == len(trusted) == 718
    assert provenance["trained_on"].endswith("load_digits_for_denoising(split='denoiser')")


def test_trusted_split_is_disjoint_from_the_certification_splits(denoiser):
    parts = {s: load_digits_for_denoising(split=s) for s in ("denoiser", "train", "test")}
    digests = {s: set(row_digests(X)) for s, (X, _) in parts.items()}
    assert not digests["denoiser"] & digests["train"]
    assert not digests["denoiser"] & digests["test"]
    assert not digests["train"] & digests["test"]
    X_all, _ = load_digits()
    assert set.union(*digests.values()) == set(row_digests(X_all))
    assert sum(len(X) for X, _ in parts.values()) == len(X_all)
    # stratified: every digit in every part
    assert all(set(y.tolist()) == set(range(10)) for _, y in parts.values())
    check_trusted_denoiser(denoiser, parts["train"][0])
    check_trusted_denoiser(denoiser, parts["test"][0])
    # load_digits and its train split contain the denoiser's training rows: refused
    for X in (X_all, load_digits(split="train")[0]):
        with pytest.raises(ValueError, match=r"718 of the .* rows the denoiser was trained on"):
            check_trusted_denoiser(denoiser, X)


def test_split_options_keep_the_trusted_part_fixed():
    trusted, _ = load_digits_for_denoising(split="denoiser")
    raw, _ = load_digits_for_denoising(split="denoiser", raw=True, shape="image")
    assert raw.dtype == np.uint8 and raw.shape == (718, 1, 8, 8)
    np.testing.assert_array_equal(raw.reshape(718, 64) / 16, trusted)
    train, _ = load_digits_for_denoising(split="train", test_size=0.5)
    test, _ = load_digits_for_denoising(split="test", test_size=0.5)
    assert len(train) + len(test) == 1797 - 718
    X17, y17 = load_digits_for_denoising(split="test", digits=(1, 7))
    assert set(y17.tolist()) == {1, 7}
    assert set(row_digests(X17)) <= set(row_digests(load_digits_for_denoising(split="test")[0]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"split": "all"}, "split must be 'denoiser', 'train' or 'test'"),
     ({"split": "train", "digits": (3, 11)}, "digits must be a non-empty subset"),
     ({"split": "test", "test_size": 1.5}, "test_size")],
)
def test_split_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_digits_for_denoising(**kwargs)


def test_bundled_folder_is_small_and_loads_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = bundled_path("digits")
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    assert weights.is_file() and weights.stat().st_size < 4_000_000
    assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) < 5_000_000
    loaded = DDPMDenoiser.from_pretrained(folder)
    assert loaded.image_shape == (1, 8, 8) and loaded.timestep(0.25) == 145
    assert sum(p.numel() for p in loaded.unet.parameters()) < 1_000_000


def test_package_data_ships_the_nested_folders():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    patterns = config["options.package_data"]["sklearn_certify"].split()
    package = ROOT / "sklearn_certify"
    shipped = {p for pattern in patterns for p in package.glob(pattern) if p.is_file()}
    bundled = {p for p in (package / "data").rglob("*") if p.is_file()}
    assert bundled and bundled <= shipped


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is usable here")
def test_cuda_on_a_cpu_only_torch_is_a_clear_error():
    """It was a raw AssertionError ('Torch not compiled with CUDA enabled')."""
    with pytest.raises(ValueError, match=r"device='cuda' cannot be used.*device=None or 'cpu'"):
        load_bundled("digits", device="cuda")


def test_unknown_bundled_name():
    assert set(BUNDLED) == {"digits"}
    with pytest.raises(ValueError, match=r"name must be one of \['digits'\]"):
        load_bundled("cifar10")


def test_pickles_and_copies_with_its_record(denoiser):
    import copy
    import pickle

    X, _ = load_digits_for_denoising(split="test")
    expected = denoiser.denoise(X[:10], 0.5)
    for clone in (pickle.loads(pickle.dumps(denoiser)), copy.deepcopy(denoiser)):
        np.testing.assert_array_equal(clone.denoise(X[:10], 0.5), expected)
        np.testing.assert_array_equal(clone.training_digests, denoiser.training_digests)
