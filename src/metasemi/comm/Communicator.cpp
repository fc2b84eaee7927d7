// Backend choice: the one place that maps --dist-backend and --gpu to a communicator.
#include "metasemi/comm/Communicator.h"

#include "metasemi/comm/Backends.h"
#include "metasemi/core/Error.h"

namespace metasemi::comm {

std::unique_ptr<Communicator> makeCommunicator(const Environment& env, Backend backend, bool gpu) {
  switch (backend) {
    case Backend::kAuto:
      if (gpu) return detail::makeNcclCommunicator(makeHostCommunicator(env));
      return makeHostCommunicator(env);
    case Backend::kMpi:
      MS_REQUIRE(!gpu, core::ConfigError,
                 "--dist-backend mpi: the MPI backend averages CPU tensors, but --gpu was given "
                 "(use --dist-backend nccl or auto with --gpu)");
      return makeHostCommunicator(env);
    case Backend::kNccl:
      MS_REQUIRE(ncclAvailable(), core::ConfigError,
                 "--dist-backend nccl: this build has no NCCL backend (configure with "
                 "-DMETASEMI_WITH_NCCL=ON on a machine with the CUDA toolkit and NCCL)");
      MS_REQUIRE(gpu, core::ConfigError,
                 "--dist-backend nccl: NCCL averages GPU tensors, but --gpu was not given");
      return detail::makeNcclCommunicator(makeHostCommunicator(env));
  }
  MS_THROW(core::ConfigError, "--dist-backend: unknown backend");
}

}  // namespace metasemi::comm
