// The labeled/unlabeled selection of a split (reference-spec §5), reproduced bit for bit: the
// reference seeds Python's `random` module and shuffles `range(N)`, so the selection depends on
// CPython's Mersenne Twister, its seeding from an integer and its rejection sampling. Those are
// replayed here, so the same seed gives the reference's label_indices.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "metasemi/io/ShardSet.h"

namespace metasemi::io {

/// The generator behind CPython's `random.Random`, as far as `seed(int)`, `getrandbits(k)` and
/// `shuffle(list)` use it (CPython 3.2 and later give identical sequences).
class PythonRandom {
 public:
  /// Equivalent of `random.seed(seed)` for a non-negative integer seed.
  explicit PythonRandom(std::uint64_t seed);

  /// One 32-bit output of the Mersenne Twister (genrand_uint32).
  std::uint32_t next32();
  /// `random.getrandbits(k)` for 1 <= k <= 64.
  std::uint64_t getrandbits(int k);
  /// `random._randbelow(n)`: uniform in [0, n) by rejection of getrandbits(n.bit_length()).
  std::uint64_t randbelow(std::uint64_t n);

  /// `random.shuffle(v)`: the same permutation Python applies to a list.
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (std::size_t i = v.size(); i > 1; --i) {
      const auto j = static_cast<std::size_t>(randbelow(i));
      std::swap(v[i - 1], v[j]);
    }
  }

 private:
  static constexpr int kN = 624;
  std::array<std::uint32_t, kN> state_{};
  int pos_ = kN;
};

/// The reference's class-balanced selection of `numLabels` labeled images among `labels`
/// (values in [0, numClasses)): shuffle range(N) with PythonRandom(seed), then scan, taking an
/// image as labeled while its class has fewer than numLabels/numClasses labeled ones. Both lists
/// keep the scan order. Throws core::ConfigError when numLabels is not positive, not a multiple
/// of numClasses, or asks for more images of a class than there are.
LabelSplit classBalancedSplit(const std::vector<std::int64_t>& labels, std::int64_t numClasses,
                              std::int64_t numLabels, std::uint64_t seed,
                              const std::string& split = "train");

/// Writes `labelSplit` into the shard set folder `dir`: `splits/<name>.h5` (datasets `labeled`
/// and `unlabeled`) and `splits/<name>.label_indices.txt` (one labeled index per line, the
/// reference's file). Both are written to temporary names and renamed when complete.
void writeLabelSplit(const std::filesystem::path& dir, const LabelSplit& labelSplit);

/// Reads `splits/<name>.h5` of `dir` without checking it against a split (ShardSet::labelSplit
/// does the checks). Throws core::IoError when the file is missing or malformed.
LabelSplit readLabelSplitFile(const std::filesystem::path& dir, const std::string& name);

}  // namespace metasemi::io
