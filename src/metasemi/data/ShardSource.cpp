#include "metasemi/data/ShardSource.h"

#include "metasemi/core/Error.h"

namespace metasemi::data {

ShardSource::ShardSource(io::ShardSet set) : set_(std::move(set)) {
  if (!isEncoded()) {
    const ImageShape s = imageShape();
    pixels_.resize(static_cast<std::size_t>(size() * s.numel()));
    if (size() > 0) set_.readImages(0, size(), pixels_.data());
  }
}

ImageShape ShardSource::imageShape() const {
  const auto& i = info();
  if (isEncoded()) return {0, 0, i.decodedChannels};
  return {i.height, i.width, i.channels};
}

const std::uint8_t* ShardSource::pixels(std::int64_t i) const {
  if (isEncoded()) return SampleSource::pixels(i);
  return pixels_.data() + i * imageShape().numel();
}

void ShardSource::encoded(std::int64_t i, std::vector<std::uint8_t>& out) const {
  if (!isEncoded()) return SampleSource::encoded(i, out);
  set_.readEncoded(i, out);
}

std::string ShardSource::describe() const {
  return fmt::format("{} (split {})", set_.dir().string(), info().split);
}

Normalization shardNormalization(const io::ShardSetInfo& info) {
  try {
    return datasetNormalization(info.dataset, info.mean, info.std, info.decodedChannels);
  } catch (const core::ConfigError& e) {
    MS_THROW(core::IoError, "shard set split {}: {}", info.split, e.what());
  }
}

RunData::RunData(const RunDataSpec& spec) {
  train_ = std::make_shared<ShardSource>(io::ShardSet::open(spec.dir, spec.trainSplit));
  test_ = std::make_shared<ShardSource>(io::ShardSet::open(spec.dir, spec.testSplit));
  const io::ShardSetInfo& a = train_->info();
  const io::ShardSetInfo& b = test_->info();
  const std::string where = spec.dir.string();
  MS_REQUIRE(a.dataset == b.dataset, core::IoError,
             "{}: split {} holds dataset '{}' but split {} holds '{}'", where, a.split, a.dataset,
             b.split, b.dataset);
  MS_REQUIRE(a.numClasses == b.numClasses, core::IoError,
             "{}: split {} has {} classes but split {} has {}", where, a.split, a.numClasses,
             b.split, b.numClasses);
  MS_REQUIRE(a.storage == b.storage, core::IoError,
             "{}: split {} stores {} images but split {} stores {}", where, a.split,
             io::toString(a.storage), b.split, io::toString(b.storage));
  const ImageShape sa = train_->imageShape(), sb = test_->imageShape();
  MS_REQUIRE(sa.height == sb.height && sa.width == sb.width && sa.channels == sb.channels,
             core::IoError, "{}: split {} has images of {}x{}x{} but split {} has {}x{}x{}", where,
             a.split, sa.height, sa.width, sa.channels, b.split, sb.height, sb.width, sb.channels);
  labelSplit_ = train_->shardSet().labelSplit(spec.labelSplit);
  const bool encoded = train_->isEncoded();
  // The training split's normalisation applies to every split, as in the reference.
  const Normalization norm = shardNormalization(a);
  trainAugment_ = data::trainAugment(a.dataset, encoded, norm, spec.crop);
  evalAugment_ = data::evalAugment(encoded, norm, spec.resize, spec.crop);
}

std::unique_ptr<TrainStream> RunData::stream(StreamId id, std::uint64_t seed,
                                             std::int64_t localBatch, int rank, int worldSize,
                                             LoaderOptions options,
                                             std::optional<StreamState> resumeFrom) const {
  MS_CHECK(id == StreamId::kLabeled || id == StreamId::kUnlabeled, "not a training stream");
  const auto& indices = id == StreamId::kLabeled ? labelSplit_.labeled : labelSplit_.unlabeled;
  MS_REQUIRE(!indices.empty(), core::ConfigError, "label split {} of {} has no {} images",
             labelSplit_.name, train_->describe(),
             id == StreamId::kLabeled ? "labeled" : "unlabeled");
  return std::make_unique<TrainStream>(train_, indices, id, seed, trainAugment_, localBatch, rank,
                                       worldSize, options, resumeFrom);
}

std::unique_ptr<EvalIterator> RunData::evaluation(std::int64_t localBatch, int rank, int worldSize,
                                                  LoaderOptions options) const {
  return std::make_unique<EvalIterator>(test_, evalAugment_, localBatch, rank, worldSize, options);
}

}  // namespace metasemi::data
