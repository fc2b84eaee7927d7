#include "metasemi/app/MpiProgram.h"

#include <fmt/format.h>

#include <cstdint>
#include <iostream>

#include "metasemi/app/CommandLine.h"
#include "metasemi/core/Error.h"
#include "metasemi/core/Files.h"
#include "metasemi/core/Log.h"
#include "metasemi/io/Hdf5.h"

namespace metasemi::app {

MpiProgram::MpiProgram(std::string name, int& argc, char**& argv) : name_(std::move(name)) {
  app::keepLargeAllocationsInHeap();
  env_ = std::make_unique<comm::Environment>(argc, argv);
  comm_ = comm::makeHostCommunicator(*env_);
  core::setupLogging(comm_->rank(), comm_->size());
  io::silenceHdf5Errors();
}

// The communicator goes before MPI_Finalize.
MpiProgram::~MpiProgram() {
  comm_.reset();
  env_.reset();
}

int MpiProgram::agree(const std::function<void()>& check) {
  std::int64_t code = core::kExitOk;
  std::string message;
  try {
    check();
  } catch (const std::exception& e) {
    code = core::exitCodeFor(e);
    message = core::describeError(e);
  }
  std::int64_t worst = code;
  std::int64_t firstFailing = code != core::kExitOk ? comm_->rank() : comm_->size();
  comm_->allreduceMax(&worst, 1);
  comm_->allreduceMin(&firstFailing, 1);
  if (worst != core::kExitOk && firstFailing == comm_->rank()) {
    std::cerr << name_ << ": " << message << "\n";
  }
  return static_cast<int>(worst);
}

int MpiProgram::run(const std::function<int()>& body) {
  try {
    return body();
  } catch (const core::ConfigError& e) {
    return comm_->isRoot() ? app::reportError(name_, e) : core::kExitConfig;
  } catch (const std::exception& e) {
    if (comm_->size() == 1) return app::reportError(name_, e);
    std::cerr << fmt::format("[rank {}] {}: {}\n", comm_->rank(), name_, core::describeError(e));
    comm_->abort(core::exitCodeFor(e));
  }
  return core::kExitError;  // not reached: abort() ends the process
}

}  // namespace metasemi::app
