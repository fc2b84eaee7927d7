#include "prep/Progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

#include "metasemi/core/Log.h"

namespace metasemi::prep {

Progress::Progress(std::string what, std::int64_t total, double intervalSeconds)
    : what_(std::move(what)),
      total_(total),
      interval_(intervalSeconds),
      terminal_(isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

double Progress::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::add(std::int64_t n) {
  done_ += n;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_).count();
  // A terminal gets a bar redrawn a few times a second; a log gets a line per interval.
  if (since >= (terminal_ ? 0.25 : interval_)) {
    last_ = now;
    report(false);
  }
}

void Progress::report(bool final) {
  const double t = seconds();
  const double rate = t > 0 ? done_ / t : 0.0;
  std::string eta = "?";
  if (total_ > 0 && rate > 0) eta = fmt::format("{:.0f} s", (total_ - done_) / rate);
  if (terminal_ && !final) {
    const int width = 30;
    const int fill = total_ > 0 ? static_cast<int>(width * done_ / total_) : 0;
    std::fprintf(stderr, "\r%s [%s%s] %lld/%lld  %.0f images/s  ETA %s  ", what_.c_str(),
                 std::string(static_cast<std::size_t>(fill), '#').c_str(),
                 std::string(static_cast<std::size_t>(width - fill), ' ').c_str(),
                 static_cast<long long>(done_), static_cast<long long>(total_), rate, eta.c_str());
    std::fflush(stderr);
    return;
  }
  if (terminal_) std::fprintf(stderr, "\r\033[K");
  if (final) {
    spdlog::info("{}: {} images in {:.2f} s ({:.0f} images/s)", what_, done_, t, rate);
  } else {
    spdlog::info("{}: {}/{} images, {:.0f} images/s, ETA {}", what_, done_, total_, rate, eta);
  }
}

double Progress::finish() {
  report(true);
  const double t = seconds();
  return t > 0 ? done_ / t : 0.0;
}

}  // namespace metasemi::prep
