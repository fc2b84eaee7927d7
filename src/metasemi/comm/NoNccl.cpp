// Compiled when the build has no NCCL backend.
#include "metasemi/comm/Backends.h"
#include "metasemi/comm/Communicator.h"
#include "metasemi/core/Error.h"

namespace metasemi::comm {

std::string ncclVersion() { return "not built"; }

bool ncclAvailable() { return false; }

int visibleGpuCount() { return 0; }

namespace detail {
std::unique_ptr<Communicator> makeNcclCommunicator(std::unique_ptr<Communicator>) {
  MS_THROW(core::ConfigError,
           "--gpu: this build has no NCCL/CUDA backend (configure with -DMETASEMI_WITH_NCCL=ON "
           "on a machine with the CUDA toolkit and NCCL)");
}
}  // namespace detail

}  // namespace metasemi::comm
