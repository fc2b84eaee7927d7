// ResNet-18 as torchvision.models.resnet18(num_classes=C): same layers, names and initialisation.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "metasemi/models/Network.h"
#include "metasemi/models/SyncBatchNorm.h"

namespace metasemi::models {

/// torchvision's BasicBlock: conv3×3-BN-ReLU-conv3×3-BN, plus the identity or a 1×1 conv-BN
/// `downsample` shortcut, then ReLU.
class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(std::int64_t inPlanes, std::int64_t planes, std::int64_t stride);
  /// `x`: float [N, inPlanes, H, W]; returns float [N, planes, H/stride, W/stride].
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  SyncBatchNorm bn1_{nullptr}, bn2_{nullptr};
  torch::nn::Sequential downsample_{nullptr};
};

TORCH_MODULE(BasicBlock);

/// Settings of ResNet-18.
struct ResNet18Options {
  std::int64_t inputChannels = 3;  ///< torchvision's is 3; other values change only conv1
  std::int64_t numClasses = 1000;
};

/// ResNet-18. State-dict keys as torchvision's: `conv1.weight`, `bn1.*`,
/// `layer{1..4}.{0,1}.{conv1,bn1,conv2,bn2}.*`, `layer{2..4}.0.downsample.{0,1}.*`, `fc.*`.
class ResNet18Impl : public Network {
 public:
  explicit ResNet18Impl(const ResNet18Options& options = {});

  /// Logits. `x`: float [N, inputChannels, H, W]; returns float [N, numClasses].
  torch::Tensor forward(torch::Tensor x) override;

  /// The pooled layer-4 feature: float [N, 512].
  torch::Tensor features(torch::Tensor x) override;

  std::int64_t numClasses() const override { return options_.numClasses; }

 private:
  ResNet18Options options_;
  torch::nn::Conv2d conv1_{nullptr};
  SyncBatchNorm bn1_{nullptr};
  torch::nn::MaxPool2d maxpool_{nullptr};
  torch::nn::Sequential layer1_{nullptr}, layer2_{nullptr}, layer3_{nullptr}, layer4_{nullptr};
  torch::nn::AdaptiveAvgPool2d avgpool_{nullptr};
  torch::nn::Linear fc_{nullptr};
};

TORCH_MODULE(ResNet18);

}  // namespace metasemi::models
