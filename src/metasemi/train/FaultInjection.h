// METASEMI_FAULT=<kind>:<rank>:<step> makes one rank fail at the start of a step, so that a site
// can check how its jobs end when a rank fails: `throw` (an exception), `hang` (the rank stops
// answering; the others' --collective-timeout ends the job) or `exit` (the process vanishes
// with code 9).
#pragma once

#include <cstdint>
#include <string>

namespace metasemi::train {

class FaultInjection {
 public:
  /// From METASEMI_FAULT (none when unset or empty). Throws core::ConfigError for a malformed
  /// value.
  static FaultInjection fromEnvironment();
  /// From `spec` ("" = none), as fromEnvironment() reads it.
  static FaultInjection parse(const std::string& spec);

  /// Fails as asked when `rank` is at `step`; otherwise returns.
  void atStep(int rank, std::int64_t step) const;

  const std::string& kind() const { return kind_; }
  int rank() const { return rank_; }
  std::int64_t step() const { return step_; }

 private:
  std::string kind_;
  int rank_ = -1;
  std::int64_t step_ = -1;
};

}  // namespace metasemi::train
