// Readers of the datasets' original file formats: MNIST-style IDX (raw or gzip), the CIFAR-10/100
// binary version (extracted folder or the .tar.gz itself) and SVHN's MATLAB v5 files. Each one
// checks its input completely and throws core::IoError with one line naming the file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace metasemi::prep {

/// Images and labels of one split in memory: `images` is n·H·W·C uint8 bytes (HWC).
struct RawSplit {
  std::int64_t height = 0, width = 0, channels = 0;
  std::vector<std::uint8_t> images;
  std::vector<std::int64_t> labels;
  std::string source;  ///< the files it was read from
  std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }
};

/// Reads an IDX file (raw or gzip-compressed; detected from the content): checks the magic
/// number (unsigned byte data with `expectedDims` dimensions) and that exactly the announced
/// bytes follow. Returns the dimensions and the data.
std::vector<std::uint8_t> readIdx(const std::filesystem::path& path, int expectedDims,
                                  std::vector<std::int64_t>& dims);

/// An images file (3 dimensions: n, H, W) and a labels file (1 dimension: n) with the same n.
RawSplit readIdxSplit(const std::filesystem::path& images, const std::filesystem::path& labels);

/// The files of a dataset archive: an extracted folder (searched recursively) or a .tar.gz /
/// .tgz / .tar read in place with libarchive (the first read extracts every member into memory
/// in one pass; the CIFAR archives hold ~180 MB).
class ArchiveFiles {
 public:
  /// Indexes `input`; throws core::IoError when it does not exist or cannot be read.
  explicit ArchiveFiles(std::filesystem::path input);
  /// True when a member with this file name (any folder) exists.
  bool has(const std::string& name) const;
  /// Reads the member with this file name; throws core::IoError naming the input when missing.
  std::vector<std::uint8_t> read(const std::string& name) const;
  /// "input" or "input:member", for messages.
  std::string describe(const std::string& name) const;

 private:
  std::filesystem::path input_;
  bool isArchive_ = false;
  std::vector<std::pair<std::string, std::string>> members_;  // file name, path in the input
  mutable std::map<std::string, std::vector<std::uint8_t>> extracted_;  // by path in the archive
};

/// CIFAR-10 binary version: data_batch_1..5.bin (train) or test_batch.bin (test), 10000
/// records of 1 label byte + 3072 pixel bytes (RGB planes) each. Labels must be < 10.
RawSplit readCifar10(const ArchiveFiles& files, bool train);

/// CIFAR-100 binary version: train.bin or test.bin, records of a coarse and a fine label byte
/// + 3072 pixel bytes. `fine` selects the 100 fine labels, otherwise the 20 coarse ones.
RawSplit readCifar100(const ArchiveFiles& files, bool train, bool fine);

/// Class names from a `*.txt` member of the archive (one per line, blank lines ignored), or
/// `fallback` when the member is absent. Throws when the count is not `numClasses`.
std::vector<std::string> classNamesFrom(const ArchiveFiles& files, const std::string& name,
                                        std::int64_t numClasses,
                                        const std::vector<std::string>& fallback);

/// SVHN cropped digits (train_32x32.mat, test_32x32.mat, extra_32x32.mat): variable X uint8
/// 32×32×3×N and y N×1 with values 1..10; label 10 is digit 0 (as torchvision does).
RawSplit readSvhn(const std::filesystem::path& matFile);

}  // namespace metasemi::prep
