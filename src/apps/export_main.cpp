// metasemi-export: a trainer checkpoint (checkpoint.h5, model_best.h5) as the reference's
// checkpoint.pth, {'step', 'model', 'best_acc', 'optimizer'} for torch.load, and/or the model's
// state_dict as safetensors.
#include <boost/program_options.hpp>

#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>

#include "metasemi/app/CommandLine.h"
#include "metasemi/core/Error.h"
#include "metasemi/core/Files.h"
#include "metasemi/io/Checkpoint.h"
#include "metasemi/io/RunDir.h"
#include "metasemi/io/TorchExport.h"
#include "metasemi/meta/Sgd.h"
#include "metasemi/models/Network.h"
#include "metasemi/models/StateDict.h"
#include "metasemi/train/Recipe.h"
#include "metasemi/train/RunState.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace metasemi;

namespace {

constexpr const char* kProgram = "metasemi-export";

struct Options {
  std::string checkpoint, output, format = "auto";
};

// The files to write: a .pth path and/or a .safetensors path ("" = not written).
struct Outputs {
  std::string pth, safetensors;
};

Outputs outputsOf(const Options& o) {
  MS_REQUIRE(!o.checkpoint.empty(), core::ConfigError, "--checkpoint is required (see --help)");
  MS_REQUIRE(!o.output.empty(), core::ConfigError, "--output is required (see --help)");
  const fs::path out(o.output);
  std::error_code ec;
  MS_REQUIRE(!fs::is_directory(out, ec), core::IoError, "--output {}: is a folder, expected a file",
             o.output);
  const std::string ext = out.extension().string();
  const bool pthExt = ext == ".pth" || ext == ".pt";
  Outputs r;
  if (o.format == "auto") {
    MS_REQUIRE(pthExt || ext == ".safetensors", core::ConfigError,
               "--output {}: cannot tell the format from the name; end it in .pth or "
               ".safetensors, or give --format pth|safetensors|both",
               o.output);
    (pthExt ? r.pth : r.safetensors) = o.output;
  } else if (o.format == "pth") {
    r.pth = o.output;
  } else if (o.format == "safetensors") {
    r.safetensors = o.output;
  } else if (o.format == "both") {
    const fs::path stem = pthExt || ext == ".safetensors" ? fs::path(out).replace_extension() : out;
    r.pth = stem.string() + ".pth";
    r.safetensors = stem.string() + ".safetensors";
  } else {
    MS_THROW(core::ConfigError, "--format: expected auto, pth, safetensors or both, got '{}'",
             o.format);
  }
  return r;
}

void requireWritable(const std::string& output) {
  if (output.empty()) return;
  const fs::path out(output);
  std::error_code ec;
  MS_REQUIRE(!fs::is_directory(out, ec), core::IoError, "--output {}: is a folder, expected a file",
             output);
  io::requireWritableFolder(out.parent_path().empty() ? fs::path(".") : out.parent_path(),
                            "--output " + output, false);
}

// The checkpoint's first convolution (input channels) and last tensor (classes) for the
// architecture of `c`, read from the stored shapes.
models::NetworkSpec specOf(const train::TrainConfig& c, const io::CheckpointState& stored,
                           const std::string& path) {
  models::NetworkSpec probe = train::networkSpecOf(c, 3, 10);
  const auto entries = models::stateDict(*models::makeNetwork(probe));
  std::string firstConv;
  for (const auto& [key, t] : entries) {
    if (t.dim() == 4) {
      firstConv = key;
      break;
    }
  }
  std::int64_t channels = -1, classes = -1;
  for (const auto& [key, t] : stored.model) {
    if (key == firstConv && t.dim() == 4) channels = t.size(1);
    if (key == entries.back().first && t.dim() >= 1) classes = t.size(0);
  }
  MS_REQUIRE(channels > 0 && classes > 0, core::IoError,
             "checkpoint '{}' does not hold a {} model (no '{}' or '{}')", path, c.architecture,
             firstConv, entries.back().first);
  return train::networkSpecOf(c, channels, classes);
}

int exportMain(int argc, char** argv) {
  Options o;
  po::options_description desc(
      "Usage: metasemi-export --checkpoint FILE.h5 --output FILE [--format F]\n"
      "Writes a metasemi-train checkpoint as the reference's checkpoint.pth, a dict\n"
      "{'step', 'model', 'best_acc', 'optimizer'} that torch.load reads (also with\n"
      "weights_only=True from PyTorch 2.0 on): 'model' is the state_dict of the reference's\n"
      "ConvLarge (torchvision's ResNet-18 for resnet18 runs), 'optimizer' the state_dict of the\n"
      "reference's torch.optim.SGD (momentum buffers, lr of the last step, momentum, weight\n"
      "decay). The safetensors form holds the state_dict, with step, best_acc, architecture,\n"
      "dataset and the run's settings in __metadata__. Files are replaced atomically.\nOptions");
  desc.add_options()("help,h", "show this help")("checkpoint", po::value(&o.checkpoint),
                                                 "checkpoint.h5 or model_best.h5 of a run")(
      "output", po::value(&o.output), "file to write (see --format)")(
      "format", po::value(&o.format)->default_value("auto"),
      "auto: from the --output name (.pth or .pt, .safetensors); pth; safetensors; both: "
      "<output>.pth and <output>.safetensors (an --output ending in one of these is replaced)");
  po::variables_map vm;
  if (!app::parseCommandLine(argc, argv, desc, vm)) return core::kExitOk;
  const Outputs out = outputsOf(o);
  core::requireFile(o.checkpoint, "--checkpoint");
  requireWritable(out.pth);
  requireWritable(out.safetensors);

  const io::CheckpointState stored = io::readCheckpoint(o.checkpoint);
  const train::TrainConfig c = train::checkpointConfig(stored, o.checkpoint);
  const models::NetworkSpec spec = specOf(c, stored, o.checkpoint);
  auto net = models::makeNetwork(spec);
  meta::Sgd sgd(net->parameters(), c.momentum, c.weightDecay);
  // Checks every tensor against the network (names, shapes) and reads the run state.
  const train::RunState state = train::RunState::restore(stored, o.checkpoint, *net, sgd);

  io::ReferenceCheckpoint ref;
  ref.step = stored.step;
  // The reference starts from best_acc = 0 until the first evaluation.
  ref.bestAcc = std::isfinite(stored.bestAcc1) ? stored.bestAcc1 : 0.0;
  // The stored tensors (their dtype, their values) in the network's state_dict order.
  std::map<std::string, torch::Tensor> byKey(stored.model.begin(), stored.model.end());
  for (const auto& [key, live] : models::stateDict(*net)) ref.model.emplace_back(key, byKey[key]);
  for (const auto& p : net->named_parameters()) ref.parameters.push_back(p.key());
  ref.momentum = stored.momentum;

  // The group's lr is the one of the last step taken (the reference sets it before each step).
  train::DataSummary data;
  data.dataset = c.dataset;
  data.numClasses = spec.numClasses;
  data.channels = spec.inputChannels;
  data.labeled = state.labeledStream ? state.labeledStream->size : 0;
  data.unlabeled = state.unlabeledStream ? state.unlabeledStream->size : 0;
  const train::Recipe recipe = train::Recipe::plan(c, data, state.worldSize);
  ref.sgd.lr = stored.step > 0 ? recipe.lr(stored.step - 1) : c.lr;
  ref.sgd.momentum = c.momentum;
  ref.sgd.weightDecay = c.weightDecay;

  if (!out.pth.empty()) {
    io::writeTorchCheckpoint(out.pth, ref);
    std::cout << fmt::format("wrote {}: step {}, {} state_dict tensors, {} momentum buffers\n",
                             out.pth, ref.step, ref.model.size(), ref.momentum.size());
  }
  if (!out.safetensors.empty()) {
    const std::map<std::string, std::string> metadata = {
        {"format", "pt"},
        {"step", std::to_string(ref.step)},
        {"best_acc", fmt::format("{}", ref.bestAcc)},
        {"architecture", c.architecture},
        {"dataset", c.dataset},
        {"num_classes", std::to_string(spec.numClasses)},
        {"input_channels", std::to_string(spec.inputChannels)},
        {"source", o.checkpoint},
        {"config", stored.config}};
    io::writeSafetensors(out.safetensors, ref.model, metadata);
    std::cout << fmt::format("wrote {}: step {}, {} state_dict tensors\n", out.safetensors,
                             ref.step, ref.model.size());
  }
  return core::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  return app::runProgram(kProgram, [&] { return exportMain(argc, argv); });
}
