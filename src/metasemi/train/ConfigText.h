// The text form of a run's settings: one table of every setting (long name, alias, help,
// parser and printer) that serves the command line, `--config` files, the `config.cfg` of a run
// folder and the configuration a checkpoint stores. Keys are the long flag names.
#pragma once

#include <boost/program_options.hpp>

#include <string>

#include "metasemi/train/TrainConfig.h"

namespace metasemi::train {

/// Settings from `key = value` text (a config file's contents, e.g. the resolved configuration
/// a checkpoint stores), validated. `origin` names the text in error messages. Throws
/// core::ConfigError naming the key or value that is wrong.
TrainConfig parseConfigText(const std::string& text, const std::string& origin);

/// `key = value` lines of every setting, readable back by parseConfigText() and `--config`.
std::string formatConfig(const TrainConfig& config);

/// Every setting as program options of string values: for the command line (`forConfigFile`
/// false: one-letter names too, switches without a value) or for a config file.
boost::program_options::options_description settingsOptions(bool forConfigFile);

/// Sets every setting found in `values` (parsed against settingsOptions()); `prefix` ("--" or
/// "<file>: ") names the source in error messages. Throws core::ConfigError.
void applySettings(const boost::program_options::variables_map& values, TrainConfig& config,
                   const std::string& prefix);

/// The `dataset` value in `values`, or "" when absent.
std::string datasetSetting(const boost::program_options::variables_map& values);

/// The defaults of the reference script that `dataset` selects (the ImageNet scripts' for
/// "imagenet"; nothing for the others, whose defaults are TrainConfig's own).
void applyDatasetDefaults(const std::string& dataset, TrainConfig& config);

/// One help line per setting with its default, as `--help` lists them.
std::string describeSettings();

}  // namespace metasemi::train
