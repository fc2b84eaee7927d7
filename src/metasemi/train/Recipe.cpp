#include "metasemi/train/Recipe.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "metasemi/core/Error.h"
#include "metasemi/io/ShardSplit.h"
#include "metasemi/meta/Schedule.h"

namespace metasemi::train {
namespace fs = std::filesystem;

namespace {

std::vector<std::int64_t> allIndices(std::int64_t n) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
  return v;
}

// ImageNet-style runs: the labeled and unlabeled images are separate splits (made from the
// reference's lists by metasemi-prep), evaluated on "val".
RunInputs openImagenet(const TrainConfig& c) {
  const fs::path dir = c.dataPath;
  auto labeled = std::make_shared<data::ShardSource>(io::ShardSet::open(dir, "train_labeled"));
  auto unlabeled = std::make_shared<data::ShardSource>(io::ShardSet::open(dir, "train_unlabeled"));
  auto val = std::make_shared<data::ShardSource>(io::ShardSet::open(dir, "val"));
  for (const auto* other : {&unlabeled->info(), &val->info()}) {
    MS_REQUIRE(other->numClasses == labeled->info().numClasses, core::IoError,
               "'{}': split '{}' has {} classes but 'train_labeled' has {}", c.dataPath,
               other->split, other->numClasses, labeled->info().numClasses);
  }
  RunInputs d;
  d.info = labeled->info();
  d.labeledIndices = allIndices(labeled->size());
  d.unlabeledIndices = allIndices(unlabeled->size());
  const data::Normalization norm = data::shardNormalization(d.info);
  d.trainAugment = data::trainAugment(c.dataset, true, norm, c.imcrop);
  d.evalAugment = data::evalAugment(true, norm, c.imsize, c.imcrop);
  d.labeled = labeled;
  d.unlabeled = unlabeled;
  d.test = val;
  return d;
}

RunInputs openInputs(const TrainConfig& c) {
  MS_REQUIRE(fs::is_directory(c.dataPath), core::IoError,
             "--data-path '{}': no such folder (make shards with metasemi-prep)", c.dataPath);
  RunInputs d;
  if (c.isImagenet()) {
    d = openImagenet(c);
  } else {
    data::RunDataSpec spec;
    spec.dir = c.dataPath;
    spec.labelSplit = io::labelSplitName(c.numLabel, c.seed);
    spec.crop = c.imcrop;
    spec.resize = c.imsize;
    const data::RunData run(spec);
    d.info = run.trainInfo();
    d.labeledIndices = run.labelSplit().labeled;
    d.unlabeledIndices = run.labelSplit().unlabeled;
    d.trainAugment = run.trainAugment();
    d.evalAugment = run.evalAugment();
    d.labeled = run.trainSource();
    d.unlabeled = d.labeled;
    d.test = run.testSource();
  }
  MS_REQUIRE(d.info.dataset == c.dataset, core::ConfigError,
             "--dataset is '{}' but the shards in '{}' hold '{}'", c.dataset, c.dataPath,
             d.info.dataset);
  return d;
}

}  // namespace

DataSummary RunInputs::summary() const {
  DataSummary s;
  s.dataset = info.dataset;
  s.numClasses = info.numClasses;
  s.channels = info.decodedChannels;
  s.labeled = static_cast<std::int64_t>(labeledIndices.size());
  s.unlabeled = static_cast<std::int64_t>(unlabeledIndices.size());
  return s;
}

meta::StepKind stepKindOf(const TrainConfig& c) {
  if (c.method == Method::kMeta) {
    return c.mixUp ? meta::StepKind::kMetaMixUp : meta::StepKind::kMeta;
  }
  return c.mixUp ? meta::StepKind::kMixUpOnly : meta::StepKind::kLabeledOnly;
}

models::NetworkSpec networkSpecOf(const TrainConfig& c, std::int64_t channels,
                                  std::int64_t numClasses) {
  models::NetworkSpec spec;
  spec.architecture = c.architecture;
  spec.inputChannels = channels;
  spec.numClasses = numClasses;
  spec.widthFactor = c.widthFactor;
  spec.dropout = c.dropout;
  return spec;
}

torch::Device deviceFor(bool gpu, int localRank, const std::string& flag) {
  if (!gpu) return torch::kCPU;
  MS_REQUIRE(torch::cuda::is_available(), core::ConfigError,
             "{}: no CUDA device is visible to this process, or this build's LibTorch has no "
             "CUDA (build with the cluster-gpu preset)",
             flag);
  const auto count = static_cast<int>(torch::cuda::device_count());
  MS_REQUIRE(localRank < count, core::ConfigError,
             "{}: node-local rank {} has no GPU of its own ({} visible); start at most one rank "
             "per GPU",
             flag, localRank, count);
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(localRank));
}

torch::Device deviceOf(const TrainConfig& c, int localRank) {
  return deviceFor(c.gpu, localRank, "--gpu");
}

void configureDevice(torch::Device device, bool deterministic) {
  if (!device.is_cuda()) return;
  auto& context = at::globalContext();
  context.setBenchmarkCuDNN(!deterministic);
  context.setDeterministicCuDNN(deterministic);
  if (deterministic) {
    // cuBLAS is deterministic only with a fixed workspace, which must be set before its first
    // handle is made; a value the user set is kept.
    ::setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", 0);
    context.setDeterministicAlgorithms(true, /*warn_only=*/false);
  }
}

int threadsPerRank(int requested, int ranksOnNode) {
  if (requested > 0) return requested;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, ranksOnNode));
}

EvaluationSplit openEvaluationSplit(const TrainConfig& c, const std::string& dataPath,
                                    const std::string& split) {
  EvaluationSplit e;
  e.split = !split.empty() ? split : c.isImagenet() ? "val" : "test";
  const std::string trainSplit = c.isImagenet() ? "train_labeled" : "train";
  MS_REQUIRE(fs::is_directory(dataPath), core::IoError,
             "--data-path {}: no such folder (make shards with metasemi-prep)", dataPath);
  auto source = std::make_shared<data::ShardSource>(io::ShardSet::open(dataPath, e.split));
  e.trainInfo =
      e.split == trainSplit ? source->info() : io::ShardSet::open(dataPath, trainSplit).info();
  e.augment = data::evalAugment(source->isEncoded(), data::shardNormalization(e.trainInfo),
                                c.imsize, c.imcrop);
  e.source = source;
  return e;
}

Recipe Recipe::plan(const TrainConfig& c, const DataSummary& data, int worldSize,
                    torch::Device device) {
  MS_CHECK(worldSize >= 1, "worldSize must be >= 1");
  Recipe r(c, device);
  r.kind_ = stepKindOf(c);
  r.network_ = networkSpecOf(c, data.channels, data.numClasses);
  r.globalBatch_ = static_cast<std::int64_t>(c.batchSize) * worldSize;
  r.totalSteps_ = c.totalSteps;
  r.warmupSteps_ = c.warmup;
  if (c.lrSchedule == LrSchedule::kCosine && c.isImagenet()) {
    // One epoch is one pass over the set that drives the reference's loader: the unlabeled
    // set for MetaSemi, the labeled set for the labeled-only baseline (train_imagenet.py).
    // Both round up (the baseline script's scheduler rounds down but its loop runs the
    // rounded-up count; the meta script's ceil is used for both).
    const std::int64_t epochImages = r.usesUnlabeled() ? data.unlabeled : data.labeled;
    const std::int64_t loaderLen = (epochImages + r.globalBatch_ - 1) / r.globalBatch_;
    r.warmupSteps_ = loaderLen * c.warmup;
    r.totalSteps_ = loaderLen * c.epochs;
  }
  return r;
}

Recipe Recipe::open(const TrainConfig& c, int worldSize, torch::Device device) {
  auto inputs = std::make_shared<const RunInputs>(openInputs(c));
  Recipe r = plan(c, inputs->summary(), worldSize, device);
  r.inputs_ = std::move(inputs);
  return r;
}

double Recipe::lr(std::int64_t step) const {
  if (config_.lrSchedule == LrSchedule::kCosine) {
    meta::CosineLrSchedule s;
    s.lrMax = config_.lr;
    s.warmupIters = warmupSteps_;
    s.maxIters = totalSteps_;
    return s.lr(step);
  }
  const meta::StepLrSchedule s{config_.lr, config_.warmup, config_.milestones, config_.gamma};
  return s.lr(step);
}

double Recipe::weight(std::int64_t step) const {
  return config_.weightRamp ? meta::rampWeight(config_.weight, step, config_.warmup)
                            : config_.weight;
}

meta::StepSettings Recipe::settings(std::int64_t step) const {
  meta::StepSettings s;
  s.kind = kind_;
  s.metaGrad = config_.metaGrad;
  s.lr = lr(step);
  s.epsilon = config_.epsilon;
  s.weight = weight(step);
  s.alpha = config_.alpha;
  return s;
}

std::unique_ptr<data::TrainStream> Recipe::trainStream(
    data::StreamId id, int rank, int worldSize, std::shared_ptr<data::WorkerPool> pool,
    std::optional<data::StreamState> resumeFrom) const {
  MS_CHECK(inputs_, "trainStream() of a planned recipe");
  const bool labeled = id == data::StreamId::kLabeled;
  return std::make_unique<data::TrainStream>(
      labeled ? inputs_->labeled : inputs_->unlabeled,
      labeled ? inputs_->labeledIndices : inputs_->unlabeledIndices, id, config_.seed,
      inputs_->trainAugment, config_.batchSize, rank, worldSize,
      data::LoaderOptions{0, 4, std::move(pool), device_.is_cuda()}, resumeFrom);
}

std::shared_ptr<models::Network> Recipe::makeNetwork() const {
  torch::manual_seed(config_.seed);
  std::shared_ptr<models::Network> net = models::makeNetwork(network_);
  net->to(device_);
  models::toChannelsLast(*net);
  return net;
}

}  // namespace metasemi::train
