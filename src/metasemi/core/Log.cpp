#include "metasemi/core/Log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include "metasemi/core/Error.h"

namespace metasemi::core {
namespace {
int gRank = 0;
std::shared_ptr<spdlog::logger> gRoot;

std::string pattern(int rank) {
  return fmt::format("[%Y-%m-%d %H:%M:%S.%e] [rank {}] [%l] %v", rank);
}
}  // namespace

void setupLogging(int rank, int worldSize, const std::string& level) {
  gRank = rank;
  auto lvl = spdlog::level::from_str(level);
  MS_REQUIRE(lvl != spdlog::level::off || level == "off", ConfigError,
             "--log-level: unknown level '{}' (expected trace, debug, info, warn, error)", level);
  // Plain (not colour) sink: batch logs are files, and flushing every line keeps Slurm output
  // files current.
  auto logger = std::make_shared<spdlog::logger>("metasemi",
                                                 std::make_shared<spdlog::sinks::stdout_sink_mt>());
  logger->set_pattern(pattern(rank));
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  if (rank == 0) {
    gRoot = logger;
  } else {
    gRoot = std::make_shared<spdlog::logger>("metasemi-root",
                                             std::make_shared<spdlog::sinks::null_sink_mt>());
  }
  (void)worldSize;
}

void addLogFile(const std::string& path) {
  auto logger = spdlog::default_logger();
  try {
    auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, /*truncate=*/false);
    sink->set_pattern(pattern(gRank));
    logger->sinks().push_back(sink);
  } catch (const spdlog::spdlog_ex& e) {
    MS_THROW(IoError, "cannot open log file '{}': {}", path, e.what());
  }
}

spdlog::logger& rootLog() {
  if (!gRoot) setupLogging(gRank, 1);
  return *gRoot;
}

int logRank() { return gRank; }

}  // namespace metasemi::core
