#include "metasemi/app/TrainMain.h"

#include <iostream>

#include "metasemi/app/BuildInfo.h"
#include "metasemi/app/MpiProgram.h"
#include "metasemi/app/TrainOptions.h"
#include "metasemi/core/Error.h"
#include "metasemi/core/Log.h"
#include "metasemi/train/ConfigText.h"
#include "metasemi/train/Trainer.h"

namespace metasemi::app {
namespace {

int run(const app::TrainOptions& options, const comm::Environment& env, comm::Communicator& comm) {
  const train::TrainConfig& cfg = options.config;
  if (options.dryRun) {
    if (comm.isRoot()) std::cout << train::formatConfig(cfg) << std::flush;
    return core::kExitOk;
  }
  // The host communicator (MPI or serial) serves unless another backend is asked for; asking
  // for one this build or machine lacks is a ConfigError, never a silent fallback.
  if (cfg.distBackend == comm::Backend::kNccl || cfg.gpu) {
    auto trainComm = comm::makeCommunicator(env, cfg.distBackend, cfg.gpu);
    return train::runTraining(cfg, *trainComm);
  }
  return train::runTraining(cfg, comm);
}

}  // namespace

int trainMain(int argc, char** argv) {
  app::MpiProgram program("metasemi-train", argc, argv);
  comm::Communicator& comm = program.comm();
  return program.run([&]() -> int {
    const std::vector<std::string> args(argv + 1, argv + argc);
    const app::TrainOptions options = app::parseTrainOptions(args);
    if (options.help) {
      if (comm.isRoot()) std::cout << app::trainUsage();
      return core::kExitOk;
    }
    if (options.version) {
      if (comm.isRoot()) std::cout << buildInfo();
      return core::kExitOk;
    }
    core::setupLogging(comm.rank(), comm.size(), options.config.logLevel);
    return run(options, program.env(), comm);
  });
}

}  // namespace metasemi::app
