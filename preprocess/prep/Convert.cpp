#include "prep/Convert.h"

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <algorithm>
#include <ostream>

#include "metasemi/core/Error.h"
#include "metasemi/core/Log.h"
#include "metasemi/io/ShardVerify.h"
#include "metasemi/io/ShardWriter.h"
#include "prep/Jpeg.h"
#include "prep/Progress.h"

namespace metasemi::prep {
namespace fs = std::filesystem;
using core::IoError;

std::vector<std::string> idxClassNames(const std::string& dataset, std::int64_t numClasses) {
  if (dataset == "fashion-mnist" && numClasses == 10) {
    return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  }
  std::vector<std::string> names;
  for (std::int64_t i = 0; i < numClasses; ++i) names.push_back(std::to_string(i));
  return names;
}

std::vector<std::string> cifar10ClassNames() {
  return {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
}

double writeFixedDataset(const ConvertOptions& options, const std::string& dataset,
                         const std::vector<std::string>& classNames,
                         const std::vector<std::pair<std::string, RawSplit>>& splits) {
  const auto numClasses = static_cast<std::int64_t>(classNames.size());
  std::int64_t total = 0;
  for (const auto& [name, raw] : splits) {
    for (std::int64_t i = 0; i < raw.size(); ++i) {
      const std::int64_t y = raw.labels[static_cast<std::size_t>(i)];
      MS_REQUIRE(y >= 0 && y < numClasses, IoError, "{}: label {} of image {} is outside 0..{}",
                 raw.source, y, i, numClasses - 1);
    }
    MS_REQUIRE(raw.size() > 0, IoError, "{}: no images", raw.source);
    total += raw.size();
  }
  Progress progress(dataset, total, options.progressInterval);
  std::optional<io::ShardSetInfo> trainStats;
  for (const auto& [name, raw] : splits) {
    io::ShardSetInfo h;
    h.dataset = dataset;
    h.split = name;
    h.source = raw.source;
    h.storage = io::ImageStorage::kFixed;
    h.numClasses = numClasses;
    h.classNames = classNames;
    h.height = raw.height;
    h.width = raw.width;
    h.channels = raw.channels;
    h.decodedChannels = raw.channels;
    io::ShardWriter writer(options.out, h, options.imagesPerShard);
    const std::int64_t imageBytes = raw.height * raw.width * raw.channels;
    constexpr std::int64_t kBatch = 4096;
    for (std::int64_t i = 0; i < raw.size(); i += kBatch) {
      const std::int64_t n = std::min(kBatch, raw.size() - i);
      writer.addImages(raw.images.data() + i * imageBytes, raw.labels.data() + i, n);
      progress.add(n);
    }
    // Every split is normalised with the training images' statistics.
    const auto info = writer.finish(name == "train" ? std::nullopt : trainStats);
    if (name == "train") trainStats = info;
    spdlog::info("{} {}: {} images {}x{}x{}, mean {:.4f}, std {:.4f} -> {}", dataset, name,
                 info.numImages, info.height, info.width, info.channels, fmt::join(info.mean, " "),
                 fmt::join(info.std, " "), io::shardIndexPath(options.out, name).string());
  }
  return progress.finish();
}

void printInfo(const fs::path& dir, const std::string& split, std::ostream& out) {
  const auto names = split.empty() ? io::ShardSet::splits(dir) : std::vector<std::string>{split};
  MS_REQUIRE(!names.empty(), IoError, "{}: no shard set index (*.h5) in this folder", dir.string());
  for (const auto& name : names) {
    const auto set = io::ShardSet::open(dir, name);
    const auto& i = set.info();
    std::vector<std::int64_t> perClass(static_cast<std::size_t>(i.numClasses), 0);
    for (const auto y : set.labels()) ++perClass[static_cast<std::size_t>(y)];
    const auto [mn, mx] = std::minmax_element(perClass.begin(), perClass.end());
    fmt::print(out, "{} / {}\n", i.dataset, i.split);
    fmt::print(out, "  images:          {}\n", i.numImages);
    if (i.storage == io::ImageStorage::kFixed) {
      fmt::print(out, "  storage:         fixed uint8 {}x{}x{} (HxWxC)\n", i.height, i.width,
                 i.channels);
    } else {
      fmt::print(out, "  storage:         jpeg (decoded to {} channels)\n", i.decodedChannels);
    }
    fmt::print(out, "  shards:          {}\n", i.shardSizes.size());
    fmt::print(out, "  classes:         {} ({} .. {} images per class)\n", i.numClasses, *mn, *mx);
    const std::size_t shown = std::min<std::size_t>(i.classNames.size(), 10);
    fmt::print(out, "  class names:     {}{}\n",
               fmt::join(i.classNames.begin(), i.classNames.begin() + shown, ", "),
               shown < i.classNames.size() ? ", ..." : "");
    fmt::print(out, "  mean:            {:.8f}\n", fmt::join(i.mean, " "));
    fmt::print(out, "  std:             {:.8f}\n", fmt::join(i.std, " "));
    fmt::print(out, "  stats of split:  {}\n", i.statsSplit);
    fmt::print(out, "  format version:  {}\n", i.formatVersion);
    fmt::print(out, "  source:          {}\n", i.source);
    for (const auto& ls : set.labelSplitNames()) {
      const auto s = set.labelSplit(ls);
      fmt::print(out, "  label split:     {} ({} labeled, {} unlabeled)\n", ls, s.labeled.size(),
                 s.unlabeled.size());
    }
  }
}

std::int64_t verifySet(const fs::path& dir, const std::string& split, std::ostream& out,
                       std::int64_t maxPixels) {
  const auto names = split.empty() ? io::ShardSet::splits(dir) : std::vector<std::string>{split};
  MS_REQUIRE(!names.empty(), IoError, "{}: no shard set index (*.h5) in this folder", dir.string());
  std::int64_t problems = 0;
  JpegCodec codec;
  codec.setMaxPixels(maxPixels);
  std::vector<std::uint8_t> rgb;
  for (const auto& name : names) {
    std::vector<std::string> found;
    std::int64_t images = 0;
    try {
      const auto set = io::ShardSet::open(dir, name);
      images = set.size();
      Progress progress("verify " + name, set.size());
      const auto check = [&](std::int64_t index, const std::uint8_t* data, std::size_t size,
                             const std::string& source) {
        int w = 0, h = 0;
        codec.decode(data, size, source.empty() ? fmt::format("image {}", index) : source, rgb, w,
                     h);
      };
      for (std::size_t k = 0; k < set.info().shardSizes.size(); ++k) {
        auto p = io::verifyShard(set, static_cast<std::int64_t>(k), check);
        found.insert(found.end(), p.begin(), p.end());
        progress.add(set.info().shardSizes[k]);
      }
      for (const auto& ls : set.labelSplitNames()) {
        try {
          set.labelSplit(ls);
        } catch (const IoError& e) {
          found.push_back(e.what());
        }
      }
    } catch (const IoError& e) {
      found.push_back(e.what());
    }
    for (const auto& p : found) fmt::print(out, "{}\n", p);
    if (found.empty()) {
      fmt::print(out, "{}: split {} OK ({} images)\n", dir.string(), name, images);
    }
    problems += static_cast<std::int64_t>(found.size());
  }
  return problems;
}

}  // namespace metasemi::prep
