// NCCL backend: GPU tensors are reduced by NCCL on a stream of this communicator; host buffers
// and CPU tensors go through the wrapped host communicator (MPI or serial), which also carries
// the NCCL unique id. Compiled only when CMake found NCCL (see cmake/MetasemiNccl.cmake).
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "metasemi/comm/Backends.h"
#include "metasemi/comm/Communicator.h"
#include "metasemi/core/Error.h"
#include "metasemi/core/Log.h"

namespace metasemi::comm {
namespace {

[[noreturn]] void throwCudaError(cudaError_t rc, const char* expr, const char* file, int line) {
  throw core::CommError(fmt::format("CUDA call {} failed: {} ({}) ({}:{})", expr,
                                    cudaGetErrorString(rc), cudaGetErrorName(rc), file, line));
}

[[noreturn]] void throwNcclError(ncclResult_t rc, ncclComm_t comm, const char* expr,
                                 const char* file, int line) {
  const char* detail = ncclGetLastError(comm);
  throw core::CommError(fmt::format("NCCL call {} failed: {}{}{} ({}:{})", expr,
                                    ncclGetErrorString(rc), detail && *detail ? ": " : "",
                                    detail ? detail : "", file, line));
}

}  // namespace
}  // namespace metasemi::comm

#define MS_CUDA_CHECK(call)                                                   \
  do {                                                                        \
    const cudaError_t msCudaRc_ = (call);                                     \
    if (msCudaRc_ != cudaSuccess) {                                           \
      ::metasemi::comm::throwCudaError(msCudaRc_, #call, __FILE__, __LINE__); \
    }                                                                         \
  } while (false)

#define MS_NCCL_CHECK(ncclComm, call)                                                     \
  do {                                                                                    \
    const ncclResult_t msNcclRc_ = (call);                                                \
    if (msNcclRc_ != ncclSuccess) {                                                       \
      ::metasemi::comm::throwNcclError(msNcclRc_, (ncclComm), #call, __FILE__, __LINE__); \
    }                                                                                     \
  } while (false)

namespace metasemi::comm {
namespace {

ncclRedOp_t ncclOp(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return ncclSum;
    case ReduceOp::kMin:
      return ncclMin;
    case ReduceOp::kMax:
      return ncclMax;
  }
  return ncclSum;
}

ncclDataType_t ncclType(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat:
      return ncclFloat32;
    case torch::kDouble:
      return ncclFloat64;
    case torch::kHalf:
      return ncclFloat16;
    case torch::kBFloat16:
      return ncclBfloat16;
    case torch::kInt:
      return ncclInt32;
    case torch::kLong:
      return ncclInt64;
    case torch::kByte:
      return ncclUint8;
    default:
      MS_THROW(core::CommError, "NCCL allreduce: unsupported tensor dtype {}",
               c10::toString(t.scalar_type()));
  }
}

class NcclCommunicator final : public Communicator {
 public:
  explicit NcclCommunicator(std::unique_ptr<Communicator> host) : host_(std::move(host)) {
    int count = 0;
    const cudaError_t rc = cudaGetDeviceCount(&count);
    MS_REQUIRE(rc == cudaSuccess && count > 0, core::ConfigError,
               "--gpu / --dist-backend nccl: no usable CUDA device on this node ({})",
               rc == cudaSuccess ? "cudaGetDeviceCount found 0 devices" : cudaGetErrorString(rc));
    MS_REQUIRE(host_->localSize() <= count, core::ConfigError,
               "--gpu: {} ranks run on this node but it has {} GPU(s); start one rank per GPU",
               host_->localSize(), count);
    device_ = host_->localRank() % count;
    MS_CUDA_CHECK(cudaSetDevice(device_));
    // A blocking stream orders itself after work on the legacy default stream (where a caller
    // that does not manage streams computed the gradients) and before later work there.
    MS_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamDefault));
    ncclUniqueId id{};
    if (host_->rank() == 0) MS_NCCL_CHECK(nullptr, ncclGetUniqueId(&id));
    host_->broadcast(&id, sizeof(id), 0);
    MS_NCCL_CHECK(nullptr, ncclCommInitRank(&comm_, host_->size(), id, host_->rank()));
    core::rootLog().info("NCCL {} communicator on {} ranks", ncclVersion(), host_->size());
  }
  ~NcclCommunicator() override {
    if (comm_ != nullptr) ncclCommDestroy(comm_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  int localRank() const override { return host_->localRank(); }
  int localSize() const override { return host_->localSize(); }
  std::string name() const override { return "nccl"; }

  void barrier() override { host_->barrier(); }
  void allreduceSum(double* data, std::size_t n) override { host_->allreduceSum(data, n); }
  void allreduceSum(float* data, std::size_t n) override { host_->allreduceSum(data, n); }
  void allreduceSum(std::int64_t* data, std::size_t n) override { host_->allreduceSum(data, n); }
  void allreduceMin(std::int64_t* data, std::size_t n) override { host_->allreduceMin(data, n); }
  void allreduceMax(std::int64_t* data, std::size_t n) override { host_->allreduceMax(data, n); }
  void broadcast(void* data, std::size_t bytes, int root) override {
    host_->broadcast(data, bytes, root);
  }

  void allreduce(const torch::Tensor& tensor, ReduceOp op) override {
    if (!onGpu(tensor, "allreduce")) return host_->allreduce(tensor, op);
    void* p = tensor.data_ptr();
    MS_NCCL_CHECK(comm_, ncclAllReduce(p, p, static_cast<std::size_t>(tensor.numel()),
                                       ncclType(tensor), ncclOp(op), comm_, stream_));
    synchronize("ncclAllReduce");
  }
  void broadcast(const torch::Tensor& tensor, int root) override {
    if (!onGpu(tensor, "broadcast")) return host_->broadcast(tensor, root);
    void* p = tensor.data_ptr();
    MS_NCCL_CHECK(comm_, ncclBroadcast(p, p, tensor.nbytes(), ncclUint8, root, comm_, stream_));
    synchronize("ncclBroadcast");
  }

  void setCollectiveTimeout(double seconds) override {
    timeout_ = seconds > 0.0 ? seconds : 0.0;
    host_->setCollectiveTimeout(seconds);
  }
  double collectiveTimeout() const override { return timeout_; }

  [[noreturn]] void abort(int code) override {
    if (comm_ != nullptr) ncclCommAbort(comm_);
    comm_ = nullptr;
    host_->abort(code);
    std::_Exit(code);  // not reached: the host backend's abort ends the process
  }

 private:
  bool onGpu(const torch::Tensor& t, const char* what) const {
    MS_REQUIRE(t.defined(), core::CommError, "{}: undefined tensor", what);
    MS_REQUIRE(t.is_contiguous(), core::CommError, "{}: tensor must be contiguous", what);
    if (t.device().is_cpu()) return false;
    MS_REQUIRE(t.device().is_cuda() && t.device().index() == device_, core::CommError,
               "{}: the NCCL communicator of rank {} uses cuda:{}, got a tensor on {}", what,
               rank(), device_, t.device().str());
    return true;
  }

  // Waits for the collective; with a watchdog limit, polls the stream and NCCL's asynchronous
  // error state so that a dead peer ends in a CommError rather than a hang.
  void synchronize(const char* what) {
    if (timeout_ <= 0.0) {
      MS_CUDA_CHECK(cudaStreamSynchronize(stream_));
      return;
    }
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    while (true) {
      const cudaError_t rc = cudaStreamQuery(stream_);
      if (rc == cudaSuccess) return;
      if (rc != cudaErrorNotReady) MS_CUDA_CHECK(rc);
      ncclResult_t async = ncclSuccess;
      MS_NCCL_CHECK(comm_, ncclCommGetAsyncError(comm_, &async));
      if (async != ncclSuccess) throwNcclError(async, comm_, what, __FILE__, __LINE__);
      if (Clock::now() - start > std::chrono::duration<double>(timeout_)) {
        MS_THROW(core::CommError,
                 "{} did not complete within {} s on rank {} of {} (collective watchdog)", what,
                 timeout_, rank(), size());
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }

  std::unique_ptr<Communicator> host_;
  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  ncclComm_t comm_ = nullptr;
  double timeout_ = 0.0;
};

}  // namespace

int visibleGpuCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" state for later calls
    return 0;
  }
  return count;
}

namespace detail {
std::unique_ptr<Communicator> makeNcclCommunicator(std::unique_ptr<Communicator> host) {
  return std::make_unique<NcclCommunicator>(std::move(host));
}
}  // namespace detail

}  // namespace metasemi::comm
