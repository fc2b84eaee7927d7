// metasemi-step-check end to end: a checkpoint and a batch written here, one step through the
// executable, its outputs against the same step run in this process, and its error handling.
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include "metasemi/io/Checkpoint.h"
#include "metasemi/io/H5File.h"
#include "metasemi/io/TensorIo.h"
#include "metasemi/meta/MetaStep.h"
#include "metasemi/meta/Sgd.h"
#include "metasemi/models/Network.h"
#include "metasemi/models/StateDict.h"
#include "support/TestSupport.h"

using namespace metasemi;
namespace fs = std::filesystem;

namespace {

models::NetworkSpec tinySpec() {
  models::NetworkSpec s;
  s.inputChannels = 3;
  s.numClasses = 10;
  s.widthFactor = 0.125;
  s.dropout = 0.5;
  return s;
}

struct Files {
  fs::path dir, checkpoint, batch;
  meta::StepBatch data;
};

Files writeInputs(const std::string& name) {
  Files f;
  f.dir = test::freshDir(name);
  f.checkpoint = f.dir / "ckpt.h5";
  f.batch = f.dir / "batch.h5";
  torch::manual_seed(11);
  auto net = models::makeNetwork(tinySpec());
  {
    torch::NoGradGuard noGrad;
    net->train();
    net->forward(torch::randn({8, 3, 32, 32}));
  }
  io::H5File ck(f.checkpoint.string(), io::H5File::Mode::kCreate);
  io::writeNamedTensors(ck, "model", models::stateDict(*net));
  f.data.labeledImages = torch::randn({6, 3, 32, 32});
  f.data.labels = torch::randint(10, {6}, torch::kLong);
  f.data.unlabeledImages = torch::randn({6, 3, 32, 32});
  f.data.unlabeledLabels = torch::randint(10, {6}, torch::kLong);
  f.data.lambda = torch::rand({6});
  io::H5File b(f.batch.string(), io::H5File::Mode::kCreate);
  io::writeTensor(b, "labeled_images", f.data.labeledImages);
  io::writeTensor(b, "labels", f.data.labels);
  io::writeTensor(b, "unlabeled_images", f.data.unlabeledImages);
  io::writeTensor(b, "unlabeled_labels", f.data.unlabeledLabels);
  io::writeTensor(b, "lambda", f.data.lambda);
  return f;
}

std::string command(const Files& f, const fs::path& out, const std::string& extra) {
  return test::binary("metasemi-step-check").string() + " --checkpoint " + f.checkpoint.string() +
         " --batch " + f.batch.string() + " --output " + out.string() +
         " --width-factor 0.125 --lr 0.1 --epsilon 0.01 --weight 0.5 --seed 5 --threads 1 " + extra;
}

double maxRel(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(b.abs().max().item<double>(), 1e-12);
}

}  // namespace

BOOST_AUTO_TEST_CASE(step_check_matches_the_in_process_step) {
  const auto f = writeInputs("step_check_match");
  const auto out = f.dir / "out.h5";
  const auto run = test::runCommand(command(f, out, "--mix-up"));
  BOOST_REQUIRE_MESSAGE(run.exitCode == 0, run.output);

  // The same step in this process: same checkpoint, batch, seeds and settings.
  auto net = models::makeNetwork(tinySpec());
  {
    io::H5File ck(f.checkpoint.string(), io::H5File::Mode::kRead);
    io::restoreNamed(io::readNamedTensors(ck, "model"), models::stateDict(*net), ck.path(),
                     "model");
  }
  models::toChannelsLast(*net);
  meta::Sgd sgd(net->parameters(), 0.9, 1e-4);
  meta::MetaStep step(net, sgd, true);
  meta::StepSettings s;
  s.lr = 0.1;
  s.epsilon = 0.01;
  s.weight = 0.5;
  torch::manual_seed(5);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const auto r = step.run(f.data, s, gen);

  io::H5File o(out.string(), io::H5File::Mode::kRead);
  for (const auto& [name, want] : std::vector<std::pair<std::string, torch::Tensor>>{
           {"loss", r.loss},
           {"labeled_loss", r.labeledLoss},
           {"mix_loss", r.mixLoss},
           {"unlabeled_loss", r.unlabeledLoss},
           {"grad_norm", r.gradNorm},
           {"epsilon", r.epsilon},
           {"pseudo_labels_init", r.pseudoLabelsInit},
           {"pseudo_labels", r.pseudoLabels},
           {"lambda", r.lambda}}) {
    BOOST_TEST(maxRel(io::readTensor(o, name), want) < 1e-5, name);
  }
  const auto sums = io::readTensor(o, "pseudo_labels").sum(1);
  BOOST_TEST(((sums - 1).abs() < 1e-5).all().item<bool>());
  for (const auto& p : net->named_parameters()) {
    BOOST_TEST(maxRel(io::readTensor(o, "grads/" + p.key()), p.value().grad()) < 1e-4, p.key());
    BOOST_TEST(o.isDataset("labeled_grads/" + p.key()));
  }
  // The updated state dict, BN statistics included, loads strictly into a fresh model.
  auto after = models::makeNetwork(tinySpec());
  io::restoreNamed(io::readNamedTensors(o, "model"), models::stateDict(*after), o.path(), "model");
  const auto want = models::stateDict(*net);
  const auto got = models::stateDict(*after);
  for (std::size_t i = 0; i < want.size(); ++i) {
    BOOST_TEST(maxRel(got[i].second.to(torch::kDouble), want[i].second.to(torch::kDouble)) < 1e-5,
               want[i].first);
  }
  BOOST_TEST(o.attrString("/", "meta_grad") == "fd");
}

BOOST_AUTO_TEST_CASE(step_check_runs_every_method) {
  const auto f = writeInputs("step_check_methods");
  for (const std::string extra :
       {"--meta-grad exact --mix-up", "", "--method baseline", "--method baseline --mix-up",
        "--dtype float64 --channels-last 0 --mix-up"}) {
    const auto out = f.dir / "out.h5";
    fs::remove(out);
    const auto run = test::runCommand(command(f, out, extra));
    BOOST_TEST_REQUIRE(run.exitCode == 0, extra << ": " << run.output);
    io::H5File o(out.string(), io::H5File::Mode::kRead);
    BOOST_TEST(std::isfinite(io::readTensor(o, "loss").item<double>()), extra);
    BOOST_TEST(o.isDataset("grads/classifier.0.weight"), extra);
  }
}

BOOST_AUTO_TEST_CASE(step_check_reports_bad_input_in_one_line) {
  const auto f = writeInputs("step_check_errors");
  const auto out = f.dir / "out.h5";
  auto oneLine = [](const std::string& s) {
    return std::count(s.begin(), s.end(), '\n') == 1 && s.rfind("metasemi-step-check: ", 0) == 0;
  };
  {
    const auto run = test::runCommand(command(f, out, "--meta-grad second-order"));
    BOOST_TEST(run.exitCode == 2);
    BOOST_TEST(oneLine(run.output), run.output);
    BOOST_TEST(run.output.find("--meta-grad") != std::string::npos, run.output);
  }
  {
    const auto run = test::runCommand(command(f, out, "--num-classes 100"));
    BOOST_TEST(run.exitCode == 3);
    BOOST_TEST(oneLine(run.output), run.output);
    BOOST_TEST(run.output.find(f.checkpoint.string()) != std::string::npos, run.output);
    BOOST_TEST(run.output.find("classifier.0.weight") != std::string::npos, run.output);
  }
  {
    const auto bad = f.dir / "bad_batch.h5";
    {
      io::H5File b(bad.string(), io::H5File::Mode::kCreate);
      io::writeTensor(b, "labeled_images", f.data.labeledImages);
    }
    const auto cmd = test::binary("metasemi-step-check").string() + " --checkpoint " +
                     f.checkpoint.string() + " --batch " + bad.string() + " --output " +
                     out.string() + " --width-factor 0.125";
    const auto run = test::runCommand(cmd);
    BOOST_TEST(run.exitCode == 3);
    BOOST_TEST(oneLine(run.output), run.output);
    BOOST_TEST(run.output.find(bad.string()) != std::string::npos, run.output);
    BOOST_TEST(run.output.find("'labels'") != std::string::npos, run.output);
  }
  BOOST_TEST(!fs::exists(out));
  for (const auto& entry : fs::directory_iterator(f.dir)) {
    BOOST_TEST(entry.path().filename().string().find("out.h5") == std::string::npos, entry.path());
  }
}
