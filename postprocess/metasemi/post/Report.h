// Result tables across runs: each run directory holds the trainer's `config.cfg` and
// `metrics.jsonl` (format in postprocess/README.md); runs that differ only in their seed are
// grouped and summarised as mean +- std over seeds.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "metasemi/post/Plot.h"

namespace metasemi::post {

/// One evaluation of a run (errors in percent).
struct EvalPoint {
  long long step = 0;
  double top1 = 0.0;
  std::optional<double> top5;
};

/// What the report reads from one run directory.
struct RunRecord {
  std::filesystem::path dir;
  /// `key = value` lines of config.cfg.
  std::map<std::string, std::string> config;
  /// Evaluation rows sorted by step; a step evaluated twice (after a resume) keeps its last row.
  std::vector<EvalPoint> evals;
  /// Number of training rows.
  std::size_t trainRows = 0;
};

/// Reads `config.cfg` and `metrics.jsonl` from `dir`. Throws IoError with one line naming the
/// file (and line) for a missing or empty directory, a missing file, a malformed line or a run
/// without any evaluation row.
RunRecord loadRun(const std::filesystem::path& dir);

/// Run directories under `root` (any depth) that contain a config.cfg, sorted by path.
std::vector<std::filesystem::path> findRuns(const std::filesystem::path& root);

/// Mean and sample standard deviation (n - 1 in the denominator; 0 for a single value).
struct Stat {
  double mean = 0.0;
  double std = 0.0;
  std::size_t n = 0;
};

/// Stat of `values` (n = 0 and zeros when empty).
Stat summarize(const std::vector<double>& values);

/// Median of `values` (mean of the two middle values for an even count); `values` not empty.
double median(std::vector<double> values);

/// Per-run figures: best top-1 error, last top-1 error, median of the last `k` top-1 errors and
/// the best top-5 error when the run reports top-5.
struct RunFigures {
  double best = 0.0, last = 0.0, medianLastK = 0.0;
  std::optional<double> bestTop5;
};

/// The figures of one run.
RunFigures runFigures(const RunRecord& run, std::size_t k);

/// One table row: runs sharing the group-by values.
struct ReportRow {
  std::vector<std::string> key;  // values of ReportOptions::groupBy, "-" where unset
  std::size_t runs = 0;
  Stat best, last, medianLastK, bestTop5;
  std::optional<double> paper;
  std::vector<std::size_t> members;  // indices into the runs given to aggregate()
};

/// How runs are grouped and summarised.
struct ReportOptions {
  std::vector<std::string> groupBy = {"dataset", "num-label", "method", "mix-up"};
  std::size_t lastK = 10;
  bool paperColumn = true;
};

/// Groups `runs` by the group-by values (rows sorted by them) and summarises each group.
std::vector<ReportRow> aggregate(const std::vector<RunRecord>& runs, const ReportOptions& options);

/// The paper's top-1 error (percent) for a configuration (reference-spec section 1), if it
/// reports one: SVHN/1000, CIFAR-10/4000, CIFAR-100/10000 for the four method x mix-up
/// combinations, ImageNet for MetaSemi and the labeled-only baseline.
std::optional<double> paperError(const std::map<std::string, std::string>& config);

/// The table as GitHub Markdown, CSV (mean and std in separate columns) and LaTeX (booktabs).
std::string toMarkdown(const std::vector<ReportRow>& rows, const ReportOptions& options);
std::string toCsv(const std::vector<ReportRow>& rows, const ReportOptions& options);
std::string toLatex(const std::vector<ReportRow>& rows, const ReportOptions& options);

/// Test error against step, one curve per run, labelled by its group-by values and seed.
LinePlot errorCurves(const std::vector<RunRecord>& runs, const ReportOptions& options);

/// Writes `text` to `path` through a temporary file renamed into place; throws IoError.
void writeTextAtomic(const std::filesystem::path& path, const std::string& text);

}  // namespace metasemi::post
