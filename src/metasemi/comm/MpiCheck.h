// Check macro for MPI calls; private to dist/*.cpp (the only files that include mpi.h).
#pragma once

#include <mpi.h>

#include <string>

#include "metasemi/core/Error.h"

namespace metasemi::comm::detail {
[[noreturn]] void throwMpiError(int code, const char* expr, const char* file, int line);
}  // namespace metasemi::comm::detail

#define MS_MPI_CHECK(call)                                                          \
  do {                                                                              \
    const int msMpiRc_ = (call);                                                    \
    if (msMpiRc_ != MPI_SUCCESS) {                                                  \
      ::metasemi::comm::detail::throwMpiError(msMpiRc_, #call, __FILE__, __LINE__); \
    }                                                                               \
  } while (false)
