// JPEG checks and re-encoding for the JPEG shard tool (libjpeg-turbo's TurboJPEG API; OpenCV
// for resizing).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "metasemi/io/ShardWriter.h"

namespace metasemi::prep {

/// Images larger than this (width × height, from the header) are refused before decoding.
constexpr std::int64_t kDefaultMaxJpegPixels = 64'000'000;

/// The pixel limit of `--max-megapixels` (ConfigError unless it is positive and finite).
std::int64_t maxPixelsOf(double megapixels);

/// Decodes a complete JPEG file to RGB (H×W×3 uint8 in `rgb`); grey images are expanded to
/// RGB, CMYK/YCCK ones converted. Throws core::IoError "`name`: ..." for data that is not a
/// JPEG, more than kDefaultMaxJpegPixels pixels, a truncated file or corrupt data: every
/// libjpeg-turbo warning about the data ("Corrupt JPEG data: ...", "Premature end of JPEG
/// file", a bad progression) is an error. Only the two warnings about metadata (an unknown
/// JFIF revision or Adobe transform code) are accepted.
void decodeJpeg(const std::uint8_t* data, std::size_t size, const std::string& name,
                std::vector<std::uint8_t>& rgb, int& width, int& height);

/// Reusable decoder/encoder state (one per thread).
class JpegCodec {
 public:
  JpegCodec();
  ~JpegCodec();
  JpegCodec(const JpegCodec&) = delete;
  JpegCodec& operator=(const JpegCodec&) = delete;

  /// Sets the largest image (width × height) decode() accepts; > 0.
  void setMaxPixels(std::int64_t maxPixels) { maxPixels_ = maxPixels; }

  /// As decodeJpeg, with this codec's handle and pixel limit.
  void decode(const std::uint8_t* data, std::size_t size, const std::string& name,
              std::vector<std::uint8_t>& rgb, int& width, int& height);

  /// Checks `data` decodes and returns the statistics of its pixels. When `maxShorterSide` > 0
  /// and the shorter side is larger, `reencoded` receives the image resized (area
  /// interpolation) so that its shorter side is maxShorterSide, encoded at `quality`; otherwise
  /// `reencoded` is left empty (the original bytes are kept).
  io::PixelStats check(const std::uint8_t* data, std::size_t size, const std::string& name,
                       int maxShorterSide, int quality, std::vector<std::uint8_t>& reencoded);

 private:
  void decodeCmyk(const std::uint8_t* data, std::size_t size, const std::string& name,
                  std::vector<std::uint8_t>& rgb, int width, int height);
  // Decompresses into `out` (`pixelFormat`), turning warnings about the data into errors.
  void decompress(const std::uint8_t* data, std::size_t size, const std::string& name,
                  std::uint8_t* out, int width, int height, int pixelFormat);

  std::int64_t maxPixels_ = kDefaultMaxJpegPixels;
  void* decoder_;
  void* encoder_;
  std::vector<std::uint8_t> rgb_;
  std::vector<std::uint8_t> cmyk_;
};

}  // namespace metasemi::prep
