#include "metasemi/models/SyncBatchNorm.h"

#include <torch/csrc/autograd/custom_function.h>

#include <cstdint>

#include "metasemi/core/Error.h"

namespace metasemi::models {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Per-channel sums are accumulated in float64 so that the global mean and variance do not depend
// on how the batch is split across ranks beyond float64 rounding.
torch::Tensor channelSum(const torch::Tensor& t) {
  return t.sum({0, 2, 3}, /*keepdim=*/false, torch::kDouble);
}

std::vector<std::int64_t> channelShape(const torch::Tensor& x) { return {1, x.size(1), 1, 1}; }

struct SyncBatchNormFunction : public torch::autograd::Function<SyncBatchNormFunction> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, torch::Tensor weight,
                               torch::Tensor bias, torch::Tensor runningMean,
                               torch::Tensor runningVar, double momentum, double eps,
                               const SumAcrossRanks* sum) {
    const std::int64_t c = x.size(1);
    const auto f64 = torch::TensorOptions().dtype(torch::kDouble).device(x.device());
    // One message: the channel sums, the sums of squares and this rank's element count.
    torch::Tensor stats = torch::cat({channelSum(x), channelSum(x.square()),
                                      torch::full({1}, static_cast<double>(x.numel() / c), f64)});
    (*sum)(stats);
    const double n = stats[2 * c].item<double>();
    MS_REQUIRE(n > 1, core::NumericalError,
               "synchronised BatchNorm needs more than one value per channel, got {}", n);
    const torch::Tensor mean = stats.slice(0, 0, c) / n;
    const torch::Tensor var = (stats.slice(0, c, 2 * c) / n - mean.square()).clamp_min(0.0);
    const torch::Tensor invStd = (var + eps).rsqrt();
    {
      torch::NoGradGuard noGrad;
      runningMean.mul_(1.0 - momentum).add_(mean.to(runningMean.scalar_type()), momentum);
      runningVar.mul_(1.0 - momentum)
          .add_((var * (n / (n - 1.0))).to(runningVar.scalar_type()), momentum);
    }
    const auto shape = channelShape(x);
    const torch::Tensor xHat =
        (x - mean.to(x.scalar_type()).view(shape)) * invStd.to(x.scalar_type()).view(shape);
    ctx->save_for_backward({xHat, invStd, weight});
    ctx->saved_data["count"] = n;
    ctx->saved_data["sum"] = static_cast<std::int64_t>(reinterpret_cast<std::intptr_t>(sum));
    return xHat * weight.view(shape) + bias.view(shape);
  }

  static variable_list backward(AutogradContext* ctx, variable_list gradOutputs) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& xHat = saved[0];
    const torch::Tensor& invStd = saved[1];
    const torch::Tensor& weight = saved[2];
    const double n = ctx->saved_data["count"].toDouble();
    const auto* sum = reinterpret_cast<const SumAcrossRanks*>(
        static_cast<std::intptr_t>(ctx->saved_data["sum"].toInt()));
    const torch::Tensor dy = gradOutputs[0];
    const std::int64_t c = xHat.size(1);

    const torch::Tensor sumDy = channelSum(dy);
    const torch::Tensor sumDyXHat = channelSum(dy * xHat);
    // The parameter gradients stay rank-local: the trainer averages them with the others.
    const torch::Tensor gradWeight = sumDyXHat.to(weight.scalar_type());
    const torch::Tensor gradBias = sumDy.to(weight.scalar_type());
    // The input gradient needs both sums over the global batch.
    torch::Tensor both = torch::cat({sumDy, sumDyXHat});
    (*sum)(both);
    const auto shape = channelShape(xHat);
    const auto type = xHat.scalar_type();
    const torch::Tensor meanDy = (both.slice(0, 0, c) / n).to(type).view(shape);
    const torch::Tensor meanDyXHat = (both.slice(0, c, 2 * c) / n).to(type).view(shape);
    const torch::Tensor scale = (invStd.to(type) * weight).view(shape);
    const torch::Tensor gradX = (dy - meanDy - xHat * meanDyXHat) * scale;
    return {gradX,           gradWeight,      gradBias,        torch::Tensor(),
            torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor syncBatchNorm(const torch::Tensor& x, const torch::Tensor& weight,
                            const torch::Tensor& bias, const torch::Tensor& runningMean,
                            const torch::Tensor& runningVar, double momentum, double eps,
                            const SumAcrossRanks& sum) {
  MS_REQUIRE(x.dim() == 4, core::ConfigError,
             "synchronised BatchNorm expects [N, C, H, W] input, got {} dimensions", x.dim());
  return SyncBatchNormFunction::apply(x, weight, bias, runningMean, runningVar, momentum, eps,
                                      &sum);
}

SyncBatchNormImpl::SyncBatchNormImpl(const torch::nn::BatchNormOptions& options)
    : options(options) {
  MS_REQUIRE(options.affine() && options.track_running_stats(), core::ConfigError,
             "SyncBatchNorm: only affine BatchNorm with running statistics is supported");
  reset();
}

void SyncBatchNormImpl::reset() {
  const std::int64_t c = options.num_features();
  // Registration order is torch's, so state-dict keys come in the same order.
  weight = register_parameter("weight", torch::ones({c}));
  bias = register_parameter("bias", torch::zeros({c}));
  running_mean = register_buffer("running_mean", torch::zeros({c}));
  running_var = register_buffer("running_var", torch::ones({c}));
  num_batches_tracked = register_buffer("num_batches_tracked", torch::tensor(0, torch::kLong));
}

void SyncBatchNormImpl::pretty_print(std::ostream& stream) const {
  stream << "metasemi::models::SyncBatchNorm(" << options.num_features()
         << ", eps=" << options.eps() << ", momentum=" << options.momentum().value_or(-1.0)
         << ", synced=" << (synced() ? "true" : "false") << ")";
}

torch::Tensor SyncBatchNormImpl::forward(const torch::Tensor& x) {
  double momentum = 0.0;
  if (is_training()) {
    torch::NoGradGuard noGrad;
    num_batches_tracked.add_(1);
    // No momentum means a cumulative average, as in torch.
    momentum = options.momentum().has_value()
                   ? *options.momentum()
                   : 1.0 / static_cast<double>(num_batches_tracked.item<std::int64_t>());
  }
  if (sum_ && is_training()) {
    return syncBatchNorm(x, weight, bias, running_mean, running_var, momentum, options.eps(),
                         *sum_);
  }
  // torch::nn::BatchNorm2d's forward.
  return torch::batch_norm(x, weight, bias, running_mean, running_var, is_training(), momentum,
                           options.eps(), at::globalContext().userEnabledCuDNN());
}

int setBatchNormSync(torch::nn::Module& net, std::shared_ptr<const SumAcrossRanks> sum) {
  int changed = 0;
  for (const auto& m : net.modules(/*include_self=*/true)) {
    if (auto* bn = m->as<SyncBatchNormImpl>()) {
      bn->setSync(sum);
      ++changed;
    }
  }
  return changed;
}

}  // namespace metasemi::models
