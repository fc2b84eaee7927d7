// A small synthetic shard set for trainer tests: 10 classes of 16×16 grey images whose class
// sets a bright square's position, with a "train" split (and label split) and a "test" split.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace metasemi::test {

struct TinyShardsSpec {
  std::string dataset = "mnist";
  std::int64_t numTrain = 300;
  std::int64_t numTest = 100;
  std::int64_t numClasses = 10;
  std::int64_t testClasses = 10;  ///< != numClasses makes an inconsistent set
  std::int64_t numLabels = 50;
  std::uint64_t seed = 1;
};

/// Writes the shard set into `dir` (created) with metasemi's own writer: splits "train" and
/// "test" and the label split for (numLabels, seed).
void writeTinyShards(const std::filesystem::path& dir, const TinyShardsSpec& spec = {});

/// The metasemi-train flags of a tiny run on the set `spec` wrote into `dir` (its dataset and
/// label split): ConvLarge at width 0.125, 8 + 8 images per rank and step, one LibTorch thread
/// and one loader worker per rank. The caller adds the step counts, frequencies and --save-path.
std::string tinyTrainFlags(const std::filesystem::path& dir, const TinyShardsSpec& spec = {});

}  // namespace metasemi::test
