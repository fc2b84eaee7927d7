#include <cstdio>
#include <cstdlib>
#include <limits>

#include "metasemi/dist/Communicator.h"
#include "metasemi/dist/MpiCheck.h"

namespace metasemi::dist {

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

  void barrier() override { MS_MPI_CHECK(MPI_Barrier(comm_)); }
  void allreduceSum(double* data, std::size_t n) override { reduce(data, n, MPI_DOUBLE, MPI_SUM); }
  void allreduceSum(std::int64_t* data, std::size_t n) override {
    reduce(data, n, MPI_INT64_T, MPI_SUM);
  }
  void allreduceMin(std::int64_t* data, std::size_t n) override {
    reduce(data, n, MPI_INT64_T, MPI_MIN);
  }
  void broadcast(void* data, std::size_t bytes, int root) override {
    auto* p = static_cast<char*>(data);
    for (std::size_t off = 0; off < bytes; off += kMaxCount) {
      const auto count = static_cast<int>(std::min(kMaxCount, bytes - off));
      MS_MPI_CHECK(MPI_Bcast(p + off, count, MPI_BYTE, root, comm_));
    }
  }
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
      MS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, data + off, count, type, op, comm_));
    }
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Comm node_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  int localRank_ = 0;
  int localSize_ = 1;
};

}  // namespace

Environment::Environment(int& argc, char**& argv, bool forceMpi) {
  if (!forceMpi && !launchedByMpi()) return;
  int initialized = 0;
  MS_MPI_CHECK(MPI_Initialized(&initialized));
  if (!initialized) {
    int provided = 0;
    MS_MPI_CHECK(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided));
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

}  // namespace metasemi::dist
