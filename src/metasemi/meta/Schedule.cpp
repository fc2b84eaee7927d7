#include "metasemi/meta/Schedule.h"

#include <cmath>

#include "metasemi/core/Error.h"

namespace metasemi::meta {

double StepLrSchedule::lr(std::int64_t step) const {
  if (step < warmup) {
    return baseLr * static_cast<double>(step) / static_cast<double>(warmup);
  }
  double value = baseLr;
  for (const auto m : milestones) {
    if (step > m) value *= gamma;
  }
  return value;
}

double CosineLrSchedule::lr(std::int64_t step) const {
  MS_REQUIRE(maxIters > warmupIters, core::ConfigError,
             "cosine schedule: total iterations ({}) must exceed warm-up iterations ({})", maxIters,
             warmupIters);
  const std::int64_t counter = step + 1;
  if (warmupIters > 0 && counter <= warmupIters) {
    return static_cast<double>(counter) / static_cast<double>(warmupIters) * lrMax;
  }
  const double progress =
      static_cast<double>(counter - warmupIters) / static_cast<double>(maxIters - warmupIters);
  return (1.0 + std::cos(progress * M_PI)) / 2.0 * lrMax;
}

double rampWeight(double weight, std::int64_t step, std::int64_t rampup) {
  // The reference divides by zero when rampup is 0; no ramp is the only sensible reading.
  if (rampup <= 0 || step > rampup) return weight;
  return weight * static_cast<double>(step) / static_cast<double>(rampup);
}

}  // namespace metasemi::meta
