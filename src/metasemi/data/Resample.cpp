#include "metasemi/data/Resample.h"

#include <algorithm>
#include <cmath>

#include "metasemi/core/Error.h"

namespace metasemi::data {

AxisTaps axisTaps(const ResampleAxis& axis) {
  MS_CHECK(axis.outSize > 0 && axis.scale > 0 && axis.lo < axis.hi,
           "resample axis: {} outputs at scale {} from [{}, {})", axis.outSize, axis.scale, axis.lo,
           axis.hi);
  // Downscaling widens the triangle to cover every input sample (antialiasing); upscaling keeps
  // it at one input sample: plain bilinear interpolation.
  const double filterScale = std::max(axis.scale, 1.0);
  const double support = filterScale;
  const double inverse = 1.0 / filterScale;
  const auto n = static_cast<std::size_t>(axis.outSize);
  AxisTaps t;
  t.first.resize(n);
  t.count.resize(n);
  std::vector<double> w;
  std::vector<std::vector<double>> all(n);
  for (std::size_t o = 0; o < n; ++o) {
    const double centre = axis.start + (static_cast<double>(o) + 0.5) * axis.scale;
    const std::int64_t first =
        std::max(static_cast<std::int64_t>(std::floor(centre - support + 0.5)), axis.lo);
    const std::int64_t last =
        std::min(static_cast<std::int64_t>(std::floor(centre + support + 0.5)), axis.hi);
    MS_CHECK(last > first, "resample axis: output {} centred at {} has no input in [{}, {})", o,
             centre, axis.lo, axis.hi);
    w.assign(static_cast<std::size_t>(last - first), 0.0);
    double sum = 0;
    for (std::int64_t i = first; i < last; ++i) {
      const double d = std::abs((static_cast<double>(i) - centre + 0.5) * inverse);
      const double v = d < 1.0 ? 1.0 - d : 0.0;
      w[static_cast<std::size_t>(i - first)] = v;
      sum += v;
    }
    if (sum != 0)
      for (double& v : w) v /= sum;
    t.first[o] = first;
    t.count[o] = static_cast<int>(last - first);
    t.width = std::max(t.width, t.count[o]);
    all[o] = w;
  }
  t.weights.assign(n * static_cast<std::size_t>(t.width), 0.0f);
  for (std::size_t o = 0; o < n; ++o)
    for (std::size_t k = 0; k < all[o].size(); ++k)
      t.weights[o * static_cast<std::size_t>(t.width) + k] = static_cast<float>(all[o][k]);
  return t;
}

namespace {

// One output row: the vertical pass over the input rows it reads, into `line` (width·C floats).
void verticalPass(const PixelRegion& src, const AxisTaps& ty, std::size_t y, float* line) {
  const std::int64_t rowLen = src.width * src.channels;
  const std::uint8_t* row = src.pixels + (ty.first[y] - src.y0) * rowLen;
  const float* w = ty.weights.data() + y * static_cast<std::size_t>(ty.width);
  const float w0 = w[0];
  for (std::int64_t i = 0; i < rowLen; ++i) line[i] = w0 * static_cast<float>(row[i]);
  for (int k = 1; k < ty.count[y]; ++k) {
    const std::uint8_t* r = row + k * rowLen;
    const float wk = w[k];
    for (std::int64_t i = 0; i < rowLen; ++i) line[i] += wk * static_cast<float>(r[i]);
  }
}

// The horizontal pass of one row of 3-channel pixels into the three planes' rows, mirrored
// when `flip`. K taps per output (zero weights beyond an output's own count).
template <int K>
void horizontalPass3(const float* line, const AxisTaps& tx, std::int64_t x0, bool flip,
                     const float* scale, const float* shift, float* r, float* g, float* b) {
  const auto n = static_cast<std::int64_t>(tx.first.size());
  const int width = K > 0 ? K : tx.width;
  for (std::int64_t x = 0; x < n; ++x) {
    const float* p = line + (tx.first[x] - x0) * 3;
    const float* w = tx.weights.data() + x * width;
    float a0 = 0, a1 = 0, a2 = 0;
    for (int k = 0; k < width; ++k) {
      a0 += w[k] * p[3 * k];
      a1 += w[k] * p[3 * k + 1];
      a2 += w[k] * p[3 * k + 2];
    }
    const std::int64_t o = flip ? n - 1 - x : x;
    r[o] = a0 * scale[0] + shift[0];
    g[o] = a1 * scale[1] + shift[1];
    b[o] = a2 * scale[2] + shift[2];
  }
}

void horizontalPass(const float* line, const AxisTaps& tx, std::int64_t x0, std::int64_t channels,
                    bool flip, const float* scale, const float* shift, float* chwRow,
                    std::int64_t planeSize) {
  const auto n = static_cast<std::int64_t>(tx.first.size());
  if (channels == 3) {
    float *r = chwRow, *g = chwRow + planeSize, *b = chwRow + 2 * planeSize;
    // Fixed tap counts let the compiler unroll the inner loop for the common downscales.
    switch (tx.width) {
      case 2:
        return horizontalPass3<2>(line, tx, x0, flip, scale, shift, r, g, b);
      case 3:
        return horizontalPass3<3>(line, tx, x0, flip, scale, shift, r, g, b);
      case 4:
        return horizontalPass3<4>(line, tx, x0, flip, scale, shift, r, g, b);
      case 5:
        return horizontalPass3<5>(line, tx, x0, flip, scale, shift, r, g, b);
      case 6:
        return horizontalPass3<6>(line, tx, x0, flip, scale, shift, r, g, b);
      default:
        return horizontalPass3<0>(line, tx, x0, flip, scale, shift, r, g, b);
    }
  }
  for (std::int64_t x = 0; x < n; ++x) {
    const float* p = line + (tx.first[x] - x0) * channels;
    const float* w = tx.weights.data() + x * tx.width;
    const std::int64_t o = flip ? n - 1 - x : x;
    for (std::int64_t c = 0; c < channels; ++c) {
      float a = 0;
      for (int k = 0; k < tx.width; ++k) a += w[k] * p[k * channels + c];
      chwRow[c * planeSize + o] = a * scale[c] + shift[c];
    }
  }
}

}  // namespace

void resampleToChw(const PixelRegion& src, const AxisTaps& tx, const AxisTaps& ty, bool flip,
                   const float* scale, const float* shift, float* chw) {
  MS_CHECK(tx.begin() >= src.x0 && tx.end() <= src.x0 + src.width && ty.begin() >= src.y0 &&
               ty.end() <= src.y0 + src.height && src.channels > 0,
           "resampling reads columns [{}, {}) and rows [{}, {}) of a region [{}, {}) x [{}, {})",
           tx.begin(), tx.end(), ty.begin(), ty.end(), src.x0, src.x0 + src.width, src.y0,
           src.y0 + src.height);
  const auto outW = static_cast<std::int64_t>(tx.first.size());
  const auto outH = static_cast<std::int64_t>(ty.first.size());
  // One row of vertically filtered pixels, with `width` zero pixels after it: an output near
  // the right edge reads them with zero weight.
  thread_local std::vector<float> line;
  line.assign(static_cast<std::size_t>((src.width + tx.width) * src.channels), 0.0f);
  for (std::int64_t y = 0; y < outH; ++y) {
    verticalPass(src, ty, static_cast<std::size_t>(y), line.data());
    horizontalPass(line.data(), tx, src.x0, src.channels, flip, scale, shift, chw + y * outW,
                   outW * outH);
  }
}

}  // namespace metasemi::data
