#include "metasemi/train/Preemption.h"

#include <atomic>
#include <csignal>
#include <cstdint>

#include "metasemi/core/Error.h"

namespace metasemi::train {
namespace {

// Written from a signal handler: only a lock-free atomic is async-signal-safe.
std::atomic<int> gSignal{0};
static_assert(std::atomic<int>::is_always_lock_free, "signal flag must be lock-free");

extern "C" void onPreemptionSignal(int signal) { gSignal.store(signal, std::memory_order_relaxed); }

struct SavedHandlers {
  struct sigaction usr1 {};
  struct sigaction term {};
};
SavedHandlers gSaved;

}  // namespace

PreemptionHandler::PreemptionHandler() {
  struct sigaction action {};
  action.sa_handler = onPreemptionSignal;
  sigemptyset(&action.sa_mask);
  // Restart interrupted system calls (file reads, MPI's polling) instead of failing them.
  action.sa_flags = SA_RESTART;
  MS_CHECK(sigaction(SIGUSR1, &action, &gSaved.usr1) == 0, "sigaction(SIGUSR1) failed");
  MS_CHECK(sigaction(SIGTERM, &action, &gSaved.term) == 0, "sigaction(SIGTERM) failed");
}

PreemptionHandler::~PreemptionHandler() {
  sigaction(SIGUSR1, &gSaved.usr1, nullptr);
  sigaction(SIGTERM, &gSaved.term, nullptr);
}

bool preemptionRequested() noexcept { return gSignal.load(std::memory_order_relaxed) != 0; }

int preemptionSignal() noexcept { return gSignal.load(std::memory_order_relaxed); }

void requestPreemption(int signal) noexcept { gSignal.store(signal, std::memory_order_relaxed); }

void clearPreemption() noexcept { gSignal.store(0, std::memory_order_relaxed); }

bool shouldStop(comm::Communicator& comm) {
  std::int64_t flag = preemptionRequested() ? 1 : 0;
  comm.allreduceMax(&flag, 1);
  return flag != 0;
}

}  // namespace metasemi::train
