// A run folder (`--save-path`): the one owner of its file names and formats. The trainer writes
// it through this class and the postprocessing tools read it through the same class.
//   config.cfg           the resolved settings (`key = value` lines, readable by --config)
//   label_indices.txt    the labeled training indices, one per line (the reference's file)
//   log.txt              the log, appended on resume
//   metrics.jsonl        one JSON object per line; "kind" is "train" (a print) or "eval"
//   checkpoint.h5, model_best.h5   checkpoints (io/Checkpoint.h)
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace metasemi::io {

/// Throws core::IoError naming `what` unless `dir` exists (or can be created, when `create`)
/// and a file can be created in it. `what` is how messages name the folder ("--save-path").
void requireWritableFolder(const std::filesystem::path& dir, const std::string& what, bool create);

class RunDir {
 public:
  static constexpr const char* kConfig = "config.cfg";
  static constexpr const char* kLabelIndices = "label_indices.txt";
  static constexpr const char* kLog = "log.txt";
  static constexpr const char* kMetrics = "metrics.jsonl";
  static constexpr const char* kCheckpoint = "checkpoint.h5";
  static constexpr const char* kBest = "model_best.h5";

  explicit RunDir(std::filesystem::path dir) : dir_(std::move(dir)) {}

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path path(const char* name) const { return dir_ / name; }

  /// True when `dir` holds a config.cfg (how the tools recognise a run folder).
  static bool isRunDir(const std::filesystem::path& dir);

  // --- writing (rank 0) ---
  /// Creates the folder and checks that it is writable, before anything is written.
  void prepare() const;
  /// Replaces config.cfg atomically.
  void writeConfig(const std::string& text) const;
  /// Replaces label_indices.txt atomically.
  void writeLabelIndices(const std::vector<std::int64_t>& indices) const;
  /// Appends one row to metrics.jsonl and flushes it.
  void appendMetrics(const nlohmann::json& row) const;

  // --- reading ---
  /// One row of metrics.jsonl with its line number (from 1).
  struct MetricsRow {
    int line = 0;
    nlohmann::json value;  ///< an object with a "kind" string
  };
  /// The contents of config.cfg. Throws core::IoError when it is missing or unreadable.
  std::string readConfig() const;
  /// The rows of metrics.jsonl (blank lines skipped). Throws core::IoError naming the file and
  /// line of a row that is not a JSON object with a "kind" string, or when the file is missing.
  std::vector<MetricsRow> readMetrics() const;
  /// label_indices.txt as numbers. Throws core::IoError for a missing file or a bad line.
  std::vector<std::int64_t> readLabelIndices() const;

 private:
  std::filesystem::path dir_;
};

}  // namespace metasemi::io
