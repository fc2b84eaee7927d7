// A two-rank program in which rank 1 fails while rank 0 is inside a collective; the dist failure
// test runs it under mpirun and expects the whole job to end promptly with a non-zero code.
// Modes: throw (rank 1 throws; the top-level handler aborts the job), hang (rank 1 stops
// answering; rank 0's collective watchdog fires), exit (rank 1 leaves without MPI_Finalize).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "metasemi/comm/Communicator.h"
#include "metasemi/core/Error.h"

namespace ms = metasemi;

namespace {

void run(const std::string& mode, ms::comm::Communicator& comm) {
  MS_REQUIRE(comm.size() == 2, ms::core::ConfigError, "run with 2 ranks, got {}", comm.size());
  if (mode == "hang") comm.setCollectiveTimeout(2.0);
  std::vector<double> v(1000, 1.0);
  for (int step = 0; step < 100000; ++step) {
    if (comm.rank() == 1 && step == 5) {
      if (mode == "throw")
        MS_THROW(ms::core::NumericalError, "loss is not finite at step {}", step);
      if (mode == "hang") std::this_thread::sleep_for(std::chrono::seconds(120));
      if (mode == "exit") std::_Exit(3);
    }
    comm.allreduceSum(v.data(), v.size());
    v.assign(v.size(), 1.0);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    std::printf(
        "Usage: mpirun -np 2 metasemi-test-dist-failure <throw|hang|exit>\n"
        "Rank 1 fails at step 5 while rank 0 is in a collective (a test of job teardown).\n");
    return 0;
  }
  ms::comm::Environment env(argc, argv);
  auto comm = ms::comm::makeHostCommunicator(env);
  try {
    MS_REQUIRE(argc == 2, ms::core::ConfigError, "usage: {} throw|hang|exit", argv[0]);
    run(argv[1], *comm);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[rank %d] dist_failure_helper: %s\n", comm->rank(), e.what());
    comm->abort(ms::core::exitCodeFor(e));
  }
}
