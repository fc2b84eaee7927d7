#include "metasemi/meta/Losses.h"

#include "metasemi/core/Error.h"

namespace metasemi::meta {
namespace F = torch::nn::functional;

torch::Tensor crossEntropy(const torch::Tensor& logits, const torch::Tensor& labels) {
  return F::cross_entropy(logits, labels);
}

torch::Tensor mixUpLoss(const torch::Tensor& logits, const torch::Tensor& targets) {
  return F::kl_div(torch::log_softmax(logits, 1), targets,
                   F::KLDivFuncOptions().reduction(torch::kBatchMean));
}

torch::Tensor consistencyLoss(const torch::Tensor& logits, const torch::Tensor& targets) {
  // The sum of squares instead of norm().pow(2): same value, and no 0/0 in norm's backward.
  return (torch::softmax(logits, 1) - targets).pow(2).sum(1).mean();
}

torch::Tensor top1Accuracy(const torch::Tensor& logits, const torch::Tensor& labels) {
  return logits.argmax(1).eq(labels).to(torch::kFloat).mean().mul(100.0);
}

torch::Tensor sampleBeta(double alpha, std::int64_t n, at::Generator& generator) {
  MS_REQUIRE(alpha > 0.0, core::ConfigError,
             "sampleBeta: the Beta concentration alpha must be > 0, got {}", alpha);
  const auto concentration = torch::full({n}, alpha, torch::dtype(torch::kDouble));
  const auto x = at::_standard_gamma(concentration, generator);
  const auto y = at::_standard_gamma(concentration, generator);
  const auto sum = x + y;
  // Both gammas 0 has probability ~1e-31 per draw at alpha = 0.1 in double; Beta(α, α) is
  // symmetric, so 1/2 is the neutral answer rather than NaN.
  return torch::where(sum > 0, x / sum, torch::full_like(sum, 0.5));
}

}  // namespace metasemi::meta
