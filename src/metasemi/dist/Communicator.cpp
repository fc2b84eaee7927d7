// Backend choice: the one place that maps --dist-backend and --gpu to a communicator.
#include "metasemi/dist/Communicator.h"

#include "metasemi/core/Error.h"
#include "metasemi/dist/Backends.h"

namespace metasemi::dist {

std::unique_ptr<Communicator> makeCommunicator(const Environment& env, core::DistBackend backend,
                                               bool gpu) {
  switch (backend) {
    case core::DistBackend::kAuto:
      if (gpu) return detail::makeNcclCommunicator(makeHostCommunicator(env));
      return makeHostCommunicator(env);
    case core::DistBackend::kMpi:
      MS_REQUIRE(!gpu, core::ConfigError,
                 "--dist-backend mpi: the MPI backend averages CPU tensors, but --gpu was given "
                 "(use --dist-backend nccl or auto with --gpu)");
      return makeHostCommunicator(env);
    case core::DistBackend::kNccl:
      MS_REQUIRE(ncclAvailable(), core::ConfigError,
                 "--dist-backend nccl: this build has no NCCL backend (configure with "
                 "-DMETASEMI_WITH_NCCL=ON on a machine with the CUDA toolkit and NCCL)");
      MS_REQUIRE(gpu, core::ConfigError,
                 "--dist-backend nccl: NCCL averages GPU tensors, but --gpu was not given");
      return detail::makeNcclCommunicator(makeHostCommunicator(env));
  }
  MS_THROW(core::ConfigError, "--dist-backend: unknown backend");
}

}  // namespace metasemi::dist
