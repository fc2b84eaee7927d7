#include "prep/Jpeg.h"

#include <turbojpeg.h>

#include <cmath>
#include <cstring>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "metasemi/core/Error.h"

namespace metasemi::prep {
using core::IoError;

JpegCodec::JpegCodec() : decoder_(tjInitDecompress()), encoder_(tjInitCompress()) {
  MS_CHECK(decoder_ != nullptr && encoder_ != nullptr, "TurboJPEG initialisation failed");
}

JpegCodec::~JpegCodec() {
  tjDestroy(decoder_);
  tjDestroy(encoder_);
}

std::int64_t maxPixelsOf(double megapixels) {
  MS_REQUIRE(std::isfinite(megapixels) && megapixels > 0 && megapixels <= 1e6, core::ConfigError,
             "--max-megapixels must be in (0, 1e6], got {}", megapixels);
  return static_cast<std::int64_t>(megapixels * 1e6);
}

namespace {

// The only libjpeg-turbo warnings that say nothing about the image data.
bool harmlessWarning(const std::string& message) {
  return message.find("unknown JFIF revision") != std::string::npos ||
         message.find("Unknown Adobe color transform") != std::string::npos;
}

}  // namespace

void JpegCodec::decompress(const std::uint8_t* data, std::size_t size, const std::string& name,
                           std::uint8_t* out, int width, int height, int pixelFormat) {
  // Stop at the first warning, so that it is the one reported; LIMITSCANS bounds the time a
  // crafted progressive file can take.
  int flags = TJFLAG_FASTDCT | TJFLAG_LIMITSCANS | TJFLAG_STOPONWARNING;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (tjDecompress2(decoder_, data, static_cast<unsigned long>(size), out, width, 0, height,
                      pixelFormat, flags) == 0) {
      return;
    }
    const std::string msg = tjGetErrorStr2(decoder_);
    const bool warning = tjGetErrorCode(decoder_) == TJERR_WARNING;
    MS_REQUIRE(warning && harmlessWarning(msg), core::IoError, "{}: corrupt or truncated JPEG: {}",
               name, msg);
    if (attempt == 1) return;  // decoded through a harmless warning
    flags &= ~TJFLAG_STOPONWARNING;
  }
}

void JpegCodec::decode(const std::uint8_t* data, std::size_t size, const std::string& name,
                       std::vector<std::uint8_t>& rgb, int& width, int& height) {
  MS_REQUIRE(size >= 4 && data[0] == 0xFF && data[1] == 0xD8, IoError,
             "{}: not a JPEG file (no SOI marker 0xFFD8 at the start)", name);
  int subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(decoder_, data, static_cast<unsigned long>(size), &width, &height,
                          &subsamp, &colorspace) != 0) {
    MS_THROW(IoError, "{}: corrupt JPEG header: {}", name, tjGetErrorStr2(decoder_));
  }
  const std::int64_t pixels = static_cast<std::int64_t>(width) * height;
  MS_REQUIRE(width > 0 && height > 0 && pixels <= maxPixels_, IoError,
             "{}: {}x{} pixels ({:.2f} Mpixel) is over the limit of {} Mpixel "
             "(--max-megapixels)",
             name, width, height, static_cast<double>(pixels) / 1e6,
             static_cast<double>(maxPixels_) / 1e6);
  rgb.resize(static_cast<std::size_t>(pixels) * 3);
  if (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK) {
    decodeCmyk(data, size, name, rgb, width, height);
    return;
  }
  decompress(data, size, name, rgb.data(), width, height, TJPF_RGB);
}

void JpegCodec::decodeCmyk(const std::uint8_t* data, std::size_t size, const std::string& name,
                           std::vector<std::uint8_t>& rgb, int width, int height) {
  // libjpeg cannot convert CMYK to RGB itself (ImageNet has a few such files). The stored
  // values are Adobe's inverted CMYK, so R = C'·K'/255 with the stored C', K' (as OpenCV does).
  cmyk_.resize(static_cast<std::size_t>(width) * height * 4);
  decompress(data, size, name, cmyk_.data(), width, height, TJPF_CMYK);
  const std::size_t pixels = static_cast<std::size_t>(width) * height;
  for (std::size_t p = 0; p < pixels; ++p) {
    const unsigned k = cmyk_[4 * p + 3];
    for (int c = 0; c < 3; ++c) {
      rgb[3 * p + c] = static_cast<std::uint8_t>((cmyk_[4 * p + c] * k + 127) / 255);
    }
  }
}

void decodeJpeg(const std::uint8_t* data, std::size_t size, const std::string& name,
                std::vector<std::uint8_t>& rgb, int& width, int& height) {
  JpegCodec codec;
  codec.decode(data, size, name, rgb, width, height);
}

io::PixelStats JpegCodec::check(const std::uint8_t* data, std::size_t size, const std::string& name,
                                int maxShorterSide, int quality,
                                std::vector<std::uint8_t>& reencoded) {
  int w = 0, h = 0;
  decode(data, size, name, rgb_, w, h);
  io::PixelStats stats;
  stats.add(rgb_.data(), static_cast<std::int64_t>(w) * h, 3);
  reencoded.clear();
  const int shorter = std::min(w, h);
  if (maxShorterSide > 0 && shorter > maxShorterSide) {
    const double scale = static_cast<double>(maxShorterSide) / shorter;
    const int nw = w <= h ? maxShorterSide : static_cast<int>(std::lround(w * scale));
    const int nh = h < w ? maxShorterSide : static_cast<int>(std::lround(h * scale));
    cv::Mat src(h, w, CV_8UC3, rgb_.data());
    cv::Mat dst;
    cv::resize(src, dst, cv::Size(nw, nh), 0, 0, cv::INTER_AREA);
    unsigned char* out = nullptr;
    unsigned long outSize = 0;
    if (tjCompress2(encoder_, dst.data, nw, static_cast<int>(dst.step), nh, TJPF_RGB, &out,
                    &outSize, TJSAMP_420, quality, 0) != 0) {
      const std::string msg = tjGetErrorStr2(encoder_);
      tjFree(out);
      MS_THROW(IoError, "{}: re-encoding failed: {}", name, msg);
    }
    reencoded.assign(out, out + outSize);
    tjFree(out);
  }
  return stats;
}

}  // namespace metasemi::prep
