// metasemi-eval: top-1 / top-k error, per-class errors and the confusion matrix of a checkpoint on
// one split of a shard set, with the trainer's evaluation transform. Runs under mpirun/srun:
// every rank evaluates a contiguous part of the images and the counts are summed.
#include <boost/program_options.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include <unistd.h>

#include "metasemi/app/CommandLine.h"
#include "metasemi/app/MpiProgram.h"
#include "metasemi/core/Error.h"
#include "metasemi/core/Files.h"
#include "metasemi/core/Log.h"
#include "metasemi/data/Loader.h"
#include "metasemi/data/ShardSource.h"
#include "metasemi/io/Checkpoint.h"
#include "metasemi/io/RunDir.h"
#include "metasemi/models/Network.h"
#include "metasemi/models/StateDict.h"
#include "metasemi/post/Eval.h"
#include "metasemi/post/Report.h"
#include "metasemi/train/ConfigText.h"
#include "metasemi/train/Evaluator.h"
#include "metasemi/train/Recipe.h"
#include "metasemi/train/RunState.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace metasemi;

namespace {

constexpr const char* kProgram = "metasemi-eval";

struct Options {
  std::string checkpoint, dataPath, split, output;
  int batch = 500;
  int threads = 0;
  int topK = 5;
  bool gpu = false;
};

// Everything the pass needs, prepared identically on every rank before any collective.
struct Prepared {
  train::TrainConfig config;
  io::CheckpointState checkpoint;
  train::EvaluationSplit data;
  std::shared_ptr<models::Network> net;
  torch::Device device = torch::kCPU;
};

// The network's first convolution and last layer, looked up in the checkpoint: the input
// channels and the classes it was trained for, so that a mismatch names both numbers instead of
// a tensor shape.
std::pair<std::int64_t, std::int64_t> checkpointChannelsAndClasses(const io::NamedTensors& stored,
                                                                   models::Network& net) {
  const auto entries = models::stateDict(net);
  std::string firstConv;
  for (const auto& [key, t] : entries) {
    if (t.dim() == 4) {
      firstConv = key;
      break;
    }
  }
  const std::string& last = entries.back().first;
  std::int64_t channels = -1, classes = -1;
  for (const auto& [key, t] : stored) {
    if (key == firstConv && t.dim() == 4) channels = t.size(1);
    if (key == last && t.dim() >= 1) classes = t.size(0);
  }
  return {channels, classes};
}

void requireWritable(const std::string& output) {
  const fs::path out(output);
  MS_REQUIRE(!fs::is_directory(out), core::IoError, "--output {}: is a folder, expected a file",
             output);
  io::requireWritableFolder(out.parent_path().empty() ? fs::path(".") : out.parent_path(),
                            "--output " + output, false);
}

Prepared prepare(const Options& o, bool root, int localRank) {
  MS_REQUIRE(!o.checkpoint.empty(), core::ConfigError, "--checkpoint is required (see --help)");
  MS_REQUIRE(!o.dataPath.empty(), core::ConfigError, "--data-path is required (see --help)");
  MS_REQUIRE(o.batch > 0, core::ConfigError, "--batch-size: expected a count >= 1, got {}",
             o.batch);
  MS_REQUIRE(o.topK >= 1, core::ConfigError, "--top-k: expected k >= 1, got {}", o.topK);
  MS_REQUIRE(o.threads >= 0, core::ConfigError, "--threads: expected a count >= 0, got {}",
             o.threads);
  Prepared p;
  p.device = train::deviceFor(o.gpu, localRank);
  train::configureDevice(p.device, /*deterministic=*/true);
  core::requireFile(o.checkpoint, "--checkpoint");
  if (root && !o.output.empty()) requireWritable(o.output);

  p.checkpoint = io::readCheckpoint(o.checkpoint);
  p.config = train::checkpointConfig(p.checkpoint, o.checkpoint);
  train::requireFiniteTensors(p.checkpoint.model, o.checkpoint, "model tensor");
  const train::TrainConfig& c = p.config;
  // The split the trainer evaluated, normalised with the training split's statistics.
  p.data = train::openEvaluationSplit(c, o.dataPath, o.split);
  const io::ShardSetInfo& info = p.data.source->info();
  MS_REQUIRE(info.dataset == c.dataset, core::IoError,
             "checkpoint {} was trained on dataset '{}' but split '{}' of {} holds '{}'",
             o.checkpoint, c.dataset, p.data.split, o.dataPath, info.dataset);
  p.net = models::makeNetwork(train::networkSpecOf(c, info.decodedChannels, info.numClasses));
  const auto [channels, classes] = checkpointChannelsAndClasses(p.checkpoint.model, *p.net);
  MS_REQUIRE(classes < 0 || classes == info.numClasses, core::IoError,
             "checkpoint {} has {} classes but split '{}' of {} has {}", o.checkpoint, classes,
             p.data.split, o.dataPath, info.numClasses);
  MS_REQUIRE(channels < 0 || channels == info.decodedChannels, core::IoError,
             "checkpoint {} takes images of {} channels but split '{}' of {} has {}", o.checkpoint,
             channels, p.data.split, o.dataPath, info.decodedChannels);
  io::restoreNamed(p.checkpoint.model, models::stateDict(*p.net), o.checkpoint, "model");
  p.net->eval();
  // The trainer evaluates in channels-last; the same layout keeps the arithmetic identical.
  p.net->to(p.device);
  models::toChannelsLast(*p.net);
  return p;
}

int run(Prepared& p, const Options& o, comm::Communicator& comm) {
  core::rootLog().info("{}: step {}, {} {}; split '{}' of {}: {} images on {} ranks", o.checkpoint,
                       p.checkpoint.step, p.config.architecture, p.config.dataset, p.data.split,
                       o.dataPath, p.data.source->size(), comm.size());
  const train::Evaluator evaluator(p.data.source, p.data.augment, p.device,
                                   {o.batch, o.topK, {2, 4}, true});
  const post::EvalCounts counts = evaluator.run(*p.net, comm);
  if (comm.isRoot()) {
    post::EvalReport r = post::makeEvalReport(counts, p.data.source->info().classNames);
    r.checkpoint = o.checkpoint;
    r.dataPath = o.dataPath;
    r.split = p.data.split;
    r.architecture = p.config.architecture;
    r.dataset = p.config.dataset;
    r.step = p.checkpoint.step;
    r.recorded = post::parseRecordedErrors(p.checkpoint.dataJson);
    if (!o.output.empty()) post::writeTextAtomic(o.output, post::toJson(r));
    std::cout << post::formatEvalReport(r) << std::flush;
    if (!o.output.empty()) core::rootLog().info("wrote {}", o.output);
  }
  comm.barrier();
  return core::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  app::MpiProgram program(kProgram, argc, argv);
  comm::Communicator& comm = program.comm();
  Options o;
  po::options_description desc(
      "Usage: metasemi-eval --checkpoint FILE.h5 --data-path DIR [options]\n"
      "Top-1 / top-k error, per-class errors and confusion matrix of a checkpoint on one split "
      "of a shard set.\nOptions");
  desc.add_options()("help,h", "show this help")("checkpoint", po::value(&o.checkpoint),
                                                 "checkpoint.h5 or model_best.h5 of a run")(
      "data-path", po::value(&o.dataPath), "shard set folder")(
      "split", po::value(&o.split),
      "split to evaluate (default: the one the trainer evaluated, test; val for imagenet)")(
      "batch-size", po::value(&o.batch)->default_value(500), "images per forward and rank")(
      "threads", po::value(&o.threads)->default_value(0),
      "LibTorch threads per rank (0 = cores / ranks on the node)")(
      "output", po::value(&o.output), "JSON file to write (default: print only)")(
      "top-k", po::value(&o.topK)->default_value(5), "k of the top-k error")(
      "gpu", po::bool_switch(&o.gpu), "evaluate on this rank's GPU (by node-local rank)");

  // Bad input is found on every rank before the first collective of the pass.
  bool help = false;
  Prepared prepared;
  const int checked = program.agree([&] {
    po::variables_map vm;
    help = !app::parseCommandLine(argc, argv, desc, vm, comm.isRoot());
    if (help) return;
    at::set_num_threads(train::threadsPerRank(o.threads, comm.localSize()));
    prepared = prepare(o, comm.isRoot(), comm.localRank());
  });
  if (checked != core::kExitOk || help) return checked;
  return program.run([&]() -> int { return run(prepared, o, comm); });
}
