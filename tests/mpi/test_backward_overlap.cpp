// Two ranks: gradient averaging overlapped with backward (comm::BackwardOverlap) gives the same
// bits as averaging after backward, every bucket is averaged even when backward does not reach
// some parameters, backward passes outside arm()/finish() leave the buckets alone, and the
// trainer's MetaSemi step with overlap matches the step without it bit for bit.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cstring>
#include <vector>

#include "metasemi/comm/BackwardOverlap.h"
#include "metasemi/comm/GradientBucketer.h"
#include "metasemi/meta/MetaStep.h"
#include "metasemi/meta/Sgd.h"
#include "metasemi/models/Network.h"
#include "support/TestSupport.h"

using metasemi::comm::BackwardOverlap;
using metasemi::comm::GradientBucketer;
using metasemi::test::comm;
using metasemi::test::sameOnAllRanks;
namespace meta = metasemi::meta;
namespace models = metasemi::models;

namespace {

bool bitEqual(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type()) return false;
  const auto ac = a.contiguous();
  const auto bc = b.contiguous();
  return std::memcmp(ac.data_ptr(), bc.data_ptr(), ac.nbytes()) == 0;
}

// A chain of layers whose last one is unused when `skipLast`: backward never reaches it.
struct Chain : torch::nn::Module {
  Chain() {
    for (int i = 0; i < 6; ++i) {
      layers.push_back(register_module("l" + std::to_string(i), torch::nn::Linear(64, 64)));
    }
    unused = register_module("unused", torch::nn::Linear(64, 64));
  }
  torch::Tensor forward(torch::Tensor x) {
    for (auto& l : layers) x = torch::tanh(l->forward(x));
    return x.pow(2).sum();
  }
  std::vector<torch::nn::Linear> layers;
  torch::nn::Linear unused{nullptr};
};

std::vector<torch::Tensor> clones(const std::vector<torch::Tensor>& ts) {
  std::vector<torch::Tensor> out;
  for (const auto& t : ts) out.push_back(t.clone());
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(overlapped_average_equals_average_after_backward) {
  BOOST_TEST_REQUIRE(comm().size() == 2);
  torch::manual_seed(3);
  Chain net;
  auto params = net.parameters();
  // 16 KiB buckets: each 64x64 weight (16 KiB) is a bucket of its own, so there are several.
  GradientBucketer bucketer(16 << 10);
  auto views = bucketer.bucketViews(params);
  BOOST_TEST_REQUIRE(bucketer.numBuckets() >= 6u);
  for (std::size_t i = 0; i < params.size(); ++i) params[i].mutable_grad() = views[i];
  BackwardOverlap overlap(bucketer, comm(), params);

  auto gen = at::make_generator<at::CPUGeneratorImpl>(10 + comm().rank());
  const auto x = at::randn({32, 64}, gen);
  auto zero = [&] {
    for (auto& p : params) p.mutable_grad().zero_();
  };

  // Reference: backward, then the bucketed average of the same gradient storage.
  zero();
  net.forward(x).backward();
  const auto local = clones(views);
  bucketer.allreduce(comm(), views, true);
  const auto expected = clones(views);

  // Overlapped, three steps in a row (the hooks re-arm each time).
  for (int step = 0; step < 3; ++step) {
    zero();
    overlap.arm();
    net.forward(x).backward();
    overlap.finish();
    for (std::size_t i = 0; i < params.size(); ++i) {
      BOOST_TEST(bitEqual(params[i].grad(), expected[i]), "step " << step << " parameter " << i);
    }
    BOOST_TEST(overlap.reduceSeconds() >= 0.0);
  }
  // The average is a real one: the ranks' gradients differ, their averages do not.
  BOOST_TEST(!sameOnAllRanks(local[0].data_ptr(), local[0].nbytes()));
  for (const auto& g : views) BOOST_TEST(sameOnAllRanks(g.data_ptr(), g.nbytes()));

  // A backward outside arm()/finish() reduces nothing: the local gradient stays local.
  zero();
  net.forward(x).backward();
  for (std::size_t i = 0; i < params.size(); ++i) BOOST_TEST(bitEqual(views[i], local[i]));
}

BOOST_AUTO_TEST_CASE(buckets_backward_does_not_reach_are_averaged_by_finish) {
  torch::manual_seed(4);
  Chain net;
  auto params = net.parameters();
  GradientBucketer bucketer(16 << 10);
  auto views = bucketer.bucketViews(params);
  for (std::size_t i = 0; i < params.size(); ++i) params[i].mutable_grad() = views[i];
  BackwardOverlap overlap(bucketer, comm(), params);
  // The unused layer's gradient storage holds a rank-dependent value that backward never
  // touches; finish() must still average it (and must not wait for its hook forever).
  for (auto& v : views) v.zero_();
  net.unused->weight.mutable_grad().fill_(static_cast<float>(comm().rank() + 1));
  overlap.arm();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(20 + comm().rank());
  net.forward(at::randn({8, 64}, gen)).backward();
  overlap.finish();
  const auto w = net.unused->weight.grad();
  BOOST_TEST(torch::all(w == 1.5f).item<bool>());
  for (const auto& g : views) BOOST_TEST(sameOnAllRanks(g.data_ptr(), g.nbytes()));
}

BOOST_AUTO_TEST_CASE(metasemi_step_with_overlap_matches_the_step_without) {
  // Two copies of one network and optimiser: one averages after backward, one overlapped.
  auto run = [](bool overlapped) {
    torch::manual_seed(5);
    models::NetworkSpec spec;
    spec.widthFactor = 0.125;
    auto net = models::makeNetwork(spec);
    meta::Sgd sgd(net->parameters(), 0.9, 1e-4);
    meta::MetaStep step(net, sgd);
    GradientBucketer grads(64 << 10), g;
    sgd.setGradientStorage(grads.bucketViews(net->parameters()));
    std::unique_ptr<BackwardOverlap> overlap;
    if (overlapped) {
      overlap = std::make_unique<BackwardOverlap>(grads, comm(), net->parameters());
      step.setBeforeBackwardHook([&] { overlap->arm(); });
      step.setParameterGradientHook([&](std::vector<torch::Tensor>&) { overlap->finish(); });
    } else {
      step.setParameterGradientHook(
          [&](std::vector<torch::Tensor>& t) { grads.allreduce(comm(), t, true); });
    }
    step.setLabeledGradientHook([&](std::vector<torch::Tensor>& t) { g.allreduce(comm(), t); });
    auto gen = at::make_generator<at::CPUGeneratorImpl>(30 + comm().rank());
    meta::StepBatch b;
    b.labeledImages = at::randn({8, 3, 32, 32}, gen);
    b.labels = at::randint(10, {8}, gen, torch::kLong);
    b.unlabeledImages = at::randn({8, 3, 32, 32}, gen);
    b.lambda = at::rand({8}, gen);
    meta::StepSettings s;
    s.kind = meta::StepKind::kMetaMixUp;
    s.lr = 0.05;
    auto mix = at::make_generator<at::CPUGeneratorImpl>(7);
    for (int i = 0; i < 2; ++i) step.run(b, s, mix);
    BOOST_TEST(grads.numBuckets() > 1u);
    std::vector<torch::Tensor> out;
    for (const auto& p : net->parameters()) out.push_back(p.detach().clone());
    return out;
  };
  const auto plain = run(false);
  const auto overlapped = run(true);
  BOOST_REQUIRE(plain.size() == overlapped.size());
  for (std::size_t i = 0; i < plain.size(); ++i) {
    BOOST_TEST(bitEqual(plain[i], overlapped[i]), "parameter " << i);
    BOOST_TEST(sameOnAllRanks(overlapped[i].data_ptr(), overlapped[i].nbytes()));
  }
}
