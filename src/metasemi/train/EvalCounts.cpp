#include "metasemi/train/EvalCounts.h"

#include <cmath>

#include "metasemi/core/Error.h"

namespace metasemi::train {

EvalCounts::EvalCounts(std::int64_t numClasses, std::int64_t topK)
    : numClasses_(numClasses), topK_(topK) {
  MS_REQUIRE(numClasses >= 1, core::ConfigError, "expected at least 1 class, got {}", numClasses);
  MS_REQUIRE(topK >= 1, core::ConfigError, "top-k: expected k >= 1, got {}", topK);
  counts_.assign(static_cast<std::size_t>(numClasses * numClasses + 1), 0);
}

void EvalCounts::add(std::int64_t trueClass, std::int64_t predicted, bool inTopK) {
  MS_REQUIRE(trueClass >= 0 && trueClass < numClasses_ && predicted >= 0 && predicted < numClasses_,
             core::IoError, "class out of range: true {}, predicted {}; expected [0, {})",
             trueClass, predicted, numClasses_);
  ++counts_[static_cast<std::size_t>(trueClass * numClasses_ + predicted)];
  if (inTopK) ++counts_.back();
}

std::int64_t EvalCounts::images() const {
  std::int64_t n = 0;
  for (std::size_t i = 0; i + 1 < counts_.size(); ++i) n += counts_[i];
  return n;
}

std::int64_t EvalCounts::correct() const {
  std::int64_t n = 0;
  for (std::int64_t k = 0; k < numClasses_; ++k) n += confusion(k, k);
  return n;
}

double EvalCounts::top1Error() const {
  const std::int64_t n = images();
  if (n == 0) return std::nan("");
  return 100.0 - 100.0 * static_cast<double>(correct()) / static_cast<double>(n);
}

double EvalCounts::topKError() const {
  const std::int64_t n = images();
  if (n == 0) return std::nan("");
  return 100.0 - 100.0 * static_cast<double>(topKCorrect()) / static_cast<double>(n);
}

}  // namespace metasemi::train
