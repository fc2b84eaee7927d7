// Preemption: a batch system announces the end of a job with SIGUSR1 (Slurm's --signal) or
// SIGTERM (scancel, node shutdown). The handler only sets a flag; the training loop asks every
// step, collectively, whether any rank was signalled, so all ranks stop after the same step, rank
// 0 writes a checkpoint, and the program exits with core::kExitPreempted (75, EX_TEMPFAIL), the
// code on which a job script requeues the job.
#pragma once

#include "metasemi/comm/Communicator.h"

namespace metasemi::train {

/// Installs the SIGUSR1 and SIGTERM handlers for the lifetime of the object and restores the
/// previous ones on destruction. Create one, early in the trainer, on every rank.
class PreemptionHandler {
 public:
  PreemptionHandler();
  ~PreemptionHandler();
  PreemptionHandler(const PreemptionHandler&) = delete;
  PreemptionHandler& operator=(const PreemptionHandler&) = delete;
};

/// True when this process received SIGUSR1 or SIGTERM since the handlers were installed (or the
/// flag was last cleared). Local: other ranks may not have been signalled.
bool preemptionRequested() noexcept;

/// The signal number received (SIGUSR1, SIGTERM), 0 when none.
int preemptionSignal() noexcept;

/// Sets the flag as the signal handler would (for tests and for a time limit the program
/// enforces itself).
void requestPreemption(int signal) noexcept;

/// Clears the flag.
void clearPreemption() noexcept;

/// Collective (every rank calls it once per step, at the same step): true on every rank when at
/// least one rank was signalled, so that all ranks finish the same step and stop together.
bool shouldStop(comm::Communicator& comm);

}  // namespace metasemi::train
