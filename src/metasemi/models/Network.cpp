#include "metasemi/models/Network.h"

#include "metasemi/core/Error.h"
#include "metasemi/models/ConvLarge.h"
#include "metasemi/models/ResNet18.h"

namespace metasemi::models {

std::shared_ptr<Network> makeNetwork(const NetworkSpec& spec) {
  if (spec.architecture == "convlarge") {
    ConvLargeOptions o;
    o.inputChannels = spec.inputChannels;
    o.numClasses = spec.numClasses;
    o.widthFactor = spec.widthFactor;
    o.dropout = spec.dropout;
    return std::make_shared<ConvLargeImpl>(o);
  }
  if (spec.architecture == "resnet18") {
    ResNet18Options o;
    o.inputChannels = spec.inputChannels;
    o.numClasses = spec.numClasses;
    return std::make_shared<ResNet18Impl>(o);
  }
  MS_THROW(core::ConfigError, "architecture: expected convlarge or resnet18, got '{}'",
           spec.architecture);
}

void toChannelsLast(torch::nn::Module& net) {
  torch::NoGradGuard noGrad;
  for (auto& p : net.parameters()) {
    if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
  }
  for (auto& b : net.buffers()) {
    if (b.dim() == 4) b.set_data(b.data().contiguous(torch::MemoryFormat::ChannelsLast));
  }
}

std::int64_t countParameters(const torch::nn::Module& net) {
  std::int64_t n = 0;
  for (const auto& p : net.parameters()) n += p.numel();
  return n;
}

}  // namespace metasemi::models
