#!/usr/bin/env bash
# The whole test suite from a fresh Debian 12 machine: install packages, build, run ctest
# (every label but gpu). Extra arguments go to ctest (e.g. -L unit).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/env/setup.sh"
# The Python readers (TensorBoard, safetensors) some tests check the files with.
python="$("$root/env/test-venv.sh")"
"$root/env/build.sh" default -DMETASEMI_TEST_PYTHON="$python"
source "$root/env/mpi-env.sh"
cd "$root"
ctest --preset default "$@"
# The same tests against LibTorch 2.x: the cluster-gpu variant built with a pip torch (CUDA
# build) wherever the CUDA toolkit is installed. METASEMI_GPU_LANE=0 skips it.
if [ "${METASEMI_GPU_LANE:-1}" != 0 ] && { command -v nvcc > /dev/null || [ -x /usr/local/cuda/bin/nvcc ]; }; then
  "$root/env/gpu-lane.sh" "$@"
fi
