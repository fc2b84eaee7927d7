// Error rates of a classifier over one labeled split, as metasemi-eval reports them: the counts
// one pass collects (confusion matrix, top-k hits), the rates derived from them, and their JSON
// and text forms. Torch-free: the program runs the network and feeds the predictions in.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace metasemi::post {

/// What one pass over a split counts. Every number is an integer count, so the sum over ranks
/// is exact and does not depend on how the images were split among them.
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

  /// Every count in one array (confusion matrix row-major, then the top-k hits), so that a
  /// communicator can sum it over ranks in place.
  std::vector<std::int64_t>& raw() { return counts_; }

 private:
  std::int64_t numClasses_, topK_;
  std::vector<std::int64_t> counts_;
};

/// One class's row of the report.
struct ClassError {
  std::string name;         ///< class name ("" when the shard set has none)
  std::int64_t images = 0;  ///< images of this class
  std::int64_t errors = 0;  ///< of them, predicted as another class
  /// errors / images in percent; empty when the split has no image of this class.
  std::optional<double> errorPercent;
};

/// The errors that metasemi-train recorded in a checkpoint (percent), where present.
struct RecordedErrors {
  std::optional<double> bestTop1, bestTop5, lastTop1, lastTop5;
};

/// Everything metasemi-eval reports. Errors are in percent (100 − accuracy), as in the
/// trainer's metrics.jsonl.
struct EvalReport {
  // Where the numbers come from (filled in by the caller).
  std::string checkpoint, dataPath, split, architecture, dataset;
  std::int64_t step = 0;  ///< steps completed when the checkpoint was written
  RecordedErrors recorded;

  std::int64_t images = 0, classes = 0, topK = 5;
  std::int64_t correct = 0, topKCorrect = 0;
  double top1Error = 0;  ///< 100 − 100 · correct / images, the trainer's formula
  /// The top-k error; empty when there are fewer than topK classes.
  std::optional<double> topKError;
  std::vector<ClassError> perClass;
  /// classes × classes, row-major: rows the true class, columns the predicted one.
  std::vector<std::int64_t> confusion;
};

/// The rates of `counts`; `classNames` (numClasses names, or empty) label the classes. Throws
/// core::IoError when no image was counted.
EvalReport makeEvalReport(const EvalCounts& counts, const std::vector<std::string>& classNames);

/// The errors in metasemi-train's run state (the `json` attribute on a checkpoint's /data);
/// all empty for text that is not such a state (e.g. "").
RecordedErrors parseRecordedErrors(const std::string& runStateJson);

/// The report as a JSON object (indented); the keys are listed in postprocess/README.md.
std::string toJson(const EvalReport& report);

/// The report for a terminal: the top-1 and top-k errors, the trainer's recorded errors and a
/// per-class table.
std::string formatEvalReport(const EvalReport& report);

}  // namespace metasemi::post
