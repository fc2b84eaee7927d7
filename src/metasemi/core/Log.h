// Rank-prefixed logging on top of spdlog. Every rank logs `[rank r]`; messages that only rank 0
// should print go through rootLog(), which is silent on the other ranks.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace metasemi::core {

/// Installs the default logger: stderr-free stdout sink with time, `[rank r]` and level.
/// `level` is one of trace, debug, info, warn, error. Safe to call again (e.g. after MPI start).
void setupLogging(int rank, int worldSize, const std::string& level = "info");

/// Also appends every message of this rank to `path` (opened in append mode).
void addLogFile(const std::string& path);

/// The logger for messages that rank 0 alone prints; a no-op logger on other ranks.
spdlog::logger& rootLog();

/// This process's rank as given to setupLogging (0 before).
int logRank();

}  // namespace metasemi::core
