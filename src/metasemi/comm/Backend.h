// The communication backends a run can ask for, without the communicators themselves.
#pragma once

#include <string>

namespace metasemi::comm {

/// Gradient-averaging backend.
enum class Backend { kAuto, kMpi, kNccl };

/// "auto", "mpi" or "nccl".
std::string toString(Backend b);

}  // namespace metasemi::comm
