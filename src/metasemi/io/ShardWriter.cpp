#include "metasemi/io/ShardWriter.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "metasemi/core/Error.h"
#include "metasemi/core/Utf8.h"
#include "metasemi/io/H5File.h"

namespace metasemi::io {

void PixelStats::add(const std::uint8_t* hwc, std::int64_t pixels, int channels) {
  if (sum.empty()) {
    sum.assign(static_cast<std::size_t>(channels), 0.0);
    sumSq.assign(static_cast<std::size_t>(channels), 0.0);
  }
  MS_CHECK(static_cast<int>(sum.size()) == channels, "pixel statistics of {} channels, got {}",
           sum.size(), channels);
  // Exact integer sums per call (a double holds them exactly up to 2^53); local accumulators
  // so that the compiler keeps them in registers.
  constexpr int kMaxChannels = 4;
  MS_CHECK(channels >= 1 && channels <= kMaxChannels, "{} channels", channels);
  std::uint64_t s[kMaxChannels] = {0, 0, 0, 0};
  std::uint64_t q[kMaxChannels] = {0, 0, 0, 0};
  if (channels == 3) {
    for (std::int64_t p = 0; p < pixels; ++p) {
      const std::uint64_t r = hwc[3 * p], g = hwc[3 * p + 1], b = hwc[3 * p + 2];
      s[0] += r;
      s[1] += g;
      s[2] += b;
      q[0] += r * r;
      q[1] += g * g;
      q[2] += b * b;
    }
  } else {
    for (std::int64_t p = 0; p < pixels; ++p) {
      for (int c = 0; c < channels; ++c) {
        const std::uint64_t v = hwc[p * channels + c];
        s[c] += v;
        q[c] += v * v;
      }
    }
  }
  for (int c = 0; c < channels; ++c) {
    sum[static_cast<std::size_t>(c)] += static_cast<double>(s[c]);
    sumSq[static_cast<std::size_t>(c)] += static_cast<double>(q[c]);
  }
  count += pixels;
}

void PixelStats::merge(const PixelStats& other) {
  if (other.count == 0) return;
  if (sum.empty()) {
    *this = other;
    return;
  }
  MS_CHECK(sum.size() == other.sum.size(), "merging statistics of {} and {} channels", sum.size(),
           other.sum.size());
  for (std::size_t c = 0; c < sum.size(); ++c) {
    sum[c] += other.sum[c];
    sumSq[c] += other.sumSq[c];
  }
  count += other.count;
}

std::vector<double> PixelStats::mean() const {
  MS_REQUIRE(count > 0, core::IoError, "pixel statistics of an empty image set");
  std::vector<double> m(sum.size());
  for (std::size_t c = 0; c < sum.size(); ++c) m[c] = sum[c] / (255.0 * count);
  return m;
}

std::vector<double> PixelStats::std() const {
  const auto m = mean();
  std::vector<double> s(sum.size());
  for (std::size_t c = 0; c < sum.size(); ++c) {
    const double ex2 = sumSq[c] / (255.0 * 255.0 * count);
    s[c] = std::sqrt(std::max(0.0, ex2 - m[c] * m[c]));
  }
  return s;
}

std::uint32_t crc32Of(const void* data, std::size_t size, std::uint32_t crc) {
  const auto* p = static_cast<const Bytef*>(data);
  uLong c = crc;
  constexpr std::size_t kStep = 1u << 30;  // zlib takes uInt lengths
  while (size > 0) {
    const std::size_t n = std::min(size, kStep);
    c = ::crc32(c, p, static_cast<uInt>(n));
    p += n;
    size -= n;
  }
  return static_cast<std::uint32_t>(c);
}

std::filesystem::path shardIndexPath(const std::filesystem::path& dir, const std::string& split) {
  return dir / (split + ".h5");
}

std::filesystem::path shardPath(const std::filesystem::path& dir, const std::string& split,
                                std::int64_t shard) {
  return dir / split / fmt::format("shard-{:05d}.h5", shard);
}

namespace {

void createDirs(const std::filesystem::path& p) {
  std::error_code ec;
  std::filesystem::create_directories(p, ec);
  MS_REQUIRE(!ec, core::IoError, "{}: cannot create folder: {}", p.string(), ec.message());
}

void writeCommonAttrs(H5File& f, const ShardSetInfo& h, const char* kind) {
  f.setAttr("/", "format_version", kShardFormatVersion);
  f.setAttr("/", "kind", kind);
  f.setAttr("/", "dataset", h.dataset);
  f.setAttr("/", "split", h.split);
  f.setAttr("/", "storage", toString(h.storage));
  f.setAttr("/", "height", h.height);
  f.setAttr("/", "width", h.width);
  f.setAttr("/", "channels", h.channels);
}

}  // namespace

void writeShard(const std::filesystem::path& dir, const ShardSetInfo& h, const ShardContent& c) {
  writeShardFile(shardPath(dir, h.split, c.shard), h, c);
}

void writeShardFile(const std::filesystem::path& path, const ShardSetInfo& h,
                    const ShardContent& c) {
  const std::int64_t n = static_cast<std::int64_t>(c.labels.size());
  const bool jpeg = h.storage == ImageStorage::kJpeg;
  if (jpeg) {
    MS_CHECK(static_cast<std::int64_t>(c.offsets.size()) == n + 1 &&
                 c.offsets.back() == static_cast<std::int64_t>(c.data.size()),
             "shard {}: {} offsets for {} images", c.shard, c.offsets.size(), n);
  } else {
    MS_CHECK(static_cast<std::int64_t>(c.data.size()) == n * h.height * h.width * h.channels,
             "shard {}: {} bytes for {} images of {}x{}x{}", c.shard, c.data.size(), n, h.height,
             h.width, h.channels);
  }
  createDirs(path.parent_path());
  AtomicOutput out(path.string());
  {
    H5File f(out.tempPath(), H5File::Mode::kCreate);
    writeCommonAttrs(f, h, "shard");
    f.setAttr("/", "shard", c.shard);
    f.setAttr("/", "first_index", c.firstIndex);
    f.setAttr("/", "num_images", n);
    f.setAttr("/", "data_crc32", static_cast<std::int64_t>(crc32Of(c.data.data(), c.data.size())));
    f.setAttr("/", "labels_crc32",
              static_cast<std::int64_t>(crc32Of(c.labels.data(), c.labels.size() * 8)));
    f.setAttr("/", "plan_crc32", static_cast<std::int64_t>(c.planCrc));
    f.setAttr("/", "pixel_sum", c.stats.sum);
    f.setAttr("/", "pixel_sum_sq", c.stats.sumSq);
    f.setAttr("/", "pixel_count", c.stats.count);
    f.writeVector("labels", c.labels);
    if (jpeg) {
      f.write("jpeg_data", DType::kUInt8, c.data.data(),
              {static_cast<std::int64_t>(c.data.size())});
      f.writeVector("jpeg_offsets", c.offsets);
    } else {
      f.write("images", DType::kUInt8, c.data.data(), {n, h.height, h.width, h.channels});
    }
    if (!c.sources.empty()) {
      f.write("sources", DType::kUInt8, c.sources.data(),
              {static_cast<std::int64_t>(c.sources.size())});
    }
  }
  out.commit();
}

std::optional<ShardSummary> readShardSummary(const std::filesystem::path& dir,
                                             const ShardSetInfo& h, std::int64_t shard,
                                             bool checkData) {
  return readShardSummaryFile(shardPath(dir, h.split, shard), h, shard, checkData);
}

std::optional<ShardSummary> readShardSummaryFile(const std::filesystem::path& path,
                                                 const ShardSetInfo& h, std::int64_t shard,
                                                 bool checkData) {
  if (!std::filesystem::is_regular_file(path)) return std::nullopt;
  try {
    H5File f(path.string(), H5File::Mode::kRead);
    if (f.attrInt("/", "format_version") != kShardFormatVersion ||
        f.attrString("/", "kind") != "shard" || f.attrString("/", "dataset") != h.dataset ||
        f.attrString("/", "split") != h.split ||
        f.attrString("/", "storage") != toString(h.storage) || f.attrInt("/", "shard") != shard) {
      return std::nullopt;
    }
    ShardSummary s;
    s.firstIndex = f.attrInt("/", "first_index");
    s.labels = f.readVector<std::int64_t>("labels");
    s.planCrc = static_cast<std::uint32_t>(f.attrInt("/", "plan_crc32"));
    s.dataCrc = static_cast<std::uint32_t>(f.attrInt("/", "data_crc32"));
    s.stats.sum = f.attrDoubles("/", "pixel_sum");
    s.stats.sumSq = f.attrDoubles("/", "pixel_sum_sq");
    s.stats.count = f.attrInt("/", "pixel_count");
    if (static_cast<std::int64_t>(s.labels.size()) != f.attrInt("/", "num_images")) {
      return std::nullopt;
    }
    if (checkData) {
      const char* name = h.storage == ImageStorage::kJpeg ? "jpeg_data" : "images";
      std::vector<std::uint8_t> data(static_cast<std::size_t>(f.infoForRead(name).numElements()));
      f.read(name, DType::kUInt8, data.data(), static_cast<std::int64_t>(data.size()));
      if (crc32Of(data.data(), data.size()) != s.dataCrc) return std::nullopt;
      if (crc32Of(s.labels.data(), s.labels.size() * 8) !=
          static_cast<std::uint32_t>(f.attrInt("/", "labels_crc32"))) {
        return std::nullopt;
      }
    }
    return s;
  } catch (const core::IoError&) {
    return std::nullopt;
  }
}

void writeShardIndex(const std::filesystem::path& dir, const ShardSetInfo& info,
                     const std::vector<std::int64_t>& labels,
                     const std::vector<std::uint32_t>& shardCrcs) {
  MS_CHECK(static_cast<std::int64_t>(labels.size()) == info.numImages, "{} labels for {} images",
           labels.size(), info.numImages);
  MS_CHECK(shardCrcs.size() == info.shardSizes.size(), "{} CRCs for {} shards", shardCrcs.size(),
           info.shardSizes.size());
  for (const auto& c : info.classNames) {
    MS_REQUIRE(core::isValidUtf8(c), core::IoError,
               "{}: class name '{}' is not valid UTF-8 (the format stores UTF-8 strings)",
               info.source, core::printable(c));
  }
  createDirs(dir);
  AtomicOutput out(shardIndexPath(dir, info.split).string());
  {
    H5File f(out.tempPath(), H5File::Mode::kCreate);
    writeCommonAttrs(f, info, "index");
    f.setAttr("/", "source", info.source);
    f.setAttr("/", "num_images", info.numImages);
    f.setAttr("/", "num_classes", info.numClasses);
    f.setAttr("/", "class_names", info.classNames);
    f.setAttr("/", "decoded_channels", info.decodedChannels);
    f.setAttr("/", "mean", info.mean);
    f.setAttr("/", "std", info.std);
    f.setAttr("/", "stats_split", info.statsSplit);
    f.setAttr("/", "num_shards", static_cast<std::int64_t>(info.shardSizes.size()));
    f.writeVector("labels", labels);
    f.writeVector("shard_sizes", info.shardSizes);
    std::vector<std::int64_t> crcs(shardCrcs.begin(), shardCrcs.end());
    f.writeVector("shard_crc32", crcs);
  }
  out.commit();
}

void removeShardIndex(const std::filesystem::path& dir, const std::string& split) {
  std::error_code ec;
  std::filesystem::remove(shardIndexPath(dir, split), ec);
}

void removeStaleShards(const std::filesystem::path& dir, const std::string& split,
                       std::int64_t firstStale) {
  for (std::int64_t k = firstStale;; ++k) {
    std::error_code ec;
    if (!std::filesystem::remove(shardPath(dir, split, k), ec)) break;
  }
}

ShardWriter::ShardWriter(std::filesystem::path dir, ShardSetInfo header,
                         std::int64_t imagesPerShard)
    : dir_(std::move(dir)), header_(std::move(header)), imagesPerShard_(imagesPerShard) {
  MS_REQUIRE(imagesPerShard_ > 0, core::ConfigError, "images per shard must be positive, got {}",
             imagesPerShard_);
  removeShardIndex(dir_, header_.split);
  current_.offsets = {0};
}

ShardWriter::~ShardWriter() {
  if (finished_) return;
  removeStaleShards(dir_, header_.split, 0);
  std::error_code ec;
  std::filesystem::remove(dir_ / header_.split, ec);  // only when empty
}

void ShardWriter::addImages(const std::uint8_t* hwc, const std::int64_t* labels, std::int64_t n) {
  MS_CHECK(header_.storage == ImageStorage::kFixed, "addImages on a {} split",
           toString(header_.storage));
  const std::int64_t imageBytes = header_.height * header_.width * header_.channels;
  const std::int64_t pixels = header_.height * header_.width;
  std::int64_t done = 0;
  while (done < n) {
    const std::int64_t room = imagesPerShard_ - static_cast<std::int64_t>(current_.labels.size());
    const std::int64_t take = std::min(room, n - done);
    const std::uint8_t* src = hwc + done * imageBytes;
    // Untouched reserved pages cost nothing; growing by doubling would copy the shard.
    if (current_.data.empty()) {
      current_.data.reserve(static_cast<std::size_t>(imagesPerShard_ * imageBytes));
    }
    current_.data.insert(current_.data.end(), src, src + take * imageBytes);
    current_.labels.insert(current_.labels.end(), labels + done, labels + done + take);
    current_.stats.add(src, take * pixels, static_cast<int>(header_.channels));
    done += take;
    count_ += take;
    if (static_cast<std::int64_t>(current_.labels.size()) == imagesPerShard_) flushShard();
  }
}

void ShardWriter::addEncoded(const std::uint8_t* bytes, std::size_t size, std::int64_t label,
                             const std::string& source, const PixelStats& decodedStats) {
  MS_CHECK(header_.storage == ImageStorage::kJpeg, "addEncoded on a {} split",
           toString(header_.storage));
  current_.data.insert(current_.data.end(), bytes, bytes + size);
  current_.offsets.push_back(static_cast<std::int64_t>(current_.data.size()));
  current_.labels.push_back(label);
  if (!current_.sources.empty()) current_.sources += '\n';
  current_.sources += source;
  current_.stats.merge(decodedStats);
  ++count_;
  if (static_cast<std::int64_t>(current_.labels.size()) == imagesPerShard_) flushShard();
}

void ShardWriter::flushShard() {
  if (current_.labels.empty()) return;
  current_.shard = static_cast<std::int64_t>(shardSizes_.size());
  current_.firstIndex = count_ - static_cast<std::int64_t>(current_.labels.size());
  writeShard(dir_, header_, current_);
  shardSizes_.push_back(static_cast<std::int64_t>(current_.labels.size()));
  shardCrcs_.push_back(crc32Of(current_.data.data(), current_.data.size()));
  allLabels_.insert(allLabels_.end(), current_.labels.begin(), current_.labels.end());
  total_.merge(current_.stats);
  current_ = ShardContent{};
  current_.offsets = {0};
}

ShardSetInfo ShardWriter::finish(const std::optional<ShardSetInfo>& statsOverride) {
  flushShard();
  MS_REQUIRE(count_ > 0, core::IoError, "split {} of {} has no images", header_.split,
             header_.dataset);
  removeStaleShards(dir_, header_.split, static_cast<std::int64_t>(shardSizes_.size()));
  ShardSetInfo info = header_;
  info.formatVersion = kShardFormatVersion;
  info.numImages = count_;
  info.shardSizes = shardSizes_;
  if (statsOverride) {
    info.mean = statsOverride->mean;
    info.std = statsOverride->std;
    info.statsSplit = statsOverride->statsSplit;
  } else {
    info.mean = total_.mean();
    info.std = total_.std();
    info.statsSplit = header_.split;
  }
  writeShardIndex(dir_, info, allLabels_, shardCrcs_);
  finished_ = true;
  return info;
}

}  // namespace metasemi::io
