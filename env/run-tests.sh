#!/usr/bin/env bash
# The whole test suite from a fresh Debian 12 machine: install packages, build, run ctest
# (every label but gpu). Extra arguments go to ctest (e.g. -L unit).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/env/setup.sh"
"$root/env/build.sh" default
source "$root/env/mpi-env.sh"
cd "$root"
ctest --preset default "$@"
