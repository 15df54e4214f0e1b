#!/usr/bin/env bash
# The checks that need a CUDA device, in one go: the CUDA tests, then the benchmarks on the GPU.
# Usage: bash benchmarks/run_gpu_checks.sh OUTDIR [SECTIONS]
#   SECTIONS: comma-separated subset of tests,dpa,smoothing,cohen,denoise,denoised,mnist
#   (default: all).
# Each section's output goes to OUTDIR/<section>.log (benchmarks print one JSON line per case).
set -uo pipefail
out=${1:?usage: run_gpu_checks.sh OUTDIR [SECTIONS]}
sections=${2:-tests,dpa,smoothing,cohen,denoise,denoised,mnist}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
has() { [[ ",$sections," == *",$1,"* ]]; }
nvidia-smi -L | tee "$out/device.log"
python3 -c "import torch, sklearn, skorch; print('torch', torch.__version__, 'sklearn', \
sklearn.__version__, 'skorch', skorch.__version__)" | tee -a "$out/device.log"
if has tests; then
  python3 -m pytest -q -p no:cacheprovider tests/test_ensemble_cuda.py tests/test_cohen_cuda.py \
    "tests/test_ensemble_vectorized.py::test_verbose_and_cuda_device_request" \
    "tests/test_denoisers_ddpm.py::test_cuda_matches_cpu" 2>&1 | tail -25 | tee "$out/tests.log"
fi
if has dpa; then
  python3 benchmarks/bench_dpa.py --device cuda --no-art --no-rss --repeats 2 --cases mnist,loop \
    --batch-sizes 64 2>&1 | grep '^{' | tee "$out/dpa.log"
fi
if has smoothing; then
  python3 benchmarks/bench_smoothing.py --device cuda --repeats 2 --cases fit,loop,scaling \
    2>&1 | grep '^{\|^\[' | tee "$out/smoothing.log"
fi
if has cohen; then
  python3 benchmarks/bench_cohen.py --device cuda --samples 1000 10000 2>&1 | tee "$out/cohen.log"
fi
if has denoise; then
  python3 benchmarks/bench_denoise.py --device cuda 2>&1 | tee "$out/denoise.log"
fi
if has denoised; then
  python3 benchmarks/bench_denoised_smoothing.py --device cuda --cases cost 2>&1 \
    | tee "$out/denoised.log"
fi
if has mnist; then  # BatchNorm CNN, MultiStepLR, random crops on real MNIST: DPA k=50, RAB N=100
  { python3 benchmarks/bench_mnist_cnn.py --device cuda --cases dpa --members 50 --repeats 2
    python3 benchmarks/bench_mnist_cnn.py --device cuda --cases rab --members 100 --repeats 2 \
      --loop-members 10
  } 2>&1 | tee "$out/mnist.log"
fi
