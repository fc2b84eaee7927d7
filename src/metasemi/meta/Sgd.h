// SGD with momentum and coupled weight decay, as torch.optim.SGD(momentum=m, weight_decay=wd,
// nesterov=False, dampening=0): d = grad + wd·θ; buf = d on the first step, else
// buf = m·buf + d; θ -= lr·buf. The update itself is LibTorch's torch::optim::SGD (same rule);
// this class adds what a checkpoint needs: reading and restoring the momentum buffers.
#pragma once

#include <torch/torch.h>

#include <vector>

namespace metasemi::meta {

class Sgd {
 public:
  /// `params`: the tensors to update (any shapes, float, one device), in a fixed order that
  /// momentumBuffers() follows.
  Sgd(std::vector<torch::Tensor> params, double momentum, double weightDecay);

  /// Sets the learning rate of the next step() calls.
  void setLr(double lr);
  double lr() const;

  /// Drops every parameter's gradient (as zero_grad(set_to_none=True): the next backward
  /// writes fresh gradients, the same values as zeroing then accumulating). After
  /// setGradientStorage(), zeroes the given storage instead, which backward then accumulates
  /// into in place.
  void zeroGrad();

  /// Makes `storage[i]` parameter i's gradient for good (same shape, dtype, device and
  /// strides as the parameter; e.g. views into a communication buffer). zeroGrad() then
  /// zeroes it in place instead of dropping it.
  void setGradientStorage(const std::vector<torch::Tensor>& storage);

  /// One update from the parameters' current .grad(). Parameters without a gradient are skipped.
  void step();

  /// The momentum buffers, one per parameter (same shape), or undefined tensors before the
  /// parameter's first step.
  std::vector<torch::Tensor> momentumBuffers() const;

  /// Restores momentum buffers saved by momentumBuffers() (undefined entries: no buffer yet).
  /// Values are copied. Throws core::IoError on a count or shape mismatch.
  void setMomentumBuffers(const std::vector<torch::Tensor>& buffers);

  const std::vector<torch::Tensor>& params() const { return params_; }

 private:
  std::vector<torch::Tensor> params_;
  torch::optim::SGD optimizer_;
  bool gradientsInPlace_ = false;
};

}  // namespace metasemi::meta
