// Augmentation against the reference's definition (reference-spec §5, §6.3): padded crops stay
// inside the zero-padded image, flips are exact mirrors, normalisation uses the spec's
// constants, random-resized crops respect their area/aspect ranges and fall back to the centre.
#include <cmath>
#include <map>

#include "metasemi/core/Error.h"
#include "metasemi/data/Augment.h"
#include "support/TestSupport.h"

namespace md = metasemi::data;
using metasemi::core::ConfigError;
using metasemi::core::Rng;

namespace {

std::vector<std::uint8_t> randomPixels(const md::ImageShape& s, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<std::uint8_t> v(static_cast<std::size_t>(s.numel()));
  for (auto& x : v) x = static_cast<std::uint8_t>(1 + rng.below(255));  // never 0: pads show
  return v;
}

// Normalised value the reference computes in double: (p/255 − mean)/std.
double reference(double p, const md::Normalization& n, std::int64_t c) {
  return (p / 255.0 - n.mean[c]) / n.std[c];
}

}  // namespace

BOOST_AUTO_TEST_CASE(pad_crop_matches_an_explicit_zero_padded_crop) {
  const md::ImageShape s{32, 32, 3};
  const auto img = randomPixels(s, 5);
  const auto norm = md::datasetNormalization("cifar10", {}, {}, 3);
  const std::int64_t pad = 4, P = 32 + 2 * pad;
  // Explicit padded image (uint8 zeros around), as torchvision's RandomCrop(32, padding=4).
  std::vector<int> padded(P * P * 3, 0);
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x)
      for (int c = 0; c < 3; ++c)
        padded[((y + pad) * P + x + pad) * 3 + c] = img[(y * 32 + x) * 3 + c];
  std::vector<float> out(3 * 32 * 32);
  double worst = 0;
  for (std::int64_t dy = 0; dy <= 2 * pad; ++dy) {
    for (std::int64_t dx = 0; dx <= 2 * pad; ++dx) {
      for (bool flip : {false, true}) {
        md::padCropNormalize(img.data(), s, pad, {dy, dx, flip}, norm, out.data());
        for (int c = 0; c < 3; ++c)
          for (int y = 0; y < 32; ++y)
            for (int x = 0; x < 32; ++x) {
              const int srcX = flip ? 31 - x : x;  // crop, then mirror
              const double want = reference(padded[((y + dy) * P + srcX + dx) * 3 + c], norm, c);
              worst = std::max(worst, std::abs(out[(c * 32 + y) * 32 + x] - want));
            }
      }
    }
  }
  BOOST_TEST(worst < 1e-5);
}

BOOST_AUTO_TEST_CASE(padding_is_zero_before_normalisation) {
  const md::ImageShape s{8, 8, 3};
  const auto img = randomPixels(s, 6);
  const auto norm = md::datasetNormalization("svhn", {}, {}, 3);
  std::vector<float> out(3 * 64);
  md::padCropNormalize(img.data(), s, 4, {0, 0, false}, norm, out.data());  // shifted by +4,+4
  for (int c = 0; c < 3; ++c) {
    const double zero = -norm.mean[c] / norm.std[c];
    BOOST_TEST(std::abs(out[c * 64 + 0] - zero) < 1e-5);          // (0,0) is padding
    BOOST_TEST(std::abs(out[c * 64 + 3 * 8 + 7] - zero) < 1e-5);  // row 3 is padding
    BOOST_TEST(std::abs(out[c * 64 + 4 * 8 + 4] - reference(img[c], norm, c)) < 1e-5);
  }
}

BOOST_AUTO_TEST_CASE(flips_are_exact_mirrors) {
  const md::ImageShape s{28, 28, 1};
  const auto img = randomPixels(s, 7);
  const md::Normalization norm{{0.2860f}, {0.3530f}};
  std::vector<float> a(28 * 28), b(28 * 28);
  for (std::int64_t dx : {0, 3, 8}) {
    md::padCropNormalize(img.data(), s, 4, {2, dx, false}, norm, a.data());
    md::padCropNormalize(img.data(), s, 4, {2, dx, true}, norm, b.data());
    for (int y = 0; y < 28; ++y)
      for (int x = 0; x < 28; ++x) BOOST_REQUIRE(a[y * 28 + x] == b[y * 28 + 27 - x]);
  }
  md::normalizeToChw(img.data(), s, false, norm, a.data());
  md::normalizeToChw(img.data(), s, true, norm, b.data());
  for (int y = 0; y < 28; ++y)
    for (int x = 0; x < 28; ++x) BOOST_REQUIRE(a[y * 28 + x] == b[y * 28 + 27 - x]);
}

BOOST_AUTO_TEST_CASE(pad_crop_draws_cover_the_range_and_flip_half_the_time) {
  Rng rng(11);
  std::map<std::int64_t, int> dys, dxs;
  int flips = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const auto d = md::drawPadCrop(rng, 4, true);
    BOOST_REQUIRE(d.dy >= 0);
    BOOST_REQUIRE(d.dy <= 8);
    BOOST_REQUIRE(d.dx >= 0);
    BOOST_REQUIRE(d.dx <= 8);
    ++dys[d.dy];
    ++dxs[d.dx];
    flips += d.flip;
  }
  BOOST_TEST(dys.size() == 9u);
  BOOST_TEST(dxs.size() == 9u);
  BOOST_TEST(std::abs(flips - n / 2) < 500);
  for (int i = 0; i < 1000; ++i) BOOST_REQUIRE(!md::drawPadCrop(rng, 4, false).flip);
}

BOOST_AUTO_TEST_CASE(normalisation_constants_and_flip_policy) {
  const auto c10 = md::datasetNormalization("cifar10", {}, {}, 3);
  BOOST_TEST(c10.mean[0] == 0.49139968f);
  BOOST_TEST(c10.std[2] == 0.26158784f);
  const auto c100 = md::datasetNormalization("cifar100", {}, {}, 3);
  BOOST_TEST(c100.mean[1] == 0.48654887f);
  const auto svhn = md::datasetNormalization("svhn", {}, {}, 3);
  BOOST_TEST(svhn.std[0] == 0.19803012f);
  const auto inet = md::datasetNormalization("imagenet", {}, {}, 3);
  BOOST_TEST(inet.mean[0] == 0.485f);
  BOOST_TEST(inet.std[2] == 0.225f);
  const auto fm = md::datasetNormalization("fashion-mnist", {0.286}, {0.353}, 1);
  BOOST_TEST(fm.mean[0] == 0.286f);
  BOOST_CHECK_THROW(md::datasetNormalization("fashion-mnist", {}, {}, 1), ConfigError);
  BOOST_CHECK_THROW(md::datasetNormalization("mnist", {0.1}, {0.0}, 1), ConfigError);
  BOOST_CHECK_THROW(md::datasetNormalization("cifar10", {}, {}, 1), ConfigError);
  BOOST_TEST(md::datasetFlips("cifar10"));
  BOOST_TEST(md::datasetFlips("cifar100"));
  BOOST_TEST(md::datasetFlips("imagenet"));
  BOOST_TEST(!md::datasetFlips("svhn"));
  BOOST_TEST(!md::datasetFlips("fashion-mnist"));
  BOOST_TEST((md::trainAugment("svhn", false, svhn).kind == md::AugmentKind::kPadCrop));
  BOOST_TEST(!md::trainAugment("svhn", false, svhn).flip);
  BOOST_TEST(
      (md::trainAugment("imagenet", true, inet).kind == md::AugmentKind::kRandomResizedCrop));
  BOOST_TEST(!md::evalAugment(false, c10).isRandom());
  BOOST_TEST(!md::evalAugment(true, inet).isRandom());
}

BOOST_AUTO_TEST_CASE(random_resized_crops_respect_area_and_aspect) {
  md::AugmentConfig cfg = md::trainAugment("imagenet", true, {});
  Rng rng(3);
  int fallbacks = 0;
  for (auto [h, w] : {std::pair<std::int64_t, std::int64_t>{375, 500}, {500, 333}, {224, 224}}) {
    for (int i = 0; i < 3000; ++i) {
      const auto win = md::drawResizedCrop(rng, h, w, cfg);
      BOOST_REQUIRE(win.x >= 0);
      BOOST_REQUIRE(win.y >= 0);
      BOOST_REQUIRE(win.x + win.w <= w);
      BOOST_REQUIRE(win.y + win.h <= h);
      const double area = double(win.w) * win.h / (double(h) * w);
      const double ratio = double(win.w) / win.h;
      // Side lengths are rounded to whole pixels: allow one pixel of slack.
      const double slackA = (win.w + win.h + 1.0) / (double(h) * w);
      const double slackR = 1.0 / std::min(win.w, win.h);
      if (win.w == win.h && win.w == std::min(h, w) && area < 0.1 - slackA) ++fallbacks;
      BOOST_REQUIRE(area >= 0.1 - slackA);
      BOOST_REQUIRE(area <= 1.0 + slackA);
      BOOST_REQUIRE(ratio >= 0.8 * (1 - 2 * slackR));
      BOOST_REQUIRE(ratio <= 1.25 * (1 + 2 * slackR));
    }
  }
  BOOST_TEST(fallbacks == 0);
}

BOOST_AUTO_TEST_CASE(random_resized_crop_falls_back_to_the_centred_square) {
  // 1000×10: every window of at least 10% of the area is ~30 px wide, so none fits.
  const md::AugmentConfig cfg = md::trainAugment("imagenet", true, {});
  Rng rng(4);
  const auto win = md::drawResizedCrop(rng, 1000, 10, cfg);
  BOOST_TEST((win == md::CropWindow{0, 495, 10, 10}));
}

BOOST_AUTO_TEST_CASE(resized_crops_of_constant_images_are_constant) {
  md::Image img;
  img.height = 300;
  img.width = 451;
  img.channels = 3;
  img.pixels.resize(300 * 451 * 3);
  for (std::size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = i % 3 == 0 ? 200 : 17;
  const auto norm = md::datasetNormalization("imagenet", {}, {}, 3);
  for (const auto& cfg :
       {md::trainAugment("imagenet", true, norm, 64), md::evalAugment(true, norm, 72, 64)}) {
    Rng rng(8);
    std::vector<float> out(3 * 64 * 64);
    md::augmentDecoded(img, cfg, rng, out.data());
    for (int c = 0; c < 3; ++c)
      for (int k = 0; k < 64 * 64; ++k)
        BOOST_REQUIRE(std::abs(out[c * 4096 + k] - reference(c == 0 ? 200 : 17, norm, c)) < 1e-5);
  }
}

BOOST_AUTO_TEST_CASE(centre_crop_takes_the_middle_of_the_resized_image) {
  // Left half black, right half white, 2:1 landscape: after the shorter side goes to 32 the
  // image is 64 wide and the centred 32 columns are 16 black then 16 white.
  md::Image img;
  img.height = 100;
  img.width = 200;
  img.channels = 1;
  img.pixels.resize(200 * 100);
  for (int y = 0; y < 100; ++y)
    for (int x = 0; x < 200; ++x) img.pixels[y * 200 + x] = x < 100 ? 0 : 255;
  const md::Normalization norm{{0.0f}, {1.0f}};
  Rng rng(0);
  std::vector<float> out(32 * 32);
  md::augmentDecoded(img, md::evalAugment(true, norm, 32, 32), rng, out.data());
  for (int y = 0; y < 32; ++y) {
    BOOST_REQUIRE(out[y * 32 + 0] < 0.01f);
    BOOST_REQUIRE(out[y * 32 + 14] < 0.01f);
    BOOST_REQUIRE(out[y * 32 + 17] > 0.99f);
    BOOST_REQUIRE(out[y * 32 + 31] > 0.99f);
  }
}
