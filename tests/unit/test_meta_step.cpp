// The MetaSemi step against its mathematics: central finite differences in double precision on a
// tiny ConvLarge for every gradient the step computes or approximates, the invariants of the meta
// phase, the BatchNorm bookkeeping, the baselines and the gradient hooks.
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <functional>
#include <vector>

#include "metasemi/core/Error.h"
#include "metasemi/meta/Losses.h"
#include "metasemi/meta/MetaStep.h"
#include "metasemi/meta/Sgd.h"
#include "metasemi/models/ConvLarge.h"
#include "metasemi/models/Network.h"
#include "metasemi/models/SyncBatchNorm.h"
#include "support/TestSupport.h"

using namespace metasemi;
using meta::StepKind;

namespace {

constexpr std::int64_t kBatch = 4;
constexpr std::int64_t kClasses = 5;

// ConvLarge with widths 4/8/16 on 1×20×20 images (20 → 10 → 5 → valid 3×3 → 3).
std::shared_ptr<models::Network> tinyNet(std::uint64_t seed, double dropout,
                                         torch::Dtype dtype = torch::kDouble) {
  torch::manual_seed(seed);
  models::NetworkSpec s;
  s.inputChannels = 1;
  s.numClasses = kClasses;
  s.widthFactor = 1.0 / 32.0;
  s.dropout = dropout;
  auto net = models::makeNetwork(s);
  net->to(dtype);
  return net;
}

struct Batch {
  torch::Tensor xl, yl, xu, yu, lambda;
};

Batch tinyBatch(std::uint64_t seed, torch::Dtype dtype = torch::kDouble) {
  torch::manual_seed(seed);
  Batch b;
  b.xl = torch::randn({kBatch, 1, 20, 20}, torch::dtype(dtype));
  b.yl = torch::randint(kClasses, {kBatch}, torch::kLong);
  b.xu = torch::randn({kBatch, 1, 20, 20}, torch::dtype(dtype));
  b.yu = torch::randint(kClasses, {kBatch}, torch::kLong);
  b.lambda = torch::rand({kBatch}, torch::dtype(dtype));
  return b;
}

std::vector<torch::Tensor> cloneAll(const std::vector<torch::Tensor>& ts) {
  std::vector<torch::Tensor> out;
  for (const auto& t : ts) out.push_back(t.detach().clone());
  return out;
}

void assign(std::vector<torch::Tensor> params, const std::vector<torch::Tensor>& values) {
  torch::NoGradGuard noGrad;
  for (std::size_t i = 0; i < params.size(); ++i) params[i].copy_(values[i]);
}

// Central finite differences of `loss` w.r.t. a few entries of every parameter tensor, compared
// with `grads`. Returns the largest error relative to max(|fd|, 1e-3).
double checkGradients(std::vector<torch::Tensor> params, const std::vector<torch::Tensor>& grads,
                      const std::function<double()>& loss, double h = 1e-6) {
  torch::NoGradGuard noGrad;
  double worst = 0.0;
  torch::manual_seed(99);
  for (std::size_t i = 0; i < params.size(); ++i) {
    auto flat = params[i].view(-1);
    const auto g = grads[i].reshape(-1);
    const auto picks = torch::randint(flat.numel(), {3}, torch::kLong);
    for (int k = 0; k < 3; ++k) {
      const auto j = picks[k].item<std::int64_t>();
      const double v = flat[j].item<double>();
      flat[j].fill_(v + h);
      const double up = loss();
      flat[j].fill_(v - h);
      const double down = loss();
      flat[j].fill_(v);
      const double fd = (up - down) / (2 * h);
      const double err = std::abs(fd - g[j].item<double>()) / std::max(std::abs(fd), 1e-3);
      worst = std::max(worst, err);
    }
  }
  return worst;
}

double maxAbs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

at::Generator makeGenerator(std::uint64_t seed) {
  return at::make_generator<at::CPUGeneratorImpl>(seed);
}

meta::StepSettings settings(StepKind kind, double lr = 0.05) {
  meta::StepSettings s;
  s.kind = kind;
  s.lr = lr;
  s.epsilon = 1e-2;
  s.weight = 0.7;
  s.alpha = 1.0;
  return s;
}

}  // namespace

BOOST_AUTO_TEST_CASE(labeled_gradient_matches_finite_differences) {
  auto net = tinyNet(1, 0.0);
  const auto b = tinyBatch(2);
  const auto r = meta::metaPhase(*net, b.xl, b.yl, b.xu, settings(StepKind::kMetaMixUp));
  BOOST_REQUIRE(r.grad.size() == net->parameters().size());
  const double err = checkGradients(net->parameters(), r.grad, [&] {
    net->eval();
    return meta::crossEntropy(net->forward(b.xl), b.yl).item<double>();
  });
  BOOST_TEST(err < 1e-5);
  // ‖g‖ and ε = ε0/‖g‖ as the reference defines them.
  double sq = 0.0;
  for (const auto& g : r.grad) sq += g.pow(2).sum().item<double>();
  BOOST_TEST(std::abs(r.gradNorm.item<double>() - std::sqrt(sq)) < 1e-12 * std::sqrt(sq));
  BOOST_TEST(std::abs(r.epsilon.item<double>() * std::sqrt(sq) - 1e-2) < 1e-14);
}

BOOST_AUTO_TEST_CASE(exact_direction_is_twice_the_jacobian_times_g) {
  auto net = tinyNet(3, 0.0);
  const auto b = tinyBatch(4);
  auto s = settings(StepKind::kMetaMixUp);
  s.metaGrad = meta::MetaGrad::kExact;
  const auto r = meta::metaPhase(*net, b.xl, b.yl, b.xu, s);
  // Directional derivative of softmax(f(x_u; θ)) along g by a tiny central difference.
  auto params = net->parameters();
  const auto theta = cloneAll(params);
  const double h = 1e-5;
  auto probsAt = [&](double t) {
    torch::NoGradGuard noGrad;
    for (std::size_t i = 0; i < params.size(); ++i) params[i].copy_(theta[i] + t * r.grad[i]);
    net->eval();
    return torch::softmax(net->forward(b.xu), 1);
  };
  const auto fd = (probsAt(h) - probsAt(-h)) / (2 * h) * 2;
  assign(params, theta);
  BOOST_TEST(maxAbs(fd) > 1e-3);  // a non-trivial direction
  BOOST_TEST(maxAbs(r.direction - fd) < 1e-7 * maxAbs(fd));
  // The pseudo-label update is the same formula in both modes.
  const auto y = (r.pseudoLabelsInit - s.lr * r.direction).relu();
  BOOST_TEST(maxAbs(r.pseudoLabels - y / y.sum(1, true)) < 1e-14);
}

BOOST_AUTO_TEST_CASE(finite_difference_direction_converges_to_exact) {
  auto net = tinyNet(5, 0.0);
  const auto b = tinyBatch(6);
  auto s = settings(StepKind::kMetaMixUp);
  s.metaGrad = meta::MetaGrad::kExact;
  const auto exact = meta::metaPhase(*net, b.xl, b.yl, b.xu, s).direction;
  s.metaGrad = meta::MetaGrad::kFiniteDifference;
  std::vector<double> errors;
  for (const double eps0 : {1e-1, 1e-2, 1e-3, 1e-4, 1e-6}) {
    s.epsilon = eps0;
    const auto d = meta::metaPhase(*net, b.xl, b.yl, b.xu, s).direction;
    errors.push_back(maxAbs(d - exact));
    BOOST_TEST_MESSAGE("eps0 " << eps0 << ": max |d_fd - d_exact| = " << errors.back());
  }
  // The network is piecewise linear (LeakyReLU, max-pool): while ±εg crosses kinks the error
  // shrinks slowly, and once no kink is crossed the central difference is exact up to O(ε²).
  for (std::size_t i = 1; i < errors.size(); ++i) BOOST_TEST(errors[i] < errors[i - 1], i);
  BOOST_TEST(errors.back() < 1e-8 * maxAbs(exact));
}

BOOST_AUTO_TEST_CASE(pseudo_labels_are_distributions_or_zero) {
  auto net = tinyNet(7, 0.0);
  const auto b = tinyBatch(8);
  for (const double lr : {0.0, 0.1, 30.0, 1e4}) {
    const auto r = meta::metaPhase(*net, b.xl, b.yl, b.xu, settings(StepKind::kMetaMixUp, lr));
    BOOST_TEST((r.pseudoLabels >= 0).all().item<bool>());
    const auto sums = r.pseudoLabels.sum(1);
    const auto ok = ((sums - 1).abs() < 1e-12).logical_or(sums == 0);
    BOOST_TEST(ok.all().item<bool>(), "lr " << lr);
    const auto y = (r.pseudoLabelsInit - lr * r.direction).relu();
    const auto ys = y.sum(1, true);
    BOOST_TEST(maxAbs(r.pseudoLabels - y / torch::where(ys == 0, torch::ones_like(ys), ys)) <
               1e-14);
    if (lr == 0.0)
      BOOST_TEST(
          torch::equal(r.pseudoLabels, r.pseudoLabelsInit / r.pseudoLabelsInit.sum(1, true)));
  }
}

BOOST_AUTO_TEST_CASE(meta_phase_leaves_parameters_buffers_and_grads_untouched) {
  auto net = tinyNet(9, 0.5, torch::kFloat);
  models::toChannelsLast(*net);
  const auto b = tinyBatch(10, torch::kFloat);
  const auto params = cloneAll(net->parameters());
  const auto buffers = cloneAll(net->buffers());
  net->train();
  const auto r = meta::metaPhase(*net, b.xl, b.yl, b.xu, settings(StepKind::kMetaMixUp));
  BOOST_TEST(!net->is_training());
  BOOST_TEST(maxAbs(r.direction) > 0.0);
  const auto after = net->parameters();
  for (std::size_t i = 0; i < params.size(); ++i) {
    BOOST_TEST(torch::equal(after[i], params[i]), "parameter " << i);
    BOOST_TEST(!after[i].grad().defined());
  }
  const auto afterBuffers = net->buffers();
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    BOOST_TEST(torch::equal(afterBuffers[i], buffers[i]), "buffer " << i);
  }
}

BOOST_AUTO_TEST_CASE(zero_gradient_gives_zero_direction) {
  auto net = tinyNet(11, 0.0);
  const auto b = tinyBatch(12);
  const auto r = meta::metaPhase(*net, b.xl, b.yl, b.xu, settings(StepKind::kMetaMixUp),
                                 [](std::vector<torch::Tensor>& g) {
                                   for (auto& t : g) t.zero_();
                                 });
  BOOST_TEST(r.gradNorm.item<double>() == 0.0);
  BOOST_TEST(std::isfinite(r.epsilon.item<double>()));
  BOOST_TEST(maxAbs(r.direction) == 0.0);
}

BOOST_AUTO_TEST_CASE(train_phase_gradients_match_finite_differences) {
  for (const auto kind : {StepKind::kMetaMixUp, StepKind::kMeta}) {
    auto net = tinyNet(13, 0.0);
    const auto b = tinyBatch(14);
    const double wd = 1e-3;
    meta::Sgd sgd(net->parameters(), 0.9, wd);
    meta::MetaStep step(net, sgd);
    const auto theta0 = cloneAll(net->parameters());
    auto gen = makeGenerator(1);
    const auto s = settings(kind);
    const auto r = step.run({b.xl, b.yl, b.xu, b.yu, b.lambda}, s, gen);
    BOOST_TEST(net->is_training());
    std::vector<torch::Tensor> grads, theta1;
    for (const auto& p : net->parameters()) {
      grads.push_back(p.grad().clone());
      theta1.push_back(p.detach().clone());
    }
    // First SGD step: buf = g + wd·θ, θ1 = θ0 − lr·buf.
    for (std::size_t i = 0; i < grads.size(); ++i) {
      const auto want = theta0[i] - s.lr * (grads[i] + wd * theta0[i]);
      BOOST_TEST(maxAbs(theta1[i] - want) < 1e-15, "parameter " << i);
    }
    assign(net->parameters(), theta0);
    const auto yhat = r.pseudoLabels;
    const auto lam = b.lambda.view({kBatch, 1, 1, 1});
    const auto xmix = b.xl * lam + b.xu * (1 - lam);
    const auto onehot = torch::one_hot(b.yl, kClasses).to(torch::kDouble);
    const auto ymix = onehot * b.lambda.view({kBatch, 1}) + yhat * (1 - b.lambda.view({kBatch, 1}));
    auto loss = [&] {
      net->train();
      const auto first = kind == StepKind::kMetaMixUp
                             ? meta::mixUpLoss(net->forward(xmix), ymix)
                             : meta::crossEntropy(net->forward(b.xl), b.yl);
      return (first + s.weight * meta::consistencyLoss(net->forward(b.xu), yhat)).item<double>();
    };
    BOOST_TEST(std::abs(loss() - r.loss.item<double>()) < 1e-12);
    BOOST_TEST(checkGradients(net->parameters(), grads, loss) < 1e-5);
  }
}

BOOST_AUTO_TEST_CASE(batchnorm_running_stats_are_updated_by_the_two_train_forwards) {
  auto net = tinyNet(15, 0.5, torch::kDouble);
  const auto b = tinyBatch(16);
  meta::Sgd sgd(net->parameters(), 0.9, 1e-4);
  meta::MetaStep step(net, sgd);
  auto& bn = *net->named_modules()["block1.1"]->as<metasemi::models::SyncBatchNorm>();
  const auto w = net->named_parameters()["block1.0.weight"].detach().clone();
  const auto rm0 = bn.running_mean.clone();
  const auto rv0 = bn.running_var.clone();
  const auto count0 = bn.num_batches_tracked.item<std::int64_t>();
  auto gen = makeGenerator(2);
  step.run({b.xl, b.yl, b.xu, b.yu, b.lambda}, settings(StepKind::kMetaMixUp), gen);
  BOOST_TEST(bn.num_batches_tracked.item<std::int64_t>() == count0 + 2);
  // Batch statistics of block 1's convolution (computed at θ before the update) for the mixed
  // batch, then the unlabeled batch; momentum 0.1 and the unbiased variance, as PyTorch.
  const auto lam = b.lambda.view({kBatch, 1, 1, 1});
  const auto c1 = torch::conv2d(b.xl * lam + b.xu * (1 - lam), w, {}, 1, 1);
  const auto c2 = torch::conv2d(b.xu, w, {}, 1, 1);
  auto mean = [](const torch::Tensor& c) { return c.mean({0, 2, 3}); };
  auto var = [](const torch::Tensor& c) {
    return c.transpose(0, 1).reshape({c.size(1), -1}).var(1);
  };
  const auto rm = 0.9 * (0.9 * rm0 + 0.1 * mean(c1)) + 0.1 * mean(c2);
  const auto rv = 0.9 * (0.9 * rv0 + 0.1 * var(c1)) + 0.1 * var(c2);
  BOOST_TEST(maxAbs(bn.running_mean - rm) < 1e-12);
  BOOST_TEST(maxAbs(bn.running_var - rv) < 1e-12);
}

BOOST_AUTO_TEST_CASE(baselines_match_a_hand_written_step) {
  for (const auto kind : {StepKind::kLabeledOnly, StepKind::kMixUpOnly}) {
    auto net = tinyNet(17, 0.0);
    auto twin = tinyNet(17, 0.0);
    const auto b = tinyBatch(18);
    const double lr = 0.05, wd = 1e-3;
    meta::Sgd sgd(net->parameters(), 0.9, wd);
    meta::MetaStep step(net, sgd);
    auto gen = makeGenerator(3);
    const auto s = settings(kind, lr);
    auto batch = meta::StepBatch{b.xl, b.yl, b.xu, b.yu, b.lambda};
    if (kind == StepKind::kLabeledOnly) batch.unlabeledImages = torch::Tensor();
    const auto r = step.run(batch, s, gen);

    torch::Tensor loss;
    if (kind == StepKind::kLabeledOnly) {
      twin->train();
      loss = meta::crossEntropy(twin->forward(b.xl), b.yl);
    } else {
      torch::Tensor targets;
      {
        torch::NoGradGuard noGrad;
        twin->eval();
        const auto probs = torch::softmax(twin->forward(b.xu), 1);
        const auto l2 = b.lambda.view({kBatch, 1});
        targets = torch::one_hot(b.yl, kClasses).to(torch::kDouble) * l2 + probs * (1 - l2);
      }
      const auto lam = b.lambda.view({kBatch, 1, 1, 1});
      twin->train();
      loss = meta::mixUpLoss(twin->forward(b.xl * lam + b.xu * (1 - lam)), targets);
      BOOST_TEST(!r.unlabeledLoss.defined());
    }
    BOOST_TEST(std::abs(loss.item<double>() - r.loss.item<double>()) < 1e-14);
    loss.backward();
    const auto a = net->parameters();
    const auto t = twin->parameters();
    torch::NoGradGuard noGrad;
    for (std::size_t i = 0; i < a.size(); ++i) {
      const auto want = t[i] - lr * (t[i].grad() + wd * t[i]);
      BOOST_TEST(maxAbs(a[i] - want) < 1e-15, "parameter " << i);
    }
    // One train-mode forward: the running statistics move once.
    auto& bn = *net->named_modules()["block3.1"]->as<metasemi::models::SyncBatchNorm>();
    BOOST_TEST(bn.num_batches_tracked.item<std::int64_t>() == 1);
  }
}

BOOST_AUTO_TEST_CASE(gradient_hooks_see_and_replace_the_gradients) {
  auto net = tinyNet(19, 0.0);
  const auto b = tinyBatch(20);
  const auto plain = meta::metaPhase(*net, b.xl, b.yl, b.xu, settings(StepKind::kMetaMixUp));
  meta::Sgd sgd(net->parameters(), 0.9, 0.0);
  meta::MetaStep step(net, sgd);
  std::size_t seen = 0;
  step.setLabeledGradientHook([&](std::vector<torch::Tensor>& g) {
    seen = g.size();
    for (auto& t : g) t.mul_(2.0);
  });
  step.setParameterGradientHook([](std::vector<torch::Tensor>& g) {
    for (auto& t : g) t.zero_();
  });
  const auto theta0 = cloneAll(net->parameters());
  auto gen = makeGenerator(4);
  const auto r = step.run({b.xl, b.yl, b.xu, b.yu, b.lambda}, settings(StepKind::kMetaMixUp), gen);
  BOOST_TEST(seen == net->parameters().size());
  BOOST_TEST(std::abs(r.gradNorm.item<double>() - 2 * plain.gradNorm.item<double>()) <
             1e-12 * plain.gradNorm.item<double>());
  // Zeroed gradients and no weight decay: SGD leaves θ where it was.
  const auto after = net->parameters();
  for (std::size_t i = 0; i < after.size(); ++i) BOOST_TEST(torch::equal(after[i], theta0[i]));
}

BOOST_AUTO_TEST_CASE(mix_up_loss_is_kl_batchmean) {
  torch::manual_seed(21);
  const auto z = torch::randn({3, 4}, torch::kDouble);
  auto t = torch::tensor({{0.5, 0.5, 0.0, 0.0}, {0.0, 0.0, 1.0, 0.0}, {0.1, 0.2, 0.3, 0.4}},
                         torch::kDouble);
  const auto logp = torch::log_softmax(z, 1);
  const auto terms = torch::where(t > 0, t * (t.log() - logp), torch::zeros_like(t));
  BOOST_TEST(std::abs(meta::mixUpLoss(z, t).item<double>() - terms.sum().item<double>() / 3) <
             1e-14);
  const auto u = torch::randn({3, 4}, torch::kDouble);
  const double want = (torch::softmax(z, 1) - u).pow(2).sum().item<double>() / 3;
  BOOST_TEST(std::abs(meta::consistencyLoss(z, u).item<double>() - want) < 1e-14);
  const auto labels = torch::tensor({1, 2, 0}, torch::kLong);
  const double acc = meta::top1Accuracy(z, labels).item<double>();
  const double manual = z.argmax(1).eq(labels).sum().item<double>() * 100.0 / 3;
  BOOST_TEST(std::abs(acc - manual) < 1e-4);
}

BOOST_AUTO_TEST_CASE(beta_samples_are_reproducible_and_distributed) {
  auto gen = makeGenerator(5);
  auto copy = makeGenerator(0);
  copy.set_state(gen.get_state());
  const auto a = meta::sampleBeta(1.0, 20000, gen);
  const auto b = meta::sampleBeta(1.0, 20000, copy);
  BOOST_TEST(torch::equal(a, b));
  BOOST_TEST(!torch::equal(a, meta::sampleBeta(1.0, 20000, gen)));
  for (const double alpha : {1.0, 0.1, 4.0}) {
    const auto x = meta::sampleBeta(alpha, 40000, gen);
    BOOST_TEST((x >= 0).logical_and(x <= 1).all().item<bool>());
    // Beta(α, α): mean 1/2, variance 1/(4(2α + 1)).
    const double var = 1.0 / (4 * (2 * alpha + 1));
    BOOST_TEST(std::abs(x.mean().item<double>() - 0.5) < 5 * std::sqrt(var / 40000));
    BOOST_TEST(std::abs(x.var().item<double>() - var) < 0.05 * var);
  }
  BOOST_CHECK_THROW(meta::sampleBeta(0.0, 3, gen), core::ConfigError);
}

BOOST_AUTO_TEST_CASE(drawn_lambda_comes_from_the_callers_generator) {
  auto net = tinyNet(23, 0.0);
  const auto b = tinyBatch(24);
  meta::Sgd sgd(net->parameters(), 0.9, 0.0);
  meta::MetaStep step(net, sgd);
  auto gen = makeGenerator(6);
  auto copy = makeGenerator(0);
  copy.set_state(gen.get_state());
  const auto r = step.run({b.xl, b.yl, b.xu, b.yu, {}}, settings(StepKind::kMetaMixUp), gen);
  const auto want = meta::sampleBeta(1.0, kBatch, copy);
  BOOST_TEST(torch::equal(r.lambda, want));
  BOOST_TEST(r.unlabeledAccuracy.defined());
  BOOST_TEST(r.mixLoss.defined());
  BOOST_TEST(r.labeledAccuracy.dim() == 0);
}
