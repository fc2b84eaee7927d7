// A failure on one rank ends the whole two-rank job promptly with a non-zero exit code, whether
// the rank throws, stops answering (collective watchdog), or disappears. The helper runs under
// mpirun with an outer `timeout` so that a hang shows up as exit code 124, not as a stuck test.
#include "support/TestSupport.h"

namespace {

metasemi::test::RunResult runHelper(const std::string& mode) {
  const auto helper = metasemi::test::binary("metasemi-test-dist-failure");
  const std::string cmd =
      "timeout -k 5 60 mpirun --oversubscribe -np 2 " + helper.string() + " " + mode + " 2>&1";
  return metasemi::test::runCommand(cmd);
}

}  // namespace

BOOST_AUTO_TEST_CASE(exception_on_rank1_aborts_both_ranks) {
  const auto r = runHelper("throw");
  BOOST_TEST(r.exitCode != 0, r.output);
  BOOST_TEST(r.exitCode != 124, "the job hung:\n" << r.output);
  BOOST_TEST(r.output.find("[rank 1] dist_failure_helper: loss is not finite at step 5") !=
                 std::string::npos,
             r.output);
}

BOOST_AUTO_TEST_CASE(silent_rank_trips_the_watchdog_on_rank0) {
  const auto r = runHelper("hang");
  BOOST_TEST(r.exitCode != 0, r.output);
  BOOST_TEST(r.exitCode != 124, "the job hung:\n" << r.output);
  BOOST_TEST(r.output.find("[rank 0] dist_failure_helper: MPI_Allreduce did not complete") !=
                 std::string::npos,
             r.output);
}

BOOST_AUTO_TEST_CASE(vanished_rank_ends_the_job) {
  const auto r = runHelper("exit");
  BOOST_TEST(r.exitCode != 0, r.output);
  BOOST_TEST(r.exitCode != 124, "the job hung:\n" << r.output);
}
