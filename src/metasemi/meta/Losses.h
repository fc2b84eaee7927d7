// The losses of the reference scripts and the mix-up coefficient sampler.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/torch.h>

#include <cstdint>

namespace metasemi::meta {

/// F.cross_entropy(logits, labels) (mean over the batch). `logits`: float [B, K]; `labels`: int64
/// [B] in [0, K); same device. Returns a 0-dim tensor.
torch::Tensor crossEntropy(const torch::Tensor& logits, const torch::Tensor& labels);

/// F.kl_div(log_softmax(logits), targets, reduction='batchmean') = Σ t·(log t − log p)/B with
/// 0·log 0 = 0; its gradient equals that of the soft-target cross-entropy. `logits`, `targets`:
/// float [B, K], same device, target rows summing to 1 or 0. Returns a 0-dim tensor.
torch::Tensor mixUpLoss(const torch::Tensor& logits, const torch::Tensor& targets);

/// The unlabeled consistency term: mean over the batch of Σ_k (softmax(logits) − targets)², i.e.
/// the reference's norm(p − ŷ, dim=1)² mean (the sum over classes, not the mean). `logits`,
/// `targets`: float [B, K], same device. Returns a 0-dim tensor.
torch::Tensor consistencyLoss(const torch::Tensor& logits, const torch::Tensor& targets);

/// Top-1 accuracy in percent. `logits`: float [B, K]; `labels`: int64 [B]; returns a 0-dim float
/// tensor on their device (no host synchronisation).
torch::Tensor top1Accuracy(const torch::Tensor& logits, const torch::Tensor& labels);

/// n independent draws of Beta(alpha, alpha) as X/(X+Y) with X, Y ~ Gamma(alpha, 1) drawn (X
/// first, then Y) by at::_standard_gamma from `generator` (a CPU generator the caller owns and
/// can save and restore). Drawn in double precision so that small alpha (0.1) cannot underflow
/// both gammas to 0. Returns float64 [n] on the CPU. Throws core::ConfigError for alpha ≤ 0.
torch::Tensor sampleBeta(double alpha, std::int64_t n, at::Generator& generator);

}  // namespace metasemi::meta
