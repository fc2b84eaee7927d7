// Whole decoded images: decode any format OpenCV reads (the pipeline decodes JPEG files itself,
// JpegDecoder.h) and encode JPEG files for tests and benchmarks. OpenCV's headers stay in
// Image.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace metasemi::data {

/// An 8-bit image in HWC order (RGB for 3 channels).
struct Image {
  std::int64_t height = 0, width = 0, channels = 0;
  std::vector<std::uint8_t> pixels;  ///< height·width·channels values
};

/// A rectangle of an image: top-left corner (x, y) and size w×h, in pixels.
struct CropWindow {
  std::int64_t x = 0, y = 0, w = 0, h = 0;
  bool operator==(const CropWindow& o) const {
    return x == o.x && y == o.y && w == o.w && h == o.h;
  }
};

/// Decodes an encoded image (JPEG, PNG, ...; baseline or progressive, grey or colour) to
/// `channels` channels (1 = grey, 3 = RGB). EXIF orientation is ignored, as in PIL and DALI.
/// Throws core::IoError naming `what` when the bytes are not a decodable image.
Image decodeImage(const std::uint8_t* data, std::size_t size, std::int64_t channels,
                  const std::string& what);

/// Encodes `image` as a baseline JPEG of the given quality (1-100). For tests and benchmarks.
std::vector<std::uint8_t> encodeJpeg(const Image& image, int quality = 90);

}  // namespace metasemi::data
