#include "metasemi/models/ResNet18.h"

#include <string>

#include "metasemi/core/Error.h"

namespace metasemi::models {
namespace nn = torch::nn;

namespace {

nn::Conv2d conv(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride,
                std::int64_t padding) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(false));
}

nn::Sequential makeLayer(std::int64_t& inPlanes, std::int64_t planes, std::int64_t stride) {
  nn::Sequential layer;
  layer->push_back(BasicBlock(inPlanes, planes, stride));
  inPlanes = planes;
  layer->push_back(BasicBlock(inPlanes, planes, 1));
  return layer;
}

}  // namespace

BasicBlockImpl::BasicBlockImpl(std::int64_t inPlanes, std::int64_t planes, std::int64_t stride) {
  conv1_ = register_module("conv1", conv(inPlanes, planes, 3, stride, 1));
  bn1_ = register_module("bn1", SyncBatchNorm(planes));
  conv2_ = register_module("conv2", conv(planes, planes, 3, 1, 1));
  bn2_ = register_module("bn2", SyncBatchNorm(planes));
  if (stride != 1 || inPlanes != planes) {
    downsample_ = register_module(
        "downsample", nn::Sequential(conv(inPlanes, planes, 1, stride, 0), SyncBatchNorm(planes)));
  }
}

torch::Tensor BasicBlockImpl::forward(torch::Tensor x) {
  auto out = bn1_->forward(conv1_->forward(x)).relu_();
  out = bn2_->forward(conv2_->forward(out));
  const auto identity = downsample_ ? downsample_->forward(x) : x;
  out += identity;
  return out.relu_();
}

ResNet18Impl::ResNet18Impl(const ResNet18Options& options) : options_(options) {
  MS_REQUIRE(options.inputChannels >= 1, core::ConfigError,
             "ResNet-18: input channels must be >= 1, got {}", options.inputChannels);
  MS_REQUIRE(options.numClasses >= 1, core::ConfigError,
             "ResNet-18: number of classes must be >= 1, got {}", options.numClasses);
  conv1_ = register_module("conv1", conv(options.inputChannels, 64, 7, 2, 3));
  bn1_ = register_module("bn1", SyncBatchNorm(64));
  maxpool_ =
      register_module("maxpool", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).padding(1)));
  std::int64_t inPlanes = 64;
  layer1_ = register_module("layer1", makeLayer(inPlanes, 64, 1));
  layer2_ = register_module("layer2", makeLayer(inPlanes, 128, 2));
  layer3_ = register_module("layer3", makeLayer(inPlanes, 256, 2));
  layer4_ = register_module("layer4", makeLayer(inPlanes, 512, 2));
  avgpool_ = register_module("avgpool", nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions(1)));
  fc_ = register_module("fc", nn::Linear(512, options.numClasses));

  // torchvision's initialisation: He-normal (fan_out, ReLU) convolutions, BN weight 1 and bias 0;
  // the linear layer keeps PyTorch's default.
  torch::NoGradGuard noGrad;
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* c = module->as<nn::Conv2d>()) {
      nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto* b = module->as<SyncBatchNorm>()) {
      nn::init::ones_(b->weight);
      nn::init::zeros_(b->bias);
    }
  }
}

torch::Tensor ResNet18Impl::features(torch::Tensor x) {
  x = maxpool_->forward(bn1_->forward(conv1_->forward(x)).relu_());
  x = layer4_->forward(layer3_->forward(layer2_->forward(layer1_->forward(x))));
  return avgpool_->forward(x).flatten(1);
}

torch::Tensor ResNet18Impl::forward(torch::Tensor x) {
  return fc_->forward(features(std::move(x)));
}

}  // namespace metasemi::models
