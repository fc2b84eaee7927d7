// One training step of the reference (train_meta.py l.114-198, train_baseline.py l.137-160):
// the MetaSemi step with and without mix-up and the two baselines. Pure compute: no MPI, no
// files; distributed training plugs in through the gradient hooks.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <vector>

#include "metasemi/meta/Sgd.h"
#include "metasemi/meta/StepKind.h"
#include "metasemi/models/Network.h"

namespace metasemi::meta {

/// Per-step settings (the schedules are evaluated by the caller).
struct StepSettings {
  StepKind kind = StepKind::kMetaMixUp;
  MetaGrad metaGrad = MetaGrad::kFiniteDifference;
  double lr = 0.1;        ///< SGD learning rate, also the pseudo-label step size
  double epsilon = 1e-2;  ///< ε0: the perturbation ε·g has L2 norm ε0
  double weight = 1.0;    ///< consistency weight w_t (already ramped)
  double alpha = 1.0;     ///< mix-up Beta(α, α)
};

/// Called on a list of gradients, in parameter order, to replace them in place (e.g. by their
/// average over ranks). Every rank must call the step so that collectives inside line up.
using GradientHook = std::function<void(std::vector<torch::Tensor>&)>;

/// What the meta phase computes (all tensors on the network's device, detached).
struct MetaPhaseResult {
  torch::Tensor labeledLogits;      ///< eval-mode f(x_l): float [B, K]
  torch::Tensor labeledLoss;        ///< eval-mode CE, 0-dim
  std::vector<torch::Tensor> grad;  ///< g = ∂CE/∂θ (after the hook), one per parameter
  torch::Tensor gradNorm;           ///< ‖concat(g)‖₂, 0-dim
  torch::Tensor epsilon;            ///< ε0/‖g‖ (ε0 when ‖g‖ = 0), 0-dim
  torch::Tensor pseudoLabelsInit;   ///< ỹ = eval-mode softmax(f(x_u)): float [B, K]
  torch::Tensor direction;          ///< d ≈ 2·J·g (J = ∂softmax(f(x_u))/∂θ): float [B, K]
  torch::Tensor pseudoLabels;       ///< ŷ = rownorm(relu(ỹ − lr·d)): float [B, K]
};

/// The meta phase (§2.2, eval mode): g from the labeled CE, ỹ, the direction d and ŷ.
/// finite difference: d = (softmax f(x_u; θ+εg) − softmax f(x_u; θ−εg))/ε with θ restored
/// bit-exactly from a copy afterwards; exact: d = 2·J·g by double backward. Leaves the network
/// in eval mode with θ, buffers and .grad untouched. `labeled`, `unlabeled`: float [B, C, H, W];
/// `labels`: int64 [B]; all on the network's device. `hook` (may be empty) is applied to g
/// before its norm is taken.
MetaPhaseResult metaPhase(models::Network& net, const torch::Tensor& labeled,
                          const torch::Tensor& labels, const torch::Tensor& unlabeled,
                          const StepSettings& settings, const GradientHook& hook = {});

/// One step's inputs; images float [B, C, H, W], labels int64 [B], on the network's device.
struct StepBatch {
  torch::Tensor labeledImages;
  torch::Tensor labels;
  torch::Tensor unlabeledImages;  ///< undefined for kLabeledOnly
  torch::Tensor unlabeledLabels;  ///< optional: only for the logged unlabeled accuracy
  torch::Tensor lambda;           ///< optional float [B]: mix-up coefficients to use instead of
                                  ///< drawing them (cross-checks with other implementations)
};

/// One step's figures: 0-dim tensors on the network's device (undefined when the step kind has
/// no such quantity), so the trainer can log them without a synchronisation per step.
struct StepResult {
  torch::Tensor loss;               ///< the optimised loss
  torch::Tensor labeledLoss;        ///< the reference's logged label_loss (eval-mode CE with
                                    ///< mix-up, train-mode CE without)
  torch::Tensor mixLoss;            ///< KL(batchmean) on the mixed batch
  torch::Tensor unlabeledLoss;      ///< consistency term (before the weight)
  torch::Tensor labeledAccuracy;    ///< top-1 % of the logits the reference logs
  torch::Tensor unlabeledAccuracy;  ///< top-1 % against unlabeledLabels (when given)
  torch::Tensor gradNorm;           ///< ‖g‖
  torch::Tensor epsilon;            ///< ε
  torch::Tensor pseudoLabelsInit;   ///< ỹ: float [B, K]
  torch::Tensor pseudoLabels;       ///< ŷ (for kMixUpOnly: ỹ): float [B, K]
  torch::Tensor lambda;             ///< mix-up coefficients used: float [B]
};

/// Runs steps on one network with one optimiser.
class MetaStep {
 public:
  /// `net` and `sgd` (over net's parameters, in net->parameters() order) outlive this object.
  /// `channelsLast`: convert the batch images to channels-last (use with a channels-last net).
  MetaStep(std::shared_ptr<models::Network> net, Sgd& sgd, bool channelsLast = false);

  /// Replaces g (the labeled gradient of the meta phase) before its norm is taken. Default:
  /// identity.
  void setLabeledGradientHook(GradientHook hook) { labeledHook_ = std::move(hook); }

  /// Replaces the parameter gradients before the SGD update. Default: identity.
  void setParameterGradientHook(GradientHook hook) { parameterHook_ = std::move(hook); }
  /// Runs right before the backward pass whose gradients the parameter hook receives (e.g.
  /// comm::BackwardOverlap::arm). Default: nothing.
  void setBeforeBackwardHook(std::function<void()> hook) { beforeBackward_ = std::move(hook); }

  /// One step: sets the lr, runs the phases of `settings.kind`, updates θ with SGD. Mix-up
  /// coefficients are drawn from `generator` (CPU) unless the batch carries them; Dropout2d
  /// masks come from the global torch generator, as in the reference. Leaves the network in
  /// train mode with the gradients of the step in .grad().
  StepResult run(const StepBatch& batch, const StepSettings& settings, at::Generator& generator);

 private:
  std::shared_ptr<models::Network> net_;
  Sgd& sgd_;
  bool channelsLast_;
  GradientHook labeledHook_;
  GradientHook parameterHook_;
  std::function<void()> beforeBackward_;
};

}  // namespace metasemi::meta
