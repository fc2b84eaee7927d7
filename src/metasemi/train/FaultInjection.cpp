#include "metasemi/train/FaultInjection.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <thread>

#include "metasemi/core/Error.h"

namespace metasemi::train {

FaultInjection FaultInjection::fromEnvironment() {
  const char* spec = std::getenv("METASEMI_FAULT");
  return parse(spec ? spec : "");
}

FaultInjection FaultInjection::parse(const std::string& s) {
  FaultInjection f;
  if (s.empty()) return f;
  const auto a = s.find(':'), b = s.rfind(':');
  std::size_t used = 0;
  try {
    if (a == std::string::npos || b == a) throw std::invalid_argument(s);
    f.kind_ = s.substr(0, a);
    f.rank_ = std::stoi(s.substr(a + 1, b - a - 1));
    f.step_ = std::stoll(s.substr(b + 1), &used);
  } catch (const std::exception&) {
    used = 0;
  }
  MS_REQUIRE(used > 0 && used == s.size() - b - 1 &&
                 (f.kind_ == "throw" || f.kind_ == "hang" || f.kind_ == "exit"),
             core::ConfigError,
             "METASEMI_FAULT: expected <throw|hang|exit>:<rank>:<step>, got '{}'", s);
  return f;
}

void FaultInjection::atStep(int rank, std::int64_t step) const {
  if (kind_.empty() || rank != rank_ || step != step_) return;
  spdlog::error("METASEMI_FAULT: injecting '{}' at step {}", kind_, step);
  if (kind_ == "throw") {
    throw std::runtime_error(fmt::format("fault injected by METASEMI_FAULT at step {}", step));
  }
  if (kind_ == "exit") std::_Exit(9);
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}

}  // namespace metasemi::train
