"""Benchmark the one-shot denoiser: throughput of DDPMDenoiser.denoise against the bare UNet.

Run ``python benchmarks/bench_denoise.py`` (``--quick`` for a smoke run, ``--write`` to update
the ``## bench_denoise`` section of ``benchmarks/RESULTS.md``, ``--device cuda`` for a GPU).

The bundled digits denoiser denoises all 1,797 digits under Gaussian noise (``sigma`` 0.5) in
batches of ``--batch-size``. Three ways are timed in the same run, interleaved, minimum of
``--repeats``:

* ``bare``: the UNet forward alone, ``unet(x_t, t).sample`` on each batch of a float32 tensor
  that already sits on the device, under ``torch.no_grad()``; no scaling, no clipping, no
  copies: the floor any one-shot denoiser pays;
* ``denoise (tensor)``: ``denoiser.denoise(X, sigma)`` on a float32 tensor on the device;
* ``denoise (numpy)``: ``denoiser.denoise(X, sigma)`` on a float32 numpy array, which adds the
  copies to the device and back.

Target: the wrapper at >= 0.9x the bare forward's images per second.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch
from _results import write_section

from sklearn_certify.datasets import load_digits
from sklearn_certify.denoisers import load_bundled

SIGMA = 0.5


def cpu_name() -> str:
    """The processor's model name from /proc/cpuinfo, where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device) -> float:
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    denoiser = load_bundled("digits", batch_size=args.batch_size, device=args.device)
    device = denoiser.device
    X, _ = load_digits()
    if args.quick:
        X = X[:256]
    rng = np.random.default_rng(0)
    X_noisy = (X + SIGMA * rng.standard_normal(X.shape)).astype(np.float32)
    X_tensor = torch.from_numpy(X_noisy).to(device)
    images = X_tensor.reshape(-1, *denoiser.image_shape)
    t_star = denoiser.timestep(SIGMA)

    def bare():
        with torch.no_grad():
            for lo in range(0, images.shape[0], args.batch_size):
                _ = denoiser.unet(images[lo : lo + args.batch_size], t_star).sample

    cases = {
        "bare UNet forward": bare,
        "denoise (tensor on device)": lambda: denoiser.denoise(X_tensor, SIGMA),
        "denoise (numpy in and out)": lambda: denoiser.denoise(X_noisy, SIGMA),
    }
    for fn in cases.values():  # warm-up (kernel selection, allocator)
        fn()
    seconds = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, fn in cases.items():
            seconds[name].append(timed(fn, device))
    best = {name: min(values) for name, values in seconds.items()}
    return {
        "n_images": X.shape[0],
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "t_star": t_star,
        "best": best,
    }


def report(result, args) -> str:
    bare = result["best"]["bare UNet forward"]
    lines = [
        "## bench_denoise",
        "",
        f"Machine: {result['device']} ({result['device_name']}), torch {torch.__version__}, "
        f"{args.threads} torch thread(s). Command: `python benchmarks/bench_denoise.py"
        f"{' --device ' + args.device if args.device != 'cpu' else ''}"
        f" --batch-size {args.batch_size} --threads {args.threads}`.",
        "",
        f"The bundled digits denoiser on {result['n_images']} noisy digits (sigma {SIGMA}, "
        f"t* = {result['t_star']}), batches of {args.batch_size}, minimum of {args.repeats} "
        "interleaved runs. Target: denoise >= 0.9x the bare forward.",
        "",
        "| case | seconds | images/s | vs bare forward |",
        "|---|---|---|---|",
    ]
    for name, seconds in result["best"].items():
        lines.append(
            f"| {name} | {seconds:.4f} | {result['n_images'] / seconds:,.0f} | "
            f"{bare / seconds:.2f}x |"
        )
    return "\n".join(lines) + "\n"



def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="256 images, one repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = 1
    text = report(run(args), args)
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
