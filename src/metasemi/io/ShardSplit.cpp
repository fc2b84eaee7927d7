#include "metasemi/io/ShardSplit.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>

#include "metasemi/core/Error.h"
#include "metasemi/io/H5File.h"

namespace metasemi::io {
namespace {

constexpr std::uint32_t kMatrixA = 0x9908b0dfU;
constexpr std::uint32_t kUpperMask = 0x80000000U;
constexpr std::uint32_t kLowerMask = 0x7fffffffU;
constexpr int kM = 397;

int bitLength(std::uint64_t n) {
  int k = 0;
  while (n != 0) {
    ++k;
    n >>= 1;
  }
  return k;
}

}  // namespace

PythonRandom::PythonRandom(std::uint64_t seed) {
  // CPython seeds from the absolute value of the integer split into 32-bit words, least
  // significant first, with at least one word (init_by_array).
  std::vector<std::uint32_t> key;
  for (std::uint64_t s = seed; s != 0; s >>= 32) key.push_back(static_cast<std::uint32_t>(s));
  if (key.empty()) key.push_back(0);

  state_[0] = 19650218U;
  for (int i = 1; i < kN; ++i) {
    state_[i] =
        1812433253U * (state_[i - 1] ^ (state_[i - 1] >> 30)) + static_cast<std::uint32_t>(i);
  }
  int i = 1;
  std::size_t j = 0;
  for (int k = std::max<int>(kN, static_cast<int>(key.size())); k > 0; --k) {
    state_[i] = (state_[i] ^ ((state_[i - 1] ^ (state_[i - 1] >> 30)) * 1664525U)) + key[j] +
                static_cast<std::uint32_t>(j);
    ++i;
    ++j;
    if (i >= kN) {
      state_[0] = state_[kN - 1];
      i = 1;
    }
    if (j >= key.size()) j = 0;
  }
  for (int k = kN - 1; k > 0; --k) {
    state_[i] = (state_[i] ^ ((state_[i - 1] ^ (state_[i - 1] >> 30)) * 1566083941U)) -
                static_cast<std::uint32_t>(i);
    ++i;
    if (i >= kN) {
      state_[0] = state_[kN - 1];
      i = 1;
    }
  }
  state_[0] = 0x80000000U;
  pos_ = kN;
}

std::uint32_t PythonRandom::next32() {
  if (pos_ >= kN) {
    for (int k = 0; k < kN; ++k) {
      const std::uint32_t y = (state_[k] & kUpperMask) | (state_[(k + 1) % kN] & kLowerMask);
      state_[k] = state_[(k + kM) % kN] ^ (y >> 1) ^ ((y & 1U) ? kMatrixA : 0U);
    }
    pos_ = 0;
  }
  std::uint32_t y = state_[pos_++];
  y ^= (y >> 11);
  y ^= (y << 7) & 0x9d2c5680U;
  y ^= (y << 15) & 0xefc60000U;
  y ^= (y >> 18);
  return y;
}

std::uint64_t PythonRandom::getrandbits(int k) {
  MS_CHECK(k >= 1 && k <= 64, "getrandbits({}) outside [1, 64]", k);
  if (k <= 32) return next32() >> (32 - k);
  // CPython fills 32-bit words least significant first; the last word keeps its top bits.
  const std::uint64_t low = next32();
  const std::uint64_t high = next32() >> (64 - k);
  return low | (high << 32);
}

std::uint64_t PythonRandom::randbelow(std::uint64_t n) {
  if (n == 0) return 0;
  const int k = bitLength(n);
  std::uint64_t r = getrandbits(k);
  while (r >= n) r = getrandbits(k);
  return r;
}

LabelSplit classBalancedSplit(const std::vector<std::int64_t>& labels, std::int64_t numClasses,
                              std::int64_t numLabels, std::uint64_t seed,
                              const std::string& split) {
  MS_REQUIRE(numClasses > 0, core::ConfigError, "the number of classes must be positive, got {}",
             numClasses);
  MS_REQUIRE(numLabels > 0, core::ConfigError, "the number of labels must be positive, got {}",
             numLabels);
  MS_REQUIRE(numLabels % numClasses == 0, core::ConfigError,
             "the number of labels ({}) must be a multiple of the number of classes ({})",
             numLabels, numClasses);
  const std::int64_t perClass = numLabels / numClasses;
  std::vector<std::int64_t> available(static_cast<std::size_t>(numClasses), 0);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const std::int64_t y = labels[i];
    MS_REQUIRE(y >= 0 && y < numClasses, core::IoError, "label {} of image {} is outside [0, {})",
               y, i, numClasses);
    ++available[static_cast<std::size_t>(y)];
  }
  for (std::int64_t c = 0; c < numClasses; ++c) {
    MS_REQUIRE(available[static_cast<std::size_t>(c)] >= perClass, core::ConfigError,
               "{} labels need {} images of each class, but class {} has only {} in split {}",
               numLabels, perClass, c, available[static_cast<std::size_t>(c)], split);
  }

  std::vector<std::int64_t> order(labels.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int64_t>(i);
  PythonRandom rng(seed);
  rng.shuffle(order);

  LabelSplit out;
  out.name = labelSplitName(numLabels, seed);
  out.split = split;
  out.numLabels = numLabels;
  out.seed = seed;
  out.method = "class-balanced-python-random";
  out.labeled.reserve(static_cast<std::size_t>(numLabels));
  out.unlabeled.reserve(labels.size() - static_cast<std::size_t>(numLabels));
  std::vector<std::int64_t> taken(static_cast<std::size_t>(numClasses), 0);
  for (const std::int64_t idx : order) {
    auto& count = taken[static_cast<std::size_t>(labels[static_cast<std::size_t>(idx)])];
    if (count < perClass) {
      out.labeled.push_back(idx);
      ++count;
    } else {
      out.unlabeled.push_back(idx);
    }
  }
  return out;
}

void writeLabelSplit(const std::filesystem::path& dir, const LabelSplit& s) {
  MS_REQUIRE(!s.name.empty() && s.name.find('/') == std::string::npos, core::ConfigError,
             "label split name '{}' must be non-empty and contain no '/'", s.name);
  const auto splitsDir = dir / "splits";
  std::error_code ec;
  std::filesystem::create_directories(splitsDir, ec);
  MS_REQUIRE(!ec, core::IoError, "{}: cannot create folder: {}", splitsDir.string(), ec.message());

  AtomicOutput h5out((splitsDir / (s.name + ".h5")).string());
  {
    H5File f(h5out.tempPath(), H5File::Mode::kCreate);
    f.setAttr("/", "format_version", kShardFormatVersion);
    f.setAttr("/", "kind", "label_split");
    f.setAttr("/", "name", s.name);
    f.setAttr("/", "split", s.split);
    f.setAttr("/", "num_labels", s.numLabels);
    f.setAttr("/", "seed", static_cast<std::int64_t>(s.seed));
    f.setAttr("/", "method", s.method);
    f.writeVector("labeled", s.labeled);
    f.writeVector("unlabeled", s.unlabeled);
  }
  AtomicOutput txtOut((splitsDir / (s.name + ".label_indices.txt")).string());
  {
    std::ofstream txt(txtOut.tempPath());
    for (const std::int64_t i : s.labeled) txt << i << '\n';
    txt.close();
    MS_REQUIRE(txt, core::IoError, "{}: write failed", txtOut.tempPath());
  }
  h5out.commit();
  txtOut.commit();
}

LabelSplit readLabelSplitFile(const std::filesystem::path& dir, const std::string& name) {
  const auto path = dir / "splits" / (name + ".h5");
  MS_REQUIRE(std::filesystem::is_regular_file(path), core::IoError,
             "{}: label split '{}' not found", path.string(), name);
  H5File f(path.string(), H5File::Mode::kRead);
  MS_REQUIRE(f.hasAttr("/", "kind") && f.attrString("/", "kind") == "label_split", core::IoError,
             "{}: not a label split file (attribute kind != label_split)", path.string());
  LabelSplit s;
  s.name = name;
  s.split = f.attrString("/", "split");
  s.numLabels = f.attrInt("/", "num_labels");
  s.seed = static_cast<std::uint64_t>(f.attrInt("/", "seed"));
  s.method = f.attrString("/", "method");
  s.labeled = f.readVector<std::int64_t>("labeled");
  s.unlabeled = f.readVector<std::int64_t>("unlabeled");
  MS_REQUIRE(static_cast<std::int64_t>(s.labeled.size()) == s.numLabels, core::IoError,
             "{}: num_labels is {} but dataset labeled has {} entries", path.string(), s.numLabels,
             s.labeled.size());
  return s;
}

}  // namespace metasemi::io
