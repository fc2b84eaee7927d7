#include "metasemi/train/TrainMain.h"

#include <malloc.h>

#include <iostream>

#include "metasemi/core/Error.h"
#include "metasemi/core/Log.h"
#include "metasemi/core/TrainOptions.h"
#include "metasemi/dist/Communicator.h"
#include "metasemi/io/Hdf5.h"
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
  // Every step allocates and frees the same activation-sized tensors. Above glibc's default
  // threshold each one is a fresh mmap, paid again in page faults and zeroing by the kernel
  // (small models stepped 5x slower, more than half the time in system calls); kept in the heap,
  // the memory is reused. 32 MiB is the largest threshold glibc accepts.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
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
    return run(options, env, *comm);
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
