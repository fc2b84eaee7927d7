// The trainer's command line: the settings (train/ConfigText.h) plus `--config FILE`, `--help`,
// `--version` and `--dry-run`. Flags given on the command line override the file.
#pragma once

#include <string>
#include <vector>

#include "metasemi/train/TrainConfig.h"

namespace metasemi::app {

struct TrainOptions {
  train::TrainConfig config;
  bool help = false;
  bool version = false;
  bool dryRun = false;     // print the resolved config and exit
  std::string configFile;  // empty when not given
};

/// Parses the arguments after argv[0] into validated options. Throws core::ConfigError with one
/// line naming the flag, config-file key or value that is wrong. `--help` and `--version` skip
/// validation.
TrainOptions parseTrainOptions(const std::vector<std::string>& args);

/// The `--help` text.
std::string trainUsage();

}  // namespace metasemi::app
