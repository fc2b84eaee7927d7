#include "metasemi/data/SampleSource.h"

#include "metasemi/core/Error.h"

namespace metasemi::data {
namespace {

void checkLabels(const std::vector<std::int64_t>& labels, std::int64_t numClasses,
                 const std::string& name) {
  MS_REQUIRE(numClasses > 0, core::ConfigError, "{}: number of classes must be positive, found {}",
             name, numClasses);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    MS_REQUIRE(labels[i] >= 0 && labels[i] < numClasses, core::ConfigError,
               "{}: label of sample {} is {}, expected a class in [0, {})", name, i, labels[i],
               numClasses);
  }
}

}  // namespace

const std::uint8_t* SampleSource::pixels(std::int64_t) const {
  MS_THROW(core::Error, "{}: holds encoded images, not fixed-size pixels", describe());
}

void SampleSource::encoded(std::int64_t, std::vector<std::uint8_t>&) const {
  MS_THROW(core::Error, "{}: holds fixed-size pixels, not encoded images", describe());
}

MemoryImageSource::MemoryImageSource(std::vector<std::uint8_t> pixels, ImageShape shape,
                                     std::vector<std::int64_t> labels, std::int64_t numClasses,
                                     std::string name)
    : pixels_(std::move(pixels)),
      shape_(shape),
      labels_(std::move(labels)),
      numClasses_(numClasses),
      name_(std::move(name)) {
  MS_REQUIRE(shape_.height > 0 && shape_.width > 0 && shape_.channels > 0, core::ConfigError,
             "{}: image shape {}x{}x{} must be positive", name_, shape_.height, shape_.width,
             shape_.channels);
  MS_REQUIRE(static_cast<std::int64_t>(pixels_.size()) == size() * shape_.numel(),
             core::ConfigError, "{}: {} pixel bytes for {} images of {}x{}x{} (expected {})", name_,
             pixels_.size(), size(), shape_.height, shape_.width, shape_.channels,
             size() * shape_.numel());
  checkLabels(labels_, numClasses_, name_);
}

MemoryEncodedSource::MemoryEncodedSource(std::vector<std::vector<std::uint8_t>> files,
                                         std::vector<std::int64_t> labels, std::int64_t numClasses,
                                         std::int64_t channels, std::string name)
    : files_(std::move(files)),
      labels_(std::move(labels)),
      numClasses_(numClasses),
      channels_(channels),
      name_(std::move(name)) {
  MS_REQUIRE(files_.size() == labels_.size(), core::ConfigError,
             "{}: {} encoded images but {} labels", name_, files_.size(), labels_.size());
  MS_REQUIRE(channels_ == 1 || channels_ == 3, core::ConfigError,
             "{}: images decode to 1 or 3 channels, not {}", name_, channels_);
  checkLabels(labels_, numClasses_, name_);
}

}  // namespace metasemi::data
