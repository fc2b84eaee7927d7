// The decode path of encoded training images on real photos (Debian's opencv-doc examples:
// colour and grey, baseline and progressive): region decoding against whole-image decoding,
// the resampling filter against a direct evaluation of its definition, DCT-downscaled decoding
// against full-size decoding, and the result against PIL (python3-pil), the library
// torchvision's RandomResizedCrop resizes with.
#include <turbojpeg.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <numeric>

#include "metasemi/core/Error.h"
#include "metasemi/data/Augment.h"
#include "metasemi/data/Image.h"
#include "metasemi/data/JpegDecoder.h"
#include "metasemi/data/Loader.h"
#include "metasemi/data/Resample.h"
#include "prep/Jpeg.h"
#include "support/JpegTree.h"
#include "support/TestSupport.h"

namespace fs = std::filesystem;
namespace md = metasemi::data;
using metasemi::core::Rng;

namespace {

using metasemi::test::readBytes;

std::vector<fs::path> photos() {
  std::vector<fs::path> out = metasemi::test::openCvDocJpegs();
  BOOST_TEST_REQUIRE(out.size() >= 40u);
  return out;
}

md::DecodedRegion decodeRegion(md::JpegDecoder& d, const std::vector<std::uint8_t>& bytes,
                               int channels, md::RegionRequest req) {
  md::DecodedRegion r;
  d.decode(
      bytes.data(), bytes.size(), "test", channels, [&](const md::JpegInfo&) { return req; }, r);
  return r;
}

md::DecodedRegion decodeWhole(md::JpegDecoder& d, const std::vector<std::uint8_t>& bytes,
                              int channels, int scale) {
  md::DecodedRegion r;
  d.decode(
      bytes.data(), bytes.size(), "test", channels,
      [&](const md::JpegInfo& info) {
        return md::RegionRequest{scale, 0, 0, (info.width + scale - 1) / scale,
                                 (info.height + scale - 1) / scale};
      },
      r);
  return r;
}

// Normalisation that leaves values in 0..255 units: scale 1/(255·std) = 1, shift 0.
md::Normalization identity(int channels) {
  return {std::vector<float>(channels, 0.0f), std::vector<float>(channels, 1.0f / 255.0f)};
}

struct Diff {
  double max = 0, mean = 0;
};

Diff compare(const std::vector<float>& a, const std::vector<float>& b) {
  Diff d;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double e = std::abs(double(a[i]) - double(b[i]));
    d.max = std::max(d.max, e);
    d.mean += e;
  }
  d.mean /= static_cast<double>(a.size());
  return d;
}

}  // namespace

BOOST_AUTO_TEST_CASE(regions_equal_the_same_pixels_of_the_whole_image_at_every_scale) {
  md::JpegDecoder decoder;
  Rng rng(11);
  int checked = 0;
  for (const auto& p : photos()) {
    const auto bytes = readBytes(p);
    for (int channels : {3, 1}) {
      for (int scale : {1, 2, 4, 8}) {
        const md::DecodedRegion whole = decodeWhole(decoder, bytes, channels, scale);
        BOOST_TEST_REQUIRE(whole.x0 == 0);
        BOOST_TEST_REQUIRE(whole.width == whole.fullWidth);
        for (int t = 0; t < 4; ++t) {
          md::RegionRequest req{scale};
          req.x0 = static_cast<std::int64_t>(rng.below(whole.fullWidth));
          req.x1 = req.x0 + 1 + static_cast<std::int64_t>(rng.below(whole.fullWidth - req.x0));
          req.y0 = static_cast<std::int64_t>(rng.below(whole.fullHeight));
          req.y1 = req.y0 + 1 + static_cast<std::int64_t>(rng.below(whole.fullHeight - req.y0));
          const md::DecodedRegion r = decodeRegion(decoder, bytes, channels, req);
          BOOST_TEST_CONTEXT(p.filename()
                             << " channels " << channels << " 1/" << scale << " region [" << req.x0
                             << ", " << req.x1 << ") x [" << req.y0 << ", " << req.y1 << ")") {
            BOOST_TEST_REQUIRE(r.fullWidth == whole.fullWidth);
            BOOST_TEST_REQUIRE(r.fullHeight == whole.fullHeight);
            BOOST_TEST_REQUIRE(r.x0 <= req.x0);
            BOOST_TEST_REQUIRE(r.x0 + r.width >= req.x1);
            BOOST_TEST_REQUIRE(r.x0 + r.width <= r.fullWidth);
            BOOST_TEST_REQUIRE(r.y0 == req.y0);
            BOOST_TEST_REQUIRE(r.height == req.y1 - req.y0);
            // The asked columns: the ones outside them may differ (JpegDecoder.h).
            std::int64_t mismatches = 0;
            for (std::int64_t y = 0; y < r.height; ++y) {
              const std::uint8_t* a = r.pixels.data() + (y * r.width + req.x0 - r.x0) * channels;
              const std::uint8_t* b =
                  whole.pixels.data() + ((r.y0 + y) * whole.width + req.x0) * channels;
              mismatches += !std::equal(a, a + (req.x1 - req.x0) * channels, b);
            }
            BOOST_TEST(mismatches == 0, mismatches << " rows differ");
          }
          ++checked;
        }
      }
    }
  }
  BOOST_TEST(checked > 1000);
}

BOOST_AUTO_TEST_CASE(downscaled_decodes_have_libjpeg_sizes_and_the_same_content) {
  md::JpegDecoder decoder;
  const auto bytes = readBytes(metasemi::test::openCvDocImages() / "baboon.jpg");  // 512x512
  const md::DecodedRegion full = decodeWhole(decoder, bytes, 3, 1);
  BOOST_TEST(full.fullWidth == 512);
  for (int s : {2, 4, 8}) {
    const md::DecodedRegion r = decodeWhole(decoder, bytes, 3, s);
    BOOST_TEST(r.fullWidth == 512 / s);
    BOOST_TEST(r.fullHeight == 512 / s);
    // Each downscaled pixel is close to the mean of the s×s block it stands for.
    double err = 0;
    for (std::int64_t y = 0; y < r.height; ++y)
      for (std::int64_t x = 0; x < r.width; ++x)
        for (int c = 0; c < 3; ++c) {
          double mean = 0;
          for (int dy = 0; dy < s; ++dy)
            for (int dx = 0; dx < s; ++dx)
              mean += full.pixels[((y * s + dy) * 512 + x * s + dx) * 3 + c];
          err += std::abs(mean / (s * s) - r.pixels[(y * r.width + x) * 3 + c]);
        }
    err /= static_cast<double>(r.pixels.size());
    BOOST_TEST(err < 6.0, "1/" << s << ": mean difference from block means " << err);
  }
  // Odd sizes round up, as libjpeg's scaled output does: 1/8 of a 37-wide image is 5 wide.
  md::Image img;
  img.height = 21;
  img.width = 37;
  img.channels = 3;
  img.pixels.assign(21 * 37 * 3, 90);
  const auto small = md::encodeJpeg(img);
  const md::DecodedRegion r = decodeWhole(decoder, small, 3, 8);
  BOOST_TEST(r.fullWidth == 5);
  BOOST_TEST(r.fullHeight == 3);
}

BOOST_AUTO_TEST_CASE(resampling_follows_its_definition) {
  // A direct evaluation of PIL's bilinear resize in double precision, one output value at a time.
  Rng rng(3);
  for (int trial = 0; trial < 30; ++trial) {
    const std::int64_t W = 8 + static_cast<std::int64_t>(rng.below(120));
    const std::int64_t H = 8 + static_cast<std::int64_t>(rng.below(120));
    const std::int64_t C = trial % 3 == 0 ? 1 : 3;
    std::vector<std::uint8_t> px(static_cast<std::size_t>(W * H * C));
    for (auto& v : px) v = static_cast<std::uint8_t>(rng.below(256));
    const std::int64_t outW = 1 + static_cast<std::int64_t>(rng.below(64));
    const std::int64_t outH = 1 + static_cast<std::int64_t>(rng.below(64));
    // A box inside the image, fractional, as a downscaled decode gives.
    const double bx0 = rng.uniform() * W / 2, by0 = rng.uniform() * H / 2;
    const double bw = (W - bx0) * (0.3 + 0.7 * rng.uniform()),
                 bh = (H - by0) * (0.3 + 0.7 * rng.uniform());
    const md::ResampleAxis ax{bx0, bw / outW, outW, static_cast<std::int64_t>(bx0), W};
    const md::ResampleAxis ay{by0, bh / outH, outH, static_cast<std::int64_t>(by0), H};
    const md::AxisTaps tx = md::axisTaps(ax), ty = md::axisTaps(ay);
    const bool flip = trial % 2 == 1;
    std::vector<float> scale(C, 0.5f), shift(C, -3.0f), out(C * outH * outW);
    md::resampleToChw({px.data(), 0, 0, W, H, C}, tx, ty, flip, scale.data(), shift.data(),
                      out.data());
    auto weights = [](const md::ResampleAxis& a, std::int64_t o) {
      const double centre = a.start + (o + 0.5) * a.scale;
      const double support = std::max(a.scale, 1.0);
      std::vector<double> w(static_cast<std::size_t>(a.hi), 0.0);
      double sum = 0;
      for (std::int64_t i = a.lo; i < a.hi; ++i) {
        if (i < std::floor(centre - support + 0.5) || i >= std::floor(centre + support + 0.5))
          continue;
        const double d = std::abs(i + 0.5 - centre) / support;
        w[i] = std::max(0.0, 1.0 - d);
        sum += w[i];
      }
      for (double& v : w) v /= sum;
      return w;
    };
    double worst = 0;
    for (std::int64_t y = 0; y < outH; ++y) {
      const auto wy = weights(ay, y);
      for (std::int64_t x = 0; x < outW; ++x) {
        const auto wx = weights(ax, x);
        for (std::int64_t c = 0; c < C; ++c) {
          double v = 0;
          for (std::int64_t i = 0; i < H; ++i)
            for (std::int64_t j = 0; j < W; ++j) v += wy[i] * wx[j] * px[(i * W + j) * C + c];
          const std::int64_t ox = flip ? outW - 1 - x : x;
          worst = std::max(worst, std::abs(out[(c * outH + y) * outW + ox] - (v * 0.5 - 3.0)));
        }
      }
    }
    BOOST_TEST(worst < 2e-4, "trial " << trial << ": " << worst);
  }
}

BOOST_AUTO_TEST_CASE(region_decoding_gives_what_the_whole_image_gives) {
  // With full-size decoding, decoding only the crop's region must change nothing at all.
  const auto norm = md::datasetNormalization("imagenet", {}, {}, 3);
  int n = 0;
  for (const auto& p : photos()) {
    const auto bytes = readBytes(p);
    const md::Image whole = md::decodeImage(bytes.data(), bytes.size(), 3, p.string());
    for (md::AugmentConfig cfg :
         {md::trainAugment("imagenet", true, norm, 96), md::evalAugment(true, norm, 110, 96)}) {
      cfg.scaledDecode = false;
      for (std::uint64_t seed = 0; seed < 3; ++seed) {
        std::vector<float> a(3 * 96 * 96), b(3 * 96 * 96);
        Rng r1(seed), r2(seed);
        md::augmentEncoded(bytes.data(), bytes.size(), 3, p.string(), cfg, r1, a.data());
        md::augmentDecoded(whole, cfg, r2, b.data());
        BOOST_TEST_REQUIRE(a == b, p.filename() << " seed " << seed);
        BOOST_TEST(r1.state() == r2.state());
        ++n;
      }
    }
  }
  BOOST_TEST(n > 200);
}

BOOST_AUTO_TEST_CASE(downscaled_decoding_keeps_the_crops_of_a_seed) {
  // The same windows are drawn from the header's size whatever the decode scale: the outputs
  // differ only by the DCT downscaling's filter. The opencv-doc photos are up to 1000 pixels
  // wide, so crops to 64 pixels use 1/2, 1/4 and 1/8.
  const auto norm = identity(3);
  double sumMean = 0, worstMean = 0, worstMax = 0;
  int n = 0, scaled = 0;
  for (const auto& p : photos()) {
    const auto bytes = readBytes(p);
    for (std::uint64_t seed = 0; seed < 8; ++seed) {
      md::AugmentConfig cfg = md::trainAugment("imagenet", true, norm, 64);
      std::vector<float> full(3 * 64 * 64), fast(3 * 64 * 64);
      Rng r1(seed), r2(seed);
      cfg.scaledDecode = false;
      md::augmentEncoded(bytes.data(), bytes.size(), 3, "x", cfg, r1, full.data());
      cfg.scaledDecode = true;
      md::augmentEncoded(bytes.data(), bytes.size(), 3, "x", cfg, r2, fast.data());
      BOOST_TEST_REQUIRE(r1.state() == r2.state());
      const Diff d = compare(full, fast);
      scaled += full != fast;
      sumMean += d.mean;
      worstMean = std::max(worstMean, d.mean);
      worstMax = std::max(worstMax, d.max);
      ++n;
    }
  }
  BOOST_TEST_MESSAGE("downscaled vs full-size decode, levels of 255: mean "
                     << sumMean / n << ", worst image mean " << worstMean << ", worst pixel "
                     << worstMax << " (" << scaled << " of " << n << " samples downscaled)");
  BOOST_TEST(scaled > n / 4);
  BOOST_TEST(sumMean / n < 1.5);
  BOOST_TEST(worstMean < 8.0);  // board.jpg, a checkerboard: about 5
  BOOST_TEST(worstMax < 80.0);
}

BOOST_AUTO_TEST_CASE(crops_agree_with_pil) {
  // python3-pil (Debian) resizes with its own code: Image.crop(box).resize(size, BILINEAR),
  // what torchvision's RandomResizedCrop does; Resize + CenterCrop for evaluation.
  if (!fs::exists("/usr/bin/python3")) {
    BOOST_TEST_MESSAGE("skipped: no /usr/bin/python3 for the PIL comparison");
    return;
  }
  const fs::path dir = metasemi::test::freshDir("pil_crops");
  nlohmann::json cases = nlohmann::json::array();
  const auto norm = identity(3);
  int k = 0;
  for (const auto& p : photos()) {
    const auto bytes = readBytes(p);
    md::JpegDecoder decoder;
    md::JpegInfo info;
    md::DecodedRegion ignored;
    decoder.decode(
        bytes.data(), bytes.size(), "x", 3,
        [&](const md::JpegInfo& i) {
          info = i;
          return md::RegionRequest{1, 0, 0, 1, 1};
        },
        ignored);
    for (bool scaled : {false, true}) {
      for (std::uint64_t seed = 0; seed < 3; ++seed) {
        md::AugmentConfig cfg = seed < 2 ? md::trainAugment("imagenet", true, norm, 224)
                                         : md::evalAugment(true, norm, 256, 224);
        cfg.scaledDecode = scaled;
        std::vector<float> out(3 * 224 * 224);
        Rng rng(seed + 100 * k), again(seed + 100 * k);
        md::augmentEncoded(bytes.data(), bytes.size(), 3, p.string(), cfg, rng, out.data());
        nlohmann::json c{{"file", p.string()}, {"scaled", scaled}, {"out", 224}};
        if (cfg.kind == md::AugmentKind::kRandomResizedCrop) {
          const md::CropWindow w = md::drawResizedCrop(again, info.height, info.width, cfg);
          c["kind"] = "crop";
          c["box"] = {w.x, w.y, w.w, w.h};
          c["flip"] = again.uniform() < 0.5;
        } else {
          const auto [nh, nw] = md::resizedShorterSide(info.height, info.width, 256);
          c["kind"] = "resize-centre";
          c["size"] = {nw, nh};
          c["offset"] = {(nw - 224) / 2, (nh - 224) / 2};
          c["flip"] = false;
        }
        const fs::path raw = dir / fmt::format("case{}.f32", cases.size());
        std::ofstream(raw, std::ios::binary)
            .write(reinterpret_cast<const char*>(out.data()),
                   static_cast<std::streamsize>(out.size() * sizeof(float)));
        c["output"] = raw.string();
        cases.push_back(c);
      }
    }
    ++k;
  }
  std::ofstream(dir / "cases.json") << cases.dump(1);
  const auto r = metasemi::test::runCommand(
      "/usr/bin/python3 " +
      metasemi::test::sourcePath("tests/crosscheck/pil_resize_check.py").string() + " " +
      (dir / "cases.json").string());
  BOOST_TEST_MESSAGE(r.output);
  BOOST_TEST(r.exitCode == 0, r.output);
  if (r.exitCode == 0) fs::remove_all(dir);  // about 200 MB of crops
}

BOOST_AUTO_TEST_CASE(jpeg_streams_resume_bit_for_bit) {
  // A stream restored from a saved state gives the batches the uninterrupted one gives, with
  // region decoding, downscaling and the shared pool.
  std::vector<std::vector<std::uint8_t>> files;
  std::vector<std::int64_t> labels;
  for (const auto& p : photos()) {
    files.push_back(readBytes(p));
    labels.push_back(static_cast<std::int64_t>(labels.size() % 3));
  }
  auto source = std::make_shared<md::MemoryEncodedSource>(files, labels, 3);
  std::vector<std::int64_t> all(files.size());
  std::iota(all.begin(), all.end(), 0);
  const auto cfg =
      md::trainAugment("imagenet", true, md::datasetNormalization("imagenet", {}, {}, 3), 64);
  const auto pool = md::WorkerPool::make(2);
  md::TrainStream whole(source, all, md::StreamId::kUnlabeled, 4, cfg, 6, 0, 1, {0, 3, pool});
  for (int t = 0; t < 5; ++t) whole.next();
  const md::StreamState saved = whole.state();
  std::vector<torch::Tensor> expected;
  for (int t = 0; t < 6; ++t) expected.push_back(whole.next().images);
  md::TrainStream resumed(source, all, md::StreamId::kUnlabeled, 4, cfg, 6, 0, 1, {2, 2}, saved);
  for (int t = 0; t < 6; ++t) BOOST_TEST(torch::equal(resumed.next().images, expected[t]), t);
}

BOOST_AUTO_TEST_CASE(cmyk_files_decode_to_the_rgb_prep_checks) {
  // libjpeg cannot convert CMYK itself; both decoders apply Adobe's inverted-CMYK formula.
  // metasemi-prep decodes with the fast IDCT, this decoder with the accurate one: a few levels.
  const int W = 64, H = 48;
  std::vector<std::uint8_t> cmyk(W * H * 4);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      std::uint8_t* p = &cmyk[(y * W + x) * 4];
      p[0] = static_cast<std::uint8_t>(255 - 3 * x);
      p[1] = static_cast<std::uint8_t>(255 - 4 * y);
      p[2] = static_cast<std::uint8_t>(128 + x + y);
      p[3] = static_cast<std::uint8_t>(200 + (x ^ y) % 50);
    }
  tjhandle enc = tjInitCompress();
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  BOOST_TEST_REQUIRE(
      tjCompress2(enc, cmyk.data(), W, 0, H, TJPF_CMYK, &jpeg, &size, TJSAMP_444, 95, 0) == 0);
  const std::vector<std::uint8_t> bytes(jpeg, jpeg + size);
  tjFree(jpeg);
  tjDestroy(enc);
  std::vector<std::uint8_t> rgb;
  int w = 0, h = 0;
  metasemi::prep::decodeJpeg(bytes.data(), bytes.size(), "cmyk.jpg", rgb, w, h);
  md::JpegDecoder decoder;
  const md::DecodedRegion r = decodeWhole(decoder, bytes, 3, 1);
  BOOST_TEST_REQUIRE(r.pixels.size() == rgb.size());
  double diff = 0;
  for (std::size_t i = 0; i < rgb.size(); ++i) diff += std::abs(int(r.pixels[i]) - int(rgb[i]));
  BOOST_TEST(diff / static_cast<double>(rgb.size()) < 1.5);
  // Grey output: the same pixels' luma.
  const md::DecodedRegion g = decodeWhole(decoder, bytes, 1, 1);
  const std::size_t k = (10 * W + 20);
  const double luma =
      0.299 * r.pixels[3 * k] + 0.587 * r.pixels[3 * k + 1] + 0.114 * r.pixels[3 * k + 2];
  BOOST_TEST(std::abs(g.pixels[k] - luma) < 1.0);
}
