// Shard set files: the input replaces the index of split "train" (FUZZ_SHARD_INDEX 1) or its
// one shard (0) in a valid set; the set is opened and every image read.
#include "FuzzInput.h"
#include "metasemi/io/ShardSet.h"
#include "metasemi/io/ShardSplit.h"
#include "metasemi/io/ShardWriter.h"

namespace {

// A valid one-shard set to put fuzzed files into: 6 images of 2x2x1 in 2 classes.
const std::filesystem::path& baseSet() {
  static const std::filesystem::path dir = [] {
    using namespace metasemi;
    const auto d = fuzz::scratch() / "base";
    std::filesystem::remove_all(d);
    fuzz::writeToySet(d, "fuzz");
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace metasemi;
  namespace fs = std::filesystem;
  const auto& base = baseSet();
  const auto dir = fuzz::scratch() / "set";
  fs::remove_all(dir);
  fs::copy(base, dir, fs::copy_options::recursive);
  const auto target =
      FUZZ_SHARD_INDEX ? io::shardIndexPath(dir, "train") : io::shardPath(dir, "train", 0);
  {
    std::ofstream out(target, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  fuzz::refusedOrRead([&] {
    const auto set = io::ShardSet::open(dir, "train");
    std::vector<std::uint8_t> pixels(static_cast<std::size_t>(
        set.size() * set.info().height * set.info().width * set.info().channels));
    if (set.info().storage == io::ImageStorage::kFixed) {
      set.readImages(0, set.size(), pixels.data());
    } else {
      for (std::int64_t i = 0; i < set.size(); ++i) set.readEncoded(i);
    }
  });
  return 0;
}
