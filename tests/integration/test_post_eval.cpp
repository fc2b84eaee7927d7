// metasemi-eval end to end: on a checkpoint of a short training run its top-1 error equals the
// trainer's own evaluation and the results of 1 and 2 ranks are equal; on a checkpoint whose
// classifier always answers the same classes the numbers are known exactly; bad input is one
// line, a non-zero exit and no output file.
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>

#include "metasemi/io/Checkpoint.h"
#include "metasemi/models/Network.h"
#include "metasemi/models/StateDict.h"
#include "metasemi/train/ConfigText.h"
#include "metasemi/train/TrainConfig.h"
#include "support/TestSupport.h"
#include "support/TinyShards.h"

namespace fs = std::filesystem;
using metasemi::test::runCommand;
using nlohmann::json;
using namespace metasemi;

namespace {

std::string eval() { return test::binary("metasemi-eval").string(); }

json readJson(const fs::path& file) {
  std::ifstream in(file);
  return json::parse(in);
}

int lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

// A checkpoint of an untrained ConvLarge (width 1/8) whose classifier ignores the features: its
// weights are zero and its bias is 0.1·k for class k, so every image scores the classes in the
// order numClasses-1, numClasses-2, ...
void writeFixedCheckpoint(
    const fs::path& file, const fs::path& data, std::int64_t channels, std::int64_t classes,
    const std::string& runState,
    const std::function<void(io::CheckpointState&)>& damage = [](io::CheckpointState&) {}) {
  train::TrainConfig c;
  c.dataset = "mnist";
  c.dataPath = data.string();
  c.widthFactor = 0.125;
  models::NetworkSpec spec;
  spec.inputChannels = channels;
  spec.numClasses = classes;
  spec.widthFactor = c.widthFactor;
  auto net = models::makeNetwork(spec);
  torch::NoGradGuard noGrad;
  for (auto& [key, t] : models::stateDict(*net)) {
    if (key == "classifier.0.weight") t.zero_();
    if (key == "classifier.0.bias") t.copy_(torch::arange(classes, torch::kFloat32) * 0.1);
  }
  io::CheckpointState s;
  s.step = 7;
  s.model = models::stateDict(*net);
  s.config = train::formatConfig(c);
  s.dataJson = runState;
  damage(s);
  io::writeCheckpoint(file.string(), s);
}

// True when nothing but `keep` is in `dir` (no output, no temporary file left behind).
bool onlyHolds(const fs::path& dir, const std::vector<std::string>& keep) {
  for (const auto& e : fs::directory_iterator(dir)) {
    if (std::find(keep.begin(), keep.end(), e.path().filename().string()) == keep.end()) {
      BOOST_TEST_MESSAGE("unexpected file " << e.path());
      return false;
    }
  }
  return true;
}

}  // namespace

BOOST_AUTO_TEST_CASE(trained_checkpoint_agrees_with_the_trainer_on_1_and_2_ranks) {
  const fs::path dir = test::freshDir("post_eval_trained");
  const fs::path data = dir / "data", save = dir / "run";
  test::writeTinyShards(data);
  const auto train = runCommand(fmt::format(
      "mpirun -np 2 {} --dataset mnist --data-path {} --num-label 50 --seed 1 --width 0.125 "
      "--batch-size 8 --total-steps 60 --warmup 4 --lr 0.1 --test-freq 20 --print-freq 20 "
      "--threads 1 --num-workers 1 --method baseline --save-path {}",
      test::binary("metasemi-train").string(), data.string(), save.string()));
  BOOST_TEST_REQUIRE(train.exitCode == 0, train.output);

  // The trainer's last evaluation, from its metrics file.
  json lastEval;
  double bestError = 100.0;
  std::ifstream metrics(save / "metrics.jsonl");
  for (std::string line; std::getline(metrics, line);) {
    const json row = json::parse(line);
    if (row["kind"] != "eval") continue;
    lastEval = row;
    bestError = std::min(bestError, row["top1_error"].get<double>());
  }
  BOOST_TEST_REQUIRE(lastEval["step"].get<int>() == 60);

  const std::string args = fmt::format("--checkpoint {} --data-path {} --threads 1",
                                       (save / "checkpoint.h5").string(), data.string());
  const auto one =
      runCommand(fmt::format("{} {} --output {}", eval(), args, (dir / "one.json").string()));
  BOOST_TEST_REQUIRE(one.exitCode == 0, one.output);
  const auto two = runCommand(fmt::format("mpirun -np 2 {} {} --batch-size 7 --output {}", eval(),
                                          args, (dir / "two.json").string()));
  BOOST_TEST_REQUIRE(two.exitCode == 0, two.output);
  BOOST_TEST_MESSAGE(one.output);

  const json e = readJson((dir / "one.json").string());
  // Computed two ways: the trainer's evaluation during the run, this program afterwards.
  BOOST_TEST(e["top1_error"].get<double>() == lastEval["top1_error"].get<double>());
  BOOST_TEST(e["recorded"]["last_top1_error"].get<double>() ==
             lastEval["top1_error"].get<double>());
  BOOST_TEST(e["step"].get<int>() == 60);
  BOOST_TEST(e["images"].get<int>() == 100);

  // The confusion matrix holds every image once; its diagonal is the correct count and its rows
  // are the per-class numbers.
  const auto confusion = e["confusion"].get<std::vector<std::vector<std::int64_t>>>();
  BOOST_TEST_REQUIRE(confusion.size() == 10u);
  std::int64_t total = 0, diagonal = 0, predictedClasses = 0;
  for (std::size_t t = 0; t < 10; ++t) {
    BOOST_TEST_REQUIRE(confusion[t].size() == 10u);
    std::int64_t row = 0, column = 0;
    for (std::size_t p = 0; p < 10; ++p) {
      row += confusion[t][p];
      column += confusion[p][t];
    }
    total += row;
    diagonal += confusion[t][t];
    predictedClasses += column > 0;
    const json& c = e["per_class"][t];
    BOOST_TEST(c["images"].get<std::int64_t>() == row);
    BOOST_TEST(c["errors"].get<std::int64_t>() == row - confusion[t][t]);
    BOOST_TEST(c["error"].get<double>() ==
               100.0 * static_cast<double>(row - confusion[t][t]) / static_cast<double>(row));
  }
  BOOST_TEST(total == 100);
  BOOST_TEST(diagonal == e["correct"].get<std::int64_t>());
  BOOST_TEST(e["top1_error"].get<double>() == 100.0 - static_cast<double>(diagonal));
  BOOST_TEST(e["top_k_correct"].get<std::int64_t>() >= diagonal);
  // A network that has learned something predicts more than one class.
  BOOST_TEST(predictedClasses > 1);

  // Two ranks, another batch size: the same counts and the same file.
  BOOST_TEST(readJson((dir / "two.json").string()) == e);
  // The summary (one per-class table) is printed once, by rank 0.
  std::size_t tables = 0;
  for (auto at = two.output.find("class  name"); at != std::string::npos;
       at = two.output.find("class  name", at + 1)) {
    ++tables;
  }
  BOOST_TEST(tables == 1u, two.output);

  // model_best.h5 holds the best evaluation's parameters.
  const auto best = runCommand(fmt::format("{} --checkpoint {} --data-path {} --output {}", eval(),
                                           (save / "model_best.h5").string(), data.string(),
                                           (dir / "best.json").string()));
  BOOST_TEST_REQUIRE(best.exitCode == 0, best.output);
  BOOST_TEST(readJson(dir / "best.json")["top1_error"].get<double>() == bestError);
}

BOOST_AUTO_TEST_CASE(fixed_predictions_give_the_expected_numbers) {
  const fs::path dir = test::freshDir("post_eval_fixed");
  const fs::path data = dir / "data";
  test::TinyShardsSpec spec;
  spec.numTest = 97;  // classes 0-6: 10 images each, 7-9: 9 each
  test::writeTinyShards(data, spec);
  const fs::path ckpt = dir / "fixed.h5";
  writeFixedCheckpoint(ckpt, data, 1, 10, R"({"world_size":1,"last_top1_error":42.5})");

  const auto r =
      runCommand(fmt::format("{} --checkpoint {} --data-path {} --batch-size 10 --output {}",
                             eval(), ckpt.string(), data.string(), (dir / "e.json").string()));
  BOOST_TEST_REQUIRE(r.exitCode == 0, r.output);
  BOOST_TEST_MESSAGE(r.output);
  const json e = readJson((dir / "e.json").string());
  // Every image is predicted as class 9 (9 of them are); the top 5 are classes 5-9 (47 images).
  BOOST_TEST(e["images"].get<int>() == 97);
  BOOST_TEST(e["correct"].get<int>() == 9);
  BOOST_TEST(e["top1_error"].get<double>() == 100.0 - 100.0 * 9.0 / 97.0);
  BOOST_TEST(e["top_k"].get<int>() == 5);
  BOOST_TEST(e["top_k_correct"].get<int>() == 47);
  BOOST_TEST(e["top_k_error"].get<double>() == 100.0 - 100.0 * 47.0 / 97.0);
  BOOST_TEST(e["step"].get<int>() == 7);
  BOOST_TEST(e["recorded"]["last_top1_error"].get<double>() == 42.5);
  BOOST_TEST(e["recorded"]["best_top1_error"].is_null());
  for (int t = 0; t < 10; ++t) {
    const int n = t < 7 ? 10 : 9;
    for (int p = 0; p < 10; ++p) {
      BOOST_TEST(e["confusion"][t][p].get<int>() == (p == 9 ? n : 0), t << " -> " << p);
    }
    BOOST_TEST(e["per_class"][t]["name"].get<std::string>() == "c" + std::to_string(t));
    BOOST_TEST(e["per_class"][t]["images"].get<int>() == n);
    BOOST_TEST(e["per_class"][t]["error"].get<double>() == (t == 9 ? 0.0 : 100.0));
  }
  BOOST_TEST(r.output.find("top-1 error 90.72%") != std::string::npos);
  BOOST_TEST(r.output.find("top-5 error 51.55%") != std::string::npos);

  // --top-k 3: classes 7-9, 27 images; more classes than exist: n/a.
  const auto k3 =
      runCommand(fmt::format("{} --checkpoint {} --data-path {} --top-k 3 --output {}", eval(),
                             ckpt.string(), data.string(), (dir / "k3.json").string()));
  BOOST_TEST_REQUIRE(k3.exitCode == 0, k3.output);
  BOOST_TEST(readJson((dir / "k3.json").string())["top_k_correct"].get<int>() == 27);
  const auto k11 =
      runCommand(fmt::format("{} --checkpoint {} --data-path {} --top-k 11 --output {}", eval(),
                             ckpt.string(), data.string(), (dir / "k11.json").string()));
  BOOST_TEST_REQUIRE(k11.exitCode == 0, k11.output);
  BOOST_TEST(readJson((dir / "k11.json").string())["top_k_error"].is_null());
  BOOST_TEST(k11.output.find("top-11 error n/a") != std::string::npos, k11.output);
}

BOOST_AUTO_TEST_CASE(bad_input_is_one_line_a_non_zero_exit_and_no_output) {
  const fs::path dir = test::freshDir("post_eval_bad");
  const fs::path data = dir / "data", data5 = dir / "data5", out = dir / "out";
  test::writeTinyShards(data);
  test::TinyShardsSpec five;
  five.numClasses = 5;
  five.testClasses = 5;
  test::writeTinyShards(data5, five);
  writeFixedCheckpoint(dir / "c10.h5", data, 1, 10, "");
  writeFixedCheckpoint(dir / "rgb.h5", data, 3, 10, "");
  writeFixedCheckpoint(dir / "nan.h5", data, 1, 10, "", [](io::CheckpointState& s) {
    torch::NoGradGuard noGrad;
    s.model[3].second.view(-1)[0] = std::numeric_limits<float>::quiet_NaN();
  });
  writeFixedCheckpoint(dir / "inf.h5", data, 1, 10, "", [](io::CheckpointState& s) {
    torch::NoGradGuard noGrad;
    s.model.back().second.fill_(std::numeric_limits<float>::infinity());
  });
  writeFixedCheckpoint(dir / "config.h5", data, 1, 10, "", [](io::CheckpointState& s) {
    s.config += "half a line, cut by a bad write\n";
  });
  fs::create_directories(out);
  { std::ofstream(dir / "notes.txt") << "not a checkpoint\n"; }

  struct Case {
    std::string args, expected;
    int code;
  };
  const std::string c10 = (dir / "c10.h5").string();
  const std::vector<Case> cases = {
      {"--checkpoint " + c10 + " --data-path " + data5.string(), "has 10 classes but split 'test'",
       3},
      {"--checkpoint " + (dir / "rgb.h5").string() + " --data-path " + data.string(),
       "takes images of 3 channels but split 'test'", 3},
      {"--checkpoint " + (dir / "missing.h5").string() + " --data-path " + data.string(),
       "no such file", 3},
      {"--checkpoint " + (data / "test.h5").string() + " --data-path " + data.string(),
       "is not a MetaSemi checkpoint", 3},
      {"--checkpoint " + (dir / "notes.txt").string() + " --data-path " + data.string(),
       "not an HDF5 file", 3},
      {"--checkpoint " + c10 + " --data-path " + (dir / "nothing").string(), "no such folder", 3},
      {"--checkpoint " + (dir / "nan.h5").string() + " --data-path " + data.string(),
       "NaN or infinite value", 3},
      {"--checkpoint " + (dir / "inf.h5").string() + " --data-path " + data.string(),
       "NaN or infinite value", 3},
      {"--checkpoint " + (dir / "config.h5").string() + " --data-path " + data.string(),
       "damaged checkpoint: checkpoint '" + (dir / "config.h5").string() + "' config", 3},
      {"--checkpoint " + data.string() + " --data-path " + data.string(),
       "--checkpoint " + data.string() + ": is a folder, expected a file", 3},
      {"--checkpoint " + c10 + " --data-path " + data.string() + " --split val", "val", 3},
      {"--checkpoint " + c10 + " --data-path " + data.string() + " --output " +
           (out / "no-such-folder" / "e.json").string(),
       "no folder", 3},
      {"--checkpoint " + c10 + " --data-path " + data.string() + " --output " + out.string(),
       "is a folder", 3},
      {"--data-path " + data.string(), "--checkpoint is required", 2},
      {"--checkpoint " + c10 + " --data-path " + data.string() + " --top-k 0", "--top-k", 2},
      {"--checkpoint " + c10 + " --data-path " + data.string() + " --bogus", "bogus", 2},
  };
  for (const auto& c : cases) {
    const bool hasOutput = c.args.find("--output") != std::string::npos;
    const auto r = runCommand(fmt::format(
        "{} {}{}", eval(), c.args, hasOutput ? "" : " --output " + (out / "e.json").string()));
    BOOST_TEST_CONTEXT(c.args) {
      BOOST_TEST(r.exitCode == c.code, r.output);
      BOOST_TEST(lines(r.output) == 1, r.output);
      BOOST_TEST(r.output.rfind("metasemi-eval: ", 0) == 0u, r.output);
      BOOST_TEST(r.output.find(c.expected) != std::string::npos, r.output);
      BOOST_TEST(onlyHolds(out, {}));
    }
  }

  // Under mpirun every rank finds the mismatch: one message, the same exit code, no abort.
  const auto r =
      runCommand(fmt::format("mpirun -np 2 {} --checkpoint {} --data-path {} --output {}", eval(),
                             c10, data5.string(), (out / "e.json").string()));
  BOOST_TEST(r.exitCode == 3, r.output);
  const auto first = r.output.find("metasemi-eval: ");
  BOOST_TEST(first != std::string::npos, r.output);
  BOOST_TEST(r.output.find("metasemi-eval: ", first + 1) == std::string::npos, r.output);
  BOOST_TEST(r.output.find("MPI_ABORT") == std::string::npos, r.output);
  BOOST_TEST(onlyHolds(out, {}));
}
