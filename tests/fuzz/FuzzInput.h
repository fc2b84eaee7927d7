// What every fuzz target shares: the input written to a file of this process (the readers take
// paths), and a guard that accepts the project's errors and nothing else.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "metasemi/core/Error.h"
#include "metasemi/io/ShardWriter.h"

namespace metasemi::fuzz {

/// A folder of this process under $TMPDIR (or /tmp), created once.
inline const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    auto d =
        std::filesystem::path(tmp ? tmp : "/tmp") / ("metasemi-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

/// Writes the input to `name` in scratch() and returns its path.
inline std::filesystem::path asFile(const std::uint8_t* data, std::size_t size,
                                    const std::string& name) {
  const auto p = scratch() / name;
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return p;
}

/// Writes a valid one-shard set of split "train" into `dir`: 6 grey 2x2 images in 2 classes
/// (the set the shard targets put fuzzed files into, and their seeds).
inline void writeToySet(const std::filesystem::path& dir, const std::string& source) {
  io::ShardSetInfo h;
  h.dataset = "toy";
  h.split = "train";
  h.source = source;
  h.storage = io::ImageStorage::kFixed;
  h.numClasses = 2;
  h.classNames = {"a", "b"};
  h.height = h.width = 2;
  h.channels = h.decodedChannels = 1;
  std::vector<std::uint8_t> images(24, 9);
  std::vector<std::int64_t> labels{0, 1, 0, 1, 0, 1};
  io::ShardWriter w(dir, h, 8);
  w.addImages(images.data(), labels.data(), 6);
  w.finish();
}

/// Runs `f`; a core::Error (the one-line refusal every reader owes bad input) is the expected
/// outcome of most inputs. Anything else escapes and ends the run as a finding.
template <typename F>
void refusedOrRead(F&& f) {
  try {
    f();
  } catch (const core::Error&) {
    // Refused with a message: fine.
  }
}

}  // namespace metasemi::fuzz
