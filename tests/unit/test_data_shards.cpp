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

std::string errorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
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
