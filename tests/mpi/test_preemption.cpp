// Two ranks: a signal delivered to one rank only makes both ranks stop after the same step.
#include <unistd.h>

#include <csignal>

#include "metasemi/core/Error.h"
#include "metasemi/train/Preemption.h"
#include "support/TestSupport.h"

using metasemi::test::comm;
namespace mt = metasemi::train;

namespace {

// Runs "steps" until shouldStop(); the signalled rank raises `signal` at `signalStep`. Returns
// the step after which this rank stopped.
int runUntilStopped(int signalledRank, int signal, int signalStep) {
  for (int step = 0; step < 1000; ++step) {
    if (comm().rank() == signalledRank && step == signalStep) {
      BOOST_TEST_REQUIRE(::kill(::getpid(), signal) == 0);
    }
    if (mt::shouldStop(comm())) return step;
  }
  return -1;
}

}  // namespace

BOOST_AUTO_TEST_CASE(sigusr1_on_rank1_stops_both_ranks_at_the_same_step) {
  BOOST_TEST_REQUIRE(comm().size() == 2);
  mt::PreemptionHandler handler;
  mt::clearPreemption();
  const int stopped = runUntilStopped(1, SIGUSR1, 17);
  // Only rank 1 saw the signal; rank 0 stopped because of the collective decision.
  const bool localFlagRight =
      comm().rank() == 1 ? mt::preemptionSignal() == SIGUSR1 : !mt::preemptionRequested();
  MS_COLLECTIVE_CHECK(stopped == 17);
  MS_COLLECTIVE_CHECK(localFlagRight);
  MS_COLLECTIVE_CHECK(metasemi::test::sameOnAllRanks(&stopped, sizeof(stopped)));
  mt::clearPreemption();
}

BOOST_AUTO_TEST_CASE(sigterm_on_rank0_stops_both_ranks) {
  mt::PreemptionHandler handler;
  mt::clearPreemption();
  const int stopped = runUntilStopped(0, SIGTERM, 3);
  MS_COLLECTIVE_CHECK(stopped == 3);
  MS_COLLECTIVE_CHECK(comm().rank() != 0 || mt::preemptionSignal() == SIGTERM);
  mt::clearPreemption();
}

BOOST_AUTO_TEST_CASE(no_signal_no_stop) {
  mt::PreemptionHandler handler;
  mt::clearPreemption();
  bool any = false;
  for (int step = 0; step < 20; ++step) any = any || mt::shouldStop(comm());
  MS_COLLECTIVE_CHECK(!any);
}

BOOST_AUTO_TEST_CASE(exit_code_is_documented_value) {
  BOOST_TEST(metasemi::core::kExitPreempted == 75);
}
