// What a run is, decided once from its settings: the data sets and splits (ImageNet's included),
// the network, the schedule, the step kind and the device. The trainer, metasemi-eval,
// metasemi-features and metasemi-step-check take these decisions from here and nowhere else.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "metasemi/data/Augment.h"
#include "metasemi/data/Loader.h"
#include "metasemi/data/SampleSource.h"
#include "metasemi/data/ShardSource.h"
#include "metasemi/io/ShardSet.h"
#include "metasemi/meta/MetaStep.h"
#include "metasemi/models/Network.h"
#include "metasemi/train/TrainConfig.h"

namespace metasemi::train {

/// What the recipe needs to know of the data (from the shards, or made up by tests).
struct DataSummary {
  std::string dataset;
  std::int64_t numClasses = 10;
  std::int64_t channels = 3;   ///< of the decoded images
  std::int64_t labeled = 0;    ///< labeled training images
  std::int64_t unlabeled = 0;  ///< unlabeled training images
};

/// The opened inputs of a run (CPU tensors come out of them; the trainer moves them).
struct RunInputs {
  std::shared_ptr<const data::SampleSource> labeled, unlabeled, test;
  std::vector<std::int64_t> labeledIndices, unlabeledIndices;
  io::ShardSetInfo info;  ///< of the training images
  data::AugmentConfig trainAugment, evalAugment;

  DataSummary summary() const;
};

/// The step kind of `--method` and `--mix-up`.
meta::StepKind stepKindOf(const TrainConfig& config);

/// The network of `config` for images of `channels` channels and `numClasses` classes.
models::NetworkSpec networkSpecOf(const TrainConfig& config, std::int64_t channels,
                                  std::int64_t numClasses);

/// The device `config` asks for on a rank whose node-local rank is `localRank`: the CPU, or
/// with `--gpu` CUDA device localRank. Throws core::ConfigError when the build or the node has
/// no GPU for it.
torch::Device deviceOf(const TrainConfig& config, int localRank);

/// The device of a rank whose node-local rank is `localRank`: the CPU, or with `gpu` CUDA
/// device localRank. `flag` names the setting in messages. Throws core::ConfigError when the
/// build has no CUDA, no GPU is visible, or the node has fewer GPUs than ranks.
torch::Device deviceFor(bool gpu, int localRank, const std::string& flag = "--gpu");

/// Sets the process-wide algorithm choices for `device`: on CUDA, cuDNN's benchmark mode (the
/// reference's `cudnn.benchmark = True`) or, when `deterministic`, deterministic cuDNN and CUDA
/// algorithms without benchmark (and cuBLAS's fixed workspace). Nothing changes on the CPU.
/// Call before the first CUDA operation.
void configureDevice(torch::Device device, bool deterministic);

/// LibTorch intra-op threads for a rank: `requested` when > 0, else the node's cores shared
/// evenly by its `ranksOnNode` ranks (at least 1).
int threadsPerRank(int requested, int ranksOnNode);

/// One split of a shard set prepared for evaluation as the trainer evaluates: the split's
/// images with the evaluation transform and the training split's normalisation.
struct EvaluationSplit {
  std::string split;
  std::shared_ptr<const data::ShardSource> source;
  data::AugmentConfig augment;
  io::ShardSetInfo trainInfo;
};

/// Opens `split` ("" = the split the trainer evaluates: test, or val for ImageNet) of the shard
/// set in `dataPath` for a run of `config`. Throws core::IoError naming the folder or file.
EvaluationSplit openEvaluationSplit(const TrainConfig& config, const std::string& dataPath,
                                    const std::string& split);

class Recipe {
 public:
  /// The recipe for data described by `data`, without opening anything (tests, dry runs).
  /// `worldSize` ranks run it (the global batch, and ImageNet's epoch length, depend on it).
  static Recipe plan(const TrainConfig& config, const DataSummary& data, int worldSize,
                     torch::Device device = torch::kCPU);
  /// Opens the shards of `config.dataPath` and plans the run on them. Throws core::IoError or
  /// core::ConfigError naming the flag or file that is wrong; nothing is written.
  static Recipe open(const TrainConfig& config, int worldSize, torch::Device device = torch::kCPU);

  const TrainConfig& config() const { return config_; }
  meta::StepKind kind() const { return kind_; }
  bool usesUnlabeled() const { return meta::usesUnlabeled(kind_); }
  bool usesMixUp() const { return meta::usesMixUp(kind_); }
  const models::NetworkSpec& network() const { return network_; }
  torch::Device device() const { return device_; }
  /// Steps of the whole run (ImageNet: epochs converted to iterations).
  std::int64_t totalSteps() const { return totalSteps_; }
  /// Images per step over all ranks (each of labeled and unlabeled).
  std::int64_t globalBatch() const { return globalBatch_; }
  /// Warm-up length in steps (ImageNet: epochs converted to iterations).
  std::int64_t warmupSteps() const { return warmupSteps_; }

  /// The learning rate of `step` (0-based).
  double lr(std::int64_t step) const;
  /// The consistency weight of `step` (ramped over --warmup steps when --weight-ramp).
  double weight(std::int64_t step) const;
  /// Everything the step of `step` needs besides its batch.
  meta::StepSettings settings(std::int64_t step) const;

  /// The opened inputs; null for a planned recipe.
  const std::shared_ptr<const RunInputs>& inputs() const { return inputs_; }

  /// The labeled or unlabeled stream of `rank` of `worldSize` (--batch-size per rank, --seed),
  /// prepared on `pool` (the rank's --num-workers threads; null: on the caller), in pinned
  /// memory on a GPU, continuing `resumeFrom` when given. Needs inputs().
  std::unique_ptr<data::TrainStream> trainStream(
      data::StreamId id, int rank, int worldSize, std::shared_ptr<data::WorkerPool> pool,
      std::optional<data::StreamState> resumeFrom = std::nullopt) const;

  /// Builds the network on the device, channels-last (the layout the trainer runs), drawn from
  /// torch's global generator seeded with --seed.
  std::shared_ptr<models::Network> makeNetwork() const;

 private:
  Recipe(TrainConfig config, torch::Device device) : config_(std::move(config)), device_(device) {}

  TrainConfig config_;
  torch::Device device_;
  meta::StepKind kind_ = meta::StepKind::kMetaMixUp;
  models::NetworkSpec network_;
  std::int64_t totalSteps_ = 0, globalBatch_ = 0, warmupSteps_ = 0;
  std::shared_ptr<const RunInputs> inputs_;
};

}  // namespace metasemi::train
