// Progress of a long conversion: images/s and ETA, as a redrawn bar on a terminal and as a log
// line at intervals in a batch log.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace metasemi::prep {

class Progress {
 public:
  /// `what` names the work ("cifar10 train"); `total` images are expected (0 = unknown).
  /// Log lines come every `intervalSeconds`.
  Progress(std::string what, std::int64_t total, double intervalSeconds = 10.0);

  /// Records `n` more images done and reports when due.
  void add(std::int64_t n);
  /// Logs the final count, time and rate; returns images/s.
  double finish();

  std::int64_t done() const { return done_; }
  double seconds() const;

 private:
  void report(bool final);

  std::string what_;
  std::int64_t total_;
  double interval_;
  std::int64_t done_ = 0;
  bool terminal_;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace metasemi::prep
