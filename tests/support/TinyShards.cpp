#include "support/TinyShards.h"

#include <fmt/format.h>

#include <vector>

#include "metasemi/core/Random.h"
#include "metasemi/io/ShardSplit.h"
#include "metasemi/io/ShardWriter.h"

namespace metasemi::test {
namespace {

constexpr std::int64_t kSide = 16;

void writeSplit(const std::filesystem::path& dir, const TinyShardsSpec& spec,
                const std::string& split, std::int64_t n, std::int64_t classes, std::uint64_t seed,
                std::vector<std::int64_t>* labelsOut) {
  io::ShardSetInfo header;
  header.dataset = spec.dataset;
  header.split = split;
  header.source = "synthetic";
  header.storage = io::ImageStorage::kFixed;
  header.numClasses = classes;
  for (std::int64_t k = 0; k < classes; ++k) header.classNames.push_back("c" + std::to_string(k));
  header.height = kSide;
  header.width = kSide;
  header.channels = 1;
  header.decodedChannels = 1;
  io::ShardWriter writer(dir, header, 128);
  core::Rng rng(seed);
  std::vector<std::uint8_t> img(kSide * kSide);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t label = i % classes;
    for (auto& p : img) p = static_cast<std::uint8_t>(rng.below(60));
    const std::int64_t y0 = 2 + 3 * (label / 4), x0 = 2 + 3 * (label % 4);
    for (std::int64_t y = y0; y < y0 + 3; ++y) {
      for (std::int64_t x = x0; x < x0 + 3; ++x) img[y * kSide + x] = 255;
    }
    writer.addImages(img.data(), &label, 1);
    if (labelsOut) labelsOut->push_back(label);
  }
  writer.finish();
}

}  // namespace

void writeTinyShards(const std::filesystem::path& dir, const TinyShardsSpec& spec) {
  std::filesystem::create_directories(dir);
  std::vector<std::int64_t> labels;
  writeSplit(dir, spec, "train", spec.numTrain, spec.numClasses, spec.seed + 11, &labels);
  writeSplit(dir, spec, "test", spec.numTest, spec.testClasses, spec.seed + 12, nullptr);
  io::writeLabelSplit(dir,
                      io::classBalancedSplit(labels, spec.numClasses, spec.numLabels, spec.seed));
}

std::string tinyTrainFlags(const std::filesystem::path& dir, const TinyShardsSpec& spec) {
  return fmt::format(
      "--dataset {} --data-path {} --num-label {} --seed {} --width 0.125 --batch-size 8 "
      "--warmup 4 --threads 1 --num-workers 1",
      spec.dataset, dir.string(), spec.numLabels, spec.seed);
}

}  // namespace metasemi::test
