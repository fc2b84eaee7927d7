// The start-up and error policy shared by the programs that run under mpirun/srun
// (metasemi-train, -prep, -eval, -features): allocator settings, MPI, the host communicator,
// per-rank logging and quiet HDF5, then one way for an error on any rank to end every rank with
// one line and its exit code.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "metasemi/comm/Communicator.h"

namespace metasemi::app {

class MpiProgram {
 public:
  /// `name` prefixes every error line. May rewrite argc/argv (MPI_Init).
  MpiProgram(std::string name, int& argc, char**& argv);
  ~MpiProgram();
  MpiProgram(const MpiProgram&) = delete;
  MpiProgram& operator=(const MpiProgram&) = delete;

  const comm::Environment& env() const { return *env_; }
  comm::Communicator& comm() { return *comm_; }

  /// Runs `check` on every rank, where bad input may show on some ranks only (a file one rank
  /// opens, the output folder rank 0 writes). The ranks then agree: when any failed, the lowest
  /// failing rank prints "<name>: <what>" and every rank returns the highest exit code, with no
  /// abort. Returns core::kExitOk when every rank passed. A collective, like every call below.
  int agree(const std::function<void()>& check);

  /// Runs `body` and returns its exit code. A core::ConfigError is taken to come from the command
  /// line, which every rank reads alike: rank 0 prints it and every rank returns 2. Any other
  /// exception may be one rank's alone: that rank prints "[rank r] <name>: <what>" and, with
  /// more than one rank, aborts the job with the error's exit code, so that no rank waits forever
  /// in a collective.
  int run(const std::function<int()>& body);

 private:
  std::string name_;
  std::unique_ptr<comm::Environment> env_;
  std::unique_ptr<comm::Communicator> comm_;
};

}  // namespace metasemi::app
