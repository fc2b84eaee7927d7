#include "metasemi/train/TrainMain.h"

#include <iostream>

#include "metasemi/core/Error.h"
#include "metasemi/core/Log.h"
#include "metasemi/core/TrainOptions.h"
#include "metasemi/dist/MpiProgram.h"
#include "metasemi/train/BuildInfo.h"
#include "metasemi/train/Trainer.h"

namespace metasemi::train {
namespace {

int run(const core::TrainOptions& options, const dist::Environment& env, dist::Communicator& comm) {
  const core::TrainConfig& cfg = options.config;
  if (options.dryRun) {
    if (comm.isRoot()) std::cout << core::formatConfig(cfg) << std::flush;
    return core::kExitOk;
  }
  // The host communicator (MPI or serial) serves unless another backend is asked for; asking
  // for one this build or machine lacks is a ConfigError, never a silent fallback.
  if (cfg.distBackend == core::DistBackend::kNccl || cfg.gpu) {
    auto trainComm = dist::makeCommunicator(env, cfg.distBackend, cfg.gpu);
    return runTraining(cfg, *trainComm);
  }
  return runTraining(cfg, comm);
}

}  // namespace

int trainMain(int argc, char** argv) {
  dist::MpiProgram program("metasemi-train", argc, argv);
  dist::Communicator& comm = program.comm();
  return program.run([&]() -> int {
    const std::vector<std::string> args(argv + 1, argv + argc);
    const core::TrainOptions options = core::parseTrainOptions(args);
    if (options.help) {
      if (comm.isRoot()) std::cout << core::trainUsage();
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

}  // namespace metasemi::train
