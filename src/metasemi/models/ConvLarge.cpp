#include "metasemi/models/ConvLarge.h"

#include <algorithm>
#include <cmath>

#include "metasemi/core/Error.h"
#include "metasemi/models/SyncBatchNorm.h"

namespace metasemi::models {
namespace {

std::int64_t scaled(std::int64_t channels, double factor) {
  return std::max<std::int64_t>(1, std::llround(static_cast<double>(channels) * factor));
}

// conv(bias=False) -> BatchNorm2d (eps 1e-5, momentum 0.1) -> LeakyReLU(0.1, inplace): the
// reference's conv_block, whose children "0", "1", "2" give the state-dict keys.
torch::nn::Sequential convBlock(std::int64_t in, std::int64_t out, std::int64_t kernel,
                                std::int64_t padding) {
  namespace nn = torch::nn;
  return nn::Sequential(
      nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(1).padding(padding).bias(false)),
      SyncBatchNorm(nn::BatchNormOptions(out).eps(1e-5).momentum(0.1)),
      nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.1).inplace(true)));
}

}  // namespace

ConvLargeImpl::ConvLargeImpl(const ConvLargeOptions& options) : options_(options) {
  MS_REQUIRE(options.inputChannels >= 1, core::ConfigError,
             "ConvLarge: input channels must be >= 1, got {}", options.inputChannels);
  MS_REQUIRE(options.numClasses >= 1, core::ConfigError,
             "ConvLarge: number of classes must be >= 1, got {}", options.numClasses);
  MS_REQUIRE(options.widthFactor > 0.0, core::ConfigError,
             "ConvLarge: width factor must be > 0, got {}", options.widthFactor);
  MS_REQUIRE(options.dropout >= 0.0 && options.dropout < 1.0, core::ConfigError,
             "ConvLarge: dropout must be in [0, 1), got {}", options.dropout);
  const double w = options.widthFactor;
  const std::int64_t c1 = scaled(128, w), c2 = scaled(256, w), c3 = scaled(512, w);
  // Registration order is the reference's __init__ order, so the state-dict order matches too.
  block1_ = register_module("block1", convBlock(options.inputChannels, c1, 3, 1));
  block2_ = register_module("block2", convBlock(c1, c1, 3, 1));
  block3_ = register_module("block3", convBlock(c1, c1, 3, 1));
  block4_ = register_module("block4", convBlock(c1, c2, 3, 1));
  block5_ = register_module("block5", convBlock(c2, c2, 3, 1));
  block6_ = register_module("block6", convBlock(c2, c2, 3, 1));
  block7_ = register_module("block7", convBlock(c2, c3, 3, 0));
  block8_ = register_module("block8", convBlock(c3, c2, 1, 0));
  block9_ = register_module("block9", convBlock(c2, c1, 1, 0));
  avgPool_ = register_module("avg_pool",
                             torch::nn::AdaptiveAvgPool2d(torch::nn::AdaptiveAvgPool2dOptions(1)));
  torch::nn::Sequential pool(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2).stride(2)));
  if (options.dropout > 0.0) {
    pool->push_back(torch::nn::Dropout2d(torch::nn::Dropout2dOptions(options.dropout)));
  }
  maxpool_ = register_module("maxpool", pool);
  classifier_ = register_module("classifier",
                                torch::nn::Sequential(torch::nn::Linear(c1, options.numClasses)));
}

torch::Tensor ConvLargeImpl::features(torch::Tensor x) {
  x = block3_->forward(block2_->forward(block1_->forward(x)));
  x = maxpool_->forward(x);
  x = block6_->forward(block5_->forward(block4_->forward(x)));
  x = maxpool_->forward(x);
  x = block9_->forward(block8_->forward(block7_->forward(x)));
  // flatten rather than view: a channels-last [N, C, 1, 1] tensor is not viewable as [N, C] in
  // every LibTorch version, and flatten copies nothing when it is.
  return avgPool_->forward(x).flatten(1);
}

torch::Tensor ConvLargeImpl::forward(torch::Tensor x) {
  return classifier_->forward(features(std::move(x)));
}

}  // namespace metasemi::models
