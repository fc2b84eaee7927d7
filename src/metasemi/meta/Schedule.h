// Learning-rate and loss-weight schedules of the reference scripts. Steps count from 0, as the
// reference's `for step in range(start_step, total_steps)`.
#pragma once

#include <cstdint>
#include <vector>

namespace metasemi::meta {

/// train_meta.py's compute_lr: linear warm-up from 0 over `warmup` steps
/// (lr·step/warmup for step < warmup), then lr times gamma for every milestone m with step > m.
struct StepLrSchedule {
  double baseLr = 0.1;
  std::int64_t warmup = 4000;
  std::vector<std::int64_t> milestones = {300000, 350000};
  double gamma = 0.1;

  /// The learning rate of 0-based step `step`.
  double lr(std::int64_t step) const;
};

/// utils.py's CosAnnealingLR as train_meta_imagenet.py steps it (once before every iteration, so
/// 0-based step t uses counter t+1): linear warm-up counter/warmupIters·lrMax while
/// counter ≤ warmupIters, then (1 + cos(π·(counter − warmupIters)/(maxIters −
/// warmupIters)))/2·lrMax.
struct CosineLrSchedule {
  double lrMax = 0.1;
  std::int64_t warmupIters = 0;  ///< loader length × warm-up epochs
  std::int64_t maxIters = 1;     ///< loader length × epochs; must exceed warmupIters

  /// The learning rate of 0-based step `step`. Throws core::ConfigError when maxIters ≤
  /// warmupIters.
  double lr(std::int64_t step) const;
};

/// utils.py's compute_weight: weight·step/rampup for step ≤ rampup, then weight (linear ramp-up
/// of the consistency weight). rampup ≤ 0 means no ramp.
double rampWeight(double weight, std::int64_t step, std::int64_t rampup);

}  // namespace metasemi::meta
