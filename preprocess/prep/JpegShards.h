// JPEG files into shards that keep the original bytes (like im2rec --pass-through), optionally
// re-encoded to a maximum shorter side. MPI-parallel: shard k is written by rank k mod size,
// rank 0 writes the index. Resumable: shards are staged in `<out>/<split>.partial/` and a rerun
// keeps every staged shard whose inputs and options are unchanged and whose data checks out.
#pragma once

#include <string>
#include <vector>

#include "metasemi/comm/Communicator.h"

namespace metasemi::prep {

/// `metasemi-prep jpeg-shards` with its arguments (after the subcommand). Collective: every
/// rank of `comm` must call it. Returns the exit code (the same on every rank).
int runJpegShards(const std::vector<std::string>& args, comm::Communicator& comm);

}  // namespace metasemi::prep
