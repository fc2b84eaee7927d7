#include "metasemi/meta/StepRandom.h"

#include <ATen/CPUGeneratorImpl.h>

#include "metasemi/core/Random.h"
#include "metasemi/meta/Losses.h"

namespace metasemi::meta {
namespace {
// Tags that give each random stream its own seed (core::deriveSeed).
constexpr std::uint64_t kDropoutTag = 0x64726f70;  // per rank and step
constexpr std::uint64_t kMixUpTag = 0x6d697875;    // per step, the same on every rank
}  // namespace

StepRandom::StepRandom(std::uint64_t seed, int rank, int worldSize, std::int64_t localBatch)
    : seed_(seed), rank_(rank), worldSize_(worldSize), localBatch_(localBatch) {}

at::Generator StepRandom::mixUpGenerator(std::int64_t step) const {
  return at::detail::createCPUGenerator(
      core::deriveSeed(seed_, {kMixUpTag, static_cast<std::uint64_t>(step)}));
}

torch::Tensor StepRandom::lambda(std::int64_t step, double alpha, torch::Device device) const {
  at::Generator g = mixUpGenerator(step);
  return sampleBeta(alpha, localBatch_ * worldSize_, g)
      .narrow(0, rank_ * localBatch_, localBatch_)
      .to(torch::kFloat32)
      .to(device);
}

void StepRandom::seedDropout(std::int64_t step) const {
  torch::manual_seed(core::deriveSeed(
      seed_, {kDropoutTag, static_cast<std::uint64_t>(step), static_cast<std::uint64_t>(rank_)}));
}

}  // namespace metasemi::meta
