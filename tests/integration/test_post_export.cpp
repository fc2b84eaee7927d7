// metasemi-export end to end, checked in PyTorch by tests/crosscheck/export_check.py: the .pth
// loads with torch.load into the reference's ConvLarge (and torchvision's ResNet-18) strictly,
// gives metasemi-eval's logits on the same images, and its optimizer part loads into
// torch.optim.SGD; the safetensors file holds the same tensors bit for bit. The check fails on a
// changed tensor. Bad input is one line, a non-zero exit and no output file.
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <iterator>

#include "metasemi/io/Checkpoint.h"
#include "metasemi/meta/Sgd.h"
#include "metasemi/models/Network.h"
#include "metasemi/models/StateDict.h"
#include "metasemi/train/ConfigText.h"
#include "metasemi/train/RunState.h"
#include "metasemi/train/TrainConfig.h"
#include "support/TestSupport.h"
#include "support/TinyShards.h"

namespace fs = std::filesystem;
using metasemi::test::runCommand;
using namespace metasemi;

namespace {

std::string exporter() { return test::binary("metasemi-export").string(); }
std::string eval() { return test::binary("metasemi-eval").string(); }

// The checkpoint metasemi-train wrote for a 3-step Fashion-MNIST run (ConvLarge, width 1/16).
std::string fixture() {
  return test::sourcePath("tests/data/convlarge-w0.0625-fashion-mnist-v0.1.h5").string();
}

std::string path(const fs::path& p) { return p.string(); }

test::RunResult pythonCheck(const std::string& args) {
  return test::runPythonCheck("tests/crosscheck/export_check.py", args);
}

// Runs `command`, which must succeed.
void mustRun(const std::string& command) {
  const auto r = runCommand(command);
  BOOST_TEST_REQUIRE(r.exitCode == 0, command << "\n" << r.output);
}

// metasemi-eval's logits of every test image of `data` and the images it fed the network.
void writeLogits(const std::string& checkpoint, const fs::path& data, const fs::path& out,
                 const std::string& launcher = "") {
  mustRun(
      fmt::format("{}{} --checkpoint {} --data-path {} --threads 1 --batch-size 32 --logits {} "
                  "--logits-inputs",
                  launcher, eval(), checkpoint, path(data), path(out)));
}

int lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

std::string readAll(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// True when `dir` holds exactly the files `keep` (no output, no temporary file).
bool holdsExactly(const fs::path& dir, std::vector<std::string> keep) {
  std::vector<std::string> found;
  for (const auto& e : fs::directory_iterator(dir)) found.push_back(e.path().filename().string());
  std::sort(found.begin(), found.end());
  std::sort(keep.begin(), keep.end());
  if (found != keep) {
    for (const auto& f : found) BOOST_TEST_MESSAGE("found " << f);
  }
  return found == keep;
}

torch::Tensor& entry(io::NamedTensors& tensors, const std::string& key) {
  const auto it =
      std::find_if(tensors.begin(), tensors.end(), [&](const auto& e) { return e.first == key; });
  BOOST_TEST_REQUIRE((it != tensors.end()), "no tensor " << key);
  return it->second;
}

}  // namespace

BOOST_AUTO_TEST_CASE(fixture_loads_into_the_reference_convlarge_and_gives_the_same_logits) {
  const fs::path dir = test::freshDir("post_export_fixture");
  const fs::path data = dir / "data";
  test::TinyShardsSpec spec;
  spec.dataset = "fashion-mnist";
  test::writeTinyShards(data, spec);

  const auto ex = runCommand(
      fmt::format("{} --checkpoint {} --output {}", exporter(), fixture(), path(dir / "model")) +
      " --format both");
  BOOST_TEST_REQUIRE(ex.exitCode == 0, ex.output);
  BOOST_TEST_MESSAGE(ex.output);
  BOOST_TEST(
      ex.output.find("step 3, 56 state_dict tensors, 29 momentum buffers") != std::string::npos,
      ex.output);
  writeLogits(fixture(), data, dir / "logits.h5");

  const auto r = pythonCheck(fmt::format("--checkpoint {} --pth {} --safetensors {} --logits {}",
                                         fixture(), path(dir / "model.pth"),
                                         path(dir / "model.safetensors"), path(dir / "logits.h5")));
  BOOST_TEST_MESSAGE(r.output);
  BOOST_TEST(r.exitCode == 0, r.output);
  BOOST_TEST(r.output.find("FAILED") == std::string::npos, r.output);
  BOOST_TEST(r.output.find("ok      logits of 100 images") != std::string::npos, r.output);
  BOOST_TEST(r.output.find("all checks passed") != std::string::npos, r.output);

  // Two ranks share the images: the logits file is assembled from both.
  writeLogits(fixture(), data, dir / "logits2.h5", "mpirun -np 2 ");
  const auto two = pythonCheck(fmt::format("--checkpoint {} --pth {} --logits {}", fixture(),
                                           path(dir / "model.pth"), path(dir / "logits2.h5")));
  BOOST_TEST(two.exitCode == 0, two.output);

  // The format follows the name when not given; one file each.
  const fs::path single = dir / "single";
  fs::create_directories(single);
  mustRun(fmt::format("{} --checkpoint {} --output {}", exporter(), fixture(),
                      path(single / "a.safetensors")));
  mustRun(
      fmt::format("{} --checkpoint {} --output {}", exporter(), fixture(), path(single / "b.pt")));
  mustRun(fmt::format("{} --checkpoint {} --output {} --format pth", exporter(), fixture(),
                      path(single / "c.bin")));
  BOOST_TEST(holdsExactly(single, {"a.safetensors", "b.pt", "c.bin"}));
  BOOST_TEST(readAll(single / "a.safetensors") == readAll(dir / "model.safetensors"));
  const auto st = pythonCheck(fmt::format("--checkpoint {} --pth {} --safetensors {}", fixture(),
                                          path(single / "c.bin"), path(single / "a.safetensors")));
  BOOST_TEST(st.exitCode == 0, st.output);
}

BOOST_AUTO_TEST_CASE(the_check_fails_on_a_changed_tensor) {
  const fs::path dir = test::freshDir("post_export_changed");
  const fs::path data = dir / "data";
  test::TinyShardsSpec spec;
  spec.dataset = "fashion-mnist";
  test::writeTinyShards(data, spec);

  // One checkpoint with a classifier bias moved by 0.01, one with a momentum buffer scaled.
  torch::NoGradGuard noGrad;
  io::CheckpointState bias = io::readCheckpoint(fixture());
  torch::Tensor& b = entry(bias.model, "classifier.0.bias");
  b = b.clone();
  b[0] += 0.01;
  io::writeCheckpoint(path(dir / "bias.h5"), bias);
  io::CheckpointState momentum = io::readCheckpoint(fixture());
  torch::Tensor& m = entry(momentum.momentum, "block5.0.weight");
  m = m * 1.5;
  io::writeCheckpoint(path(dir / "momentum.h5"), momentum);

  for (const std::string name : {"bias", "momentum"}) {
    mustRun(fmt::format("{} --checkpoint {} --output {} --format both", exporter(),
                        path(dir / (name + ".h5")), path(dir / name)));
  }
  mustRun(fmt::format("{} --checkpoint {} --output {} --format both", exporter(), fixture(),
                      path(dir / "good")));
  writeLogits(fixture(), data, dir / "logits.h5");

  struct Case {
    std::string args, failure;
  };
  const std::vector<Case> cases = {
      // The exported bias differs from the original checkpoint's.
      {fmt::format("--checkpoint {} --pth {}", fixture(), path(dir / "bias.pth")),
       "FAILED  model tensors bit-equal to the checkpoint's: differing ['classifier.0.bias']"},
      // Consistent files, but their logits are not the original network's.
      {fmt::format("--checkpoint {} --pth {} --logits {}", path(dir / "bias.h5"),
                   path(dir / "bias.pth"), path(dir / "logits.h5")),
       "FAILED  logits of 100 images"},
      {fmt::format("--checkpoint {} --safetensors {}", fixture(), path(dir / "bias.safetensors")),
       "FAILED  safetensors tensors bit-equal to the checkpoint's"},
      {fmt::format("--checkpoint {} --pth {} --safetensors {}", path(dir / "bias.h5"),
                   path(dir / "good.pth"), path(dir / "bias.safetensors")),
       "FAILED  safetensors tensors bit-equal to the .pth's"},
      {fmt::format("--checkpoint {} --pth {}", fixture(), path(dir / "momentum.pth")),
       "FAILED  torch.optim.SGD.load_state_dict: momentum buffers bit-equal to the checkpoint's "
       "(differing ['block5.0.weight']"},
  };
  for (const auto& c : cases) {
    const auto r = pythonCheck(c.args);
    BOOST_TEST_CONTEXT(c.args) {
      BOOST_TEST(r.exitCode == 1, r.output);
      BOOST_TEST(r.output.find(c.failure) != std::string::npos, r.output);
      BOOST_TEST(r.output.find("all checks passed") == std::string::npos, r.output);
    }
  }
  // The changed files are consistent with the checkpoint they come from.
  const auto r =
      pythonCheck(fmt::format("--checkpoint {} --pth {} --safetensors {}", path(dir / "bias.h5"),
                              path(dir / "bias.pth"), path(dir / "bias.safetensors")));
  BOOST_TEST(r.exitCode == 0, r.output);
}

BOOST_AUTO_TEST_CASE(resnet18_loads_with_torchvision_names) {
  const fs::path dir = test::freshDir("post_export_resnet");
  const fs::path data = dir / "data";
  test::writeTinyShards(data);

  // One SGD step in training mode on random images sets momentum buffers and BatchNorm
  // statistics; the run state says 7 steps of a 10-step warm-up, so the group's lr is 0.06.
  train::TrainConfig c;
  c.dataset = "mnist";
  c.dataPath = path(data);
  c.architecture = "resnet18";
  c.warmup = 10;
  c.weightDecay = 5e-5;
  models::NetworkSpec spec;
  spec.architecture = "resnet18";
  spec.inputChannels = 1;
  spec.numClasses = 10;
  torch::manual_seed(11);
  auto net = models::makeNetwork(spec);
  meta::Sgd sgd(net->parameters(), c.momentum, c.weightDecay);
  sgd.setLr(0.05);
  net->train();
  const torch::Tensor x = torch::randn({6, 1, 16, 16});
  const torch::Tensor y = torch::randint(10, {6}, torch::kInt64);
  torch::nn::functional::cross_entropy(net->forward(x), y).backward();
  sgd.step();
  train::RunState state;
  state.nextStep = 7;
  state.recordEvaluation(80.0, 40.0);
  io::writeCheckpoint(path(dir / "resnet.h5"),
                      state.toCheckpoint(*net, sgd, train::formatConfig(c)));

  mustRun(fmt::format("{} --checkpoint {} --output {} --format both", exporter(),
                      path(dir / "resnet.h5"), path(dir / "resnet")));
  writeLogits(path(dir / "resnet.h5"), data, dir / "logits.h5");
  const auto r = pythonCheck(fmt::format(
      "--checkpoint {} --pth {} --safetensors {} --logits {}", path(dir / "resnet.h5"),
      path(dir / "resnet.pth"), path(dir / "resnet.safetensors"), path(dir / "logits.h5")));
  BOOST_TEST_MESSAGE(r.output);
  BOOST_TEST(r.exitCode == 0, r.output);
  BOOST_TEST(
      r.output.find("ok      strict load_state_dict into the reference model") != std::string::npos,
      r.output);
  BOOST_TEST(r.output.find("ok      lr 0.06") != std::string::npos, r.output);
  BOOST_TEST(r.output.find("ok      best_acc 20.0 == 20.0") != std::string::npos, r.output);
}

BOOST_AUTO_TEST_CASE(bad_input_is_one_line_a_non_zero_exit_and_no_output) {
  const fs::path dir = test::freshDir("post_export_bad");
  const fs::path data = dir / "data", out = dir / "out";
  test::writeTinyShards(data);
  fs::create_directories(out);
  { std::ofstream(dir / "notes.txt") << "not a checkpoint\n"; }
  {
    const std::string whole = readAll(fixture());
    std::ofstream(dir / "truncated.h5", std::ios::binary) << whole.substr(0, whole.size() / 2);
  }
  io::CheckpointState wrongShape = io::readCheckpoint(fixture());
  entry(wrongShape.model, "classifier.0.weight") = torch::zeros({10, 9});
  io::writeCheckpoint(path(dir / "shape.h5"), wrongShape);
  io::CheckpointState noRunState = io::readCheckpoint(fixture());
  noRunState.dataJson = "";
  io::writeCheckpoint(path(dir / "norun.h5"), noRunState);
  // An earlier export that a failed one must leave as it is.
  { std::ofstream(out / "keep.pth") << "earlier export\n"; }

  struct Case {
    std::string args, expected;
    int code;
  };
  const std::string keep = path(out / "keep.pth");
  const std::vector<Case> cases = {
      {"--checkpoint " + path(dir / "missing.h5") + " --output " + keep, "no such file", 3},
      {"--checkpoint " + path(dir / "notes.txt") + " --output " + keep, "not an HDF5 file", 3},
      {"--checkpoint " + path(data / "test.h5") + " --output " + keep,
       "is not a MetaSemi checkpoint", 3},
      {"--checkpoint " + path(dir / "truncated.h5") + " --output " + keep, "truncated.h5", 3},
      {"--checkpoint " + path(dir / "shape.h5") + " --output " + keep, "classifier.0.weight", 3},
      {"--checkpoint " + path(dir / "norun.h5") + " --output " + keep, "run state", 3},
      {"--checkpoint " + path(data) + " --output " + keep, "is a folder, expected a file", 3},
      {"--checkpoint " + fixture() + " --output " + path(out / "no-such-folder" / "m.pth"),
       "no folder", 3},
      {"--checkpoint " + fixture() + " --output " + path(out), "is a folder", 3},
      {"--checkpoint " + fixture() + " --output " + path(out / "m.bin"), "cannot tell the format",
       2},
      {"--checkpoint " + fixture() + " --output " + keep + " --format onnx",
       "--format: expected auto, pth, safetensors or both, got 'onnx'", 2},
      {"--output " + keep, "--checkpoint is required", 2},
      {"--checkpoint " + fixture(), "--output is required", 2},
      {"--checkpoint " + fixture() + " --output " + keep + " --bogus", "bogus", 2},
  };
  // Each case: one line naming the program, the expected exit code, the earlier export intact.
  auto expectOneLine = [&](const std::string& binary, const std::string& program,
                           const std::vector<Case>& all) {
    for (const auto& c : all) {
      const auto r = runCommand(fmt::format("{} {}", binary, c.args));
      BOOST_TEST_CONTEXT(c.args) {
        BOOST_TEST(r.exitCode == c.code, r.output);
        BOOST_TEST(lines(r.output) == 1, r.output);
        BOOST_TEST(r.output.rfind(program + ": ", 0) == 0u, r.output);
        BOOST_TEST(r.output.find(c.expected) != std::string::npos, r.output);
        BOOST_TEST(holdsExactly(out, {"keep.pth"}));
        BOOST_TEST(readAll(out / "keep.pth") == "earlier export\n");
      }
    }
  };
  expectOneLine(exporter(), "metasemi-export", cases);
  // metasemi-eval's --logits, which the checks read: the same conventions.
  const std::vector<Case> evalCases = {
      {"--checkpoint " + fixture() + " --data-path " + path(data) + " --logits " + path(out),
       "--logits " + path(out) + ": is a folder", 3},
      {"--checkpoint " + fixture() + " --data-path " + path(data) + " --logits-inputs",
       "--logits-inputs needs --logits", 2},
  };
  expectOneLine(eval(), "metasemi-eval", evalCases);
  // --help prints the usage and writes nothing.
  const auto help = runCommand(exporter() + " --help");
  BOOST_TEST(help.exitCode == 0, help.output);
  BOOST_TEST(help.output.find("--format") != std::string::npos, help.output);
  // A successful export replaces the earlier file in one step.
  mustRun(fmt::format("{} --checkpoint {} --output {}", exporter(), fixture(), keep));
  BOOST_TEST(holdsExactly(out, {"keep.pth"}));
  BOOST_TEST(readAll(out / "keep.pth").rfind("PK", 0) == 0u);
}
