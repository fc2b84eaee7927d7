#include "metasemi/app/BuildInfo.h"

#include <torch/torch.h>

#include <fmt/format.h>

#include <boost/version.hpp>

#include "metasemi/BuildConfig.h"
#include "metasemi/comm/Communicator.h"
#include "metasemi/io/Hdf5.h"

namespace metasemi::app {

std::string buildInfo() {
  std::string nccl = comm::ncclVersion();
  if (build::kHaveNccl) nccl += fmt::format(" (header {})", build::kNcclHeaderVersion);
  return fmt::format(
      "metasemi {} ({} build, {})\n"
      "LibTorch: {} (CUDA {})\n"
      "MPI: {}\n"
      "HDF5: {}\n"
      "Boost: {}.{}.{}\n"
      "NCCL: {}\n",
      build::kVersion, build::kBuildType, build::kCompiler, TORCH_VERSION,
      torch::cuda::is_available() ? "available" : "not available", comm::mpiLibraryVersion(),
      io::hdf5Version(), BOOST_VERSION / 100000, BOOST_VERSION / 100 % 1000, BOOST_VERSION % 100,
      nccl);
}

}  // namespace metasemi::app
