// The trainer's command line and config file. Flags keep the reference's spellings and
// defaults; `--config FILE` reads `key = value` lines (keys are long flag names) and flags given
// on the command line override it.
#pragma once

#include <string>
#include <vector>

#include "metasemi/core/TrainConfig.h"

namespace metasemi::core {

struct TrainOptions {
  TrainConfig config;
  bool help = false;
  bool version = false;
  bool dryRun = false;     // print the resolved config and exit
  std::string configFile;  // empty when not given
};

/// Parses argv (argv[0] is skipped) into validated options. Throws ConfigError with one line
/// naming the flag, config-file key or value that is wrong. `--help` and `--version` skip
/// validation.
TrainOptions parseTrainOptions(const std::vector<std::string>& args);

/// Settings from `key = value` text (a config file's contents, e.g. the resolved configuration
/// a checkpoint stores), validated. `origin` names the text in error messages.
TrainConfig parseConfigText(const std::string& text, const std::string& origin);

/// The `--help` text.
std::string trainUsage();

/// `key = value` lines of every setting, readable back by `--config`.
std::string formatConfig(const TrainConfig& config);

}  // namespace metasemi::core
