// BatchNorm2d whose training-mode statistics can be computed over the whole global batch, across
// ranks, as PyTorch's SyncBatchNorm (used by the reference's ImageNet script). Without a sync
// group it is exactly torch::nn::BatchNorm2d (same parameters, buffers, state-dict keys and
// numerics), so the models use it everywhere and the trainer switches it on with --sync-bn.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>

namespace metasemi::models {

/// Collective: replaces `t` by its element-wise sum over ranks, in place. `t`: 1-d float64, on
/// the device of the activations. Every rank of the group must call it in the same order.
using SumAcrossRanks = std::function<void(torch::Tensor& t)>;

/// BatchNorm2d with an optional cross-rank reduction of the batch statistics. Same parameters,
/// buffers, initialisation and numerics as torch::nn::BatchNorm2d (affine, tracking running
/// statistics), computed by the same torch::batch_norm when not synchronised.
class SyncBatchNormImpl : public torch::nn::Cloneable<SyncBatchNormImpl> {
 public:
  explicit SyncBatchNormImpl(std::int64_t features)
      : SyncBatchNormImpl(torch::nn::BatchNormOptions(features)) {}
  explicit SyncBatchNormImpl(const torch::nn::BatchNormOptions& options);

  /// Registers the parameters (weight 1, bias 0) and the running statistics (mean 0, var 1).
  void reset() override;
  void pretty_print(std::ostream& stream) const override;

  /// `x`: float [N, C, H, W] (NCHW or channels-last). In training mode with a sync group, the
  /// mean and (biased) variance are those of the union of every rank's batch, the running
  /// statistics are updated with them (unbiased variance over the global count), and the
  /// backward pass reduces the two per-channel gradient sums across ranks, so the input
  /// gradient is that of the sum of every rank's loss. Collective in that case (forward and
  /// backward); otherwise torch::nn::BatchNorm2d's computation.
  torch::Tensor forward(const torch::Tensor& x);

  /// Sets (or clears, with nullptr) the reduction used in training mode.
  void setSync(std::shared_ptr<const SumAcrossRanks> sum) { sum_ = std::move(sum); }
  /// True when training-mode statistics are reduced across ranks.
  bool synced() const { return sum_ != nullptr; }

  torch::nn::BatchNormOptions options;
  torch::Tensor weight, bias;                                    ///< [C]
  torch::Tensor running_mean, running_var, num_batches_tracked;  ///< [C], [C], 0-d int64

 private:
  std::shared_ptr<const SumAcrossRanks> sum_;
};
TORCH_MODULE(SyncBatchNorm);

/// Sets the reduction of every SyncBatchNorm in `net` (nullptr: per-rank statistics again).
/// Returns the number of layers changed.
int setBatchNormSync(torch::nn::Module& net, std::shared_ptr<const SumAcrossRanks> sum);

/// The training-mode batch normalisation of `x` with statistics over every rank's batch; the
/// function SyncBatchNorm uses, exposed for tests. `weight`, `bias`, `runningMean`,
/// `runningVar`: [C], x's dtype and device; the running statistics are updated in place.
/// Collective (forward and backward).
torch::Tensor syncBatchNorm(const torch::Tensor& x, const torch::Tensor& weight,
                            const torch::Tensor& bias, const torch::Tensor& runningMean,
                            const torch::Tensor& runningVar, double momentum, double eps,
                            const SumAcrossRanks& sum);

}  // namespace metasemi::models
