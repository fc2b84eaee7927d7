// Constructors of the backends, private to dist/*.cpp: makeCommunicator() picks one.
#pragma once

#include <memory>

#include "metasemi/comm/Communicator.h"

namespace metasemi::comm::detail {

/// The NCCL backend on this rank's GPU; `host` (MPI or serial) carries the unique-id broadcast
/// and every host-memory collective. Collective over `host`. Throws ConfigError when the build
/// has no NCCL (NoNccl.cpp) or no GPU is visible.
std::unique_ptr<Communicator> makeNcclCommunicator(std::unique_ptr<Communicator> host);

}  // namespace metasemi::comm::detail
