#include "metasemi/io/ShardSet.h"

#include <fmt/format.h>

#include "metasemi/core/Error.h"

namespace metasemi::io {

std::string toString(ImageStorage storage) {
  return storage == ImageStorage::kJpeg ? "jpeg" : "fixed";
}

std::string labelSplitName(std::int64_t numLabels, std::uint64_t seed) {
  return fmt::format("labels-{}-seed{}", numLabels, seed);
}

struct ShardSet::Impl {
  std::filesystem::path dir;
  ShardSetInfo info;
  std::vector<std::int64_t> labels;
};

ShardSet::ShardSet(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ShardSet::ShardSet(ShardSet&&) noexcept = default;
ShardSet& ShardSet::operator=(ShardSet&&) noexcept = default;
ShardSet::~ShardSet() = default;

ShardSet ShardSet::open(const std::filesystem::path& dir, const std::string& split) {
  MS_THROW(core::IoError, "{}: reading shard sets is not available in this build yet (split {})",
           dir.string(), split);
}

std::vector<std::string> ShardSet::splits(const std::filesystem::path& dir) { return {}; }

const std::filesystem::path& ShardSet::dir() const { return impl_->dir; }
const ShardSetInfo& ShardSet::info() const { return impl_->info; }
const std::vector<std::int64_t>& ShardSet::labels() const { return impl_->labels; }

void ShardSet::readImages(std::int64_t, std::int64_t, std::uint8_t*) const {
  MS_THROW(core::IoError, "ShardSet::readImages is not available in this build yet");
}

torch::Tensor ShardSet::readImages(std::int64_t begin, std::int64_t count) const {
  const auto& i = info();
  auto t = torch::empty({count, i.height, i.width, i.channels}, torch::kUInt8);
  readImages(begin, count, t.data_ptr<std::uint8_t>());
  return t;
}

void ShardSet::readImagesAt(const std::vector<std::int64_t>&, std::uint8_t*) const {
  MS_THROW(core::IoError, "ShardSet::readImagesAt is not available in this build yet");
}

std::vector<std::uint8_t> ShardSet::readEncoded(std::int64_t index) const {
  std::vector<std::uint8_t> out;
  readEncoded(index, out);
  return out;
}

void ShardSet::readEncoded(std::int64_t, std::vector<std::uint8_t>&) const {
  MS_THROW(core::IoError, "ShardSet::readEncoded is not available in this build yet");
}

std::vector<std::string> ShardSet::labelSplitNames() const { return {}; }

LabelSplit ShardSet::labelSplit(const std::string& name) const {
  MS_THROW(core::IoError, "ShardSet::labelSplit is not available in this build yet ({})", name);
}

}  // namespace metasemi::io
