#include "metasemi/app/TrainOptions.h"

#include <boost/program_options.hpp>

#include <fstream>
#include <sstream>

#include "metasemi/core/Error.h"
#include "metasemi/train/ConfigText.h"

namespace po = boost::program_options;

namespace metasemi::app {

TrainOptions parseTrainOptions(const std::vector<std::string>& args) {
  using core::ConfigError;
  TrainOptions out;
  po::variables_map cli;
  po::variables_map file;
  try {
    po::options_description desc = train::settingsOptions(false);
    desc.add_options()("config", po::value<std::string>(), "file of `key = value` settings")(
        "help,h", "print this help")("version", "print the versions this program was built with")(
        "build-info", "same as --version")("dry-run", "print the resolved settings and exit");
    po::store(
        po::command_line_parser(args)
            .options(desc)
            .style(po::command_line_style::default_style & ~po::command_line_style::allow_guessing)
            .run(),
        cli);
  } catch (const po::error& e) {
    MS_THROW(ConfigError, "command line: {}", e.what());
  }
  out.help = cli.count("help") > 0;
  out.version = cli.count("version") > 0 || cli.count("build-info") > 0;
  out.dryRun = cli.count("dry-run") > 0;
  if (out.help || out.version) return out;

  if (cli.count("config")) {
    out.configFile = cli["config"].as<std::string>();
    std::ifstream in(out.configFile);
    MS_REQUIRE(in.good(), ConfigError, "--config: cannot read '{}'", out.configFile);
    try {
      po::store(po::parse_config_file(in, train::settingsOptions(true), false), file);
    } catch (const po::error& e) {
      MS_THROW(ConfigError, "--config {}: {}", out.configFile, e.what());
    }
  }

  // The dataset decides which reference script's defaults apply; the command line wins.
  std::string dataset = train::datasetSetting(cli);
  if (dataset.empty()) dataset = train::datasetSetting(file);
  train::applyDatasetDefaults(dataset, out.config);

  train::applySettings(file, out.config, out.configFile + ": ");
  train::applySettings(cli, out.config, "--");
  out.config.validate();
  return out;
}

std::string trainUsage() {
  std::ostringstream os;
  os << "Usage: metasemi-train [flags]   (under mpirun/srun: one process per rank)\n\n"
        "MetaSemi semi-supervised training and its baselines. Flags keep the reference's\n"
        "spellings; --config FILE reads `key = value` lines that flags override.\n"
        "Defaults are train_meta.py's; --dataset imagenet switches to "
        "train_meta_imagenet.py's.\n\n";
  os << train::describeSettings();
  os << fmt::format("  {:<34} {}\n", "--config FILE", "read settings from FILE");
  os << fmt::format("  {:<34} {}\n", "--dry-run", "print the resolved settings and exit");
  os << fmt::format("  {:<34} {}\n", "--version, --build-info",
                    "print the library versions of this build");
  os << fmt::format("  {:<34} {}\n", "--help, -h", "print this help");
  os << "\nExit codes: 0 done, 1 error, 2 bad flag or value, 3 bad input file, 4 communication\n"
        "failure, 5 non-finite loss, 75 preempted (checkpoint written; requeue the job).\n";
  return os.str();
}

}  // namespace metasemi::app
