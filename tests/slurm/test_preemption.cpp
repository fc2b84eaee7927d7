// Preemption on the one-node Slurm: a training job of jobs/train.sbatch gets SIGUSR1 in its batch
// shell (as `--signal=B:USR1@T` sends it before the time limit); the shell hands it to the ranks,
// which write a checkpoint and exit with 75; the shell requeues the job, which starts again,
// continues from the checkpoint and completes. Its final parameters and momentum buffers must
// equal, bit for bit, those of a job of the same settings that was never interrupted.
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "metasemi/io/H5File.h"
#include "slurm/SlurmCluster.h"
#include "support/CheckpointCompare.h"
#include "support/TestSupport.h"
#include "support/TinyShards.h"

namespace fs = std::filesystem;
using metasemi::io::H5File;
using metasemi::test::readText;

namespace {

constexpr int kSteps = 600;

// Evaluation rows of a run: step -> top-1 error (a step evaluated twice keeps the later row).
std::map<std::int64_t, double> evalErrors(const fs::path& metrics) {
  std::map<std::int64_t, double> out;
  std::istringstream in(readText(metrics));
  for (std::string line; std::getline(in, line);) {
    const auto row = nlohmann::json::parse(line);
    if (row.at("kind") == "eval") out[row.at("step")] = row.at("top1_error").get<double>();
  }
  return out;
}

// The last "Step NNNNN/" the trainer logged in `log`, 0 when none.
int lastLoggedStep(const std::string& log) {
  int last = 0;
  const std::regex step("Step (\\d+)/");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), step); it != std::sregex_iterator();
       ++it) {
    last = std::stoi((*it)[1].str());
  }
  return last;
}

}  // namespace

BOOST_AUTO_TEST_CASE(usr1_checkpoints_requeues_and_resumes_bit_for_bit) {
  if (!metasemi::test::slurmInstalled()) {
    BOOST_FAIL("slurm-wlm and munge are not installed (see env/packages.txt)");
  }
  metasemi::test::SlurmCluster cluster("slurm_preemption", "16857");
  const auto started = cluster.start();
  BOOST_TEST_REQUIRE(started.exitCode == 0, started.output);

  const fs::path data = cluster.dir() / "data";
  metasemi::test::writeTinyShards(data);
  const fs::path config = cluster.dir() / "preempt.cfg";
  std::ofstream(config) << "dataset = mnist\nnum-label = 50\nseed = 1\nwidth = 0.125\n"
                           "batch-size = 8\nwarmup = 4\nmilestones = [400]\nmix-up = true\n"
                           "print-freq = 10\ntest-freq = 50\nnum-workers = 1\nthreads = 1\n"
                        << "total-steps = " << kSteps << "\n";

  // Both jobs are queued at once; the one to preempt comes first, and the other runs while the
  // requeued one waits out its begin time.
  auto submit = [&](const std::string& name) {
    const auto r = cluster.run(
        fmt::format("TRAIN_CONFIG={} TRAIN_DATA={} TRAIN_SAVE_PATH={} sbatch --parsable --ntasks=2 "
                    "--cpus-per-task=1 --time=20 --output={} {}",
                    config.string(), data.string(), (cluster.dir() / name).string(),
                    (cluster.dir() / (name + ".out")).string(),
                    metasemi::test::sourcePath("jobs/train.sbatch").string()));
    BOOST_TEST_REQUIRE(r.exitCode == 0, r.output);
    return r.output.substr(0, r.output.find_first_of(";\n"));
  };
  const std::string preempted = submit("preempted");
  const std::string uninterrupted = submit("uninterrupted");
  const fs::path preemptedLog = cluster.dir() / "preempted.out";

  // Once the first job has logged some steps, signal its batch shell only.
  bool signalled = false;
  for (int i = 0; i < 900 && !signalled; ++i) {
    const int step = lastLoggedStep(readText(preemptedLog));
    if (step >= kSteps) break;
    if (step >= 40) {
      const auto r = cluster.run("scancel --signal=USR1 --batch " + preempted);
      BOOST_TEST_REQUIRE(r.exitCode == 0, r.output);
      signalled = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  BOOST_TEST_REQUIRE(signalled, "never saw steps 40.." << kSteps << " running:\n"
                                                       << readText(preemptedLog)
                                                       << cluster.diagnostics());

  std::map<std::string, metasemi::test::SlurmJob> seen;
  const bool done = cluster.waitForAll(std::chrono::seconds(420), seen);
  const std::string log = readText(preemptedLog);
  BOOST_TEST_REQUIRE(done, "jobs still running:\n" << log << cluster.diagnostics());

  // The preempted job was requeued once and then completed; the other one ran straight through.
  const auto& p = seen.at(preempted);
  BOOST_TEST(p.state == "COMPLETED", p.state << " " << p.reason << "\n" << log);
  BOOST_TEST(p.exitCode == "0:0");
  BOOST_TEST(p.restarts == 1);
  const auto& u = seen.at(uninterrupted);
  BOOST_TEST(u.state == "COMPLETED", u.state);
  BOOST_TEST(u.restarts == 0);

  // Its log (appended across both runs) tells the story: the signal, a checkpoint at step k,
  // exit 75, the requeue, the second start continuing at step k, the end.
  std::smatch m;
  BOOST_TEST_REQUIRE(
      std::regex_search(log, m,
                        std::regex("signal 10 received: checkpoint written at step (\\d+)")),
      log);
  const int k = std::stoi(m[1].str());
  BOOST_TEST((k >= 40 && k < kSteps), k);
  for (const std::string part :
       {std::string("received SIGUSR1"), std::string("Exited with exit code 75"),
        std::string("requeued"), std::string("restart 1 ->"), std::string("continuing from"),
        fmt::format("steps {} -> {}", k, kSteps), std::string("finished:")}) {
    BOOST_TEST(log.find(part) != std::string::npos, "'" << part << "' missing from\n" << log);
  }
  BOOST_TEST(readText(cluster.dir() / "uninterrupted.out").find("received SIG") ==
             std::string::npos);

  // Same final state, bit for bit, and the same evaluations.
  const fs::path a = cluster.dir() / "preempted" / "checkpoint.h5";
  const fs::path b = cluster.dir() / "uninterrupted" / "checkpoint.h5";
  BOOST_TEST_REQUIRE((fs::exists(a) && fs::exists(b)));
  for (const auto& f : {a, b}) {
    H5File h(f.string(), H5File::Mode::kRead);
    BOOST_TEST(h.attrInt("/", "step") == kSteps, f);
  }
  BOOST_TEST(metasemi::test::sameCheckpointState(a, b));
  const auto ea = evalErrors(cluster.dir() / "preempted" / "metrics.jsonl");
  const auto eb = evalErrors(cluster.dir() / "uninterrupted" / "metrics.jsonl");
  BOOST_TEST(ea.size() == static_cast<std::size_t>(kSteps / 50));
  BOOST_TEST((ea == eb));
}
