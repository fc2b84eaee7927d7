// The JPEG check of jpeg-shards on images encoded here: RGB and CMYK decode, truncated and
// non-JPEG data are refused with the file's name, re-encoding bounds the shorter side.
#include <turbojpeg.h>

#include "metasemi/core/Error.h"
#include "prep/Jpeg.h"
#include "support/TestSupport.h"

namespace prep = metasemi::prep;
using metasemi::core::IoError;
using metasemi::test::errorOf;

namespace {

std::vector<std::uint8_t> encode(const std::vector<std::uint8_t>& pixels, int w, int h,
                                 int format) {
  tjhandle c = tjInitCompress();
  unsigned char* out = nullptr;
  unsigned long size = 0;
  const int rc = tjCompress2(c, pixels.data(), w, 0, h, format, &out, &size, TJSAMP_444, 100, 0);
  BOOST_REQUIRE(rc == 0);
  std::vector<std::uint8_t> bytes(out, out + size);
  tjFree(out);
  tjDestroy(c);
  return bytes;
}

}  // namespace

BOOST_AUTO_TEST_CASE(rgb_and_cmyk_decode_to_rgb) {
  const int w = 24, h = 16;
  std::vector<std::uint8_t> rgb(w * h * 3), cmyk(w * h * 4);
  for (int p = 0; p < w * h; ++p) {
    // Smooth content so that quality 100 reproduces it within a few levels.
    rgb[3 * p] = static_cast<std::uint8_t>(60 + p % w * 4);
    rgb[3 * p + 1] = 128;
    rgb[3 * p + 2] = static_cast<std::uint8_t>(200 - p / w * 5);
    cmyk[4 * p] = static_cast<std::uint8_t>(200 - p % w * 3);
    cmyk[4 * p + 1] = 100;
    cmyk[4 * p + 2] = 240;
    cmyk[4 * p + 3] = 180;
  }
  std::vector<std::uint8_t> out;
  int ow = 0, oh = 0;
  const auto a = encode(rgb, w, h, TJPF_RGB);
  prep::decodeJpeg(a.data(), a.size(), "rgb.jpg", out, ow, oh);
  BOOST_TEST(ow == w);
  BOOST_TEST(oh == h);
  int worst = 0;
  for (std::size_t i = 0; i < rgb.size(); ++i) worst = std::max(worst, std::abs(out[i] - rgb[i]));
  BOOST_TEST(worst <= 4);

  const auto b = encode(cmyk, w, h, TJPF_CMYK);
  prep::decodeJpeg(b.data(), b.size(), "cmyk.jpg", out, ow, oh);
  BOOST_TEST(out.size() == static_cast<std::size_t>(w * h * 3));
  worst = 0;
  for (int p = 0; p < w * h; ++p) {
    for (int c = 0; c < 3; ++c) {
      const int want = cmyk[4 * p + c] * cmyk[4 * p + 3] / 255;
      worst = std::max(worst, std::abs(out[3 * p + c] - want));
    }
  }
  BOOST_TEST(worst <= 6);
}

BOOST_AUTO_TEST_CASE(bad_data_is_refused_with_the_name) {
  std::vector<std::uint8_t> rgb(64 * 48 * 3, 90);
  const auto good = encode(rgb, 64, 48, TJPF_RGB);
  std::vector<std::uint8_t> out;
  int w = 0, h = 0;
  const std::vector<std::uint8_t> half(good.begin(), good.begin() + good.size() / 2);
  BOOST_TEST(errorOf([&] {
               prep::decodeJpeg(half.data(), half.size(), "a/b.JPEG", out, w, h);
             }).find("a/b.JPEG: corrupt") == 0);
  const std::string text = "hello, not an image";
  BOOST_TEST(errorOf([&] {
               prep::decodeJpeg(reinterpret_cast<const std::uint8_t*>(text.data()), text.size(),
                                "t.JPEG", out, w, h);
             }) == "t.JPEG: not a JPEG file (no SOI marker 0xFFD8 at the start)");
}

BOOST_AUTO_TEST_CASE(reencoding_bounds_the_shorter_side) {
  std::vector<std::uint8_t> rgb(300 * 120 * 3, 50);
  const auto big = encode(rgb, 300, 120, TJPF_RGB);
  prep::JpegCodec codec;
  std::vector<std::uint8_t> small;
  const auto stats = codec.check(big.data(), big.size(), "big", 60, 90, small);
  BOOST_REQUIRE(!small.empty());
  std::vector<std::uint8_t> out;
  int w = 0, h = 0;
  prep::decodeJpeg(small.data(), small.size(), "small", out, w, h);
  BOOST_TEST(w == 150);
  BOOST_TEST(h == 60);
  BOOST_TEST(stats.count == 300 * 120);
  BOOST_TEST(stats.mean()[0] == 50 / 255.0, boost::test_tools::tolerance(0.01));
  codec.check(big.data(), big.size(), "big", 120, 90, small);
  BOOST_TEST(small.empty());  // already small enough: the original bytes are kept
}
