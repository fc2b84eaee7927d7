// What this build of the project contains, for `--version` / `--build-info` of every program.
#pragma once

#include <string>

namespace metasemi::app {

/// Multi-line report: project version, compiler, LibTorch, MPI, HDF5, Boost and NCCL versions
/// (NCCL's from ncclGetVersion when built in).
std::string buildInfo();

}  // namespace metasemi::app
