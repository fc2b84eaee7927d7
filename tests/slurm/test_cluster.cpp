// The one-node test cluster of env/slurm/: it starts, runs a batch job whose `srun --mpi=pmix
// -n 2` step executes the two-rank communicator test, and stops again, also when a check fails.
// Its folder (from CMakeLists.txt) is deep on purpose: a socket path may not exceed 107 bytes,
// and start.sh must keep munged's and slurmstepd's sockets short wherever the folder is.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "support/TestSupport.h"

namespace fs = std::filesystem;
using metasemi::test::runCommand;

namespace {

// Starts the cluster in a fresh folder and stops it (and removes the folder) on destruction,
// whatever the test's outcome.
struct Cluster {
  fs::path dir;
  std::string env;
  Cluster() {
    dir = metasemi::test::harnessEnv("METASEMI_SLURM_TEST_DIR");  // below slurm_cluster/
    env = "METASEMI_SLURM_DIR=" + dir.string() + " METASEMI_SLURM_PORT=" + port() +
          " SLURM_CONF=" + (dir / "etc" / "slurm.conf").string() + " ";
    // A run killed by ctest's timeout cannot stop its cluster: stop it before starting afresh.
    stop();
    metasemi::test::freshDir("slurm_cluster");
  }
  ~Cluster() { stop(); }
  void stop() const {
    runCommand(env + metasemi::test::sourcePath("env/slurm/stop.sh").string() + " --purge");
  }
  static std::string port() {
    const char* p = std::getenv("METASEMI_SLURM_PORT");
    return p ? p : "16837";  // not start.sh's default, so a developer's own cluster is not hit
  }
  metasemi::test::RunResult run(const std::string& cmd) const { return runCommand(env + cmd); }
};

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_CASE(mpi_job_through_srun_pmix) {
  if (runCommand("command -v slurmctld && command -v munged").exitCode != 0) {
    BOOST_FAIL("slurm-wlm and munge are not installed (see env/packages.txt)");
  }
  Cluster cluster;
  const auto start = metasemi::test::sourcePath("env/slurm/start.sh").string();
  const auto started = cluster.run(start);
  BOOST_TEST_REQUIRE(started.exitCode == 0, started.output);
  BOOST_TEST(contains(started.output, "export SLURM_CONF="), started.output);
  // Idempotent: a second start finds the running cluster.
  const auto again = cluster.run(start);
  BOOST_TEST(again.exitCode == 0, again.output);

  const auto sinfo = cluster.run("sinfo -h -o '%P %a %t'");
  BOOST_TEST(contains(sinfo.output, "debug* up idle"), sinfo.output);

  const fs::path binary = fs::path(metasemi::test::harnessEnv("METASEMI_BIN_DIR")).parent_path() /
                          "tests" / "mpi_communicator";
  BOOST_TEST_REQUIRE(fs::exists(binary), binary << " is not built");
  const fs::path script = cluster.dir / "job.sh";
  const fs::path out = cluster.dir / "job.out";
  std::ofstream(script) << "#!/bin/bash\n"
                           "#SBATCH --job-name=metasemi-mpi-test\n"
                           "#SBATCH --ntasks=2\n"
                           "#SBATCH --time=5\n"
                           "set -e\n"
                           "srun --mpi=pmix -n 2 "
                        << binary.string()
                        << " --log_level=test_suite\n"
                           "echo job-finished\n";
  const auto job =
      cluster.run("timeout 240 sbatch --wait --output=" + out.string() + " " + script.string());
  std::string log;
  if (fs::exists(out)) {
    std::ifstream in(out);
    log.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  BOOST_TEST(job.exitCode == 0, job.output << "\n" << log);
  BOOST_TEST(contains(log, "job-finished"), log);
  // Both ranks ran every case, and the two-rank checks passed on both.
  std::size_t passes = 0;
  for (auto pos = log.find("No errors detected"); pos != std::string::npos;
       pos = log.find("No errors detected", pos + 1)) {
    ++passes;
  }
  BOOST_TEST(passes == 2u, log);
  BOOST_TEST(contains(log, "Leaving test case \"runs_on_two_mpi_ranks\""), log);
  // The job is recorded as completed with exit code 0.
  const auto acct =
      cluster.run("scontrol show job -o | tr ' ' '\\n' | grep -E '^(JobState|ExitCode)='");
  BOOST_TEST(contains(acct.output, "JobState=COMPLETED"), acct.output);
  BOOST_TEST(contains(acct.output, "ExitCode=0:0"), acct.output);
}
