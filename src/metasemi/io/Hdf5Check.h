// Check macro for HDF5 calls; private to io/*.cpp (the only files that include hdf5.h).
#pragma once

#include <hdf5.h>

#include <string>

#include "metasemi/core/Error.h"

namespace metasemi::io::detail {
/// The messages of HDF5's current error stack, innermost last, joined by "; ".
std::string hdf5ErrorStack();
[[noreturn]] void throwHdf5Error(const char* expr, const std::string& context, const char* file,
                                 int line);
}  // namespace metasemi::io::detail

/// Evaluates an HDF5 call; a negative result throws core::IoError naming `context` (usually the
/// file and object), the call and HDF5's error stack.
#define MS_H5_CHECK(call, context)                                                  \
  ([&]() {                                                                          \
    auto msH5Rc_ = (call);                                                          \
    if (msH5Rc_ < 0) {                                                              \
      ::metasemi::io::detail::throwHdf5Error(#call, (context), __FILE__, __LINE__); \
    }                                                                               \
    return msH5Rc_;                                                                 \
  }())
