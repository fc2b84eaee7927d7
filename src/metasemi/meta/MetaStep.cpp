#include "metasemi/meta/MetaStep.h"

#include "metasemi/core/Error.h"
#include "metasemi/meta/Losses.h"

namespace metasemi::meta {
namespace {

torch::Tensor softmax(const torch::Tensor& logits) { return torch::softmax(logits, 1); }

// d ≈ 2·J·g by the central finite difference of the reference, θ restored from a copy.
torch::Tensor finiteDifferenceDirection(models::Network& net, std::vector<torch::Tensor>& params,
                                        const std::vector<torch::Tensor>& g,
                                        const torch::Tensor& unlabeled,
                                        const torch::Tensor& epsilon) {
  std::vector<torch::Tensor> saved;
  saved.reserve(params.size());
  for (const auto& p : params) saved.push_back(p.detach().clone());
  // addcmul_ with a 0-dim ε keeps ε on the device: no host synchronisation.
  for (std::size_t i = 0; i < params.size(); ++i) params[i].addcmul_(g[i], epsilon);
  const auto plus = softmax(net.forward(unlabeled));
  const auto negEpsilon = epsilon.neg();
  for (std::size_t i = 0; i < params.size(); ++i) {
    params[i].copy_(saved[i]).addcmul_(g[i], negEpsilon);
  }
  const auto minus = softmax(net.forward(unlabeled));
  // The reference adds εg back, which leaves float round-off in θ; the copy restores θ exactly.
  for (std::size_t i = 0; i < params.size(); ++i) params[i].copy_(saved[i]);
  // Divided by ε, not 2ε: the factor 2 of d‖p − y‖²/dy is folded in (reference-spec §2.2).
  return (plus - minus).div_(epsilon);
}

}  // namespace

MetaPhaseResult metaPhase(models::Network& net, const torch::Tensor& labeled,
                          const torch::Tensor& labels, const torch::Tensor& unlabeled,
                          const StepSettings& settings, const GradientHook& hook) {
  MS_REQUIRE(settings.epsilon > 0.0, core::ConfigError,
             "metaPhase: the perturbation norm epsilon0 must be > 0, got {}", settings.epsilon);
  MetaPhaseResult r;
  net.eval();
  auto params = net.parameters();
  const auto labeledLogits = net.forward(labeled);
  const auto labeledLoss = crossEntropy(labeledLogits, labels);
  r.grad = torch::autograd::grad({labeledLoss}, params);
  if (hook) hook(r.grad);
  r.labeledLogits = labeledLogits.detach();
  r.labeledLoss = labeledLoss.detach();

  {
    torch::NoGradGuard noGrad;
    std::vector<torch::Tensor> flat;
    flat.reserve(r.grad.size());
    for (const auto& gi : r.grad) flat.push_back(gi.reshape(-1));
    r.gradNorm = torch::cat(flat).norm();
    // eps0 / norm as Python evaluates it (reciprocal, then times eps0); a zero gradient makes the
    // perturbation zero anyway, so any finite ε gives d = 0 there.
    const auto safeNorm = torch::where(r.gradNorm > 0, r.gradNorm, torch::ones_like(r.gradNorm));
    r.epsilon = safeNorm.reciprocal().mul(settings.epsilon);
  }

  if (settings.metaGrad == meta::MetaGrad::kExact) {
    // J·g by double backward: h(v) = vᵀJ is linear in v, so ∂(h·g)/∂v = J·g.
    const auto probs = softmax(net.forward(unlabeled));
    const auto v = torch::zeros_like(probs).requires_grad_(true);
    const auto vjp = torch::autograd::grad({probs}, params, {v}, /*retain_graph=*/true,
                                           /*create_graph=*/true);
    const auto jg = torch::autograd::grad(vjp, {v}, r.grad)[0];
    r.pseudoLabelsInit = probs.detach();
    r.direction = jg.detach().mul(2.0);
  } else {
    torch::NoGradGuard noGrad;
    r.pseudoLabelsInit = softmax(net.forward(unlabeled));
    r.direction = finiteDifferenceDirection(net, params, r.grad, unlabeled, r.epsilon);
  }

  torch::NoGradGuard noGrad;
  auto y = r.pseudoLabelsInit.sub(r.direction, settings.lr).relu_();
  const auto sums = y.sum(1, /*keepdim=*/true);
  r.pseudoLabels = y.div_(torch::where(sums == 0, torch::ones_like(sums), sums));
  return r;
}

MetaStep::MetaStep(std::shared_ptr<models::Network> net, Sgd& sgd, bool channelsLast)
    : net_(std::move(net)), sgd_(sgd), channelsLast_(channelsLast) {
  MS_CHECK(net_ != nullptr, "MetaStep needs a network");
}

StepResult MetaStep::run(const StepBatch& batch, const StepSettings& settings,
                         at::Generator& generator) {
  const bool usesUnlabeled = settings.kind != StepKind::kLabeledOnly;
  const bool mixUp = settings.kind == StepKind::kMetaMixUp || settings.kind == StepKind::kMixUpOnly;
  const bool meta = settings.kind == StepKind::kMetaMixUp || settings.kind == StepKind::kMeta;
  MS_REQUIRE(batch.labeledImages.defined() && batch.labels.defined(), core::ConfigError,
             "step: the batch has no labeled images or labels");
  MS_REQUIRE(!usesUnlabeled || batch.unlabeledImages.defined(), core::ConfigError,
             "step: this method needs unlabeled images");
  const auto memoryFormat =
      channelsLast_ ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
  const auto xl = batch.labeledImages.contiguous(memoryFormat);
  const auto& yl = batch.labels;
  const auto xu = usesUnlabeled ? batch.unlabeledImages.contiguous(memoryFormat) : torch::Tensor();
  const std::int64_t b = xl.size(0);
  MS_REQUIRE(!usesUnlabeled || xu.size(0) == b, core::ConfigError,
             "step: labeled batch has {} images but unlabeled batch has {}; mix-up pairs them", b,
             xu.size(0));

  StepResult result;
  sgd_.setLr(settings.lr);
  torch::Tensor pseudoLabels;
  torch::Tensor labeledLogits;  // eval-mode labeled logits where the reference logs them

  if (meta) {
    auto m = metaPhase(*net_, xl, yl, xu, settings, labeledHook_);
    result.labeledLoss = m.labeledLoss;
    result.gradNorm = m.gradNorm;
    result.epsilon = m.epsilon;
    result.pseudoLabelsInit = m.pseudoLabelsInit;
    result.pseudoLabels = m.pseudoLabels;
    pseudoLabels = m.pseudoLabels;
    labeledLogits = m.labeledLogits;
  } else if (settings.kind == StepKind::kMixUpOnly) {
    torch::NoGradGuard noGrad;
    net_->eval();
    labeledLogits = net_->forward(xl);  // only for the logged accuracy, as the reference
    result.labeledLoss = crossEntropy(labeledLogits, yl);
    pseudoLabels = softmax(net_->forward(xu));
    result.pseudoLabelsInit = pseudoLabels;
    result.pseudoLabels = pseudoLabels;
    if (batch.unlabeledLabels.defined()) {
      result.unlabeledAccuracy = top1Accuracy(pseudoLabels, batch.unlabeledLabels);
    }
  }

  torch::Tensor lambda;
  torch::Tensor mixedImages, mixedTargets;
  if (mixUp) {
    torch::NoGradGuard noGrad;
    if (batch.lambda.defined()) {
      MS_REQUIRE(batch.lambda.numel() == b, core::ConfigError,
                 "step: {} mix-up coefficients given for a batch of {}", batch.lambda.numel(), b);
      lambda = batch.lambda.reshape({b}).to(xl.options());
    } else {
      lambda = sampleBeta(settings.alpha, b, generator).to(xl.options());
    }
    const auto lam4 = lambda.view({b, 1, 1, 1});
    mixedImages = xl * lam4 + xu * (1.0 - lam4);
    const auto onehot = torch::one_hot(yl, pseudoLabels.size(1)).to(pseudoLabels.dtype());
    const auto lam2 = lambda.view({b, 1});
    mixedTargets = onehot * lam2 + pseudoLabels * (1.0 - lam2);
    result.lambda = lambda;
  }

  net_->train();
  torch::Tensor loss;
  switch (settings.kind) {
    case StepKind::kMetaMixUp: {
      result.mixLoss = mixUpLoss(net_->forward(mixedImages), mixedTargets);
      const auto unlabeledLogits = net_->forward(xu);
      const auto consistency = consistencyLoss(unlabeledLogits, pseudoLabels);
      loss = result.mixLoss + settings.weight * consistency;
      result.unlabeledLoss = consistency.detach();
      result.mixLoss = result.mixLoss.detach();
      if (batch.unlabeledLabels.defined()) {
        result.unlabeledAccuracy = top1Accuracy(unlabeledLogits.detach(), batch.unlabeledLabels);
      }
      break;
    }
    case StepKind::kMeta: {
      // Without mix-up the reference logs the train-mode labeled loss and logits.
      const auto logits = net_->forward(xl);
      const auto ce = crossEntropy(logits, yl);
      const auto unlabeledLogits = net_->forward(xu);
      const auto consistency = consistencyLoss(unlabeledLogits, pseudoLabels);
      loss = ce + settings.weight * consistency;
      labeledLogits = logits.detach();
      result.labeledLoss = ce.detach();
      result.unlabeledLoss = consistency.detach();
      if (batch.unlabeledLabels.defined()) {
        result.unlabeledAccuracy = top1Accuracy(unlabeledLogits.detach(), batch.unlabeledLabels);
      }
      break;
    }
    case StepKind::kLabeledOnly: {
      const auto logits = net_->forward(xl);
      loss = crossEntropy(logits, yl);
      labeledLogits = logits.detach();
      result.labeledLoss = loss.detach();
      break;
    }
    case StepKind::kMixUpOnly: {
      loss = mixUpLoss(net_->forward(mixedImages), mixedTargets);
      result.mixLoss = loss.detach();
      break;
    }
  }
  result.labeledAccuracy = top1Accuracy(labeledLogits, yl);

  sgd_.zeroGrad();
  if (beforeBackward_) beforeBackward_();
  loss.backward();
  if (parameterHook_) {
    std::vector<torch::Tensor> grads;
    grads.reserve(sgd_.params().size());
    for (const auto& p : sgd_.params()) grads.push_back(p.grad());
    parameterHook_(grads);
    for (std::size_t i = 0; i < grads.size(); ++i) {
      auto& g = sgd_.params()[i].mutable_grad();
      if (!g.defined() || !grads[i].is_same(g)) g = grads[i];
    }
  }
  sgd_.step();
  result.loss = loss.detach();
  return result;
}

}  // namespace metasemi::meta
