// ConvLarge of the reference (model.py): nine conv-BN-LeakyReLU(0.1) blocks, max-pool +
// Dropout2d after blocks 3 and 6, global average pool, one linear layer.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "metasemi/models/Network.h"

namespace metasemi::models {

/// Settings of ConvLarge.
struct ConvLargeOptions {
  std::int64_t inputChannels = 3;
  std::int64_t numClasses = 10;
  /// Channel multiplier: widths are round(128·w), round(256·w), round(512·w) (at least 1).
  double widthFactor = 1.0;
  /// Dropout2d probability after each max-pool; 0 leaves the module out (as `stochastic=False`).
  double dropout = 0.5;
};

/// ConvLarge. State-dict keys: `block{1..9}.0.weight` (conv, no bias),
/// `block{1..9}.1.{weight,bias,running_mean,running_var,num_batches_tracked}` (BatchNorm2d,
/// eps 1e-5, momentum 0.1), `classifier.0.{weight,bias}`.
class ConvLargeImpl : public Network {
 public:
  explicit ConvLargeImpl(const ConvLargeOptions& options = {});

  /// Logits. `x`: float [N, inputChannels, H, W] with H, W ≥ 18 (block 7 is a valid 3×3 conv
  /// after two 2×2 pools); returns float [N, numClasses].
  torch::Tensor forward(torch::Tensor x) override;

  /// The pooled block-9 feature: float [N, round(128·w)].
  torch::Tensor features(torch::Tensor x) override;

  std::int64_t numClasses() const override { return options_.numClasses; }

  const ConvLargeOptions& options() const { return options_; }

 private:
  ConvLargeOptions options_;
  torch::nn::Sequential block1_{nullptr}, block2_{nullptr}, block3_{nullptr}, block4_{nullptr},
      block5_{nullptr}, block6_{nullptr}, block7_{nullptr}, block8_{nullptr}, block9_{nullptr};
  torch::nn::AdaptiveAvgPool2d avgPool_{nullptr};
  torch::nn::Sequential maxpool_{nullptr};
  torch::nn::Sequential classifier_{nullptr};
};

TORCH_MODULE(ConvLarge);

}  // namespace metasemi::models
