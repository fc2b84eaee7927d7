// Compiled when the build has no NCCL backend.
#include "metasemi/dist/Communicator.h"

namespace metasemi::dist {

std::string ncclVersion() { return "not built"; }

bool ncclAvailable() { return false; }

}  // namespace metasemi::dist
