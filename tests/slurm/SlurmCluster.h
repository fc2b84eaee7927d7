// The one-node Slurm of env/slurm/ for a test: started in a fresh folder on the test's own port
// (tests that could overlap must not share a cluster), stopped and removed when the object goes,
// whatever the test's outcome, and the job records as `scontrol show job` reports them.
#pragma once

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/TestSupport.h"

namespace metasemi::test {

/// One job record of `scontrol show job -o` (an array task is a record of its own).
struct SlurmJob {
  std::string jobId;        ///< JobId (an array task's own id)
  std::string arrayJobId;   ///< ArrayJobId, "" for a job that is not an array
  std::string arrayTaskId;  ///< ArrayTaskId, "" for a job that is not an array
  std::string state;        ///< JobState, e.g. COMPLETED
  std::string exitCode;     ///< ExitCode, e.g. 0:0
  std::string reason;       ///< Reason
  int restarts = 0;         ///< Restarts (requeues)

  /// True once the job can change no more.
  bool finished() const {
    for (const char* s : {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
                          "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}) {
      if (state == s) return true;
    }
    return false;
  }
};

/// The value of `key` in a `Key=Value Key=Value ...` line ("" when absent).
inline std::string slurmField(const std::string& line, const std::string& key) {
  const std::string tag = key + "=";
  std::size_t pos = line.rfind(tag, 0) == 0 ? 0 : std::string::npos;
  if (pos == std::string::npos) {
    pos = line.find(" " + tag);
    if (pos == std::string::npos) return "";
    ++pos;
  }
  pos += tag.size();
  return line.substr(pos, line.find(' ', pos) - pos);
}

/// Text of a file ("" when it does not exist).
inline std::string readText(const std::filesystem::path& file) {
  std::ifstream in(file);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class SlurmCluster {
 public:
  /// `name`: the test's folder below METASEMI_TEST_TMP; `port`: the slurmctld port unless
  /// METASEMI_SLURM_PORT is set (slurmd takes the next one).
  SlurmCluster(const std::string& name, const std::string& port) {
    dir_ = std::filesystem::path(harnessEnv("METASEMI_TEST_TMP")) / name;
    const char* fromEnv = std::getenv("METASEMI_SLURM_PORT");
    // <dir_>/slurm, set by CMakeLists.txt, which stops the cluster there after a timeout.
    const std::filesystem::path slurmDir = harnessEnv("METASEMI_SLURM_TEST_DIR");
    env_ = "METASEMI_SLURM_DIR=" + slurmDir.string() +
           " METASEMI_SLURM_PORT=" + (fromEnv ? fromEnv : port) +
           " SLURM_CONF=" + (slurmDir / "etc" / "slurm.conf").string() + " ";
    // A run killed by ctest's timeout cannot stop its cluster: stop it before starting afresh.
    stop();
    freshDir(name);
  }
  ~SlurmCluster() { stop(); }
  SlurmCluster(const SlurmCluster&) = delete;
  SlurmCluster& operator=(const SlurmCluster&) = delete;

  /// The test's folder (the cluster's files are in its `slurm` subfolder).
  const std::filesystem::path& dir() const { return dir_; }

  /// Starts the cluster (env/slurm/start.sh).
  RunResult start() const { return run(sourcePath("env/slurm/start.sh").string()); }

  /// Runs the shell command `command` (pipes and lists too) with SLURM_CONF and the cluster's
  /// folder and port in its environment.
  RunResult run(const std::string& command) const {
    return runCommand("export " + env_ + "; (" + command + ")");
  }

  /// Every job record the controller still holds (finished ones for MinJobAge, 300 s).
  std::vector<SlurmJob> jobs() const {
    std::vector<SlurmJob> out;
    std::istringstream lines(run("scontrol show job -o").output);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("JobId=", 0) != 0) continue;
      SlurmJob j;
      j.jobId = slurmField(line, "JobId");
      j.arrayJobId = slurmField(line, "ArrayJobId");
      j.arrayTaskId = slurmField(line, "ArrayTaskId");
      j.state = slurmField(line, "JobState");
      j.exitCode = slurmField(line, "ExitCode");
      j.reason = slurmField(line, "Reason");
      j.restarts = std::atoi(slurmField(line, "Restarts").c_str());
      out.push_back(j);
    }
    return out;
  }

  /// Polls until every job is finished (true) or `limit` has passed (false: a hang guard, not a
  /// timing check). The last record seen of each job is kept in `seen`, keyed by JobId.
  bool waitForAll(std::chrono::seconds limit, std::map<std::string, SlurmJob>& seen) const {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      bool active = false;
      const auto now = jobs();
      for (const auto& j : now) {
        seen[j.jobId] = j;
        active |= !j.finished();
      }
      if (!now.empty() && !active) return true;
      std::this_thread::sleep_for(std::chrono::seconds(2));
    }
    return false;
  }

  /// `squeue` and the controller's log tail, for failure messages.
  std::string diagnostics() const {
    return run("squeue; scontrol show job -o | cut -c1-400; tail -n 30 "
               "\"$METASEMI_SLURM_DIR/log/slurmctld.log\"")
        .output;
  }

 private:
  void stop() const { run(sourcePath("env/slurm/stop.sh").string() + " --purge"); }

  std::filesystem::path dir_;
  std::string env_;
};

/// True when the Debian packages slurm-wlm and munge are installed.
inline bool slurmInstalled() {
  return runCommand("command -v slurmctld && command -v munged").exitCode == 0;
}

}  // namespace metasemi::test
