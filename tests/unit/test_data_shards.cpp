// The pipeline on shard sets: streams draw the label split's images, evaluation reads the test
// split once, and unreadable or inconsistent sets fail with one line naming the file.
#include <algorithm>
#include <set>

#include "metasemi/core/Error.h"
#include "metasemi/data/ShardSource.h"
#include "metasemi/io/ShardSplit.h"
#include "metasemi/io/ShardWriter.h"
#include "support/TestSupport.h"

namespace fs = std::filesystem;
namespace io = metasemi::io;
namespace md = metasemi::data;
using metasemi::core::IoError;
using metasemi::test::errorOf;

namespace {

io::ShardSetInfo header(const std::string& split, std::int64_t h) {
  io::ShardSetInfo info;
  info.dataset = "toy";
  info.split = split;
  info.source = "test";
  info.storage = io::ImageStorage::kFixed;
  info.numClasses = 4;
  info.classNames = {"a", "b", "c", "d"};
  info.height = h;
  info.width = 6;
  info.channels = 1;
  info.decodedChannels = 1;
  return info;
}

void writeSplit(const fs::path& dir, const std::string& split, std::int64_t n, std::int64_t h,
                std::uint64_t seed) {
  metasemi::core::Rng rng(seed);
  std::vector<std::uint8_t> px(static_cast<std::size_t>(n * h * 6));
  for (auto& p : px) p = static_cast<std::uint8_t>(rng.below(256));
  std::vector<std::int64_t> labels(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) labels[i] = i % 4;
  io::ShardWriter w(dir, header(split, h), 7);
  w.addImages(px.data(), labels.data(), n);
  w.finish();
}

md::RunDataSpec toySet(const fs::path& dir) {
  writeSplit(dir, "train", 40, 5, 1);
  writeSplit(dir, "test", 23, 5, 2);
  const auto train = io::ShardSet::open(dir, "train");
  io::writeLabelSplit(dir, io::classBalancedSplit(train.labels(), 4, 8, 3));
  md::RunDataSpec spec;
  spec.dir = dir;
  spec.labelSplit = io::labelSplitName(8, 3);
  return spec;
}

}  // namespace

BOOST_AUTO_TEST_CASE(streams_and_evaluation_read_the_shard_set) {
  const auto dir = metasemi::test::freshDir("data_shards_ok");
  const md::RunData data(toySet(dir));
  const auto& split = data.labelSplit();
  BOOST_TEST(split.labeled.size() == 8u);
  BOOST_TEST((data.trainAugment().kind == md::AugmentKind::kPadCrop));
  BOOST_TEST(!data.trainAugment().flip);  // not a CIFAR set

  auto lab = data.stream(md::StreamId::kLabeled, 9, 4, 0, 1, {2, 2});
  auto unl = data.stream(md::StreamId::kUnlabeled, 9, 4, 0, 1, {2, 2});
  const std::set<std::int64_t> labeled(split.labeled.begin(), split.labeled.end());
  std::multiset<std::int64_t> firstPass;
  for (int t = 0; t < 2; ++t) {  // exactly one pass over the 8 labeled images
    const auto b = lab->next();
    for (int k = 0; k < 4; ++k) firstPass.insert(b.indices[k].item<std::int64_t>());
    BOOST_TEST((b.images.sizes() == torch::IntArrayRef{4, 1, 5, 6}));
  }
  BOOST_TEST((firstPass == std::multiset<std::int64_t>(labeled.begin(), labeled.end())));
  for (int t = 0; t < 10; ++t) {
    const auto b = unl->next();
    for (int k = 0; k < 4; ++k) BOOST_TEST(labeled.count(b.indices[k].item<std::int64_t>()) == 0u);
  }

  // Evaluation: every test image once, normalised with the training split's statistics.
  const auto test = io::ShardSet::open(dir, "test");
  const md::Normalization norm = md::shardNormalization(data.trainInfo());
  std::int64_t next = 0;
  auto eval = data.evaluation(5, 0, 1, {1, 2});
  while (auto b = eval->next()) {
    for (int k = 0; k < b->images.size(0); ++k, ++next) {
      BOOST_REQUIRE(b->indices[k].item<std::int64_t>() == next);
      const torch::Tensor raw = test.readImages(next, 1);
      std::vector<float> want(30);
      md::normalizeToChw(raw.data_ptr<std::uint8_t>(), {5, 6, 1}, false, norm, want.data());
      BOOST_REQUIRE(std::equal(want.begin(), want.end(), b->images[k].data_ptr<float>()));
      BOOST_REQUIRE(b->labels[k].item<std::int64_t>() == test.labels()[next]);
    }
  }
  BOOST_TEST(next == 23);
}

BOOST_AUTO_TEST_CASE(unreadable_or_inconsistent_sets_are_refused) {
  const auto dir = metasemi::test::freshDir("data_shards_bad");
  md::RunDataSpec spec = toySet(dir);

  md::RunDataSpec missing = spec;
  missing.dir = dir / "nowhere";
  BOOST_TEST(errorOf([&] { md::RunData{missing}; }).find((dir / "nowhere").string()) == 0u);

  md::RunDataSpec noSplit = spec;
  noSplit.labelSplit = "labels-9-seed9";
  BOOST_TEST(errorOf([&] { md::RunData{noSplit}; }).find("labels-9-seed9") != std::string::npos);

  // A test split of another image shape than the training split.
  writeSplit(dir, "test", 23, 4, 2);
  const std::string e = errorOf([&] { md::RunData{spec}; });
  BOOST_TEST(e == dir.string() + ": split train has images of 5x6x1 but split test has 4x6x1");
  BOOST_CHECK_THROW(md::RunData{spec}, IoError);

  // A shard whose images differ in shape from the index (the reader's check, surfaced as is).
  writeSplit(dir, "test", 23, 5, 2);
  {
    io::ShardContent c;
    c.shard = 1;
    c.firstIndex = 7;
    c.labels.assign(7, 0);
    c.data.assign(7 * 3 * 6, 0);
    c.stats.add(c.data.data(), 7 * 3 * 6, 1);
    io::writeShard(dir, header("train", 3), c);
  }
  const std::string s = errorOf([&] { md::RunData{spec}; });
  BOOST_TEST(s.find("shard-00001.h5") != std::string::npos, s);
  BOOST_CHECK_THROW(md::RunData{spec}, IoError);
}

BOOST_AUTO_TEST_CASE(labels_out_of_range_are_refused) {
  const auto dir = metasemi::test::freshDir("data_shards_labels");
  md::RunDataSpec spec = toySet(dir);
  const auto test = io::ShardSet::open(dir, "test");
  auto bad = test.labels();
  bad[5] = 4;  // four classes: 0..3
  io::writeShardIndex(dir, test.info(), bad, std::vector<std::uint32_t>(4, 0));
  const std::string e = errorOf([&] { md::RunData{spec}; });
  BOOST_TEST(e.find("test.h5") != std::string::npos, e);
  BOOST_TEST(e.find("label 4") != std::string::npos, e);
}

BOOST_AUTO_TEST_CASE(jpeg_shard_sets_decode_and_name_a_corrupt_image) {
  const auto dir = metasemi::test::freshDir("data_shards_jpeg");
  for (const std::string split : {"train", "test"}) {
    io::ShardSetInfo h;
    h.dataset = "imagenet";
    h.split = split;
    h.source = "test";
    h.storage = io::ImageStorage::kJpeg;
    h.numClasses = 2;
    h.classNames = {"a", "b"};
    h.decodedChannels = 3;
    io::ShardWriter w(dir, h, 4);
    for (int k = 0; k < 6; ++k) {
      md::Image img;
      img.height = 30 + k;
      img.width = 40;
      img.channels = 3;
      img.pixels.assign(static_cast<std::size_t>(img.height * 40 * 3),
                        static_cast<std::uint8_t>(20 * k));
      std::vector<std::uint8_t> bytes = md::encodeJpeg(img);
      if (split == "train" && k == 4) bytes.assign(100, 0x11);  // not a JPEG
      io::PixelStats stats;
      stats.add(img.pixels.data(), img.height * img.width, 3);
      w.addEncoded(bytes.data(), bytes.size(), k % 2, "img" + std::to_string(k), stats);
    }
    w.finish();
  }
  const auto train = io::ShardSet::open(dir, "train");
  io::writeLabelSplit(dir, io::classBalancedSplit(train.labels(), 2, 2, 1));
  md::RunDataSpec spec;
  spec.dir = dir;
  spec.labelSplit = io::labelSplitName(2, 1);
  spec.crop = 16;
  spec.resize = 20;
  const md::RunData data(spec);
  std::int64_t evaluated = 0;
  auto eval = data.evaluation(4, 0, 1, {2, 2});
  while (auto b = eval->next()) {
    BOOST_TEST((b->images.sizes().slice(1) == torch::IntArrayRef{3, 16, 16}));
    evaluated += b->images.size(0);
  }
  BOOST_TEST(evaluated == 6);
  // Sample 4 is labeled or unlabeled; a pass over either stream reaches it or not, so draw
  // a pass of both and expect exactly one error naming it.
  int errors = 0;
  for (auto id : {md::StreamId::kLabeled, md::StreamId::kUnlabeled}) {
    auto s = data.stream(id, 3, 1, 0, 1, {1, 1});
    const std::int64_t n = id == md::StreamId::kLabeled ? 2 : 4;
    try {
      for (std::int64_t t = 0; t < n; ++t) s->next();
    } catch (const IoError& e) {
      ++errors;
      BOOST_TEST(std::string(e.what()).find("image 4: cannot decode") != std::string::npos,
                 e.what());
    }
  }
  BOOST_TEST(errors == 1);
}
