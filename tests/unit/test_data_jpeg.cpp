// Decoding real JPEG files (Debian's opencv-doc examples: colour and grey, baseline and
// progressive) and the JPEG training/evaluation loaders built on them.
#include <algorithm>
#include <fstream>
#include <iterator>
#include <numeric>

#include "metasemi/core/Error.h"
#include "metasemi/data/Image.h"
#include "metasemi/data/Loader.h"
#include "support/JpegTree.h"
#include "support/TestSupport.h"

namespace fs = std::filesystem;
namespace md = metasemi::data;
using metasemi::core::IoError;

namespace {

using metasemi::test::readBytes;

// What the frame header (SOF0 baseline / SOF2 progressive) says, read independently of OpenCV.
struct Frame {
  int height = 0, width = 0, components = 0;
  bool progressive = false;
};

Frame parseFrame(const std::vector<std::uint8_t>& b) {
  std::size_t i = 2;  // after SOI
  while (i + 9 < b.size()) {
    if (b[i] != 0xff) return {};
    const int marker = b[i + 1];
    const int len = (b[i + 2] << 8) | b[i + 3];
    if (marker == 0xc0 || marker == 0xc1 || marker == 0xc2) {
      Frame f;
      f.height = (b[i + 5] << 8) | b[i + 6];
      f.width = (b[i + 7] << 8) | b[i + 8];
      f.components = b[i + 9];
      f.progressive = marker == 0xc2;
      return f;
    }
    i += 2 + len;
  }
  return {};
}

}  // namespace

BOOST_AUTO_TEST_CASE(decodes_real_jpegs_of_every_kind) {
  int grey = 0, colour = 0, progressive = 0;
  for (const auto& p : metasemi::test::openCvDocJpegs()) {
    const auto bytes = readBytes(p);
    const Frame f = parseFrame(bytes);
    BOOST_TEST_REQUIRE(f.width > 0, p);
    const md::Image rgb = md::decodeImage(bytes.data(), bytes.size(), 3, p.string());
    const md::Image g = md::decodeImage(bytes.data(), bytes.size(), 1, p.string());
    BOOST_TEST(rgb.height == f.height, p);
    BOOST_TEST(rgb.width == f.width, p);
    BOOST_TEST(rgb.channels == 3);
    BOOST_TEST(g.height == f.height);
    BOOST_TEST(g.channels == 1);
    BOOST_TEST(rgb.pixels.size() == static_cast<std::size_t>(f.height * f.width * 3));
    bool allGrey = true;
    for (std::size_t k = 0; k < rgb.pixels.size() && allGrey; k += 3)
      allGrey = rgb.pixels[k] == rgb.pixels[k + 1] && rgb.pixels[k] == rgb.pixels[k + 2];
    if (f.components == 1) {
      ++grey;
      BOOST_TEST(allGrey, p << ": a grey JPEG must decode to R = G = B");
    } else {
      ++colour;
    }
    progressive += f.progressive;
  }
  BOOST_TEST(grey > 0);
  BOOST_TEST(colour > 0);
  BOOST_TEST(progressive > 0);
}

BOOST_AUTO_TEST_CASE(channels_come_out_in_rgb_order) {
  // orange.jpg is an orange: far more red than blue.
  const auto bytes = readBytes(metasemi::test::openCvDocImages() / "orange.jpg");
  const md::Image img = md::decodeImage(bytes.data(), bytes.size(), 3, "orange.jpg");
  double r = 0, b = 0;
  for (std::size_t k = 0; k < img.pixels.size(); k += 3) {
    r += img.pixels[k];
    b += img.pixels[k + 2];
  }
  BOOST_TEST(r > 1.5 * b, "mean red " << r / (img.pixels.size() / 3) << " mean blue "
                                      << b / (img.pixels.size() / 3));
  // Encoding and decoding again keeps the image (lossy, so within a few levels on average).
  const auto again = md::encodeJpeg(img, 95);
  const md::Image back = md::decodeImage(again.data(), again.size(), 3, "re-encoded");
  double diff = 0;
  for (std::size_t k = 0; k < img.pixels.size(); ++k)
    diff += std::abs(int(img.pixels[k]) - int(back.pixels[k]));
  BOOST_TEST(diff / img.pixels.size() < 3.0);
}

BOOST_AUTO_TEST_CASE(undecodable_bytes_are_a_clear_error) {
  const std::vector<std::uint8_t> junk(500, 0x42);
  try {
    md::decodeImage(junk.data(), junk.size(), 3, "shard-00003.h5 image 17");
    BOOST_ERROR("junk decoded");
  } catch (const IoError& e) {
    BOOST_TEST(std::string(e.what()).rfind("shard-00003.h5 image 17: cannot decode", 0) == 0,
               e.what());
  }
  BOOST_CHECK_THROW(md::decodeImage(junk.data(), 0, 3, "empty"), IoError);
}

BOOST_AUTO_TEST_CASE(jpeg_loaders_are_deterministic_across_threads) {
  std::vector<std::vector<std::uint8_t>> files;
  std::vector<std::int64_t> labels;
  for (const auto& p : metasemi::test::openCvDocJpegs()) {
    files.push_back(readBytes(p));
    labels.push_back(static_cast<std::int64_t>(labels.size() % 5));
  }
  const auto n = static_cast<std::int64_t>(files.size());
  auto source = std::make_shared<md::MemoryEncodedSource>(files, labels, 5);
  const auto norm = md::datasetNormalization("imagenet", {}, {}, 3);
  std::vector<std::int64_t> all(static_cast<std::size_t>(n));
  std::iota(all.begin(), all.end(), 0);
  std::vector<md::Batch> first;
  for (int threads : {0, 1, 2}) {
    md::TrainStream s(source, all, md::StreamId::kLabeled, 5,
                      md::trainAugment("imagenet", true, norm, 64), 4, 0, 1, {threads, 3});
    for (int t = 0; t < 4; ++t) {
      const md::Batch b = s.next();
      BOOST_TEST((b.images.sizes() == torch::IntArrayRef{4, 3, 64, 64}));
      BOOST_TEST(torch::isfinite(b.images).all().item<bool>());
      if (threads == 0) {
        first.push_back(b);
      } else {
        BOOST_TEST(torch::equal(b.images, first[t].images), "threads " << threads << " t " << t);
      }
    }
  }
  md::EvalIterator it(source, md::evalAugment(true, norm, 72, 64), 8, 0, 1, {2, 2});
  std::int64_t seen = 0;
  while (auto b = it.next()) {
    BOOST_TEST(b->images.size(1) == 3);
    BOOST_TEST(b->images.size(2) == 64);
    seen += b->images.size(0);
  }
  BOOST_TEST(seen == n);
}
