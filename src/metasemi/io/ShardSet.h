// Reader of a shard set: the HDF5 files that the preprocessing tools (metasemi-prep) write and
// that the training input pipeline reads. This module is the one owner of the format; the
// schema is documented in preprocess/README.md.
//
// A shard set is a folder. Each split (e.g. "train", "test", "val", "train_labeled") has an
// index file `<split>.h5` and shard files `<split>-<k>.h5` holding the images and labels of
// consecutive global indices. Labeled/unlabeled selections of a split live under `splits/`.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace metasemi::io {

/// Version of the on-disk shard format written by this build (attribute `format_version`).
inline constexpr std::int64_t kShardFormatVersion = 1;

/// How a split stores its images.
enum class ImageStorage {
  kFixed,  ///< every image uint8 H×W×C in dataset `images` (IDX, CIFAR, SVHN)
  kJpeg,   ///< encoded JPEG bytes: dataset `jpeg_data` + `jpeg_offsets` (ImageNet-style trees)
};

/// "fixed" or "jpeg" (the value of the `storage` attribute).
std::string toString(ImageStorage storage);

/// Everything the index file of one split says about it.
struct ShardSetInfo {
  std::int64_t formatVersion = kShardFormatVersion;
  std::string dataset;  ///< "fashion-mnist", "cifar10", "cifar100", "svhn", "imagenet", ...
  std::string split;    ///< "train", "test", "val", "train_labeled", ...
  std::string source;   ///< the input files the set was made from (for provenance only)
  ImageStorage storage = ImageStorage::kFixed;
  std::int64_t numImages = 0;
  std::int64_t numClasses = 0;
  std::vector<std::string> classNames;  ///< numClasses names; label k is classNames[k]
  /// Image shape for kFixed; 0 for kJpeg (the images keep their own sizes).
  std::int64_t height = 0, width = 0, channels = 0;
  /// Channels of the decoded images: 1 or 3 (kJpeg images are decoded to RGB, so 3).
  std::int64_t decodedChannels = 0;
  /// Per-channel mean and standard deviation of pixels scaled to [0,1], over the training
  /// images (`statsSplit`), decodedChannels values each. Used to normalise every split.
  std::vector<double> mean, std;
  std::string statsSplit;  ///< the split the statistics were computed on
  /// Number of images in each shard file, in order; they sum to numImages.
  std::vector<std::int64_t> shardSizes;
};

/// A labeled/unlabeled selection of a split's images (reference-spec §5).
struct LabelSplit {
  std::string name;                   ///< e.g. "labels-4000-seed8469"
  std::string split;                  ///< the split it selects from ("train")
  std::int64_t numLabels = 0;         ///< size of `labeled`
  std::uint64_t seed = 0;             ///< seed of the class-balanced selection (0 for given lists)
  std::string method;                 ///< "class-balanced-python-random" or "list"
  std::vector<std::int64_t> labeled;  ///< global indices, in the reference's order
  std::vector<std::int64_t> unlabeled;  ///< the others, in the reference's order
};

/// The default name of the label split for `numLabels` labels and `seed`:
/// "labels-<numLabels>-seed<seed>" (what `metasemi-prep split` writes without --name).
std::string labelSplitName(std::int64_t numLabels, std::uint64_t seed);

/// One split of a shard set, open for reading. Opening validates the index and every shard's
/// shape against it; image data is read on demand. Reads are safe from several threads at once
/// (they are serialised internally). Movable, not copyable.
class ShardSet {
 public:
  /// Opens split `split` of the shard set in folder `dir`. Throws core::IoError with one line
  /// naming the file for a missing folder/index/shard, a format version this build cannot
  /// read, shards whose shapes or counts disagree with the index, or labels out of
  /// [0, numClasses).
  static ShardSet open(const std::filesystem::path& dir, const std::string& split);

  /// The splits present in `dir` (names of the index files), sorted.
  static std::vector<std::string> splits(const std::filesystem::path& dir);

  ShardSet(ShardSet&&) noexcept;
  ShardSet& operator=(ShardSet&&) noexcept;
  ~ShardSet();

  /// The folder and split this reader was opened on.
  const std::filesystem::path& dir() const;
  const ShardSetInfo& info() const;
  std::int64_t size() const { return info().numImages; }

  /// Every label of the split in global index order (numImages values in [0, numClasses)).
  const std::vector<std::int64_t>& labels() const;

  /// Reads images [begin, begin+count) of a kFixed split into `out`, which must hold
  /// count·H·W·C bytes (uint8, HWC, image after image). The range may span shards.
  /// Throws core::IoError for a range outside [0, numImages) or a kJpeg split.
  void readImages(std::int64_t begin, std::int64_t count, std::uint8_t* out) const;

  /// As above, returned as a new uint8 CPU tensor of shape count×H×W×C.
  torch::Tensor readImages(std::int64_t begin, std::int64_t count) const;

  /// Reads images at arbitrary global `indices` of a kFixed split into `out`
  /// (indices.size()·H·W·C bytes, in the order of `indices`).
  void readImagesAt(const std::vector<std::int64_t>& indices, std::uint8_t* out) const;

  /// The encoded bytes (a complete JPEG file) of image `index` of a kJpeg split.
  std::vector<std::uint8_t> readEncoded(std::int64_t index) const;

  /// As above into `out` (resized), so a caller can reuse one buffer.
  void readEncoded(std::int64_t index, std::vector<std::uint8_t>& out) const;

  /// The names of the label splits stored for this split (under `dir/splits/`), sorted.
  std::vector<std::string> labelSplitNames() const;

  /// Reads label split `name` of this split. Throws core::IoError when it is missing (the
  /// message lists the available ones), selects from another split, or holds indices that are
  /// out of range, repeated, or not a partition of [0, numImages) (labeled + unlabeled).
  LabelSplit labelSplit(const std::string& name) const;

 private:
  struct Impl;
  explicit ShardSet(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace metasemi::io
