// metasemi-prep jpeg-shards and imagenet-split on real JPEG files from Debian's opencv-doc
// (grey and colour, baseline and progressive): original bytes kept, 2 MPI ranks give the same
// shard set as 1, reruns reuse finished shards, bad files stop the run or are skipped.
#include <fstream>
#include <set>

#include "metasemi/io/ShardSet.h"
#include "prep/Jpeg.h"
#include "support/JpegTree.h"
#include "support/TestSupport.h"

namespace io = metasemi::io;
namespace fs = std::filesystem;
using metasemi::test::binary;
using metasemi::test::openCvDocImages;
using metasemi::test::runCommand;

namespace {

std::string prep(const std::string& args) { return binary("metasemi-prep").string() + " " + args; }

const std::map<std::string, std::vector<std::string>> kTree = {
    {"n001_colour", metasemi::test::jpegClassFiles()[0]},
    {"n002_grey", metasemi::test::jpegClassFiles()[1]},
    {"n003_progressive", metasemi::test::jpegClassFiles()[2]},
};

// A class tree of 13 images named like ImageNet's (<class>/<class>_<k>.JPEG).
fs::path makeTree(const fs::path& dir) {
  const fs::path root = dir / "train";
  std::vector<std::string> classes;
  for (const auto& entry : kTree) classes.push_back(entry.first);
  metasemi::test::writeJpegClassTree(root, classes);
  return root;
}

std::vector<std::uint8_t> fileBytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<std::uint8_t>((std::istreambuf_iterator<char>(in)), {});
}

// Everything a reader can see of a split, for comparing two shard sets.
struct Snapshot {
  io::ShardSetInfo info;
  std::vector<std::int64_t> labels;
  std::vector<std::vector<std::uint8_t>> images;
};

Snapshot snapshot(const fs::path& dir, const std::string& split) {
  const auto set = io::ShardSet::open(dir, split);
  Snapshot s{set.info(), set.labels(), {}};
  for (std::int64_t i = 0; i < set.size(); ++i) s.images.push_back(set.readEncoded(i));
  return s;
}

bool noSplitOutput(const fs::path& out, const std::string& split) {
  return !fs::exists(out / (split + ".h5")) && !fs::exists(out / split);
}

}  // namespace

BOOST_AUTO_TEST_CASE(class_tree_into_shards_keeps_the_original_bytes) {
  const auto dir = metasemi::test::freshDir("prep_jpeg_tree");
  const auto root = makeTree(dir);
  const auto out = dir / "set";
  const auto r = runCommand(prep("jpeg-shards --input " + root.string() + " --out " + out.string() +
                                 " --split train --images-per-shard 4"));
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output);
  const auto s = snapshot(out, "train");
  BOOST_TEST(s.info.numImages == 13);
  BOOST_TEST(s.info.shardSizes == std::vector<std::int64_t>({4, 4, 4, 1}));
  BOOST_TEST(s.info.classNames ==
             std::vector<std::string>({"n001_colour", "n002_grey", "n003_progressive"}));
  BOOST_TEST(s.info.decodedChannels == 3);
  BOOST_TEST(s.info.mean.size() == 3u);
  std::size_t i = 0;
  for (const auto& [cls, files] : kTree) {
    for (std::size_t k = 0; k < files.size(); ++k, ++i) {
      BOOST_TEST(s.labels[i] ==
                 static_cast<std::int64_t>(std::distance(kTree.begin(), kTree.find(cls))));
      BOOST_TEST(s.images[i] == fileBytes(root / cls / (cls + "_" + std::to_string(k) + ".JPEG")),
                 "image " << i);
    }
  }
  const auto v = runCommand(prep("verify --set " + out.string()));
  BOOST_TEST(v.exitCode == 0, v.output);

  // A rerun finds every shard complete and valid and rewrites none.
  const auto again = runCommand(prep("jpeg-shards --input " + root.string() + " --out " +
                                     out.string() + " --split train --images-per-shard 4"));
  BOOST_REQUIRE_MESSAGE(again.exitCode == 0, again.output);
  BOOST_TEST(again.output.find("4 shards reused") != std::string::npos, again.output);
  BOOST_TEST(snapshot(out, "train").images == s.images);
}

BOOST_AUTO_TEST_CASE(two_ranks_write_the_same_shard_set_as_one) {
  const auto dir = metasemi::test::freshDir("prep_jpeg_mpi");
  const auto root = makeTree(dir);
  const std::string common =
      "jpeg-shards --input " + root.string() + " --split val --images-per-shard 3 --out ";
  const auto one = runCommand(prep(common + (dir / "one").string()));
  BOOST_REQUIRE_MESSAGE(one.exitCode == 0, one.output);
  const auto two =
      runCommand("mpirun --oversubscribe -np 2 " + prep(common + (dir / "two").string()));
  BOOST_REQUIRE_MESSAGE(two.exitCode == 0, two.output);
  BOOST_TEST(two.output.find("on 2 ranks") != std::string::npos, two.output);
  const auto a = snapshot(dir / "one", "val");
  const auto b = snapshot(dir / "two", "val");
  BOOST_TEST(a.labels == b.labels);
  BOOST_TEST(a.images == b.images);
  BOOST_TEST(a.info.shardSizes == b.info.shardSizes);
  BOOST_TEST(a.info.mean == b.info.mean);
  BOOST_TEST(a.info.std == b.info.std);
  BOOST_TEST(a.info.classNames == b.info.classNames);
}

BOOST_AUTO_TEST_CASE(shorter_side_reencodes_large_images_only) {
  const auto dir = metasemi::test::freshDir("prep_jpeg_resize");
  const auto root = makeTree(dir);
  const auto r = runCommand(prep("jpeg-shards --input " + root.string() + " --out " +
                                 (dir / "set").string() + " --split train --shorter-side 200"));
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output);
  const auto s = snapshot(dir / "set", "train");
  std::vector<std::uint8_t> rgb;
  std::size_t i = 0;
  for (const auto& [cls, files] : kTree) {
    for (std::size_t k = 0; k < files.size(); ++k, ++i) {
      const auto original = fileBytes(root / cls / (cls + "_" + std::to_string(k) + ".JPEG"));
      int w0 = 0, h0 = 0, w = 0, h = 0;
      metasemi::prep::decodeJpeg(original.data(), original.size(), "original", rgb, w0, h0);
      metasemi::prep::decodeJpeg(s.images[i].data(), s.images[i].size(), "stored", rgb, w, h);
      BOOST_TEST(std::min(w, h) == std::min({w0, h0, 200}), "image " << i << ": " << w << "x" << h);
      // The aspect ratio is kept to the pixel.
      BOOST_TEST(std::abs(static_cast<double>(w) / h - static_cast<double>(w0) / h0) < 0.01);
      // Images that are small enough keep their bytes.
      BOOST_TEST((s.images[i] == original) == (std::min(w0, h0) <= 200), "image " << i);
    }
  }
}

BOOST_AUTO_TEST_CASE(bad_files_stop_the_run_or_are_skipped) {
  const auto dir = metasemi::test::freshDir("prep_jpeg_bad");
  const auto root = makeTree(dir);
  const auto out = dir / "set";
  const std::string run = "jpeg-shards --input " + root.string() + " --out " + out.string() +
                          " --split train --images-per-shard 4";
  // A truncated JPEG.
  const auto good = fileBytes(root / "n001_colour" / "n001_colour_0.JPEG");
  const fs::path truncated = root / "n002_grey" / "n002_grey_9.JPEG";
  {
    std::ofstream f(truncated, std::ios::binary);
    f.write(reinterpret_cast<const char*>(good.data()),
            static_cast<std::streamsize>(good.size() / 2));
  }
  auto r = runCommand(prep(run));
  BOOST_TEST(r.exitCode == 3, r.output);
  BOOST_TEST(
      r.output.find("metasemi-prep: " + truncated.string() +
                    ": corrupt or truncated JPEG: Premature end of JPEG file") != std::string::npos,
      r.output);
  BOOST_TEST(noSplitOutput(out, "train"));

  // A text file named like an image.
  const fs::path text = root / "n003_progressive" / "readme.JPEG";
  std::ofstream(text) << "this is not an image\n";
  fs::remove(truncated);
  r = runCommand(prep(run));
  BOOST_TEST(r.exitCode == 3, r.output);
  BOOST_TEST(
      r.output.find("metasemi-prep: " + text.string() +
                    ": not a JPEG file (no SOI marker 0xFFD8 at the start)") != std::string::npos,
      r.output);
  BOOST_TEST(noSplitOutput(out, "train"));

  // --skip-bad keeps the good ones and lists the others.
  {
    std::ofstream f(truncated, std::ios::binary);
    f.write(reinterpret_cast<const char*>(good.data()),
            static_cast<std::streamsize>(good.size() / 2));
  }
  r = runCommand(prep(run + " --skip-bad"));
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output);
  const auto set = io::ShardSet::open(out, "train");
  BOOST_TEST(set.size() == 13);
  std::ifstream skipped(out / "train.skipped.txt");
  std::vector<std::string> lines;
  for (std::string l; std::getline(skipped, l);) lines.push_back(l.substr(0, l.find('\t')));
  BOOST_TEST(lines == std::vector<std::string>(
                          {"n002_grey/n002_grey_9.JPEG", "n003_progressive/readme.JPEG"}));
  const auto v = runCommand(prep("verify --set " + out.string()));
  BOOST_TEST(v.exitCode == 0, v.output);

  // An empty class folder.
  fs::create_directories(root / "n004_empty");
  r = runCommand(prep("jpeg-shards --input " + root.string() + " --out " +
                      (dir / "other").string() + " --split train"));
  BOOST_TEST(r.exitCode == 3);
  BOOST_TEST(r.output ==
             "metasemi-prep: " + (root / "n004_empty").string() + ": empty class folder\n");
  BOOST_TEST(noSplitOutput(dir / "other", "train"));
}

// The frame size in a JPEG's SOF segment (baseline, extended or progressive), rewritten.
void setFrameSize(std::vector<std::uint8_t>& jpeg, int w, int h) {
  for (std::size_t i = 2; i + 8 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xFF && jpeg[i + 1] >= 0xC0 && jpeg[i + 1] <= 0xC2) {
      jpeg[i + 5] = static_cast<std::uint8_t>(h >> 8);
      jpeg[i + 6] = static_cast<std::uint8_t>(h);
      jpeg[i + 7] = static_cast<std::uint8_t>(w >> 8);
      jpeg[i + 8] = static_cast<std::uint8_t>(w);
      return;
    }
  }
  BOOST_FAIL("no SOF marker");
}

void writeFileBytes(const fs::path& p, const std::vector<std::uint8_t>& bytes) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

BOOST_AUTO_TEST_CASE(corrupt_data_and_pixel_bombs_are_refused_before_any_shard_looks_valid) {
  const auto dir = metasemi::test::freshDir("prep_jpeg_corrupt");
  const auto root = makeTree(dir);
  const auto out = dir / "set";
  const std::string run = "jpeg-shards --input " + root.string() + " --out " + out.string() +
                          " --split train --images-per-shard 4";
  const auto good = fileBytes(root / "n001_colour" / "n001_colour_0.JPEG");

  // Entropy data cut short with the end marker kept: libjpeg only warns.
  std::vector<std::uint8_t> cut(good.begin(),
                                good.begin() + static_cast<std::ptrdiff_t>(good.size() * 2 / 3));
  cut.push_back(0xFF);
  cut.push_back(0xD9);
  const fs::path cutFile = root / "n002_grey" / "n002_grey_9.JPEG";
  writeFileBytes(cutFile, cut);
  auto r = runCommand(prep(run));
  BOOST_TEST(r.exitCode == 3, r.output);
  BOOST_TEST(r.output.find("metasemi-prep: " + cutFile.string() +
                           ": corrupt or truncated JPEG: Corrupt JPEG data: premature end of "
                           "data segment") != std::string::npos,
             r.output);
  BOOST_TEST(noSplitOutput(out, "train"));
  fs::remove(cutFile);

  // A small file whose header declares 20000x20000 pixels.
  auto bomb = good;
  setFrameSize(bomb, 20000, 20000);
  const fs::path bombFile = root / "n003_progressive" / "bomb.JPEG";
  writeFileBytes(bombFile, bomb);
  r = runCommand(prep(run));
  BOOST_TEST(r.exitCode == 3, r.output);
  BOOST_TEST(r.output.find("metasemi-prep: " + bombFile.string() +
                           ": 20000x20000 pixels (400.00 Mpixel) is over the limit of 64 "
                           "Mpixel") != std::string::npos,
             r.output);
  BOOST_TEST(noSplitOutput(out, "train"));
  fs::remove(bombFile);

  // The limit is a flag; the opencv-doc photos are all under 0.5 Mpixel... but not under 0.01.
  r = runCommand(prep(run + " --max-megapixels 0.01"));
  BOOST_TEST(r.exitCode == 3, r.output);
  BOOST_TEST(r.output.find("is over the limit of 0.01 Mpixel") != std::string::npos, r.output);
  r = runCommand(prep(run + " --max-megapixels -1"));
  BOOST_TEST(r.exitCode == 2, r.output);
  BOOST_TEST(r.output.find("--max-megapixels must be in (0, 1e6], got -1") != std::string::npos,
             r.output);
  r = runCommand(prep(run));
  BOOST_TEST(r.exitCode == 0, r.output);
  // verify applies the same checks to what is stored.
  r = runCommand(prep("verify --set " + out.string() + " --max-megapixels 0.01"));
  BOOST_TEST(r.exitCode == 3, r.output);
  BOOST_TEST(r.output.find("is over the limit") != std::string::npos, r.output);
  r = runCommand(prep("verify --set " + out.string()));
  BOOST_TEST(r.exitCode == 0, r.output);
}

BOOST_AUTO_TEST_CASE(imagenet_split_lists_feed_jpeg_shards) {
  const auto dir = metasemi::test::freshDir("prep_jpeg_imagenet_split");
  const auto root = makeTree(dir);
  const auto lists = dir / "lists";
  auto r = runCommand(prep("imagenet-split --train " + root.string() + " --out " + lists.string() +
                           " --fraction 0.4 --seed 3"));
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output);
  auto readLines = [](const fs::path& p) {
    std::ifstream in(p);
    std::vector<std::string> v;
    for (std::string l; std::getline(in, l);) v.push_back(l);
    return v;
  };
  const auto labeled = readLines(lists / "train_labeled.txt");
  const auto unlabeled = readLines(lists / "train_unlabeled.txt");
  // round(0.4 * 5) = 2, 2 and round(0.4 * 3) = 1 per class.
  BOOST_TEST(labeled.size() == 5u);
  BOOST_TEST(unlabeled.size() == 8u);
  std::set<std::string> all(labeled.begin(), labeled.end());
  all.insert(unlabeled.begin(), unlabeled.end());
  BOOST_TEST(all.size() == 13u);
  BOOST_TEST(readLines(lists / "classes.txt") ==
             std::vector<std::string>({"n001_colour", "n002_grey", "n003_progressive"}));

  r = runCommand(prep("jpeg-shards --list " + (lists / "train_labeled.txt").string() + " --root " +
                      root.string() + " --classes " + (lists / "classes.txt").string() + " --out " +
                      (dir / "set").string() + " --split train_labeled"));
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output);
  const auto set = io::ShardSet::open(dir / "set", "train_labeled");
  BOOST_TEST(set.size() == 5);
  BOOST_TEST(set.info().numClasses == 3);
  for (std::int64_t i = 0; i < set.size(); ++i) {
    const auto& path = labeled[static_cast<std::size_t>(i)];
    BOOST_TEST(set.readEncoded(i) == fileBytes(root / path), path);
  }

  // Given lists are checked against the tree.
  std::ofstream(dir / "bad.txt") << "n001_colour/n001_colour_0.JPEG 0\nn009/missing.JPEG 1\n";
  r = runCommand(prep("imagenet-split --train " + root.string() + " --out " +
                      (dir / "lists2").string() + " --labeled-list " + (dir / "bad.txt").string()));
  BOOST_TEST(r.exitCode == 3);
  BOOST_TEST(r.output == "metasemi-prep: " + (dir / "bad.txt").string() +
                             ": n009/missing.JPEG is not in " + root.string() + "\n");
  BOOST_TEST(!fs::exists(dir / "lists2" / "train_labeled.txt"));
}

BOOST_AUTO_TEST_CASE(an_interrupted_run_resumes_with_the_finished_shards) {
  const auto dir = metasemi::test::freshDir("prep_jpeg_resume");
  const auto root = makeTree(dir);
  const auto out = dir / "set";
  // The last file in sorted order is broken: shards 0..2 are finished when shard 3 fails.
  const fs::path last = root / "n003_progressive" / "zz_last.JPEG";
  std::ofstream(last) << "broken";
  const std::string run = "jpeg-shards --input " + root.string() + " --out " + out.string() +
                          " --split train --images-per-shard 4";
  auto r = runCommand(prep(run));
  BOOST_TEST(r.exitCode == 3, r.output);
  BOOST_TEST(noSplitOutput(out, "train"));
  BOOST_TEST(fs::exists(out / "train.partial" / "shard-00002.h5"));
  fs::copy_file(openCvDocImages() / "fruits.jpg", last, fs::copy_options::overwrite_existing);
  r = runCommand(prep(run));
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output);
  BOOST_TEST(r.output.find("3 shards reused") != std::string::npos, r.output);
  BOOST_TEST(!fs::exists(out / "train.partial"));
  const auto s = snapshot(out, "train");
  BOOST_TEST(s.info.numImages == 14);
  BOOST_TEST(s.images.back() == fileBytes(last));
  // The same set written in one go has the same content.
  r = runCommand(prep("jpeg-shards --input " + root.string() + " --out " +
                      (dir / "fresh").string() + " --split train --images-per-shard 4"));
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output);
  const auto fresh = snapshot(dir / "fresh", "train");
  BOOST_TEST(fresh.images == s.images);
  BOOST_TEST(fresh.info.mean == s.info.mean);
}

BOOST_AUTO_TEST_CASE(a_bad_file_on_one_rank_ends_every_rank) {
  const auto dir = metasemi::test::freshDir("prep_jpeg_mpi_bad");
  const auto root = makeTree(dir);
  const fs::path bad = root / "n002_grey" / "n002_grey_2.JPEG";
  std::ofstream(bad, std::ios::trunc) << "GIF89a";
  const auto r = runCommand("timeout -k 5 120 mpirun --oversubscribe -np 2 " +
                            prep("jpeg-shards --input " + root.string() + " --out " +
                                 (dir / "set").string() + " --split train --images-per-shard 3"));
  BOOST_TEST(r.exitCode == 3, r.output);
  // Image 7 is in shard 2, which rank 0 writes.
  BOOST_TEST(r.output.find("[rank 0] metasemi-prep: " + bad.string() + ": not a JPEG file") !=
                 std::string::npos,
             r.output);
  BOOST_TEST(noSplitOutput(dir / "set", "train"));
}

BOOST_AUTO_TEST_CASE(verify_finds_a_changed_byte) {
  const auto dir = metasemi::test::freshDir("prep_jpeg_verify");
  const auto root = makeTree(dir);
  const auto out = dir / "set";
  auto r = runCommand(prep("jpeg-shards --input " + root.string() + " --out " + out.string() +
                           " --split train --images-per-shard 20"));
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output);
  // Change one byte inside the stored copy of the first JPEG (contiguous layout).
  const auto shard = out / "train" / "shard-00000.h5";
  std::string bytes;
  {
    std::ifstream in(shard, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const auto original = fileBytes(root / "n001_colour" / "n001_colour_0.JPEG");
  const std::string needle(original.begin(), original.begin() + 64);
  const auto pos = bytes.find(needle);
  BOOST_REQUIRE(pos != std::string::npos);
  bytes[pos + original.size() / 2] = static_cast<char>(bytes[pos + original.size() / 2] ^ 0x01);
  {
    std::ofstream o(shard, std::ios::binary | std::ios::trunc);
    o << bytes;
  }
  r = runCommand(prep("verify --set " + out.string()));
  BOOST_TEST(r.exitCode == 3, r.output);
  BOOST_TEST(r.output.find(shard.string() + ": jpeg_data has CRC-32") != std::string::npos,
             r.output);
  BOOST_TEST(
      r.output.find("metasemi-prep: " + out.string() + ": verify found") != std::string::npos,
      r.output);
}
