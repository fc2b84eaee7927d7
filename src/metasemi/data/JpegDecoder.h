// Decodes only the part of a JPEG image that a crop needs: the frame header first (so that the
// crop can be drawn from the image's size), then the rows and iMCU columns that cover the crop,
// optionally downscaled by 1/2, 1/4 or 1/8 in the DCT domain (libjpeg-turbo's scaled IDCT).
// libjpeg's headers stay in JpegDecoder.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace metasemi::data {

/// The largest image (width × height, from the header) the pipeline decodes, as metasemi-prep's
/// default --max-megapixels: what a header claims never sizes an allocation beyond this.
constexpr std::int64_t kMaxDecodePixels = 64'000'000;

/// What the frame header of a JPEG file says.
struct JpegInfo {
  std::int64_t width = 0, height = 0;
  int components = 0;  ///< 1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK
};

/// The part of the image to decode, chosen from its JpegInfo.
struct RegionRequest {
  int scaleDenom = 1;  ///< 1, 2, 4 or 8: decode the image downscaled by this factor
  /// Columns [x0, x1) and rows [y0, y1) of the downscaled image (whose size is
  /// ⌈width/scaleDenom⌉ × ⌈height/scaleDenom⌉); must lie inside it and be non-empty.
  std::int64_t x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};

/// A decoded rectangle of a (possibly downscaled) image.
struct DecodedRegion {
  std::int64_t fullWidth = 0, fullHeight = 0;  ///< size of the whole image at this scale
  std::int64_t x0 = 0, y0 = 0;                 ///< top-left of the region in that image
  std::int64_t width = 0, height = 0;          ///< size of the region
  std::int64_t channels = 0;                   ///< 1 (grey) or 3 (RGB)
  std::vector<std::uint8_t> pixels;            ///< height·width·channels values, HWC
};

struct JpegDecoderState;

/// Reusable libjpeg decompressor (one per thread; not thread-safe itself).
class JpegDecoder {
 public:
  JpegDecoder();
  ~JpegDecoder();
  JpegDecoder(const JpegDecoder&) = delete;
  JpegDecoder& operator=(const JpegDecoder&) = delete;

  /// True when `data` starts with a JPEG start-of-image marker.
  static bool isJpeg(const std::uint8_t* data, std::size_t size);

  /// Sets the largest image (width × height) decode() accepts; > 0.
  void setMaxPixels(std::int64_t maxPixels);

  /// Reads the header of the JPEG file `data`, asks `choose` which region to decode and decodes
  /// it into `out` as `channels` channels (1 grey, 3 RGB; grey files give R = G = B, CMYK/YCCK
  /// files are converted as Adobe's inverted CMYK). The region comes out at least as large as
  /// asked: whole iMCU columns are decoded, so out.x0 ≤ x0 and out.x0 + out.width ≥ x1; rows
  /// are exactly [y0, y1). The pixels of columns [x0, x1) are bit for bit those of a
  /// whole-image decode at the same scale; the columns outside them may not be. Rows above the
  /// region are skipped without inverse DCT, rows below it are not read (a region that reaches the
  /// last row reads on to the end of the file). Decoding is libjpeg's default (accurate integer
  /// IDCT, fancy upsampling), as PIL's. EXIF orientation is ignored, as in PIL and DALI. Throws
  /// core::IoError naming `what` for data that is not a JPEG, a header over the pixel limit, or
  /// corrupt data (every libjpeg warning about the data met while decoding the region; an unknown
  /// JFIF revision or Adobe transform code is accepted): damage below the region goes unnoticed,
  /// which is why metasemi-prep checks every image whole. core::Error when `choose` asks for an
  /// invalid region.
  void decode(const std::uint8_t* data, std::size_t size, const std::string& what, int channels,
              const std::function<RegionRequest(const JpegInfo&)>& choose, DecodedRegion& out);

 private:
  std::unique_ptr<JpegDecoderState> s_;
};

}  // namespace metasemi::data
