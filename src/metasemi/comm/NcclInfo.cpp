// Compiled only when CMake found NCCL (see cmake/MetasemiNccl.cmake).
#include <nccl.h>

#include "metasemi/comm/Communicator.h"
#include "metasemi/core/Error.h"

namespace metasemi::comm {

std::string ncclVersion() {
  int code = 0;
  const ncclResult_t rc = ncclGetVersion(&code);
  MS_REQUIRE(rc == ncclSuccess, core::CommError, "ncclGetVersion failed: {}",
             ncclGetErrorString(rc));
  // Since NCCL 2.9 the code is major*10000 + minor*100 + patch.
  return fmt::format("{}.{}.{}", code / 10000, (code / 100) % 100, code % 100);
}

bool ncclAvailable() { return true; }

}  // namespace metasemi::comm
