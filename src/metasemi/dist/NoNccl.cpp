// Compiled when the build has no NCCL backend.
#include "metasemi/core/Error.h"
#include "metasemi/dist/Backends.h"
#include "metasemi/dist/Communicator.h"

namespace metasemi::dist {

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

}  // namespace metasemi::dist
