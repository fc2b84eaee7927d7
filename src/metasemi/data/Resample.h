// Antialiased resampling as PIL's Image.resize with the BILINEAR filter (what torchvision's
// RandomResizedCrop, Resize and the reference's DALI "triangular" resize compute): a separable
// triangle filter, widened by the downscaling factor so that every input pixel contributes,
// fused with the horizontal flip and the per-channel normalisation into C×H×W floats.
#pragma once

#include <cstdint>
#include <vector>

namespace metasemi::data {

/// One axis of a resampling. Output sample o ∈ [0, outSize) is centred at input coordinate
/// start + (o + 0.5)·scale (pixel i of the input covers [i, i + 1)), and reads only input
/// samples in [lo, hi): PIL's resize of an image whose pixels are [lo, hi), with `start` the
/// left edge of the resized box.
struct ResampleAxis {
  double start = 0;  ///< input coordinate of the left edge of output sample 0
  double scale = 1;  ///< input samples per output sample (> 0)
  std::int64_t outSize = 0;
  std::int64_t lo = 0, hi = 0;
};

/// The filter taps of one axis: output o reads input samples [first[o], first[o] + count[o])
/// with weights weights[o·width .. o·width + count[o]) (zero beyond count[o]), which sum to 1.
struct AxisTaps {
  std::vector<std::int64_t> first;
  std::vector<int> count;
  std::vector<float> weights;
  int width = 0;  ///< the largest count
  /// The input samples any output reads: [begin(), end()).
  std::int64_t begin() const { return first.front(); }
  std::int64_t end() const { return first.back() + count.back(); }
};

/// PIL's coefficients (Pillow's precompute_coeffs with the bilinear filter, support 1): support
/// max(scale, 1), taps clipped to [lo, hi) and renormalised. Throws core::Error for an axis
/// with no taps (outSize ≤ 0, scale ≤ 0 or an empty [lo, hi)).
AxisTaps axisTaps(const ResampleAxis& axis);

/// An 8-bit HWC image region: pixel (x, y) of the image it was cut from, for x in
/// [x0, x0 + width) and y in [y0, y0 + height), is at pixels[((y − y0)·width + x − x0)·channels].
struct PixelRegion {
  const std::uint8_t* pixels = nullptr;
  std::int64_t x0 = 0, y0 = 0, width = 0, height = 0, channels = 0;
};

/// Resamples `src` along `tx` (columns) and `ty` (rows) into `chw` (float32, channels ×
/// ty.first.size() × tx.first.size()): a resampled value v of channel c (in 0..255 units) is
/// written as v·scale[c] + shift[c], columns mirrored when `flip`. The taps must read only
/// pixels inside `src` (core::Error otherwise). Values are not rounded to 8 bits in between
/// (PIL rounds after each pass: results agree to within about one level).
void resampleToChw(const PixelRegion& src, const AxisTaps& tx, const AxisTaps& ty, bool flip,
                   const float* scale, const float* shift, float* chw);

}  // namespace metasemi::data
