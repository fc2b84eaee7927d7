// The trainer's programs on a GPU against the same programs on the CPU: one step of every kind
// (metasemi-step-check --gpu), evaluation and features (metasemi-eval/-features --gpu), a run
// that dies and resumes bit for bit under --deterministic, and NCCL averaging inside the trainer.
// Needs a CUDA device (label gpu); every case fails, not skips, without one.
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "metasemi/io/Checkpoint.h"
#include "metasemi/io/H5File.h"
#include "metasemi/io/TensorIo.h"
#include "metasemi/models/Network.h"
#include "metasemi/models/StateDict.h"
#include "support/CheckpointCompare.h"
#include "support/TestSupport.h"
#include "support/TinyShards.h"

using namespace metasemi;
namespace fs = std::filesystem;

namespace {

void requireGpu() { BOOST_TEST_REQUIRE(torch::cuda::is_available(), "no CUDA device visible"); }

test::RunResult run(const std::string& program, const std::string& args) {
  return test::runCommand(test::binary(program).string() + " " + args + " 2>&1");
}

// A checkpoint (state dict in /model) and a batch file for metasemi-step-check.
void writeStepInputs(const fs::path& dir, torch::ScalarType dtype) {
  torch::manual_seed(21);
  models::NetworkSpec spec;
  spec.widthFactor = 0.125;
  spec.dropout = 0;
  auto net = models::makeNetwork(spec);
  {
    torch::NoGradGuard noGrad;
    net->train();
    net->forward(torch::randn({8, 3, 32, 32}));
  }
  io::H5File ck((dir / "ckpt.h5").string(), io::H5File::Mode::kCreate);
  io::writeNamedTensors(ck, "model", models::stateDict(*net));
  io::H5File b((dir / "batch.h5").string(), io::H5File::Mode::kCreate);
  io::writeTensor(b, "labeled_images", torch::randn({6, 3, 32, 32}).to(dtype));
  io::writeTensor(b, "labels", torch::randint(10, {6}, torch::kLong));
  io::writeTensor(b, "unlabeled_images", torch::randn({6, 3, 32, 32}).to(dtype));
  io::writeTensor(b, "lambda", torch::rand({6}).to(dtype));
}

double maxRel(const torch::Tensor& a, const torch::Tensor& b) {
  const auto x = a.to(torch::kDouble), y = b.to(torch::kDouble);
  return (x - y).abs().max().item<double>() / std::max(y.abs().max().item<double>(), 1e-30);
}

}  // namespace

BOOST_AUTO_TEST_CASE(one_step_of_every_kind_on_gpu_equals_cpu) {
  requireGpu();
  for (const std::string dtype : {"float64", "float32"}) {
    const double bound = dtype == "float64" ? 1e-10 : 1e-4;
    const fs::path dir = test::freshDir("gpu_step_" + dtype);
    writeStepInputs(dir, dtype == "float64" ? torch::kDouble : torch::kFloat);
    for (const std::string kind : {"--method meta --mix-up", "--method meta", "--method baseline",
                                   "--method baseline --mix-up"}) {
      BOOST_TEST_CONTEXT(dtype << " " << kind) {
        const std::string common = fmt::format(
            "--checkpoint {} --batch {} --width-factor 0.125 --dropout 0 --dtype {} --threads 2 {}",
            (dir / "ckpt.h5").string(), (dir / "batch.h5").string(), dtype, kind);
        const auto cpu =
            run("metasemi-step-check", common + " --output " + (dir / "cpu.h5").string());
        const auto gpu =
            run("metasemi-step-check", common + " --gpu --output " + (dir / "gpu.h5").string());
        BOOST_TEST_REQUIRE(cpu.exitCode == 0, cpu.output);
        BOOST_TEST_REQUIRE(gpu.exitCode == 0, gpu.output);
        io::H5File a((dir / "cpu.h5").string(), io::H5File::Mode::kRead);
        io::H5File b((dir / "gpu.h5").string(), io::H5File::Mode::kRead);
        for (const std::string name : {"loss", "labeled_loss", "pseudo_labels"}) {
          if (!a.exists(name)) continue;
          const double rel = maxRel(io::readTensor(b, name), io::readTensor(a, name));
          BOOST_TEST(rel <= bound, name << ": " << rel);
        }
        const io::NamedTensors ma = io::readNamedTensors(a, "model");
        const io::NamedTensors mb = io::readNamedTensors(b, "model");
        BOOST_REQUIRE(ma.size() == mb.size());
        for (std::size_t i = 0; i < ma.size(); ++i) {
          if (!ma[i].second.is_floating_point()) continue;
          const double rel = maxRel(mb[i].second, ma[i].second);
          BOOST_TEST(rel <= bound, ma[i].first << ": " << rel);
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(evaluation_and_features_on_gpu_equal_cpu) {
  requireGpu();
  const fs::path dir = test::freshDir("gpu_eval");
  test::writeTinyShards(dir / "data");
  const auto train = run("metasemi-train", test::tinyTrainFlags(dir / "data") +
                                               " --total-steps 20 --test-freq 20 --save-path " +
                                               (dir / "run").string());
  BOOST_TEST_REQUIRE(train.exitCode == 0, train.output);
  const std::string ck = (dir / "run" / "checkpoint.h5").string();
  for (const std::string device : {"cpu", "gpu"}) {
    const std::string flag = device == "gpu" ? " --gpu" : "";
    const auto e =
        run("metasemi-eval", "--checkpoint " + ck + " --data-path " + (dir / "data").string() +
                                 " --output " + (dir / (device + ".json")).string() + flag);
    BOOST_TEST_REQUIRE(e.exitCode == 0, e.output);
    const auto f = run("metasemi-features", "--checkpoint " + ck + " --data-path " +
                                                (dir / "data").string() + " --output " +
                                                (dir / (device + "-features.h5")).string() + flag);
    BOOST_TEST_REQUIRE(f.exitCode == 0, f.output);
  }
  auto json = [&](const std::string& name) {
    std::ifstream in(dir / name);
    return nlohmann::json::parse(in);
  };
  // Counts are integers: the same predictions give exactly the same report.
  BOOST_TEST(json("cpu.json")["confusion"] == json("gpu.json")["confusion"]);
  io::H5File a((dir / "cpu-features.h5").string(), io::H5File::Mode::kRead);
  io::H5File b((dir / "gpu-features.h5").string(), io::H5File::Mode::kRead);
  BOOST_TEST(maxRel(io::readTensor(b, "features"), io::readTensor(a, "features")) <= 1e-4);
}

BOOST_AUTO_TEST_CASE(gpu_run_that_dies_resumes_bit_for_bit_under_deterministic) {
  requireGpu();
  const fs::path dir = test::freshDir("gpu_resume");
  test::writeTinyShards(dir / "data");
  const std::string flags = test::tinyTrainFlags(dir / "data") +
                            " --gpu --deterministic --mix-up --total-steps 24 --test-freq 8 ";
  const auto whole = run("metasemi-train", flags + "--save-path " + (dir / "whole").string());
  BOOST_TEST_REQUIRE(whole.exitCode == 0, whole.output);
  // The process vanishes (exit 9, no cleanup) at step 13, after the checkpoint of step 8.
  const auto died =
      test::runCommand("METASEMI_FAULT=exit:0:13 " + test::binary("metasemi-train").string() + " " +
                       flags + "--save-path " + (dir / "died").string() + " 2>&1");
  BOOST_TEST_REQUIRE(died.exitCode == 9, died.output);
  const auto resumed = run("metasemi-train", flags + "--save-path " + (dir / "died").string());
  BOOST_TEST_REQUIRE(resumed.exitCode == 0, resumed.output);
  BOOST_TEST(resumed.output.find("steps 8 -> 24") != std::string::npos, resumed.output);
  BOOST_TEST(
      test::sameCheckpointState(dir / "whole" / "checkpoint.h5", dir / "died" / "checkpoint.h5"));
}

BOOST_AUTO_TEST_CASE(nccl_averaging_inside_the_trainer) {
  requireGpu();
  const fs::path dir = test::freshDir("gpu_nccl_trainer");
  test::writeTinyShards(dir / "data");
  const std::string flags = test::tinyTrainFlags(dir / "data") +
                            " --gpu --dist-backend nccl --total-steps 6 --test-freq 6 ";
  const auto one = run("metasemi-train", flags + "--save-path " + (dir / "one").string());
  BOOST_TEST_REQUIRE(one.exitCode == 0, one.output);
  BOOST_TEST(one.output.find("NCCL") != std::string::npos, one.output);
  if (torch::cuda::device_count() < 2) {
    BOOST_TEST_MESSAGE("one GPU: the 2-rank NCCL run needs two");
    return;
  }
  const auto two = test::runCommand(fmt::format("mpirun -np 2 {} {} --save-path {} 2>&1",
                                                test::binary("metasemi-train").string(), flags,
                                                (dir / "two").string()));
  BOOST_TEST(two.exitCode == 0, two.output);
}
