// The input pipeline on top of shard sets (io::ShardSet): a SampleSource per split and the
// inputs of one training run (labeled and unlabeled streams of the training split, one
// evaluation pass over the test split) with the reference's transforms for the dataset.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "metasemi/data/Loader.h"
#include "metasemi/io/ShardSet.h"

namespace metasemi::data {

/// One split of a shard set as a SampleSource. Fixed-size splits are read into memory once
/// (small datasets); JPEG splits are read image by image, so only the encoded bytes of the
/// images in flight are in memory.
class ShardSource : public SampleSource {
 public:
  explicit ShardSource(io::ShardSet set);

  const io::ShardSetInfo& info() const { return set_.info(); }
  /// The reader this source reads from.
  const io::ShardSet& shardSet() const { return set_; }
  std::int64_t size() const override { return set_.size(); }
  std::int64_t label(std::int64_t i) const override {
    return set_.labels()[static_cast<std::size_t>(i)];
  }
  std::int64_t numClasses() const override { return info().numClasses; }
  bool isEncoded() const override { return info().storage == io::ImageStorage::kJpeg; }
  ImageShape imageShape() const override;
  const std::uint8_t* pixels(std::int64_t i) const override;
  void encoded(std::int64_t i, std::vector<std::uint8_t>& out) const override;
  std::string describe() const override;

 private:
  io::ShardSet set_;
  std::vector<std::uint8_t> pixels_;  // fixed-size splits: every image, HWC
};

/// The normalisation of a split: the reference's constants for cifar10/cifar100/svhn/imagenet,
/// the stored statistics otherwise.
Normalization shardNormalization(const io::ShardSetInfo& info);

/// Where a run's data comes from.
struct RunDataSpec {
  std::filesystem::path dir;         ///< the shard set folder
  std::string trainSplit = "train";  ///< split the labeled/unlabeled streams draw from
  std::string testSplit = "test";    ///< split evaluated once per evaluation
  std::string labelSplit;            ///< label split of trainSplit (ShardSet::labelSplitNames)
  std::int64_t crop = 224;           ///< encoded images: output side (--imcrop)
  std::int64_t resize = 256;         ///< encoded images, evaluation: shorter side (--imsize)
};

/// The inputs of one training run: opens and cross-checks the splits once; makes the streams
/// and evaluation passes on demand. Streams for the same seed are identical on every rank
/// count (sharding by global rank).
class RunData {
 public:
  /// Throws core::IoError naming the file for a missing or invalid split or label split, and
  /// when the test split does not match the training split (dataset, classes, storage, shape).
  explicit RunData(const RunDataSpec& spec);

  const io::ShardSetInfo& trainInfo() const { return train_->info(); }
  const io::LabelSplit& labelSplit() const { return labelSplit_; }
  std::shared_ptr<const ShardSource> trainSource() const { return train_; }
  std::shared_ptr<const ShardSource> testSource() const { return test_; }
  /// The reference's training transform for this dataset.
  const AugmentConfig& trainAugment() const { return trainAugment_; }
  /// The evaluation transform (never random).
  const AugmentConfig& evalAugment() const { return evalAugment_; }

  /// The labeled (or unlabeled) stream of this rank: `localBatch` samples per step, global batch
  /// localBatch·worldSize. `resumeFrom` continues a state saved from TrainStream::state().
  std::unique_ptr<TrainStream> stream(StreamId id, std::uint64_t seed, std::int64_t localBatch,
                                      int rank, int worldSize, LoaderOptions options = {},
                                      std::optional<StreamState> resumeFrom = std::nullopt) const;
  /// One pass over the test split, this rank's share.
  std::unique_ptr<EvalIterator> evaluation(std::int64_t localBatch, int rank, int worldSize,
                                           LoaderOptions options = {}) const;

 private:
  std::shared_ptr<const ShardSource> train_, test_;
  io::LabelSplit labelSplit_;
  AugmentConfig trainAugment_, evalAugment_;
};

}  // namespace metasemi::data
