// What one evaluation pass over a labeled split counts: the confusion matrix and the top-k hits.
// Every number is an integer count, so the sum over ranks is exact and does not depend on how
// the images were split among them. Torch-free.
#pragma once

#include <cstdint>
#include <vector>

namespace metasemi::train {

class EvalCounts {
 public:
  /// Counts for `numClasses` >= 1 classes and the top-`topK` error (`topK` >= 1). Throws
  /// core::ConfigError for values out of range.
  EvalCounts(std::int64_t numClasses, std::int64_t topK);

  /// Records one image of class `trueClass` whose highest score is class `predicted`;
  /// `inTopK`: the true class is among the `topK` highest scores. Throws core::IoError for a
  /// class outside [0, numClasses).
  void add(std::int64_t trueClass, std::int64_t predicted, bool inTopK);

  std::int64_t numClasses() const { return numClasses_; }
  std::int64_t topK() const { return topK_; }
  /// Images of class `trueClass` predicted as `predicted`.
  std::int64_t confusion(std::int64_t trueClass, std::int64_t predicted) const {
    return counts_[static_cast<std::size_t>(trueClass * numClasses_ + predicted)];
  }
  /// Images counted (the sum of the confusion matrix).
  std::int64_t images() const;
  /// Images whose highest score is their class (the trace of the confusion matrix).
  std::int64_t correct() const;
  /// Images whose class is among the topK highest scores.
  std::int64_t topKCorrect() const { return counts_.back(); }

  /// 100 − 100·correct/images, the trainer's top-1 error in percent (NaN with no image).
  double top1Error() const;
  /// 100 − 100·topKCorrect/images in percent (NaN with no image).
  double topKError() const;

  /// Every count in one array (confusion matrix row-major, then the top-k hits), so that a
  /// communicator can sum it over ranks in place.
  std::vector<std::int64_t>& raw() { return counts_; }
  const std::vector<std::int64_t>& raw() const { return counts_; }

 private:
  std::int64_t numClasses_, topK_;
  std::vector<std::int64_t> counts_;
};

}  // namespace metasemi::train
