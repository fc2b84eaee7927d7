// Shard sets: what the writer stores reads back exactly through ShardSet, across shard
// boundaries; inconsistent sets are refused with one line naming the file.
#include <fstream>

#include "metasemi/core/Error.h"
#include "metasemi/core/Random.h"
#include "metasemi/io/H5File.h"
#include "metasemi/io/ShardSet.h"
#include "metasemi/io/ShardSplit.h"
#include "metasemi/io/ShardWriter.h"
#include "support/TestSupport.h"

namespace io = metasemi::io;
namespace fs = std::filesystem;
using metasemi::core::IoError;
using metasemi::test::errorOf;

namespace {

constexpr std::int64_t kH = 4, kW = 5, kC = 3;

io::ShardSetInfo fixedHeader(const std::string& split) {
  io::ShardSetInfo h;
  h.dataset = "toy";
  h.split = split;
  h.source = "test";
  h.storage = io::ImageStorage::kFixed;
  h.numClasses = 3;
  h.classNames = {"a", "b", "c"};
  h.height = kH;
  h.width = kW;
  h.channels = kC;
  h.decodedChannels = kC;
  return h;
}

struct Toy {
  std::vector<std::uint8_t> images;
  std::vector<std::int64_t> labels;
};

Toy makeToy(std::int64_t n, std::uint64_t seed) {
  metasemi::core::Rng rng(seed);
  Toy t;
  t.images.resize(static_cast<std::size_t>(n * kH * kW * kC));
  for (auto& b : t.images) b = static_cast<std::uint8_t>(rng.below(256));
  t.labels.resize(static_cast<std::size_t>(n));
  for (auto& y : t.labels) y = static_cast<std::int64_t>(rng.below(3));
  return t;
}

// Writes `toy` as split `split` in shards of `perShard`, in two uneven batches.
io::ShardSetInfo writeToy(const fs::path& dir, const std::string& split, const Toy& toy,
                          std::int64_t perShard) {
  io::ShardWriter w(dir, fixedHeader(split), perShard);
  const std::int64_t n = static_cast<std::int64_t>(toy.labels.size());
  const std::int64_t first = n / 3;
  w.addImages(toy.images.data(), toy.labels.data(), first);
  w.addImages(toy.images.data() + first * kH * kW * kC, toy.labels.data() + first, n - first);
  return w.finish();
}

bool noTempFiles(const fs::path& dir) {
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.path().filename().string().find(".tmp") != std::string::npos) return false;
  }
  return true;
}

}  // namespace

BOOST_AUTO_TEST_CASE(fixed_images_round_trip_across_shards) {
  const auto dir = metasemi::test::freshDir("shard_set_round_trip");
  const Toy toy = makeToy(25, 1);
  writeToy(dir, "train", toy, 10);
  BOOST_TEST(fs::exists(dir / "train" / "shard-00002.h5"));
  BOOST_TEST(noTempFiles(dir));

  const auto set = io::ShardSet::open(dir, "train");
  const auto& info = set.info();
  BOOST_TEST(info.dataset == "toy");
  BOOST_TEST(info.numImages == 25);
  BOOST_TEST(info.numClasses == 3);
  BOOST_TEST(info.classNames == std::vector<std::string>({"a", "b", "c"}));
  BOOST_TEST(info.shardSizes == std::vector<std::int64_t>({10, 10, 5}));
  BOOST_TEST(io::toString(info.storage) == "fixed");
  BOOST_TEST(info.formatVersion == io::kShardFormatVersion);
  BOOST_TEST(set.labels() == toy.labels);
  BOOST_TEST(io::ShardSet::splits(dir) == std::vector<std::string>({"train"}));

  const std::int64_t bytes = kH * kW * kC;
  std::vector<std::uint8_t> buf(static_cast<std::size_t>(25 * bytes));
  set.readImages(0, 25, buf.data());
  BOOST_TEST(buf == toy.images);
  // A range that spans all three shards.
  std::vector<std::uint8_t> part(static_cast<std::size_t>(13 * bytes));
  set.readImages(8, 13, part.data());
  BOOST_TEST(std::equal(part.begin(), part.end(), toy.images.begin() + 8 * bytes));

  const auto t = set.readImages(9, 3);
  BOOST_TEST(t.sizes() == torch::IntArrayRef({3, kH, kW, kC}));
  BOOST_TEST(t.scalar_type() == torch::kUInt8);
  BOOST_TEST(std::equal(t.data_ptr<std::uint8_t>(), t.data_ptr<std::uint8_t>() + 3 * bytes,
                        toy.images.begin() + 9 * bytes));

  const std::vector<std::int64_t> at{24, 3, 4, 5, 10, 0};
  std::vector<std::uint8_t> gathered(at.size() * static_cast<std::size_t>(bytes));
  set.readImagesAt(at, gathered.data());
  for (std::size_t i = 0; i < at.size(); ++i) {
    BOOST_TEST(std::equal(gathered.begin() + i * bytes, gathered.begin() + (i + 1) * bytes,
                          toy.images.begin() + at[i] * bytes),
               "image " << at[i]);
  }

  BOOST_TEST(errorOf([&] { set.readImages(20, 6); }).find("outside split train of 25") !=
             std::string::npos);
  BOOST_TEST(errorOf([&] { set.readEncoded(0); }).find("stores fixed-size images") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(mean_and_std_are_those_of_the_pixels) {
  const auto dir = metasemi::test::freshDir("shard_set_stats");
  const Toy toy = makeToy(17, 2);
  const auto written = writeToy(dir, "train", toy, 6);
  const auto info = io::ShardSet::open(dir, "train").info();
  BOOST_TEST(info.statsSplit == "train");
  for (std::int64_t c = 0; c < kC; ++c) {
    double s = 0, s2 = 0;
    std::int64_t n = 0;
    for (std::size_t i = static_cast<std::size_t>(c); i < toy.images.size(); i += kC) {
      const double x = toy.images[i] / 255.0;
      s += x;
      s2 += x * x;
      ++n;
    }
    const double mean = s / n;
    const double sd = std::sqrt(s2 / n - mean * mean);
    BOOST_TEST(info.mean[c] == mean, boost::test_tools::tolerance(1e-12));
    BOOST_TEST(info.std[c] == sd, boost::test_tools::tolerance(1e-12));
  }
  // A test split carries the training split's statistics when told so.
  io::ShardWriter w(dir, fixedHeader("test"), 100);
  const Toy other = makeToy(4, 3);
  w.addImages(other.images.data(), other.labels.data(), 4);
  w.finish(written);
  const auto testInfo = io::ShardSet::open(dir, "test").info();
  BOOST_TEST(testInfo.mean == info.mean);
  BOOST_TEST(testInfo.statsSplit == "train");
}

BOOST_AUTO_TEST_CASE(encoded_images_round_trip) {
  const auto dir = metasemi::test::freshDir("shard_set_encoded");
  io::ShardSetInfo h = fixedHeader("val");
  h.storage = io::ImageStorage::kJpeg;
  h.height = h.width = h.channels = 0;
  std::vector<std::vector<std::uint8_t>> blobs;
  metasemi::core::Rng rng(4);
  io::ShardWriter w(dir, h, 3);
  for (int i = 0; i < 7; ++i) {
    std::vector<std::uint8_t> b(static_cast<std::size_t>(1 + rng.below(50)));
    for (auto& v : b) v = static_cast<std::uint8_t>(rng.below(256));
    io::PixelStats st;
    const std::uint8_t px[3] = {10, 20, static_cast<std::uint8_t>(i)};
    st.add(px, 1, 3);
    w.addEncoded(b.data(), b.size(), i % 3, "c/" + std::to_string(i) + ".JPEG", st);
    blobs.push_back(std::move(b));
  }
  w.finish();
  const auto set = io::ShardSet::open(dir, "val");
  BOOST_TEST(io::toString(set.info().storage) == "jpeg");
  BOOST_TEST(set.info().shardSizes == std::vector<std::int64_t>({3, 3, 1}));
  BOOST_TEST(set.info().mean[0] == 10 / 255.0, boost::test_tools::tolerance(1e-12));
  std::vector<std::uint8_t> buf;
  for (int i = 6; i >= 0; --i) {
    set.readEncoded(i, buf);
    BOOST_TEST(buf == blobs[static_cast<std::size_t>(i)], "image " << i);
  }
  BOOST_TEST(errorOf([&] { set.readImages(0, 1); }).find("stores JPEG files") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(missing_and_inconsistent_sets_are_refused) {
  const auto dir = metasemi::test::freshDir("shard_set_errors");
  BOOST_TEST(errorOf([&] { io::ShardSet::open(dir / "nothing", "train"); }) ==
             (dir / "nothing").string() + ": shard set folder does not exist");
  const Toy toy = makeToy(12, 5);
  const auto info = writeToy(dir, "train", toy, 5);
  BOOST_TEST(errorOf([&] { io::ShardSet::open(dir, "test"); }) ==
             (dir / "test.h5").string() + ": split 'test' not found (splits here: train)");

  // A shard of another image shape in place of shard 1.
  {
    io::ShardSetInfo h = fixedHeader("train");
    h.height = 2;
    io::ShardContent c;
    c.shard = 1;
    c.firstIndex = 5;
    c.labels.assign(5, 0);
    c.data.assign(static_cast<std::size_t>(5 * 2 * kW * kC), 0);
    c.stats.add(c.data.data(), 5 * 2 * kW, kC);
    io::writeShard(dir, h, c);
  }
  BOOST_TEST(errorOf([&] { io::ShardSet::open(dir, "train"); }) ==
             (dir / "train" / "shard-00001.h5").string() +
                 ": images has shape 5x2x5x3, expected 5x4x5x3");
  writeToy(dir, "train", toy, 5);

  // Missing shard.
  fs::remove(dir / "train" / "shard-00002.h5");
  BOOST_TEST(errorOf([&] {
               io::ShardSet::open(dir, "train");
             }).find("shard-00002.h5: shard missing") != std::string::npos);
  writeToy(dir, "train", toy, 5);

  // A label out of range in the index.
  {
    auto bad = toy.labels;
    bad[7] = 3;
    io::writeShardIndex(dir, info, bad, std::vector<std::uint32_t>(3, 0));
  }
  BOOST_TEST(errorOf([&] { io::ShardSet::open(dir, "train"); }) ==
             (dir / "train.h5").string() + ": label 3 of image 7 is outside [0, 3)");

  // A newer format version.
  writeToy(dir, "train", toy, 5);
  {
    io::H5File f((dir / "train.h5").string(), io::H5File::Mode::kReadWrite);
    f.setAttr("/", "format_version", std::int64_t{99});
  }
  BOOST_TEST(errorOf([&] { io::ShardSet::open(dir, "train"); }) ==
             (dir / "train.h5").string() + ": shard format version 99, this build reads version 1");
}

BOOST_AUTO_TEST_CASE(label_splits_are_checked_against_the_split) {
  const auto dir = metasemi::test::freshDir("shard_set_label_split");
  const Toy toy = makeToy(30, 6);
  writeToy(dir, "train", toy, 30);
  const auto set = io::ShardSet::open(dir, "train");
  BOOST_TEST(errorOf([&] {
               set.labelSplit("labels-3-seed1");
             }).find("label split 'labels-3-seed1' not found (label splits of train: none") !=
             std::string::npos);
  const auto s = io::classBalancedSplit(set.labels(), 3, 3, 1);
  io::writeLabelSplit(dir, s);
  BOOST_TEST(set.labelSplitNames() == std::vector<std::string>({"labels-3-seed1"}));
  const auto back = set.labelSplit("labels-3-seed1");
  BOOST_TEST(back.labeled == s.labeled);
  BOOST_TEST(back.unlabeled == s.unlabeled);

  auto broken = s;
  broken.name = "broken";
  broken.unlabeled.pop_back();
  io::writeLabelSplit(dir, broken);
  BOOST_TEST(errorOf([&] {
               set.labelSplit("broken");
             }).find("labeled + unlabeled hold 29 indices, split train has 30 images") !=
             std::string::npos);
  broken.unlabeled.push_back(broken.labeled[0]);
  io::writeLabelSplit(dir, broken);
  BOOST_TEST(errorOf([&] { set.labelSplit("broken"); }).find("appears more than once") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(shard_summary_detects_changed_data) {
  const auto dir = metasemi::test::freshDir("shard_set_summary");
  const Toy toy = makeToy(8, 7);
  const auto info = writeToy(dir, "train", toy, 8);
  const auto ok = io::readShardSummary(dir, info, 0, true);
  BOOST_REQUIRE(ok.has_value());
  BOOST_TEST(ok->labels == toy.labels);
  BOOST_TEST(ok->dataCrc == io::crc32Of(toy.images.data(), toy.images.size()));
  BOOST_TEST(!io::readShardSummary(dir, info, 1, true).has_value());

  // Flip one byte of the stored pixels (contiguous layout: the raw bytes are in the file).
  const auto path = dir / "train" / "shard-00000.h5";
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string needle(toy.images.begin(), toy.images.begin() + 32);
  const auto pos = bytes.find(needle);
  BOOST_REQUIRE(pos != std::string::npos);
  bytes[pos + 5] = static_cast<char>(bytes[pos + 5] ^ 0x40);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  BOOST_TEST(io::readShardSummary(dir, info, 0, false).has_value());
  BOOST_TEST(!io::readShardSummary(dir, info, 0, true).has_value());
}
