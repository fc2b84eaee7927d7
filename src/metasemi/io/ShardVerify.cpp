#include "metasemi/io/ShardVerify.h"

#include <fmt/format.h>

#include "metasemi/core/Error.h"
#include "metasemi/io/H5File.h"
#include "metasemi/io/ShardWriter.h"

namespace metasemi::io {

std::vector<std::string> verifyShard(const ShardSet& set, std::int64_t shard,
                                     const EncodedCheck& check) {
  const ShardSetInfo& info = set.info();
  std::vector<std::string> problems;
  const std::string sp = shardPath(set.dir(), info.split, shard).string();
  std::int64_t first = 0;
  for (std::int64_t k = 0; k < shard; ++k) first += info.shardSizes[static_cast<std::size_t>(k)];
  const std::int64_t n = info.shardSizes[static_cast<std::size_t>(shard)];

  std::vector<std::int64_t> indexCrcs;
  {
    H5File index(shardIndexPath(set.dir(), info.split).string(), H5File::Mode::kRead);
    indexCrcs = index.readVector<std::int64_t>("shard_crc32");
  }
  H5File f(sp, H5File::Mode::kRead);
  const bool jpeg = info.storage == ImageStorage::kJpeg;
  const char* dataName = jpeg ? "jpeg_data" : "images";
  std::vector<std::uint8_t> data(static_cast<std::size_t>(f.infoForRead(dataName).numElements()));
  f.read(dataName, DType::kUInt8, data.data(), static_cast<std::int64_t>(data.size()));
  const std::uint32_t crc = crc32Of(data.data(), data.size());
  const auto stored = static_cast<std::uint32_t>(f.attrInt("/", "data_crc32"));
  if (crc != stored) {
    problems.push_back(fmt::format("{}: {} has CRC-32 {:08x}, the shard records {:08x}", sp,
                                   dataName, crc, stored));
  }
  if (static_cast<std::int64_t>(indexCrcs.size()) <= shard ||
      static_cast<std::uint32_t>(indexCrcs[static_cast<std::size_t>(shard)]) != stored) {
    problems.push_back(fmt::format("{}: CRC-32 {:08x} differs from the index's entry", sp, stored));
  }
  const auto labels = f.readVector<std::int64_t>("labels");
  if (crc32Of(labels.data(), labels.size() * 8) !=
      static_cast<std::uint32_t>(f.attrInt("/", "labels_crc32"))) {
    problems.push_back(fmt::format("{}: labels do not match their CRC-32", sp));
  }
  for (std::int64_t i = 0; i < n && i < static_cast<std::int64_t>(labels.size()); ++i) {
    if (labels[static_cast<std::size_t>(i)] != set.labels()[static_cast<std::size_t>(first + i)]) {
      problems.push_back(fmt::format("{}: label of image {} is {}, the index says {}", sp,
                                     first + i, labels[static_cast<std::size_t>(i)],
                                     set.labels()[static_cast<std::size_t>(first + i)]));
      break;
    }
  }
  if (!jpeg) return problems;

  const auto offsets = f.readVector<std::int64_t>("jpeg_offsets");
  if (static_cast<std::int64_t>(offsets.size()) != n + 1 || offsets.front() != 0 ||
      offsets.back() != static_cast<std::int64_t>(data.size())) {
    problems.push_back(fmt::format("{}: jpeg_offsets do not cover jpeg_data", sp));
    return problems;
  }
  std::vector<std::string> sources;
  if (f.exists("sources")) {
    const auto blob = f.readVector<std::uint8_t>("sources");
    std::string cur;
    for (const auto c : blob) {
      if (c == '\n') {
        sources.push_back(cur);
        cur.clear();
      } else {
        cur += static_cast<char>(c);
      }
    }
    sources.push_back(cur);
  }
  for (std::int64_t i = 0; i < n; ++i) {
    const auto a = offsets[static_cast<std::size_t>(i)];
    const auto b = offsets[static_cast<std::size_t>(i + 1)];
    if (b <= a) {
      problems.push_back(fmt::format("{}: image {} has no bytes", sp, first + i));
      continue;
    }
    const std::string source =
        static_cast<std::int64_t>(sources.size()) == n ? sources[static_cast<std::size_t>(i)] : "";
    try {
      check(first + i, data.data() + a, static_cast<std::size_t>(b - a), source);
    } catch (const core::IoError& e) {
      problems.push_back(fmt::format("{}: image {}: {}", sp, first + i, e.what()));
    }
  }
  return problems;
}

}  // namespace metasemi::io
