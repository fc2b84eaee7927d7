// The training program's main loop: data, model, the MetaSemi step (or a baseline), gradient
// averaging across ranks, evaluation, checkpoints, exact resume and preemption.
#pragma once

#include <cstdint>
#include <functional>

#include "metasemi/comm/Communicator.h"
#include "metasemi/models/Network.h"
#include "metasemi/train/TrainConfig.h"

namespace metasemi::train {

/// Optional callbacks into the loop, for tests and tools.
struct TrainObserver {
  /// Called on every rank after each step's update (and the buffer broadcast), with the number
  /// of steps completed.
  std::function<void(std::int64_t stepsDone, const models::Network& net)> afterStep;
};

/// Collective: trains as `config` says on every rank of `comm` and returns the exit code:
/// core::kExitOk when the last step is done, core::kExitPreempted when SIGUSR1/SIGTERM stopped
/// the run after a checkpoint. Throws on errors (bad input files, non-finite loss, ...).
int runTraining(const train::TrainConfig& config, comm::Communicator& comm,
                const TrainObserver& observer = {});

}  // namespace metasemi::train
