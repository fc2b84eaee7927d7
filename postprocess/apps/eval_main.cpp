// metasemi-eval: top-1 / top-k error, per-class errors and the confusion matrix of a checkpoint on
// one split of a shard set, with the trainer's evaluation transform. Runs under mpirun/srun:
// every rank evaluates a contiguous part of the images and the counts are summed. With --logits
// it also writes every image's logits (and, with --logits-inputs, the images as the network saw
// them) to an HDF5 file, for comparisons with other implementations.
#include <boost/program_options.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <numeric>
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
#include "metasemi/io/H5File.h"
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
  std::string checkpoint, dataPath, split, output, logits;
  int batch = 500;
  int threads = 0;
  int topK = 5;
  bool gpu = false;
  bool logitsInputs = false;
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

void requireWritable(const std::string& output, const std::string& flag) {
  const fs::path out(output);
  MS_REQUIRE(!fs::is_directory(out), core::IoError, "{} {}: is a folder, expected a file", flag,
             output);
  io::requireWritableFolder(out.parent_path().empty() ? fs::path(".") : out.parent_path(),
                            flag + " " + output, false);
}

Prepared prepare(const Options& o, bool root, int localRank) {
  MS_REQUIRE(!o.checkpoint.empty(), core::ConfigError, "--checkpoint is required (see --help)");
  MS_REQUIRE(!o.dataPath.empty(), core::ConfigError, "--data-path is required (see --help)");
  MS_REQUIRE(o.batch > 0, core::ConfigError, "--batch-size: expected a count >= 1, got {}",
             o.batch);
  MS_REQUIRE(o.topK >= 1, core::ConfigError, "--top-k: expected k >= 1, got {}", o.topK);
  MS_REQUIRE(o.threads >= 0, core::ConfigError, "--threads: expected a count >= 0, got {}",
             o.threads);
  MS_REQUIRE(!o.logitsInputs || !o.logits.empty(), core::ConfigError,
             "--logits-inputs needs --logits FILE (see --help)");
  Prepared p;
  p.device = train::deviceFor(o.gpu, localRank);
  train::configureDevice(p.device, /*deterministic=*/true);
  core::requireFile(o.checkpoint, "--checkpoint");
  if (root && !o.output.empty()) requireWritable(o.output, "--output");
  if (root && !o.logits.empty()) requireWritable(o.logits, "--logits");

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

// Collective: the logits of every image of the split (rows in the split's order), computed as
// the evaluation computes them (eval mode, channels-last input) on this rank's contiguous share
// and summed over the ranks (every other rank contributes zeros). Rank 0 writes `o.logits`:
//   logits  float32 N x classes     labels  int64 N
//   inputs  float32 N x C x H x W   (with --logits-inputs) the normalised images fed to the net
//   attributes checkpoint, data_path, split, step
void writeLogits(Prepared& p, const Options& o, comm::Communicator& comm) {
  torch::NoGradGuard noGrad;
  p.net->eval();
  const data::ShardSource& source = *p.data.source;
  const std::int64_t n = source.size();
  const std::int64_t classes = p.net->numClasses();
  // The transformed image's shape, the same on every rank whatever its share.
  std::vector<std::int64_t> imageShape;
  if (o.logitsInputs) {
    const std::vector<std::int64_t> first = {0};
    imageShape = data::makeBatch(source, p.data.augment, first, {0}).images.sizes().vec();
    imageShape.erase(imageShape.begin());
  }
  const std::int64_t imageSize =
      std::accumulate(imageShape.begin(), imageShape.end(), std::int64_t{1}, std::multiplies<>());
  std::vector<float> logits(static_cast<std::size_t>(n * classes), 0.0f);
  std::vector<float> inputs(o.logitsInputs ? static_cast<std::size_t>(n * imageSize) : 0, 0.0f);
  std::vector<std::int64_t> labels(static_cast<std::size_t>(n), 0);
  data::EvalIterator it(p.data.source, p.data.augment, o.batch, comm.rank(), comm.size(), {2, 4});
  while (auto batch = it.next()) {
    const torch::Tensor x =
        batch->images.to(p.device).contiguous(torch::MemoryFormat::ChannelsLast);
    const torch::Tensor z = p.net->forward(x).to(torch::kCPU, torch::kFloat32).contiguous();
    const torch::Tensor images = batch->images.to(torch::kFloat32).contiguous();
    const auto* idx = batch->indices.data_ptr<std::int64_t>();
    const auto* lab = batch->labels.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < z.size(0); ++i) {
      MS_CHECK(idx[i] >= 0 && idx[i] < n, "sample index {} outside [0, {})", idx[i], n);
      std::copy_n(z.data_ptr<float>() + i * classes, classes, logits.begin() + idx[i] * classes);
      labels[static_cast<std::size_t>(idx[i])] = lab[i];
      if (o.logitsInputs) {
        std::copy_n(images.data_ptr<float>() + i * imageSize, imageSize,
                    inputs.begin() + idx[i] * imageSize);
      }
    }
  }
  comm.allreduceSum(logits.data(), logits.size());
  comm.allreduceSum(labels.data(), labels.size());
  if (o.logitsInputs) comm.allreduceSum(inputs.data(), inputs.size());
  if (!comm.isRoot()) return;
  io::AtomicOutput out(o.logits);
  {
    io::H5File f(out.tempPath(), io::H5File::Mode::kCreate);
    f.write("logits", io::DType::kFloat32, logits.data(), {n, classes});
    f.writeVector("labels", labels);
    if (o.logitsInputs) {
      std::vector<std::int64_t> shape = {n};
      shape.insert(shape.end(), imageShape.begin(), imageShape.end());
      f.write("inputs", io::DType::kFloat32, inputs.data(), shape);
    }
    f.setAttr("/", "checkpoint", o.checkpoint);
    f.setAttr("/", "data_path", o.dataPath);
    f.setAttr("/", "split", p.data.split);
    f.setAttr("/", "step", p.checkpoint.step);
  }
  out.commit();
  core::rootLog().info("wrote {} ({} x {} logits)", o.logits, n, classes);
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
  if (!o.logits.empty()) writeLogits(p, o, comm);
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
      "gpu", po::bool_switch(&o.gpu), "evaluate on this rank's GPU (by node-local rank)")(
      "logits", po::value(&o.logits),
      "also write every image's logits (float32 N x classes, split order) and labels to this "
      "HDF5 file (datasets logits, labels)")(
      "logits-inputs", po::bool_switch(&o.logitsInputs),
      "with --logits: also the normalised images the network saw (dataset inputs, float32 "
      "N x C x H x W; for small splits)");

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
