// The classifiers the trainer can run, behind one interface so the MetaSemi step, evaluation and
// checkpoints do not depend on the architecture.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>

namespace metasemi::models {

/// A classifier network: images in, logits out. Parameter and buffer names are the PyTorch
/// `state_dict` keys of the reference model.
class Network : public torch::nn::Module {
 public:
  /// Logits. `x`: float [N, C, H, W] on the network's device (NCHW or channels-last); returns
  /// float [N, numClasses].
  virtual torch::Tensor forward(torch::Tensor x) = 0;

  /// The globally pooled feature the classifier reads (used for t-SNE plots). `x` as forward();
  /// returns float [N, featureDim].
  virtual torch::Tensor features(torch::Tensor x) = 0;

  /// Number of output classes.
  virtual std::int64_t numClasses() const = 0;
};

/// What to build.
struct NetworkSpec {
  std::string architecture = "convlarge";  ///< "convlarge" or "resnet18"
  std::int64_t inputChannels = 3;          ///< channels of the images (1 for MNIST-like data)
  std::int64_t numClasses = 10;
  double widthFactor = 1.0;  ///< ConvLarge channel multiplier (1.0 = 128/256/512)
  double dropout = 0.5;      ///< ConvLarge Dropout2d probability (0 = the reference's
                             ///< `stochastic=False`, no dropout module)
};

/// Builds the network named by `spec` with PyTorch's default initialisation (drawn from the
/// global torch generator). Throws core::ConfigError for an unknown architecture or a value out
/// of range.
std::shared_ptr<Network> makeNetwork(const NetworkSpec& spec);

/// Converts every 4-D parameter and buffer of `net` to channels-last memory format in place
/// (values unchanged). With channels-last inputs, oneDNN convolutions then run without
/// reordering on every call.
void toChannelsLast(torch::nn::Module& net);

/// Total number of scalar parameters of `net`.
std::int64_t countParameters(const torch::nn::Module& net);

}  // namespace metasemi::models
