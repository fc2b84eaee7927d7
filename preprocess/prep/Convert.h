// The conversions of small fixed-size datasets into shard sets, the labeled/unlabeled split,
// and the summary/check of existing shard sets.
#pragma once

#include "prep/Jpeg.h"

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "metasemi/io/ShardSet.h"
#include "prep/RawReaders.h"

namespace metasemi::prep {

/// Options shared by the converters.
struct ConvertOptions {
  std::filesystem::path out;             ///< shard set folder (created when missing)
  std::int64_t imagesPerShard = 100000;  ///< images per shard file
  double progressInterval = 10.0;        ///< seconds between progress lines in logs
};

/// Writes `train` and `test` (either may be empty, never both) as splits "train"/"test" of
/// dataset `dataset`; the test split carries the training split's mean/std. Checks every label
/// against the class names first. Returns the images per second of the whole write.
double writeFixedDataset(const ConvertOptions& options, const std::string& dataset,
                         const std::vector<std::string>& classNames,
                         const std::vector<std::pair<std::string, RawSplit>>& splits);

/// Class names of the known IDX datasets ("fashion-mnist", "mnist"), else "0".."n-1".
std::vector<std::string> idxClassNames(const std::string& dataset, std::int64_t numClasses);

/// CIFAR-10's class names, used when batches.meta.txt is absent.
std::vector<std::string> cifar10ClassNames();

/// Prints the summary of every split (or of `split`) of the shard set `dir` to `out`.
void printInfo(const std::filesystem::path& dir, const std::string& split, std::ostream& out);

/// Checks every split (or `split`) of `dir` completely; prints one line per problem and a
/// summary to `out`. Returns the number of problems.
std::int64_t verifySet(const std::filesystem::path& dir, const std::string& split,
                       std::ostream& out, std::int64_t maxPixels = kDefaultMaxJpegPixels);

}  // namespace metasemi::prep
