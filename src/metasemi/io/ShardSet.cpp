#include "metasemi/io/ShardSet.h"

#include <fmt/format.h>

#include <algorithm>
#include <list>
#include <mutex>
#include <unordered_map>

#include "metasemi/core/Error.h"
#include "metasemi/core/Utf8.h"
#include "metasemi/io/H5File.h"
#include "metasemi/io/ShardSplit.h"
#include "metasemi/io/ShardWriter.h"

namespace metasemi::io {

std::string toString(ImageStorage storage) {
  return storage == ImageStorage::kJpeg ? "jpeg" : "fixed";
}

std::string labelSplitName(std::int64_t numLabels, std::uint64_t seed) {
  return fmt::format("labels-{}-seed{}", numLabels, seed);
}

namespace {

// Large JPEG sets have thousands of shards; keeping every one open would exhaust file handles.
constexpr std::size_t kMaxOpenShards = 32;

std::string joinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

// The format fixes every dataset's element type; another one is a damaged or foreign file.
void requireDType(const H5File& f, const std::string& name, const DatasetInfo& di, DType want) {
  MS_REQUIRE(di.dtype == want, core::IoError, "{}: dataset '{}' holds {} values, expected {}",
             f.path(), name, dtypeName(di.dtype), dtypeName(want));
}

}  // namespace

struct ShardSet::Impl {
  std::filesystem::path dir;
  ShardSetInfo info;
  std::vector<std::int64_t> labels;
  std::vector<std::int64_t> starts;  // global index of each shard's first image, plus the end

  std::mutex mutex;                   // guards everything below; HDF5 builds may not be thread-safe
  std::list<std::int64_t> openOrder;  // most recently used first
  std::unordered_map<std::int64_t, std::unique_ptr<H5File>> open;
  std::unordered_map<std::int64_t, std::vector<std::int64_t>> offsets;

  std::string shardName(std::int64_t k) const { return shardPath(dir, info.split, k).string(); }

  std::int64_t shardOf(std::int64_t index) const {
    return static_cast<std::int64_t>(std::upper_bound(starts.begin(), starts.end(), index) -
                                     starts.begin()) -
           1;
  }

  H5File& file(std::int64_t k) {
    auto it = open.find(k);
    if (it != open.end()) {
      openOrder.remove(k);
      openOrder.push_front(k);
      return *it->second;
    }
    if (open.size() >= kMaxOpenShards) {
      open.erase(openOrder.back());
      openOrder.pop_back();
    }
    auto f = std::make_unique<H5File>(shardName(k), H5File::Mode::kRead);
    openOrder.push_front(k);
    return *(open[k] = std::move(f));
  }

  const std::vector<std::int64_t>& shardOffsets(std::int64_t k) {
    auto it = offsets.find(k);
    if (it != offsets.end()) return it->second;
    auto v = file(k).readVector<std::int64_t>("jpeg_offsets");
    const std::int64_t n = starts[k + 1] - starts[k];
    MS_REQUIRE(static_cast<std::int64_t>(v.size()) == n + 1, core::IoError,
               "{}: jpeg_offsets has {} entries, expected {}", shardName(k), v.size(), n + 1);
    for (std::size_t i = 1; i < v.size(); ++i) {
      MS_REQUIRE(v[i] > v[i - 1], core::IoError, "{}: jpeg_offsets is not increasing at image {}",
                 shardName(k), i - 1);
    }
    return offsets[k] = std::move(v);
  }

  void checkRange(std::int64_t begin, std::int64_t count) const {
    MS_REQUIRE(begin >= 0 && count >= 0 && begin + count <= info.numImages, core::IoError,
               "{}: images [{}, {}) are outside split {} of {} images", dir.string(), begin,
               begin + count, info.split, info.numImages);
  }
};

ShardSet::ShardSet(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ShardSet::ShardSet(ShardSet&&) noexcept = default;
ShardSet& ShardSet::operator=(ShardSet&&) noexcept = default;
ShardSet::~ShardSet() = default;

std::vector<std::string> ShardSet::splits(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.is_regular_file() && e.path().extension() == ".h5") out.push_back(e.path().stem());
  }
  std::sort(out.begin(), out.end());
  return out;
}

ShardSet ShardSet::open(const std::filesystem::path& dir, const std::string& split) {
  MS_REQUIRE(std::filesystem::is_directory(dir), core::IoError,
             "{}: shard set folder does not exist", dir.string());
  const auto indexPath = shardIndexPath(dir, split);
  MS_REQUIRE(std::filesystem::is_regular_file(indexPath), core::IoError,
             "{}: split '{}' not found (splits here: {})", indexPath.string(), split,
             joinNames(splits(dir)));
  const std::string ip = indexPath.string();
  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  ShardSetInfo& info = impl->info;
  {
    H5File f(ip, H5File::Mode::kRead);
    MS_REQUIRE(f.hasAttr("/", "kind") && f.attrString("/", "kind") == "index", core::IoError,
               "{}: not a shard set index (attribute kind is not 'index')", ip);
    info.formatVersion = f.attrInt("/", "format_version");
    MS_REQUIRE(info.formatVersion == kShardFormatVersion, core::IoError,
               "{}: shard format version {}, this build reads version {}", ip, info.formatVersion,
               kShardFormatVersion);
    info.dataset = f.attrString("/", "dataset");
    info.split = f.attrString("/", "split");
    MS_REQUIRE(info.split == split, core::IoError, "{}: index of split '{}', expected '{}'", ip,
               info.split, split);
    info.source = f.attrString("/", "source");
    const std::string storage = f.attrString("/", "storage");
    MS_REQUIRE(storage == "fixed" || storage == "jpeg", core::IoError,
               "{}: storage '{}', expected 'fixed' or 'jpeg'", ip, storage);
    info.storage = storage == "jpeg" ? ImageStorage::kJpeg : ImageStorage::kFixed;
    info.numImages = f.attrInt("/", "num_images");
    info.numClasses = f.attrInt("/", "num_classes");
    info.classNames = f.attrStrings("/", "class_names");
    info.height = f.attrInt("/", "height");
    info.width = f.attrInt("/", "width");
    info.channels = f.attrInt("/", "channels");
    info.decodedChannels = f.attrInt("/", "decoded_channels");
    info.mean = f.attrDoubles("/", "mean");
    info.std = f.attrDoubles("/", "std");
    info.statsSplit = f.attrString("/", "stats_split");
    for (const char* name : {"shard_sizes", "labels"}) {
      requireDType(f, name, f.info(name), DType::kInt64);
    }
    info.shardSizes = f.readVector<std::int64_t>("shard_sizes");
    impl->labels = f.readVector<std::int64_t>("labels");
  }
  MS_REQUIRE(
      info.numClasses > 0 && static_cast<std::int64_t>(info.classNames.size()) == info.numClasses,
      core::IoError, "{}: num_classes is {} but class_names has {} entries", ip, info.numClasses,
      info.classNames.size());
  for (const auto& c : info.classNames) {
    MS_REQUIRE(core::isValidUtf8(c), core::IoError, "{}: class name '{}' is not valid UTF-8", ip,
               core::printable(c));
  }
  MS_REQUIRE(static_cast<std::int64_t>(impl->labels.size()) == info.numImages, core::IoError,
             "{}: num_images is {} but labels has {} entries", ip, info.numImages,
             impl->labels.size());
  MS_REQUIRE(info.decodedChannels == 1 || info.decodedChannels == 3, core::IoError,
             "{}: decoded_channels is {}, expected 1 or 3", ip, info.decodedChannels);
  MS_REQUIRE(static_cast<std::int64_t>(info.mean.size()) == info.decodedChannels &&
                 static_cast<std::int64_t>(info.std.size()) == info.decodedChannels,
             core::IoError, "{}: mean/std have {}/{} values for {} channels", ip, info.mean.size(),
             info.std.size(), info.decodedChannels);
  if (info.storage == ImageStorage::kFixed) {
    MS_REQUIRE(info.height > 0 && info.width > 0 && info.channels == info.decodedChannels,
               core::IoError, "{}: image shape {}x{}x{} is not valid", ip, info.height, info.width,
               info.channels);
  }
  for (std::size_t i = 0; i < impl->labels.size(); ++i) {
    const std::int64_t y = impl->labels[i];
    MS_REQUIRE(y >= 0 && y < info.numClasses, core::IoError,
               "{}: label {} of image {} is outside [0, {})", ip, y, i, info.numClasses);
  }
  impl->starts.assign(1, 0);
  for (const std::int64_t s : info.shardSizes) {
    MS_REQUIRE(s > 0, core::IoError, "{}: a shard of size {} in shard_sizes", ip, s);
    impl->starts.push_back(impl->starts.back() + s);
  }
  MS_REQUIRE(impl->starts.back() == info.numImages, core::IoError,
             "{}: shard_sizes add up to {} images, num_images is {}", ip, impl->starts.back(),
             info.numImages);

  // Every shard must exist and agree with the index; the data itself is checked by `verify`.
  for (std::size_t k = 0; k < info.shardSizes.size(); ++k) {
    const std::string sp = impl->shardName(static_cast<std::int64_t>(k));
    MS_REQUIRE(std::filesystem::is_regular_file(sp), core::IoError,
               "{}: shard missing (index {} lists {} shards)", sp, ip, info.shardSizes.size());
    H5File f(sp, H5File::Mode::kRead);
    const std::int64_t n = info.shardSizes[k];
    MS_REQUIRE(
        f.hasAttr("/", "kind") && f.attrString("/", "kind") == "shard" &&
            f.attrString("/", "split") == split && f.attrString("/", "dataset") == info.dataset,
        core::IoError, "{}: not a shard of split '{}' of dataset '{}'", sp, split, info.dataset);
    MS_REQUIRE(
        f.attrInt("/", "first_index") == impl->starts[k] && f.attrInt("/", "num_images") == n,
        core::IoError, "{}: holds images [{}, {}), the index expects [{}, {})", sp,
        f.attrInt("/", "first_index"), f.attrInt("/", "first_index") + f.attrInt("/", "num_images"),
        impl->starts[k], impl->starts[k] + n);
    const auto labelsInfo = f.info("labels");
    MS_REQUIRE(labelsInfo.shape == std::vector<std::int64_t>{n}, core::IoError,
               "{}: labels has {} entries, expected {}", sp, labelsInfo.numElements(), n);
    requireDType(f, "labels", labelsInfo, DType::kInt64);
    if (info.storage == ImageStorage::kFixed) {
      const auto images = f.info("images");
      const std::vector<std::int64_t> want{n, info.height, info.width, info.channels};
      MS_REQUIRE(images.shape == want, core::IoError, "{}: images has shape {}, expected {}", sp,
                 fmt::join(images.shape, "x"), fmt::join(want, "x"));
      requireDType(f, "images", images, DType::kUInt8);
    } else {
      const auto offsets = f.info("jpeg_offsets");
      MS_REQUIRE(offsets.shape == std::vector<std::int64_t>{n + 1}, core::IoError,
                 "{}: jpeg_offsets has shape {}, expected {}", sp, fmt::join(offsets.shape, "x"),
                 n + 1);
      requireDType(f, "jpeg_offsets", offsets, DType::kInt64);
      const auto data = f.info("jpeg_data");
      MS_REQUIRE(data.shape.size() == 1, core::IoError,
                 "{}: jpeg_data has {} dimensions, expected 1", sp, data.shape.size());
      requireDType(f, "jpeg_data", data, DType::kUInt8);
    }
  }
  return ShardSet(std::move(impl));
}

const std::filesystem::path& ShardSet::dir() const { return impl_->dir; }
const ShardSetInfo& ShardSet::info() const { return impl_->info; }
const std::vector<std::int64_t>& ShardSet::labels() const { return impl_->labels; }

void ShardSet::readImages(std::int64_t begin, std::int64_t count, std::uint8_t* out) const {
  Impl& m = *impl_;
  MS_REQUIRE(m.info.storage == ImageStorage::kFixed, core::IoError,
             "{}: split {} stores JPEG files; read them with readEncoded", m.dir.string(),
             m.info.split);
  m.checkRange(begin, count);
  const std::int64_t imageBytes = m.info.height * m.info.width * m.info.channels;
  std::lock_guard<std::mutex> lock(m.mutex);
  while (count > 0) {
    const std::int64_t k = m.shardOf(begin);
    const std::int64_t local = begin - m.starts[k];
    const std::int64_t take = std::min(count, m.starts[k + 1] - begin);
    m.file(k).readRows("images", DType::kUInt8, local, take, out);
    out += take * imageBytes;
    begin += take;
    count -= take;
  }
}

torch::Tensor ShardSet::readImages(std::int64_t begin, std::int64_t count) const {
  const auto& i = info();
  impl_->checkRange(begin, count);
  auto t = torch::empty({count, i.height, i.width, i.channels}, torch::kUInt8);
  readImages(begin, count, t.data_ptr<std::uint8_t>());
  return t;
}

void ShardSet::readImagesAt(const std::vector<std::int64_t>& indices, std::uint8_t* out) const {
  const std::int64_t imageBytes = info().height * info().width * info().channels;
  // Consecutive runs are read with one call each.
  std::size_t i = 0;
  while (i < indices.size()) {
    std::size_t j = i + 1;
    while (j < indices.size() && indices[j] == indices[j - 1] + 1) ++j;
    const auto n = static_cast<std::int64_t>(j - i);
    readImages(indices[i], n, out);
    out += n * imageBytes;
    i = j;
  }
}

std::vector<std::uint8_t> ShardSet::readEncoded(std::int64_t index) const {
  std::vector<std::uint8_t> out;
  readEncoded(index, out);
  return out;
}

void ShardSet::readEncoded(std::int64_t index, std::vector<std::uint8_t>& out) const {
  Impl& m = *impl_;
  MS_REQUIRE(m.info.storage == ImageStorage::kJpeg, core::IoError,
             "{}: split {} stores fixed-size images; read them with readImages", m.dir.string(),
             m.info.split);
  m.checkRange(index, 1);
  std::lock_guard<std::mutex> lock(m.mutex);
  const std::int64_t k = m.shardOf(index);
  const auto& off = m.shardOffsets(k);
  const std::int64_t local = index - m.starts[k];
  const std::int64_t size = off[local + 1] - off[local];
  out.resize(static_cast<std::size_t>(size));
  m.file(k).readRows("jpeg_data", DType::kUInt8, off[local], size, out.data());
}

std::vector<std::string> ShardSet::labelSplitNames() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(impl_->dir / "splits", ec)) {
    if (!e.is_regular_file() || e.path().extension() != ".h5") continue;
    try {
      H5File f(e.path().string(), H5File::Mode::kRead);
      if (f.hasAttr("/", "split") && f.attrString("/", "split") == impl_->info.split) {
        out.push_back(e.path().stem());
      }
    } catch (const core::IoError&) {
      // Not a label split file: not listed.
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

LabelSplit ShardSet::labelSplit(const std::string& name) const {
  const auto path = (impl_->dir / "splits" / (name + ".h5")).string();
  MS_REQUIRE(std::filesystem::is_regular_file(path), core::IoError,
             "{}: label split '{}' not found (label splits of {}: {}; make one with "
             "metasemi-prep split)",
             path, name, impl_->info.split, joinNames(labelSplitNames()));
  LabelSplit s = readLabelSplitFile(impl_->dir, name);
  MS_REQUIRE(s.split == impl_->info.split, core::IoError, "{}: selects from split '{}', not '{}'",
             path, s.split, impl_->info.split);
  const std::int64_t n = impl_->info.numImages;
  std::vector<char> seen(static_cast<std::size_t>(n), 0);
  for (const auto* list : {&s.labeled, &s.unlabeled}) {
    for (const std::int64_t i : *list) {
      MS_REQUIRE(i >= 0 && i < n, core::IoError, "{}: index {} is outside [0, {})", path, i, n);
      MS_REQUIRE(!seen[static_cast<std::size_t>(i)], core::IoError,
                 "{}: index {} appears more than once", path, i);
      seen[static_cast<std::size_t>(i)] = 1;
    }
  }
  MS_REQUIRE(static_cast<std::int64_t>(s.labeled.size() + s.unlabeled.size()) == n, core::IoError,
             "{}: labeled + unlabeled hold {} indices, split {} has {} images", path,
             s.labeled.size() + s.unlabeled.size(), impl_->info.split, n);
  return s;
}

}  // namespace metasemi::io
