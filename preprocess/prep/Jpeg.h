// JPEG checks and re-encoding for the JPEG shard tool (libjpeg-turbo's TurboJPEG API; OpenCV
// for resizing).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "metasemi/io/ShardWriter.h"

namespace metasemi::prep {

/// Decodes a complete JPEG file to RGB (H×W×3 uint8 in `rgb`); grey images are expanded to
/// RGB, CMYK/YCCK ones converted. Throws core::IoError
/// "`name`: ..." for data that is not a JPEG, a truncated file or corrupt data. Recoverable
/// libjpeg warnings (extraneous bytes) are accepted, as PIL and DALI accept them.
void decodeJpeg(const std::uint8_t* data, std::size_t size, const std::string& name,
                std::vector<std::uint8_t>& rgb, int& width, int& height);

/// Reusable decoder/encoder state (one per thread).
class JpegCodec {
 public:
  JpegCodec();
  ~JpegCodec();
  JpegCodec(const JpegCodec&) = delete;
  JpegCodec& operator=(const JpegCodec&) = delete;

  /// As decodeJpeg, with this codec's handle.
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

  void* decoder_;
  void* encoder_;
  std::vector<std::uint8_t> rgb_;
  std::vector<std::uint8_t> cmyk_;
};

}  // namespace metasemi::prep
