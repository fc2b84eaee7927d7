#include "metasemi/train/TrainMain.h"

#include <iostream>

#include "metasemi/core/Error.h"
#include "metasemi/core/Log.h"
#include "metasemi/core/TrainOptions.h"
#include "metasemi/dist/Communicator.h"
#include "metasemi/io/Hdf5.h"
#include "metasemi/train/BuildInfo.h"

namespace metasemi::train {
namespace {

int run(const core::TrainOptions& options, dist::Communicator& comm) {
  const core::TrainConfig& cfg = options.config;
  if (options.dryRun) {
    if (comm.isRoot()) std::cout << core::formatConfig(cfg) << std::flush;
    return core::kExitOk;
  }
  MS_THROW(core::Error,
           "the training loop is not part of this build yet; use --dry-run to check settings");
}

}  // namespace

int trainMain(int argc, char** argv) {
  dist::Environment env(argc, argv);
  auto comm = dist::makeHostCommunicator(env);
  core::setupLogging(comm->rank(), comm->size());
  io::silenceHdf5Errors();
  try {
    const std::vector<std::string> args(argv + 1, argv + argc);
    const core::TrainOptions options = core::parseTrainOptions(args);
    if (options.help) {
      if (comm->isRoot()) std::cout << core::trainUsage();
      return core::kExitOk;
    }
    if (options.version) {
      if (comm->isRoot()) std::cout << buildInfo();
      return core::kExitOk;
    }
    core::setupLogging(comm->rank(), comm->size(), options.config.logLevel);
    return run(options, *comm);
  } catch (const core::ConfigError& e) {
    // Every rank parses the same command line, so every rank gets here: rank 0 reports it and
    // all exit with 2 without an abort banner.
    if (comm->isRoot()) std::cerr << "metasemi-train: " << e.what() << "\n";
    return core::kExitConfig;
  } catch (const std::exception& e) {
    std::cerr << fmt::format("[rank {}] metasemi-train: {}\n", comm->rank(), e.what());
    const int code = core::exitCodeFor(e);
    if (comm->size() > 1) comm->abort(code);
    return code;
  }
}

}  // namespace metasemi::train
