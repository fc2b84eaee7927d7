// Writing shard sets (the format ShardSet reads; schema in preprocess/README.md). Every file is
// written under a temporary name and renamed when complete; the index of a split is written
// last, so a split without its index is unfinished.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "metasemi/io/ShardSet.h"

namespace metasemi::io {

/// Sums of pixel values per channel, from which mean and standard deviation of pixels scaled
/// to [0,1] follow. Sums are kept exactly (integers in doubles) per shard.
struct PixelStats {
  std::vector<double> sum;    ///< per channel, sum of uint8 values
  std::vector<double> sumSq;  ///< per channel, sum of squared uint8 values
  std::int64_t count = 0;     ///< pixels per channel

  /// Adds `pixels` pixels of `channels` interleaved uint8 channels (HWC).
  void add(const std::uint8_t* hwc, std::int64_t pixels, int channels);
  /// Adds another set of sums (same channel count, or this one empty).
  void merge(const PixelStats& other);
  /// Per-channel mean of value/255; throws core::IoError when no pixel was added.
  std::vector<double> mean() const;
  /// Per-channel population standard deviation of value/255.
  std::vector<double> std() const;
};

/// CRC-32 (zlib) of `size` bytes, continuing from `crc` (start with 0).
std::uint32_t crc32Of(const void* data, std::size_t size, std::uint32_t crc = 0);

/// `dir/<split>.h5`, the index of a split.
std::filesystem::path shardIndexPath(const std::filesystem::path& dir, const std::string& split);
/// `dir/<split>/shard-<k, 5 digits>.h5`.
std::filesystem::path shardPath(const std::filesystem::path& dir, const std::string& split,
                                std::int64_t shard);

/// The contents of one shard file.
struct ShardContent {
  std::int64_t shard = 0;       ///< shard number k within the split
  std::int64_t firstIndex = 0;  ///< global index of its first image
  std::vector<std::int64_t> labels;
  /// kFixed: n·H·W·C bytes, image after image (HWC). kJpeg: the JPEG files back to back.
  std::vector<std::uint8_t> data;
  /// kJpeg: n+1 byte offsets into `data` (offsets[0] = 0, offsets[n] = data.size()).
  std::vector<std::int64_t> offsets;
  /// Where each image came from ('\n'-joined, e.g. "n01440764/x.JPEG"); may be empty.
  std::string sources;
  PixelStats stats;
  /// Fingerprint of the inputs and options the shard was made from; a resumed run reuses a
  /// shard only when it is unchanged.
  std::uint32_t planCrc = 0;
};

/// Writes shard `content.shard` of split `header.split` (atomically). `header` gives dataset,
/// split, storage and, for kFixed, H, W, C.
void writeShard(const std::filesystem::path& dir, const ShardSetInfo& header,
                const ShardContent& content);
/// As writeShard, to the file `path` (e.g. a staging folder of a parallel run).
void writeShardFile(const std::filesystem::path& path, const ShardSetInfo& header,
                    const ShardContent& content);

/// What the index needs from a finished shard, read back from its file.
struct ShardSummary {
  std::int64_t firstIndex = 0;
  std::vector<std::int64_t> labels;
  PixelStats stats;
  std::uint32_t planCrc = 0;
  std::uint32_t dataCrc = 0;  ///< CRC-32 of `images` / `jpeg_data` as stored in the attribute
};

/// Reads the summary of shard `shard` of `header.split`, or nullopt when the file is missing,
/// unreadable or was written for another dataset/split/storage/position. With `checkData`, the
/// data's CRC-32 is recomputed and a mismatch also gives nullopt.
std::optional<ShardSummary> readShardSummary(const std::filesystem::path& dir,
                                             const ShardSetInfo& header, std::int64_t shard,
                                             bool checkData);
/// As readShardSummary, from the file `path`.
std::optional<ShardSummary> readShardSummaryFile(const std::filesystem::path& path,
                                                 const ShardSetInfo& header, std::int64_t shard,
                                                 bool checkData);

/// Writes the index `dir/<info.split>.h5` (atomically) from `info` (numImages, shardSizes,
/// mean/std filled in), all labels, and the shards' data CRCs.
void writeShardIndex(const std::filesystem::path& dir, const ShardSetInfo& info,
                     const std::vector<std::int64_t>& labels,
                     const std::vector<std::uint32_t>& shardCrcs);

/// Removes the index of a split (first thing a run that rewrites the split does, so that old
/// index and new shards never meet) and shard files numbered `firstStale` and above.
void removeShardIndex(const std::filesystem::path& dir, const std::string& split);
void removeStaleShards(const std::filesystem::path& dir, const std::string& split,
                       std::int64_t firstStale);

/// Streams the images of one split into shards of `imagesPerShard`, then writes its index.
/// For one process; the MPI-parallel JPEG tool uses writeShard/writeShardIndex directly.
class ShardWriter {
 public:
  /// `header`: dataset, split, source, storage, numClasses, classNames, and for kFixed the
  /// image shape. Removes an existing index of the split first.
  ShardWriter(std::filesystem::path dir, ShardSetInfo header, std::int64_t imagesPerShard);
  /// Without finish() (an error), removes the shards written so far: no partial split remains.
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  /// Appends `n` fixed-size images (uint8 HWC, n·H·W·C bytes) with their labels.
  void addImages(const std::uint8_t* hwc, const std::int64_t* labels, std::int64_t n);
  /// Appends one encoded image (kJpeg) with its label, the name of its source, and the pixel
  /// statistics of its decoded pixels.
  void addEncoded(const std::uint8_t* bytes, std::size_t size, std::int64_t label,
                  const std::string& source, const PixelStats& decodedStats);

  /// Images added so far.
  std::int64_t count() const { return count_; }
  /// Pixel statistics of the images added so far.
  const PixelStats& stats() const { return total_; }

  /// Writes the last shard and the index. The index's mean/std come from `statsOverride`
  /// (mean, std, statsSplit: e.g. the training split's values for a test split) or, without
  /// one, from this split's own pixels. Returns the info written.
  ShardSetInfo finish(const std::optional<ShardSetInfo>& statsOverride = std::nullopt);

 private:
  void flushShard();

  std::filesystem::path dir_;
  ShardSetInfo header_;
  std::int64_t imagesPerShard_;
  std::int64_t count_ = 0;
  ShardContent current_;
  PixelStats total_;
  std::vector<std::int64_t> allLabels_;
  std::vector<std::int64_t> shardSizes_;
  std::vector<std::uint32_t> shardCrcs_;
  bool finished_ = false;
};

}  // namespace metasemi::io
