// metasemi-train end to end on a tiny synthetic shard set with 2 MPI ranks: outputs, exact
// resume after SIGKILL and after SIGUSR1 (exit 75), and one clear line for bad input.
#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "metasemi/io/H5File.h"
#include "support/CheckpointCompare.h"
#include "support/TestSupport.h"
#include "support/TinyShards.h"

namespace fs = std::filesystem;
using metasemi::io::H5File;
using metasemi::test::runCommand;

namespace {

struct Fixture {
  fs::path dir = metasemi::test::freshDir("train_run");
  fs::path data = dir / "data";
  Fixture() { metasemi::test::writeTinyShards(data); }

  std::string command(const fs::path& save, int steps, const std::string& extra = "") const {
    return fmt::format(
        "mpirun -np 2 {} {} --total-steps {} --milestones [30] --test-freq 2 --print-freq 2 "
        "--mix-up --save-path {} {}",
        metasemi::test::binary("metasemi-train").string(), metasemi::test::tinyTrainFlags(data),
        steps, save.string(), extra);
  }
};

std::int64_t checkpointStep(const fs::path& file) {
  H5File f(file.string(), H5File::Mode::kRead);
  return f.attrInt("/", "step");
}

std::vector<nlohmann::json> metricsRows(const fs::path& file) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

// Sends SIGNAL to the processes of the run writing to `saveDir`: with `ranksOnly`, to the
// metasemi-train ranks (as Slurm signals a job step's tasks), otherwise also to mpirun and the
// shell around it.
void signalRun(const fs::path& saveDir, const std::string& signal, bool ranksOnly) {
  const std::string head = ranksOnly ? "^[^ ]*metasemi-train .*" : "";
  runCommand("pkill -" + signal + " -f -- '" + head + "--save-path " + saveDir.string() + "( |$)'");
}

// Starts `command` in the background, its output going to `log`.
void startInBackground(const std::string& command, const fs::path& log) {
  // Nothing of the background job may hold the pipe that runCommand reads to its end.
  const auto r = runCommand("setsid sh -c '" + command + " > " + log.string() +
                            " 2>&1' > /dev/null 2>&1 < /dev/null &");
  BOOST_TEST_REQUIRE(r.exitCode == 0);
}

void waitForFile(const fs::path& file, double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!fs::exists(file) && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// TensorBoard's own reader on the run's event files, against its metrics.jsonl.
metasemi::test::RunResult tensorboardCheck(const fs::path& save) {
  return metasemi::test::runPythonCheck("tests/crosscheck/tensorboard_check.py",
                                        save.string() + " --reference-tags");
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(train_run, Fixture)

BOOST_AUTO_TEST_CASE(writes_every_output) {
  const auto save = dir / "plain";
  const auto r = runCommand(command(save, 6));
  BOOST_TEST_REQUIRE(r.exitCode == 0, r.output);
  for (const char* f : {"checkpoint.h5", "model_best.h5", "log.txt", "metrics.jsonl", "config.cfg",
                        "label_indices.txt"}) {
    BOOST_TEST(fs::exists(save / f), f);
  }
  BOOST_TEST(checkpointStep(save / "checkpoint.h5") == 6);
  std::ifstream labels(save / "label_indices.txt");
  BOOST_TEST(std::count(std::istreambuf_iterator<char>(labels), {}, '\n') == 50);
  const auto rows = metricsRows(save / "metrics.jsonl");
  const auto evals =
      std::count_if(rows.begin(), rows.end(), [](const auto& j) { return j["kind"] == "eval"; });
  BOOST_TEST(evals == 3);
  for (const auto& j : rows) {
    if (j["kind"] == "eval") {
      BOOST_TEST(j["top1_error"].get<double>() >= 0.0);
      BOOST_TEST(j["top1_error"].get<double>() <= 100.0);
    }
  }
  // The log is readable in a batch output file: rank-prefixed step lines with an ETA.
  BOOST_TEST(r.output.find("[rank 0]") != std::string::npos);
  BOOST_TEST(r.output.find("Step 00002/6") != std::string::npos, r.output);
  BOOST_TEST(r.output.find("ETA") != std::string::npos);
  // TensorBoard reads every tag at every print and evaluation back.
  const auto tb = tensorboardCheck(save);
  BOOST_TEST(tb.exitCode == 0, tb.output);
  BOOST_TEST(tb.output.find("ok: ") != std::string::npos, tb.output);
  // ... and the check fails on a damaged file: one byte flipped in the middle.
  const auto damaged = dir / "damaged";
  fs::create_directories(damaged);
  for (const auto& e : fs::directory_iterator(save)) {
    const std::string name = e.path().filename().string();
    if (name == "metrics.jsonl" || name.find("tfevents") != std::string::npos) {
      fs::copy_file(e.path(), damaged / name);
      if (name != "metrics.jsonl") {
        std::fstream f(damaged / name, std::ios::in | std::ios::out | std::ios::binary);
        f.seekg(static_cast<std::streamoff>(fs::file_size(e.path()) / 2));
        const char c = static_cast<char>(f.peek());
        f.seekp(static_cast<std::streamoff>(fs::file_size(e.path()) / 2));
        f.put(static_cast<char>(c ^ 0x01));
      }
    }
  }
  const auto bad = tensorboardCheck(damaged);
  BOOST_TEST(bad.exitCode != 0, bad.output);
  BOOST_TEST(bad.output.find("missing") != std::string::npos, bad.output);
  // The saved configuration reads back into the same run.
  const auto again = runCommand(metasemi::test::binary("metasemi-train").string() + " --config " +
                                (save / "config.cfg").string() + " --dry-run");
  BOOST_TEST(again.exitCode == 0, again.output);
}

BOOST_AUTO_TEST_CASE(resume_after_sigkill_is_bit_exact) {
  const int steps = 40;
  const auto reference = dir / "uninterrupted";
  BOOST_TEST_REQUIRE(runCommand(command(reference, steps)).exitCode == 0);

  const auto killed = dir / "killed";
  startInBackground(command(killed, steps), dir / "killed.log");
  waitForFile(killed / "checkpoint.h5", 120);
  // mpirun starts the ranks in process groups of their own: kill every process of this run.
  signalRun(killed, "KILL", false);
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  BOOST_TEST_REQUIRE(fs::exists(killed / "checkpoint.h5"));
  const auto stepAtKill = checkpointStep(killed / "checkpoint.h5");
  BOOST_TEST_REQUIRE(stepAtKill < steps, "the run finished before it was killed");

  // Same command again: it resumes from the checkpoint in --save-path by itself.
  const auto r = runCommand(command(killed, steps));
  BOOST_TEST_REQUIRE(r.exitCode == 0, r.output);
  BOOST_TEST(r.output.find(fmt::format("steps {} -> {}", stepAtKill, steps)) != std::string::npos,
             r.output);
  BOOST_TEST(
      metasemi::test::sameCheckpointState(reference / "checkpoint.h5", killed / "checkpoint.h5"));
  // log.txt was appended to, not overwritten.
  std::ifstream log(killed / "log.txt");
  const std::string text((std::istreambuf_iterator<char>(log)), {});
  BOOST_TEST(text.find("steps 0 -> 40") != std::string::npos);
  // TensorBoard shows each step once: the killed run's prints after its checkpoint are gone.
  const auto tb = tensorboardCheck(killed);
  BOOST_TEST(tb.exitCode == 0, tb.output);
}

BOOST_AUTO_TEST_CASE(sigusr1_checkpoints_exits_75_and_restart_continues) {
  const int steps = 40;
  const auto reference = dir / "uninterrupted-usr1";
  BOOST_TEST_REQUIRE(runCommand(command(reference, steps)).exitCode == 0);

  const auto preempted = dir / "preempted";
  const auto log = dir / "preempted.log";
  startInBackground(command(preempted, steps) + "; echo exit=$?", log);
  waitForFile(preempted / "checkpoint.h5", 120);
  // As Slurm's --signal does: every process of the job step gets the signal.
  signalRun(preempted, "USR1", true);
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  std::string text;
  while (text.find("exit=") == std::string::npos && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::ifstream in(log);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  BOOST_TEST_REQUIRE(text.find("exit=75") != std::string::npos, text);
  const auto stepAtStop = checkpointStep(preempted / "checkpoint.h5");
  BOOST_TEST(stepAtStop < steps);
  const auto r = runCommand(command(preempted, steps));
  BOOST_TEST_REQUIRE(r.exitCode == 0, r.output);
  BOOST_TEST(metasemi::test::sameCheckpointState(reference / "checkpoint.h5",
                                                 preempted / "checkpoint.h5"));
}

BOOST_AUTO_TEST_CASE(bad_input_is_one_line_and_nothing_is_overwritten) {
  auto train = [](const fs::path& dataPath, const fs::path& save, const std::string& extra) {
    return runCommand(metasemi::test::binary("metasemi-train").string() +
                      " --dataset mnist --seed 1 --batch-size 8 --total-steps 2 --threads 1 "
                      "--num-workers 0 --data-path " +
                      dataPath.string() + " --save-path " + save.string() + " " + extra);
  };
  const std::string tiny = "--num-label 50 --width 0.125";
  auto oneLine = [](const std::string& s) { return std::count(s.begin(), s.end(), '\n') == 1; };

  // Missing shards.
  auto r = train(dir / "nowhere", dir / "bad1", tiny);
  BOOST_TEST(r.exitCode == 3);
  BOOST_TEST(r.output.find("nowhere") != std::string::npos, r.output);
  BOOST_TEST(oneLine(r.output), r.output);
  BOOST_TEST(!fs::exists(dir / "bad1"));

  // Train and test splits with different classes.
  metasemi::test::TinyShardsSpec odd;
  odd.testClasses = 5;
  metasemi::test::writeTinyShards(dir / "odd", odd);
  r = train(dir / "odd", dir / "bad2", tiny);
  BOOST_TEST(r.exitCode == 3, r.output);
  BOOST_TEST(oneLine(r.output), r.output);
  BOOST_TEST(!fs::exists(dir / "bad2"));

  // A label split that was never made.
  r = train(data, dir / "bad3", "--num-label 20 --width 0.125");
  BOOST_TEST(r.exitCode == 3, r.output);
  BOOST_TEST(r.output.find("labels-20-seed1") != std::string::npos, r.output);

  // A checkpoint of another model (other width): refused, and left as it was.
  const auto save = dir / "other-model";
  BOOST_TEST_REQUIRE(train(data, save, tiny).exitCode == 0);
  const auto before = fs::last_write_time(save / "checkpoint.h5");
  r = train(data, dir / "bad4",
            "--num-label 50 --width 0.25 --resume " + (save / "checkpoint.h5").string());
  BOOST_TEST(r.exitCode == 3, r.output);
  BOOST_TEST(r.output.find("does not match the model") != std::string::npos, r.output);
  BOOST_TEST(oneLine(r.output), r.output);
  BOOST_TEST(!fs::exists(dir / "bad4"));
  BOOST_TEST((fs::last_write_time(save / "checkpoint.h5") == before));

  // An unwritable save path.
  std::ofstream(dir / "a-file") << "x";
  r = train(data, dir / "a-file" / "run", tiny);
  BOOST_TEST(r.exitCode == 3, r.output);
  BOOST_TEST(r.output.find("--save-path") != std::string::npos, r.output);
  BOOST_TEST(oneLine(r.output), r.output);
}

BOOST_AUTO_TEST_SUITE_END()
