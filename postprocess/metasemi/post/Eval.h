// Error rates of a classifier over one labeled split, as metasemi-eval reports them: the counts
// one pass collects (confusion matrix, top-k hits), the rates derived from them, and their JSON
// and text forms. Torch-free: train::Evaluator runs the network and counts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "metasemi/train/EvalCounts.h"

namespace metasemi::post {

/// The counts of one pass (train/EvalCounts.h), shared with the trainer's evaluation.
using train::EvalCounts;

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
