// The random numbers of one training step, named by (seed, step[, rank]) so that a resumed run
// draws the same numbers with nothing saved: the mix-up coefficients λ of the global batch (the
// same on every rank, each rank taking its rows) and the seed of the dropout masks (per rank).
#pragma once

#include <ATen/core/Generator.h>
#include <torch/torch.h>

#include <cstdint>

namespace metasemi::meta {

class StepRandom {
 public:
  /// `seed`: the run's seed; `rank` of `worldSize` ranks, each with `localBatch` images.
  StepRandom(std::uint64_t seed, int rank, int worldSize, std::int64_t localBatch);

  /// The mix-up generator of `step` (CPU; the same on every rank).
  at::Generator mixUpGenerator(std::int64_t step) const;

  /// This rank's λ of `step`: Beta(α, α) draws for the whole global batch from
  /// mixUpGenerator(step), rows [rank·localBatch, (rank+1)·localBatch). float32 [localBatch] on
  /// `device`. The global draws do not depend on the number of ranks.
  torch::Tensor lambda(std::int64_t step, double alpha, torch::Device device = torch::kCPU) const;

  /// Seeds torch's global generators (Dropout2d masks, as the reference) for `step` on this
  /// rank.
  void seedDropout(std::int64_t step) const;

 private:
  std::uint64_t seed_;
  int rank_, worldSize_;
  std::int64_t localBatch_;
};

}  // namespace metasemi::meta
