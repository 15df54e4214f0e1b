"""Train the bundled digits denoiser and write it into the package.

Usage (from the repository root, with this checkout installed, ``pip install -e .``; about
9 minutes on one CPU core)::

    python scripts/train_digits_denoiser.py [--out sklearn_certify/data/denoisers/digits]

The model is trained only on the trusted rows, ``load_digits_for_denoising(split="denoiser")``;
training refuses to start if any row of the certification splits ("train", "test") is among
them. One torch thread and deterministic algorithms make the weights bit-identical across
runs on the same torch version. The script then prints the mean squared error of the noisy
and the denoised held-out test digits at a few noise levels (the numbers in the user guide)
and stores them, with the recipe, in the folder's provenance.json.
"""

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

import sklearn_certify
from sklearn_certify.datasets import load_digits_for_denoising
from sklearn_certify.denoisers import train_ddpm_denoiser

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "sklearn_certify" / "data" / "denoisers" / "digits"

RECIPE = {
    "image_shape": (1, 8, 8),
    "block_out_channels": (32, 64),
    "layers_per_block": 1,
    "n_steps": 3000,
    "batch_size": 128,
    "learning_rate": 2e-3,
    "ema_decay": 0.999,
    "random_state": 0,
}
SIGMAS = (0.1, 0.25, 0.5, 1.0)
NOISE_SEED = 0  # the noise of the held-out evaluation (tests/test_denoisers_bundled.py uses it)


def mse_gains(denoiser, X, sigmas=SIGMAS, seed=NOISE_SEED):
    """MSE of the noisy images divided by the MSE of the denoised ones, per sigma."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(X.shape).astype(np.float32)
    gains = {}
    for sigma in sigmas:
        X_noisy = X + sigma * noise
        X_denoised = denoiser.denoise(X_noisy, sigma)
        gains[sigma] = float(np.mean((X_noisy - X) ** 2) / np.mean((X_denoised - X) ** 2))
    return gains


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    X_trusted, _ = load_digits_for_denoising(split="denoiser")
    X_certify = np.concatenate(
        [load_digits_for_denoising(split=split)[0] for split in ("train", "test")]
    )
    start = time.process_time()
    denoiser = train_ddpm_denoiser(X_trusted, refuse=X_certify, verbose=True, **RECIPE)
    cpu_seconds = time.process_time() - start

    X_test, _ = load_digits_for_denoising(split="test")
    gains = mse_gains(denoiser, X_test)
    n_params = sum(p.numel() for p in denoiser.unet.parameters())
    provenance = {
        "trained_on": "sklearn_certify.datasets.load_digits_for_denoising(split='denoiser')",
        "script": "scripts/train_digits_denoiser.py",
        "recipe": RECIPE,
        "parameters": n_params,
        "cpu_seconds": round(cpu_seconds),
        "versions": {
            "sklearn_certify": sklearn_certify.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "mse_gain_on_test_split": {str(s): round(g, 2) for s, g in gains.items()},
    }
    denoiser.save_pretrained(args.out, provenance=provenance)
    print(f"{n_params} parameters, {cpu_seconds:.0f} s of CPU; wrote {args.out}")
    for sigma, gain in gains.items():
        print(f"sigma {sigma}: MSE of the noisy test digits / MSE denoised = {gain:.2f}")


if __name__ == "__main__":
    main()
