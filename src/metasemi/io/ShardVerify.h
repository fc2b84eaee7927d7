// Full check of a shard set's stored data (what `metasemi-prep verify` runs): checksums of
// every shard against its own attributes and the index, labels against the index, and a
// caller-supplied check of every encoded image.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "metasemi/io/ShardSet.h"

namespace metasemi::io {

/// Called for each encoded image: global index, bytes, size, and its source name (or "").
/// Throws core::IoError to report the image as bad.
using EncodedCheck =
    std::function<void(std::int64_t, const std::uint8_t*, std::size_t, const std::string&)>;

/// Checks shard `shard` of the open split `set`: data and label CRC-32s against the shard's
/// attributes and the index's `shard_crc32`, labels equal to the index's, JPEG offsets, and
/// (kJpeg) `check` on every image. Returns one line per problem found (empty when sound).
std::vector<std::string> verifyShard(const ShardSet& set, std::int64_t shard,
                                     const EncodedCheck& check);

}  // namespace metasemi::io
