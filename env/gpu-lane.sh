#!/usr/bin/env bash
# The cluster-gpu variant on a machine with the CUDA toolkit but no GPU: the LibTorch of a pip
# PyTorch (a CUDA build, LibTorch 2.x) in a virtual environment outside the clone, the NCCL of
# the same wheel set, every target built (the gpu tests included, not run), then the CPU tests
# run against that build. Extra arguments go to ctest.
#   METASEMI_TORCH_VENV     the virtual environment (default ~/.cache/metasemi-torch-venv;
#                           kept, so a second run downloads nothing)
#   METASEMI_TORCH_VERSION  the torch release (default 2.15.0)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${METASEMI_TORCH_VENV:-$HOME/.cache/metasemi-torch-venv}"
version="${METASEMI_TORCH_VERSION:-2.15.0}"
start=$(date +%s)
"$root/env/setup.sh"
command -v nvcc > /dev/null || [ -x /usr/local/cuda/bin/nvcc ] || {
  echo "gpu-lane: no CUDA toolkit (nvcc) on this machine" >&2
  exit 1
}
have() { "$venv/bin/python" -c "import sys, torch; sys.exit(torch.__version__.split('+')[0] != '$version')" 2> /dev/null; }
if ! have; then
  echo "gpu-lane: installing torch $version into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "torch==$version"
fi
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
export Torch_DIR="$site/torch/share/cmake/Torch"
nccl="$site/nvidia/nccl"
# The wheel has only libnccl.so.2, which find_library(nccl) does not match: name it.
"$root/env/build.sh" cluster-gpu -DMETASEMI_TEST_PYTHON="$("$root/env/test-venv.sh")" \
  -DNCCL_INCLUDE_DIR="$nccl/include" \
  -DNCCL_LIBRARY="$(ls "$nccl"/lib/libnccl.so* | head -n1)"
built=$(date +%s)
source "$root/env/mpi-env.sh"
cd "$root"
ctest --preset cpu-on-gpu-build "$@"
echo "gpu-lane: torch $version; setup and build $((built - start)) s, tests $(($(date +%s) - built)) s"
