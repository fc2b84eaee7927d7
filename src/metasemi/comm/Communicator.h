// Communication between ranks behind one small interface: a serial backend (always built), MPI
// (CPU tensors and host buffers) and NCCL (CUDA tensors; only when built with NCCL).
// Every method marked "collective" must be called by all ranks in the same order.
#pragma once

#include <torch/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "metasemi/comm/Backend.h"

namespace metasemi::comm {

/// Starts the MPI runtime when this process was launched by mpirun/srun (or when `forceMpi`),
/// and finalises it on destruction. Create exactly one, first thing in main().
class Environment {
 public:
  Environment(int& argc, char**& argv, bool forceMpi = false);
  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

  /// True when MPI was initialised by this Environment.
  bool usesMpi() const { return usesMpi_; }
  /// True when the environment variables of an MPI launcher (mpirun, srun --mpi=pmix) are set.
  static bool launchedByMpi();

 private:
  bool usesMpi_ = false;
};

/// Element-wise reduction of a collective.
enum class ReduceOp { kSum, kMin, kMax };

class Communicator {
 public:
  virtual ~Communicator() = default;

  /// Global rank in [0, size()).
  virtual int rank() const = 0;
  /// Number of ranks.
  virtual int size() const = 0;
  /// Rank among the ranks of this node (MPI_COMM_TYPE_SHARED), used to pick the local GPU.
  virtual int localRank() const = 0;
  /// Number of ranks on this node.
  virtual int localSize() const = 0;
  /// Backend name: "serial", "mpi" or "nccl".
  virtual std::string name() const = 0;

  /// Collective: waits for every rank.
  virtual void barrier() = 0;
  /// Collective: element-wise sum over ranks of `n` doubles, in place.
  virtual void allreduceSum(double* data, std::size_t n) = 0;
  /// Collective: element-wise sum over ranks of `n` floats (host memory), in place.
  virtual void allreduceSum(float* data, std::size_t n) = 0;
  /// Collective: element-wise sum over ranks of `n` 64-bit integers, in place.
  virtual void allreduceSum(std::int64_t* data, std::size_t n) = 0;
  /// Collective: element-wise minimum over ranks of `n` 64-bit integers, in place.
  virtual void allreduceMin(std::int64_t* data, std::size_t n) = 0;
  /// Collective: element-wise maximum over ranks of `n` 64-bit integers, in place.
  virtual void allreduceMax(std::int64_t* data, std::size_t n) = 0;
  /// Collective: copies `bytes` bytes from `root`'s buffer into every rank's buffer.
  virtual void broadcast(void* data, std::size_t bytes, int root) = 0;

  /// Collective: element-wise reduction over ranks of `tensor`, in place. `tensor`: any shape,
  /// contiguous; float32, float64, int32 or int64 (NCCL also float16/bfloat16/uint8); on the CPU
  /// for the MPI and serial backends, on this rank's GPU (or the CPU) for NCCL. Every rank passes
  /// the same shape and dtype. Throws CommError for an unsupported dtype or device.
  virtual void allreduce(const torch::Tensor& tensor, ReduceOp op) = 0;
  /// Collective: copies `root`'s `tensor` into every rank's `tensor`, in place. `tensor`: any
  /// shape and dtype, contiguous, same shape and dtype on every rank; device as for allreduce().
  virtual void broadcast(const torch::Tensor& tensor, int root) = 0;

  /// Watchdog for the blocking collectives: when `seconds` > 0, a collective that has not
  /// completed after that long throws CommError instead of waiting forever (a peer died or
  /// hangs). After such an error the communicator is unusable: end the job with abort().
  /// 0 (the default) waits without limit. Not collective; set the same value on every rank.
  virtual void setCollectiveTimeout(double seconds) {}
  /// The watchdog limit in seconds (0 = none).
  virtual double collectiveTimeout() const { return 0.0; }

  /// Ends every rank of the job with `code` (MPI_Abort); never returns. Not collective: it is
  /// how one failing rank stops the others instead of leaving them waiting in a collective.
  [[noreturn]] virtual void abort(int code) = 0;

  bool isRoot() const { return rank() == 0; }
};

/// The communicator for this process: MPI when the Environment started MPI, serial otherwise.
std::unique_ptr<Communicator> makeHostCommunicator(const Environment& env);

/// The communicator that `--dist-backend` and `--gpu` ask for. Collective (all ranks call it):
/// kAuto is NCCL with `gpu` and MPI (serial for one unlaunched process) without; kMpi is MPI on
/// CPU tensors; kNccl needs `gpu`, a build with NCCL and a visible GPU (the local GPU is
/// localRank() modulo the node's GPU count). Anything else is a ConfigError naming the flag,
/// never a silent fallback to another backend.
std::unique_ptr<Communicator> makeCommunicator(const Environment& env, Backend backend, bool gpu);

/// A communicator for one process alone.
std::unique_ptr<Communicator> makeSerialCommunicator();

/// "Open MPI v4.1.4, ..." as reported by MPI_Get_library_version (first line).
std::string mpiLibraryVersion();

/// NCCL's runtime version from ncclGetVersion ("2.28.9"), or "not built" without NCCL.
std::string ncclVersion();

/// True when this build contains the NCCL backend.
bool ncclAvailable();

/// Number of CUDA devices this build can use: 0 without the NCCL backend or without a GPU.
int visibleGpuCount();

}  // namespace metasemi::comm
