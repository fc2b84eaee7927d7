#!/usr/bin/env bash
# Configures and builds the project with a CMake preset (default: "default" into build/).
# Usage: env/build.sh [preset] [extra cmake -D options...]
#   METASEMI_BUILD_TARGETS  build only these targets (space-separated; default: all)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
preset="${1:-default}"
shift || true
# ccache lives outside the clone so fresh clones on the same machine build warm.
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/metasemi-ccache}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
# Paths below the clone are hashed relative to it, so another clone of the same sources hits.
export CCACHE_BASEDIR="$root"
cd "$root"
cmake --preset "$preset" "$@" > /dev/null
# Each TU that includes torch needs ~1 GB while compiling: cap parallel jobs by memory too.
mem_gb=$(awk '/MemAvailable/ {print int($2 / 1048576)}' /proc/meminfo)
jobs=$(nproc)
(( mem_gb / 2 < jobs )) && jobs=$(( mem_gb / 2 > 0 ? mem_gb / 2 : 1 ))
targets=()
[ -n "${METASEMI_BUILD_TARGETS:-}" ] && read -r -a targets <<< "$METASEMI_BUILD_TARGETS"
cmake --build --preset "$preset" -j "$jobs" ${targets[@]:+--target "${targets[@]}"}
