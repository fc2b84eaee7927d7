#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <thread>

#include "metasemi/comm/Communicator.h"
#include "metasemi/comm/MpiCheck.h"

namespace metasemi::comm {

namespace detail {
void throwMpiError(int code, const char* expr, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) len = 0;
  throw core::CommError(fmt::format("MPI call {} failed: {} ({}:{})", expr,
                                    std::string(text, static_cast<std::size_t>(len)), file, line));
}
}  // namespace detail

namespace {

// MPI counts are int: split large buffers into chunks that fit.
constexpr std::size_t kMaxCount = static_cast<std::size_t>(std::numeric_limits<int>::max());

MPI_Op mpiOp(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return MPI_SUM;
    case ReduceOp::kMin:
      return MPI_MIN;
    case ReduceOp::kMax:
      return MPI_MAX;
  }
  return MPI_SUM;
}

MPI_Datatype mpiType(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat:
      return MPI_FLOAT;
    case torch::kDouble:
      return MPI_DOUBLE;
    case torch::kInt:
      return MPI_INT32_T;
    case torch::kLong:
      return MPI_INT64_T;
    default:
      MS_THROW(core::CommError,
               "MPI allreduce: unsupported tensor dtype {} (float32, float64, "
               "int32 or int64 expected)",
               c10::toString(t.scalar_type()));
  }
}

void requireHostTensor(const torch::Tensor& t, const char* what) {
  MS_REQUIRE(t.defined(), core::CommError, "{}: undefined tensor", what);
  MS_REQUIRE(t.device().is_cpu(), core::CommError,
             "{}: the MPI backend exchanges CPU tensors, got a tensor on {} (use --dist-backend "
             "nccl for GPU tensors)",
             what, t.device().str());
  MS_REQUIRE(t.is_contiguous(), core::CommError, "{}: tensor must be contiguous", what);
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    MS_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &comm_));
    MS_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
    MS_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    MS_MPI_CHECK(MPI_Comm_size(comm_, &size_));
    MS_MPI_CHECK(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node_));
    MS_MPI_CHECK(MPI_Comm_rank(node_, &localRank_));
    MS_MPI_CHECK(MPI_Comm_size(node_, &localSize_));
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) {
      MPI_Comm_free(&node_);
      MPI_Comm_free(&comm_);
    }
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int localRank() const override { return localRank_; }
  int localSize() const override { return localSize_; }
  std::string name() const override { return "mpi"; }

  void barrier() override {
    if (timeout_ <= 0.0) {
      MS_MPI_CHECK(MPI_Barrier(comm_));
      return;
    }
    MPI_Request request = MPI_REQUEST_NULL;
    MS_MPI_CHECK(MPI_Ibarrier(comm_, &request));
    wait(request, "MPI_Barrier");
  }
  void allreduceSum(double* data, std::size_t n) override { reduce(data, n, MPI_DOUBLE, MPI_SUM); }
  void allreduceSum(float* data, std::size_t n) override { reduce(data, n, MPI_FLOAT, MPI_SUM); }
  void allreduceSum(std::int64_t* data, std::size_t n) override {
    reduce(data, n, MPI_INT64_T, MPI_SUM);
  }
  void allreduceMin(std::int64_t* data, std::size_t n) override {
    reduce(data, n, MPI_INT64_T, MPI_MIN);
  }
  void allreduceMax(std::int64_t* data, std::size_t n) override {
    reduce(data, n, MPI_INT64_T, MPI_MAX);
  }
  void broadcast(void* data, std::size_t bytes, int root) override {
    auto* p = static_cast<char*>(data);
    for (std::size_t off = 0; off < bytes; off += kMaxCount) {
      const auto count = static_cast<int>(std::min(kMaxCount, bytes - off));
      if (timeout_ <= 0.0) {
        MS_MPI_CHECK(MPI_Bcast(p + off, count, MPI_BYTE, root, comm_));
      } else {
        MPI_Request request = MPI_REQUEST_NULL;
        MS_MPI_CHECK(MPI_Ibcast(p + off, count, MPI_BYTE, root, comm_, &request));
        wait(request, "MPI_Bcast");
      }
    }
  }
  void allreduce(const torch::Tensor& tensor, ReduceOp op) override {
    requireHostTensor(tensor, "allreduce");
    const MPI_Datatype type = mpiType(tensor);
    const auto n = static_cast<std::size_t>(tensor.numel());
    switch (tensor.scalar_type()) {
      case torch::kFloat:
        return reduce(tensor.data_ptr<float>(), n, type, mpiOp(op));
      case torch::kDouble:
        return reduce(tensor.data_ptr<double>(), n, type, mpiOp(op));
      case torch::kInt:
        return reduce(tensor.data_ptr<std::int32_t>(), n, type, mpiOp(op));
      default:
        return reduce(tensor.data_ptr<std::int64_t>(), n, type, mpiOp(op));
    }
  }
  void broadcast(const torch::Tensor& tensor, int root) override {
    requireHostTensor(tensor, "broadcast");
    broadcast(tensor.data_ptr(), tensor.nbytes(), root);
  }
  void setCollectiveTimeout(double seconds) override { timeout_ = seconds > 0.0 ? seconds : 0.0; }
  double collectiveTimeout() const override { return timeout_; }
  [[noreturn]] void abort(int code) override {
    std::fflush(nullptr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

 private:
  template <typename T>
  void reduce(T* data, std::size_t n, MPI_Datatype type, MPI_Op op) {
    for (std::size_t off = 0; off < n; off += kMaxCount) {
      const auto count = static_cast<int>(std::min(kMaxCount, n - off));
      if (timeout_ <= 0.0) {
        MS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, data + off, count, type, op, comm_));
      } else {
        MPI_Request request = MPI_REQUEST_NULL;
        MS_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, data + off, count, type, op, comm_, &request));
        wait(request, "MPI_Allreduce");
      }
    }
  }

  // Polls a non-blocking collective until it completes or the watchdog deadline passes. A short
  // busy phase keeps the latency of quick collectives; then it sleeps between polls so that a
  // rank waiting for a slow peer does not take a core from it.
  void wait(MPI_Request& request, const char* what) {
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    const auto limit = std::chrono::duration<double>(timeout_);
    for (long polls = 0;; ++polls) {
      int done = 0;
      MS_MPI_CHECK(MPI_Test(&request, &done, MPI_STATUS_IGNORE));
      if (done) return;
      if (polls < 10000) continue;
      if (Clock::now() - start > limit) {
        MS_THROW(core::CommError,
                 "{} did not complete within {} s on rank {} of {}: a peer rank failed, hangs or "
                 "is far behind (collective watchdog)",
                 what, timeout_, rank_, size_);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Comm node_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  int localRank_ = 0;
  int localSize_ = 1;
  double timeout_ = 0.0;
};

}  // namespace

Environment::Environment(int& argc, char**& argv, bool forceMpi) {
  if (!forceMpi && !launchedByMpi()) return;
  int initialized = 0;
  MS_MPI_CHECK(MPI_Initialized(&initialized));
  if (!initialized) {
    int provided = 0;
    // SERIALIZED: gradient buckets are averaged from a communication thread while the main
    // thread runs backward (comm/BackwardOverlap.h), never two threads in MPI at once.
    MS_MPI_CHECK(MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided));
  }
  MS_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  usesMpi_ = true;
}

Environment::~Environment() {
  if (!usesMpi_) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

bool Environment::launchedByMpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE",
                          "MV2_COMM_WORLD_SIZE", "MPI_LOCALNRANKS"}) {
    if (std::getenv(var) != nullptr) return true;
  }
  return false;
}

std::unique_ptr<Communicator> makeHostCommunicator(const Environment& env) {
  if (env.usesMpi()) return std::make_unique<MpiCommunicator>();
  return makeSerialCommunicator();
}

std::string mpiLibraryVersion() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MS_MPI_CHECK(MPI_Get_library_version(text, &len));
  std::string s(text, static_cast<std::size_t>(len));
  const auto cut = s.find_first_of(",\n");
  return cut == std::string::npos ? s : s.substr(0, cut);
}

}  // namespace metasemi::comm
