#!/usr/bin/env bash
# GPU check for a lent GPU machine (issue 21): at most 5 minutes on one GPU.
#
#   pip install -e ".[cuda12]" && bash benchmarks/gpu_check.sh [--quick]
#
# Prints (lines starting with GPUCHECK): the devices; the Martinez lifter pmap step on all
# devices (global batch 1024 and 8192 per device); the CameraPose stage-3 iteration at batch
# 1024; P-MPJPE throughput over 1M pose pairs; Horn/QCP vs batched-SVD Procrustes on this device
# and which one is faster. Each part is guarded; the whole run is killed after 300 s.
set -u
cd "$(dirname "$0")/.."
limit="${GPU_CHECK_TIMEOUT_S:-300}"
# no preallocation: the pmap and CameraPose parts run in one process
export XLA_PYTHON_CLIENT_PREALLOCATE="${XLA_PYTHON_CLIENT_PREALLOCATE:-false}"
python -c "import jax; print('jax', jax.__version__, 'backend', jax.default_backend(), jax.devices())"
timeout -s INT "${limit}" python -m benchmarks.gpu_check "$@"
rc=$?
if [ "$rc" -eq 124 ] || [ "$rc" -eq 130 ]; then
  echo "gpu_check: stopped after ${limit} s (rerun parts with --only pmap|camerapose|procrustes)"
fi
exit "$rc"
