#include "metasemi/data/Augment.h"

#include <cmath>

#include "metasemi/core/Error.h"
#include "metasemi/data/JpegDecoder.h"
#include "metasemi/data/Resample.h"

namespace metasemi::data {
namespace {

struct Constants {
  const char* name;
  float mean[3];
  float std[3];
};

// reference-spec §5 (dataloader.py l.10-14) and §6.3 (DALI CropMirrorNormalize / 255).
constexpr Constants kConstants[] = {
    {"cifar10", {0.49139968f, 0.48215841f, 0.44653091f}, {0.24703223f, 0.24348513f, 0.26158784f}},
    {"cifar100", {0.50707516f, 0.48654887f, 0.44091784f}, {0.26733429f, 0.25643846f, 0.27615047f}},
    {"svhn", {0.4376821f, 0.4437697f, 0.47280442f}, {0.19803012f, 0.20101562f, 0.19703614f}},
    {"imagenet", {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}},
};

// Per-channel affine map x ↦ x·scale + shift with scale = 1/(255·std), shift = −mean/std, so
// that the inner loops do one multiply-add per value.
struct Affine {
  std::vector<float> scale, shift;
};

Affine affineOf(const Normalization& norm, std::int64_t channels) {
  MS_CHECK(static_cast<std::int64_t>(norm.mean.size()) == channels &&
               static_cast<std::int64_t>(norm.std.size()) == channels,
           "normalisation for {} channels applied to {}", norm.mean.size(), channels);
  Affine a;
  for (std::int64_t c = 0; c < channels; ++c) {
    a.scale.push_back(1.0f / (255.0f * norm.std[c]));
    a.shift.push_back(-norm.mean[c] / norm.std[c]);
  }
  return a;
}

// Normalises the h×w region whose top-left pixel is `topLeft` in an image with rows of
// `rowStride` bytes into C×h×w floats, mirrored when `flip`.
void normalizeRegion(const std::uint8_t* topLeft, std::int64_t rowStride, const ImageShape& region,
                     bool flip, const Affine& a, float* chw) {
  const std::int64_t H = region.height, W = region.width, C = region.channels;
  for (std::int64_t c = 0; c < C; ++c) {
    float* plane = chw + c * H * W;
    for (std::int64_t y = 0; y < H; ++y) {
      const std::uint8_t* src = topLeft + y * rowStride + c;
      float* row = plane + y * W;
      if (flip) {
        for (std::int64_t x = 0; x < W; ++x)
          row[W - 1 - x] = static_cast<float>(src[x * C]) * a.scale[c] + a.shift[c];
      } else {
        for (std::int64_t x = 0; x < W; ++x)
          row[x] = static_cast<float>(src[x * C]) * a.scale[c] + a.shift[c];
      }
    }
  }
}

// How an encoded-image transform makes its output: the DCT downscaling of the decode, the
// filter taps of both axes in the (downscaled) image, and the flip.
struct EncodedPlan {
  int scaleDenom = 1;
  AxisTaps tx, ty;
  bool flip = false;
};

std::int64_t ceilDiv(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// The largest DCT downscaling (1, 2, 4 or 8) that leaves at least one input pixel per output
// pixel: the crop must cover at least twice the output for 1/2, and so on.
int dctScale(double reduction, bool allowed) {
  int s = 1;
  while (allowed && s < 8 && reduction >= 2.0 * s) s *= 2;
  return s;
}

// Draws the random choices of one sample of an height×width image (the window, then the flip)
// and turns them into filter taps. Random crop: PIL's resize of the cropped window (taps stay
// inside it), as torchvision's RandomResizedCrop. Centre crop: the centre of PIL's resize of the
// whole image. With a downscaled decode the same window is resampled from the 1/s image.
EncodedPlan planEncoded(const AugmentConfig& config, core::Rng& rng, std::int64_t height,
                        std::int64_t width, bool allowScaled) {
  EncodedPlan p;
  ResampleAxis ax, ay;
  if (config.kind == AugmentKind::kRandomResizedCrop) {
    const CropWindow win = drawResizedCrop(rng, height, width, config);
    p.flip = config.flip && rng.uniform() < 0.5;
    const int s =
        dctScale(static_cast<double>(std::min(win.w, win.h)) / static_cast<double>(config.crop),
                 allowScaled);
    auto axis = [&](std::int64_t pos, std::int64_t len, std::int64_t full) {
      ResampleAxis a;
      a.start = static_cast<double>(pos) / s;
      a.scale = static_cast<double>(len) / s / static_cast<double>(config.crop);
      a.outSize = config.crop;
      a.lo = pos / s;
      a.hi = std::min(ceilDiv(pos + len, s), ceilDiv(full, s));
      return a;
    };
    ax = axis(win.x, win.w, width);
    ay = axis(win.y, win.h, height);
    p.scaleDenom = s;
  } else if (config.kind == AugmentKind::kResizeCentreCrop) {
    const auto [h, w] = resizedShorterSide(height, width, config.resize);
    const double sx = static_cast<double>(width) / static_cast<double>(w);
    const double sy = static_cast<double>(height) / static_cast<double>(h);
    const int s = dctScale(std::min(sx, sy), allowScaled);
    auto axis = [&](std::int64_t offset, double scale, std::int64_t full) {
      ResampleAxis a;
      a.start = static_cast<double>(offset) * scale / s;
      a.scale = scale / s;
      a.outSize = config.crop;
      a.lo = 0;
      a.hi = ceilDiv(full, s);
      return a;
    };
    ax = axis((w - config.crop) / 2, sx, width);
    ay = axis((h - config.crop) / 2, sy, height);
    p.scaleDenom = s;
  } else {
    MS_THROW(core::ConfigError, "encoded images need a resized-crop transform (random or centre)");
  }
  p.tx = axisTaps(ax);
  p.ty = axisTaps(ay);
  return p;
}

}  // namespace

Normalization datasetNormalization(const std::string& dataset,
                                   const std::vector<double>& storedMean,
                                   const std::vector<double>& storedStd, std::int64_t channels) {
  for (const auto& k : kConstants) {
    if (dataset == k.name) {
      MS_REQUIRE(channels == 3, core::ConfigError,
                 "dataset {}: expected 3-channel images, found {} channels", dataset, channels);
      return {{k.mean, k.mean + 3}, {k.std, k.std + 3}};
    }
  }
  MS_REQUIRE(static_cast<std::int64_t>(storedMean.size()) == channels &&
                 static_cast<std::int64_t>(storedStd.size()) == channels,
             core::ConfigError,
             "dataset {}: expected a stored mean and std of {} values each, found {} and {}",
             dataset, channels, storedMean.size(), storedStd.size());
  Normalization n;
  for (std::int64_t c = 0; c < channels; ++c) {
    MS_REQUIRE(std::isfinite(storedStd[c]) && storedStd[c] > 0 && std::isfinite(storedMean[c]),
               core::ConfigError, "dataset {}: stored mean/std of channel {} is {}/{}", dataset, c,
               storedMean[c], storedStd[c]);
    n.mean.push_back(static_cast<float>(storedMean[c]));
    n.std.push_back(static_cast<float>(storedStd[c]));
  }
  return n;
}

bool datasetFlips(const std::string& dataset) {
  return dataset == "cifar10" || dataset == "cifar100" || dataset == "imagenet";
}

ImageShape AugmentConfig::outputShape(const ImageShape& in) const {
  if (kind == AugmentKind::kRandomResizedCrop || kind == AugmentKind::kResizeCentreCrop)
    return {crop, crop, in.channels};
  return in;
}

AugmentConfig trainAugment(const std::string& dataset, bool encoded, Normalization norm,
                           std::int64_t crop) {
  AugmentConfig c;
  c.kind = encoded ? AugmentKind::kRandomResizedCrop : AugmentKind::kPadCrop;
  c.flip = datasetFlips(dataset);
  c.crop = crop;
  c.norm = std::move(norm);
  return c;
}

AugmentConfig evalAugment(bool encoded, Normalization norm, std::int64_t resize,
                          std::int64_t crop) {
  AugmentConfig c;
  c.kind = encoded ? AugmentKind::kResizeCentreCrop : AugmentKind::kNormalizeOnly;
  c.resize = resize;
  c.crop = crop;
  c.norm = std::move(norm);
  MS_REQUIRE(!encoded || (crop > 0 && resize >= crop), core::ConfigError,
             "evaluation resize {} must be at least the crop {} (and positive)", resize, crop);
  return c;
}

std::pair<std::int64_t, std::int64_t> resizedShorterSide(std::int64_t height, std::int64_t width,
                                                         std::int64_t resize) {
  const std::int64_t shorter = std::min(height, width);
  const double scale = static_cast<double>(resize) / static_cast<double>(shorter);
  const std::int64_t h =
      height == shorter ? resize : std::max<std::int64_t>(resize, std::lround(height * scale));
  const std::int64_t w =
      width == shorter ? resize : std::max<std::int64_t>(resize, std::lround(width * scale));
  return {h, w};
}

PadCropDraw drawPadCrop(core::Rng& rng, std::int64_t pad, bool flip) {
  PadCropDraw d;
  d.dy = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(2 * pad + 1)));
  d.dx = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(2 * pad + 1)));
  d.flip = flip && rng.uniform() < 0.5;
  return d;
}

CropWindow drawResizedCrop(core::Rng& rng, std::int64_t height, std::int64_t width,
                           const AugmentConfig& config) {
  const double area = static_cast<double>(height) * static_cast<double>(width);
  for (int attempt = 0; attempt < config.attempts; ++attempt) {
    const double target =
        area * (config.areaMin + (config.areaMax - config.areaMin) * rng.uniform());
    const bool reciprocal = rng.uniform() < 0.5;
    double ratio;  // width / height of the window
    if (reciprocal) {
      const double lo = 1.0 / config.ratioMax, hi = 1.0 / config.ratioMin;
      ratio = 1.0 / (lo + (hi - lo) * rng.uniform());
    } else {
      ratio = config.ratioMin + (config.ratioMax - config.ratioMin) * rng.uniform();
    }
    const auto w = static_cast<std::int64_t>(std::lround(std::sqrt(target * ratio)));
    const auto h = static_cast<std::int64_t>(std::lround(std::sqrt(target / ratio)));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      CropWindow win;
      win.w = w;
      win.h = h;
      win.x = static_cast<std::int64_t>(rng.uniform() * static_cast<double>(width - w));
      win.y = static_cast<std::int64_t>(rng.uniform() * static_cast<double>(height - h));
      return win;
    }
  }
  const std::int64_t side = std::min(height, width);
  return {(width - side) / 2, (height - side) / 2, side, side};
}

void padCropNormalize(const std::uint8_t* hwc, const ImageShape& in, std::int64_t pad,
                      const PadCropDraw& draw, const Normalization& norm, float* chw) {
  const std::int64_t H = in.height, W = in.width, C = in.channels;
  const Affine a = affineOf(norm, C);
  for (std::int64_t c = 0; c < C; ++c) {
    // A zero pixel in uint8 space normalises to the shift alone (reference-spec §5).
    const float zero = a.shift[c];
    float* plane = chw + c * H * W;
    for (std::int64_t y = 0; y < H; ++y) {
      const std::int64_t sy = y + draw.dy - pad;
      float* row = plane + y * W;
      for (std::int64_t x = 0; x < W; ++x) {
        const std::int64_t cx = draw.flip ? W - 1 - x : x;  // flip after the crop
        const std::int64_t sx = cx + draw.dx - pad;
        row[x] = (sy >= 0 && sy < H && sx >= 0 && sx < W)
                     ? static_cast<float>(hwc[(sy * W + sx) * C + c]) * a.scale[c] + a.shift[c]
                     : zero;
      }
    }
  }
}

void normalizeToChw(const std::uint8_t* hwc, const ImageShape& in, bool flip,
                    const Normalization& norm, float* chw) {
  normalizeRegion(hwc, in.width * in.channels, in, flip, affineOf(norm, in.channels), chw);
}

void augmentFixed(const std::uint8_t* hwc, const ImageShape& in, const AugmentConfig& config,
                  core::Rng& rng, float* chw) {
  switch (config.kind) {
    case AugmentKind::kNormalizeOnly:
      normalizeToChw(hwc, in, false, config.norm, chw);
      return;
    case AugmentKind::kPadCrop:
      padCropNormalize(hwc, in, config.pad, drawPadCrop(rng, config.pad, config.flip), config.norm,
                       chw);
      return;
    default:
      MS_THROW(core::ConfigError,
               "resized crops apply to encoded images; fixed-size {}x{} images use pad-crop",
               in.height, in.width);
  }
}

void augmentDecoded(const Image& image, const AugmentConfig& config, core::Rng& rng, float* chw) {
  const EncodedPlan plan = planEncoded(config, rng, image.height, image.width, false);
  const Affine a = affineOf(config.norm, image.channels);
  resampleToChw({image.pixels.data(), 0, 0, image.width, image.height, image.channels}, plan.tx,
                plan.ty, plan.flip, a.scale.data(), a.shift.data(), chw);
}

void augmentEncoded(const std::uint8_t* data, std::size_t size, std::int64_t channels,
                    const std::string& what, const AugmentConfig& config, core::Rng& rng,
                    float* chw) {
  if (!JpegDecoder::isJpeg(data, size)) {
    augmentDecoded(decodeImage(data, size, channels, what), config, rng, chw);
    return;
  }
  // One decoder and one region buffer per thread, reused for every image.
  thread_local JpegDecoder decoder;
  thread_local DecodedRegion region;
  EncodedPlan plan;
  decoder.decode(
      data, size, what, static_cast<int>(channels),
      [&](const JpegInfo& info) {
        plan = planEncoded(config, rng, info.height, info.width, config.scaledDecode);
        return RegionRequest{plan.scaleDenom, plan.tx.begin(), plan.ty.begin(), plan.tx.end(),
                             plan.ty.end()};
      },
      region);
  const Affine a = affineOf(config.norm, channels);
  resampleToChw(
      {region.pixels.data(), region.x0, region.y0, region.width, region.height, region.channels},
      plan.tx, plan.ty, plan.flip, a.scale.data(), a.shift.data(), chw);
}

}  // namespace metasemi::data
