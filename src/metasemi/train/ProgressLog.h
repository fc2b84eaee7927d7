// The trainer's progress: running means of the logged quantities between prints (kept as
// tensors, so a step never waits for the device), the reference's periodic line with data-wait
// and ETA, the evaluation line, and the matching metrics.jsonl rows.
#pragma once

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "metasemi/meta/MetaStep.h"

namespace metasemi::train {

/// The TensorBoard scalars of a metrics row (ProgressLine::row): the reference's tags
/// (train/label-acc, train/unlabel-acc, train/label-loss, train/unlabel-loss, train/interp-loss,
/// train/lr; test/accuracy) and the project's own (train/consistency-weight, train/data-wait,
/// train/data-time, train/step-time; test/top5-accuracy). Quantities the run does not have
/// (null in the row) are left out.
std::vector<std::pair<std::string, double>> scalarsOf(const nlohmann::json& row);

/// One print's figures, as the line and the metrics row show them.
struct ProgressLine {
  std::string text;        ///< "Step 00100/400000 Dtime ... ETA ..."
  nlohmann::json row;      ///< {"kind": "train", "step": ..., ...}
  double labeledLoss = 0;  ///< the mean labeled loss (NaN when not finite)
};

class ProgressLog {
 public:
  /// A run from step `firstStep` (0, or where it resumed) to `totalSteps`.
  ProgressLog(std::int64_t firstStep, std::int64_t totalSteps);

  /// Adds one step's figures: its results, the seconds it waited for data and its duration.
  void add(const meta::StepResult& result, double waitSeconds, double stepSeconds);

  /// The line after `stepsDone` steps (means since the last print, then reset), at `lr` and
  /// consistency `weight`, `elapsedSeconds` after the run (re)started. Reads the tensors (a
  /// synchronisation, at print time only). Throws core::NumericalError when the mean labeled
  /// loss is not finite (the run stops; the last checkpoint is kept).
  ProgressLine print(std::int64_t stepsDone, double lr, double weight, double elapsedSeconds);

  /// The evaluation line and row after `stepsDone` steps; `top5` is shown and stored only when
  /// `showTop5` (100 classes or more).
  static ProgressLine evaluation(std::int64_t stepsDone, double top1Error, double top5Error,
                                 double bestTop1Error, std::int64_t images, bool showTop5);

  /// Data wait over the whole run so far, as a fraction of step time.
  double dataWaitFraction() const;

  /// "01:02:03", or "2d03h04m" from a day on; "?" when unknown.
  static std::string formatDuration(double seconds);

 private:
  void accumulate(torch::Tensor& sum, const torch::Tensor& v);
  double mean(const torch::Tensor& sum) const;

  std::int64_t firstStep_, totalSteps_;
  torch::Tensor labeledLoss_, unlabeledLoss_, mixLoss_, labeledAcc_, unlabeledAcc_;
  std::int64_t n_ = 0;
  double dataTime_ = 0, batchTime_ = 0;
  double waitTotal_ = 0, stepTotal_ = 0;
};

}  // namespace metasemi::train
