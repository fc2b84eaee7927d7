// TensorBoard event files: the scalars a run writes at each print and evaluation, in the format
// TensorBoard reads (`events.out.tfevents.<seconds>.<host>` in the run folder).
//
// A file is a sequence of TFRecords: a little-endian uint64 length, the masked CRC-32C of those
// 8 bytes, the data, the masked CRC-32C of the data. Each record's data is an `Event` protocol
// buffer: the first holds only `file_version` ("brain.Event:2"), every other one a `Summary` of
// scalar values (`simple_value`) at one step. The few fields needed are encoded here by hand:
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }
//   Value   { string tag = 1; float simple_value = 2; }
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace metasemi::io {

/// CRC-32C (Castagnoli) of `size` bytes, as TFRecord framing takes it (before masking).
std::uint32_t crc32c(const void* data, std::size_t size);

/// One scalar: a tag ("train/lr") and its value.
using Scalar = std::pair<std::string, double>;

/// One event as read back.
struct Event {
  double wallTime = 0;
  std::int64_t step = 0;
  std::string fileVersion;      ///< set on the first record of a file only
  std::vector<Scalar> scalars;  ///< the summary's simple values (float precision)
};

/// An event file read back record by record.
struct EventFileContents {
  std::vector<Event> events;
  /// Bytes of whole, valid records from the start of the file.
  std::uint64_t validBytes = 0;
  /// Empty when the whole file was valid; else what was wrong at offset `validBytes` (a
  /// truncated record, a CRC mismatch, a malformed message).
  std::string damage;
};

/// Reads `path`. With `stopAtDamage`, a damaged record ends the reading and is reported in
/// `damage` (how a run resumed after SIGKILL finds its last whole record); without it, damage
/// throws core::IoError naming the file and the offset.
EventFileContents readEventFile(const std::filesystem::path& path, bool stopAtDamage = false);

/// The run folder's event files (`events.out.tfevents.*`), oldest name first.
std::vector<std::filesystem::path> eventFilesIn(const std::filesystem::path& dir);

/// Writes scalars into one event file of a run folder, flushed after each record.
class EventWriter {
 public:
  /// A writer for the run folder `dir`. `resumedAt`: the step the run continues from (0 for a
  /// new run). Records of earlier files with a step after `resumedAt` (written after the last
  /// checkpoint of an interrupted run) and a damaged tail are removed first, so that after a
  /// resume every step appears once. The new records go to a new file
  /// `events.out.tfevents.<seconds>.<host>`.
  EventWriter(const std::filesystem::path& dir, std::int64_t resumedAt);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  /// Appends one event with these scalars at `step` and flushes it. Non-finite values are
  /// written as they are (TensorBoard shows NaN). Throws core::IoError when the write fails.
  void write(std::int64_t step, const std::vector<Scalar>& scalars);

  const std::filesystem::path& path() const { return path_; }

 private:
  void append(const std::string& event);

  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
};

}  // namespace metasemi::io
