// Training augmentation and normalisation exactly as the reference (reference-spec §5, §6.3):
//  - fixed-size images (CIFAR, SVHN, IDX): zero-pad `pad` pixels (value 0 in uint8 space, i.e.
//    before normalisation), random crop back to the input size, horizontal flip with p = 0.5
//    where the dataset flips, then (x/255 − mean)/std per channel;
//  - encoded images (ImageNet): random-resized crop (area [0.1, 1], aspect [0.8, 1.25], up to
//    100 attempts, then the centred square), resize to crop×crop, flip p = 0.5, normalise;
//  - evaluation: normalisation only (fixed-size) or shorter side to `resize`, centred crop.
// Every random choice of a sample comes from one core::Rng seeded for that sample, so the output
// does not depend on which thread processes it. Outputs are float32 CHW.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "metasemi/core/Random.h"
#include "metasemi/data/Image.h"
#include "metasemi/data/SampleSource.h"

namespace metasemi::data {

/// Per-channel mean and standard deviation of pixels scaled to [0, 1].
struct Normalization {
  std::vector<float> mean, std;
};

/// The normalisation of `dataset`: the reference's constants for cifar10, cifar100, svhn and
/// imagenet; otherwise `storedMean`/`storedStd` (the statistics the shard set stores). Throws
/// core::ConfigError when the stored values are missing, not `channels` long, or std <= 0.
Normalization datasetNormalization(const std::string& dataset,
                                   const std::vector<double>& storedMean,
                                   const std::vector<double>& storedStd, std::int64_t channels);

/// True when training flips images of `dataset` horizontally: CIFAR-10/100 and ImageNet (as the
/// reference); not SVHN (as the reference) nor digit/clothing-like IDX sets, whose classes are
/// not mirror-symmetric in general (a choice of this project: the reference has no such set).
bool datasetFlips(const std::string& dataset);

/// What is done to one sample.
enum class AugmentKind {
  kNormalizeOnly,      ///< fixed-size evaluation
  kPadCrop,            ///< fixed-size training: pad, random crop, optional flip
  kRandomResizedCrop,  ///< encoded training
  kResizeCentreCrop,   ///< encoded evaluation
};

struct AugmentConfig {
  AugmentKind kind = AugmentKind::kNormalizeOnly;
  std::int64_t pad = 4;                 ///< kPadCrop: zero padding on every side
  bool flip = false;                    ///< kPadCrop, kRandomResizedCrop: flip with probability 0.5
  std::int64_t crop = 224;              ///< encoded kinds: output side
  std::int64_t resize = 256;            ///< kResizeCentreCrop: shorter side before the crop
  double areaMin = 0.1, areaMax = 1.0;  ///< kRandomResizedCrop: fraction of the image area
  double ratioMin = 0.8, ratioMax = 1.25;  ///< kRandomResizedCrop: aspect ratio w/h
  int attempts = 100;                      ///< kRandomResizedCrop: tries before the fallback
  /// Encoded kinds: decode JPEG files downscaled by 2, 4 or 8 in the DCT domain when the crop
  /// covers at least that many times the output size (the crops stay the same; false decodes
  /// every image at full size).
  bool scaledDecode = true;
  Normalization norm;

  /// True when the result of a sample depends on its random generator.
  bool isRandom() const {
    return kind == AugmentKind::kPadCrop || kind == AugmentKind::kRandomResizedCrop;
  }
  /// Shape (H, W, C) of one output sample for inputs of shape `in` (fixed-size) or decoded to
  /// `in.channels` channels (encoded).
  ImageShape outputShape(const ImageShape& in) const;
};

/// The reference's training augmentation for `dataset`: kPadCrop (pad 4) for fixed-size images,
/// kRandomResizedCrop to `crop` for encoded ones; flips as datasetFlips().
AugmentConfig trainAugment(const std::string& dataset, bool encoded, Normalization norm,
                           std::int64_t crop = 224);

/// The reference's evaluation transform: kNormalizeOnly for fixed-size images,
/// kResizeCentreCrop (`resize`, `crop`) for encoded ones.
AugmentConfig evalAugment(bool encoded, Normalization norm, std::int64_t resize = 256,
                          std::int64_t crop = 224);

/// Random choices of one padded crop: the crop's corner in the padded image, in [0, 2·pad].
struct PadCropDraw {
  std::int64_t dy = 0, dx = 0;
  bool flip = false;
};

/// Draws a pad-crop: dy, then dx, then (only when `flip`) a fair coin.
PadCropDraw drawPadCrop(core::Rng& rng, std::int64_t pad, bool flip);

/// Draws a random-resized-crop window of an h×w image as DALI 0.13's generator does: area
/// fraction uniform in [areaMin, areaMax], a coin choosing the aspect ratio from
/// [ratioMin, ratioMax] or its reciprocal range, side lengths rounded, corner uniform; after
/// `attempts` windows that do not fit, the centred min(h, w) square.
CropWindow drawResizedCrop(core::Rng& rng, std::int64_t height, std::int64_t width,
                           const AugmentConfig& config);

/// The size (height, width) of an height×width image after kResizeCentreCrop's resize: the
/// shorter side to `resize`, the other keeping the aspect ratio (rounded, never below `resize`).
std::pair<std::int64_t, std::int64_t> resizedShorterSide(std::int64_t height, std::int64_t width,
                                                         std::int64_t resize);

/// Writes the padded crop of `hwc` (uint8, shape `in`) to `chw` (float32, C×H×W, same H and W),
/// flipped horizontally after the crop when `draw.flip`, normalised with `norm`.
void padCropNormalize(const std::uint8_t* hwc, const ImageShape& in, std::int64_t pad,
                      const PadCropDraw& draw, const Normalization& norm, float* chw);

/// Writes `hwc` (uint8, shape `in`) to `chw` (float32, C×H×W), mirrored when `flip`, normalised.
void normalizeToChw(const std::uint8_t* hwc, const ImageShape& in, bool flip,
                    const Normalization& norm, float* chw);

/// Transforms one fixed-size image `hwc` (uint8, shape `in`) into `chw` (float32,
/// config.outputShape(in) in CHW order) drawing from `rng`.
void augmentFixed(const std::uint8_t* hwc, const ImageShape& in, const AugmentConfig& config,
                  core::Rng& rng, float* chw);

/// Transforms one decoded image into `chw` (float32, C×crop×crop) drawing from `rng`: the
/// window of config.kind, resampled with PIL's antialiased bilinear filter (Resample.h),
/// flipped, normalised.
void augmentDecoded(const Image& image, const AugmentConfig& config, core::Rng& rng, float* chw);

/// Transforms one encoded image (`size` bytes at `data`, decoded to `channels` channels) into
/// `chw` (float32, channels×crop×crop) drawing from `rng`, as augmentDecoded on the whole decoded
/// image would, but for JPEG files the window is drawn from the header's size and only the
/// rows and iMCU columns it covers are decoded, downscaled in the DCT domain when
/// config.scaledDecode allows (JpegDecoder.h). Other formats (PNG, ...) are decoded whole.
/// Throws core::IoError naming `what` for undecodable data.
void augmentEncoded(const std::uint8_t* data, std::size_t size, std::int64_t channels,
                    const std::string& what, const AugmentConfig& config, core::Rng& rng,
                    float* chw);

}  // namespace metasemi::data
