#!/usr/bin/env bash
# The checks of the GPU path on a node with a GPU, CUDA, CMake, ninja and a pip PyTorch but none
# of the project's Debian packages. Prepare on a Debian machine (bundle in an ignored folder):
#   echo /.gpu-deps/ >> .git/info/exclude && ../shared/gpu-node/fetch-deps.sh .gpu-deps
# then run this from the checkout's root on the node. It builds the GPU targets against the
# node's PyTorch, runs the gpu tests, and the unit tests against the same build.
# Writes its logs under ${OUT:-gpu-check} and prints a summary line per stage.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${OUT:-$root/gpu-check}"
mkdir -p "$out"
cd "$root"
stage() {  # name, command...
  local name=$1 start=$SECONDS
  shift
  "$@" > "$out/$name.log" 2>&1
  local rc=$?
  echo "$name: exit $rc, $((SECONDS - start)) s (log: $out/$name.log)"
  return $rc
}
deps=/tmp/metasemi-deps
rm -rf "$deps" && stage unpack bash .gpu-deps/unpack-deps.sh .gpu-deps "$deps" || exit 1
# shellcheck disable=SC1091
. "$deps/env.sh"
. env/mpi-env.sh
Torch_DIR="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')/Torch"
export Torch_DIR
site="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
nccl="$site/nvidia/nccl"
nvidia-smi -L > "$out/gpus.txt" 2>&1
# shellcheck disable=SC2086
stage configure cmake --preset cluster-gpu $METASEMI_DEPS_CMAKE_ARGS -DMETASEMI_USE_CCACHE=OFF \
  -DNCCL_INCLUDE_DIR="$nccl/include" -DNCCL_LIBRARY="$(ls "$nccl"/lib/libnccl.so* | head -n1)" ||
  exit 1
stage build cmake --build --preset cluster-gpu -j "$(nproc)" || exit 1
stage gpu-tests ctest --test-dir build-gpu -L gpu --output-on-failure
stage unit-tests ctest --test-dir build-gpu -L unit -E '^unit_format$' -j 8 --output-on-failure
echo "gpu-node-check: done; logs in $out"
