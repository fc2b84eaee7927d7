// metasemi-train on 2 MPI ranks when one rank fails (METASEMI_FAULT): an exception, a rank that
// stops answering, and a rank that vanishes all end the whole job with a non-zero code and the
// reason, instead of leaving the other rank waiting in a collective. Every run is wrapped in
// `timeout`, so a hang shows as exit code 124 rather than as a stuck test.
#include <fmt/format.h>

#include "support/TestSupport.h"
#include "support/TinyShards.h"

namespace fs = std::filesystem;
using metasemi::test::runCommand;

namespace {

struct Fixture {
  fs::path dir = metasemi::test::freshDir("train_faults");
  fs::path data = dir / "data";
  Fixture() { metasemi::test::writeTinyShards(data); }

  metasemi::test::RunResult run(const std::string& fault, const std::string& name,
                                const std::string& extra = "") const {
    return runCommand(
        fmt::format("METASEMI_FAULT={} timeout -s KILL 240 mpirun -np 2 -x METASEMI_FAULT {} {} "
                    "--total-steps 40 --test-freq 100 --print-freq 1 --save-path {} {} 2>&1",
                    fault, metasemi::test::binary("metasemi-train").string(),
                    metasemi::test::tinyTrainFlags(data), (dir / name).string(), extra));
  }
};

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(train_faults, Fixture)

BOOST_AUTO_TEST_CASE(exception_on_rank1_ends_both_ranks) {
  const auto r = run("throw:1:3", "throw");
  BOOST_TEST(r.exitCode != 0, r.output);
  BOOST_TEST(r.exitCode != 124, "the job hung: " << r.output);
  BOOST_TEST(r.exitCode != 137, "the job hung: " << r.output);
  BOOST_TEST(contains(r.output, "fault injected by METASEMI_FAULT at step 3"), r.output);
  // Rank 0 never got past the step rank 1 failed in.
  BOOST_TEST(!contains(r.output, "Step 00005/"), r.output);
}

BOOST_AUTO_TEST_CASE(silent_rank_trips_the_collective_timeout) {
  const auto r = run("hang:1:2", "hang", "--collective-timeout 5");
  BOOST_TEST(r.exitCode != 0, r.output);
  BOOST_TEST(r.exitCode != 137, "the job hung: " << r.output);
  BOOST_TEST(contains(r.output, "injecting 'hang' at step 2"), r.output);
  // Rank 0 names the collective it gave up on.
  BOOST_TEST(contains(r.output, "MPI_"), r.output);
}

BOOST_AUTO_TEST_CASE(vanished_rank_ends_the_job) {
  const auto r = run("exit:1:2", "exit");
  BOOST_TEST(r.exitCode != 0, r.output);
  BOOST_TEST(r.exitCode != 137, "the job hung: " << r.output);
  BOOST_TEST(contains(r.output, "injecting 'exit' at step 2"), r.output);
}

BOOST_AUTO_TEST_CASE(malformed_fault_spec_is_one_clear_line) {
  const auto r = runCommand(fmt::format(
      "METASEMI_FAULT=boom {} --dataset mnist --data-path {} --num-label 50 --total-steps 2 "
      "--save-path {} 2>&1",
      metasemi::test::binary("metasemi-train").string(), data.string(), (dir / "bad").string()));
  BOOST_TEST(r.exitCode == 2, r.output);
  BOOST_TEST(contains(r.output, "METASEMI_FAULT: expected <throw|hang|exit>:<rank>:<step>"),
             r.output);
}

BOOST_AUTO_TEST_SUITE_END()
