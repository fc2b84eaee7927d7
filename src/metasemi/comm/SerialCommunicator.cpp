#include <cstdio>
#include <cstdlib>

#include "metasemi/comm/Communicator.h"
#include "metasemi/core/Error.h"

namespace metasemi::comm {
namespace {

class SerialCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int localRank() const override { return 0; }
  int localSize() const override { return 1; }
  std::string name() const override { return "serial"; }
  void barrier() override {}
  void allreduceSum(double*, std::size_t) override {}
  void allreduceSum(float*, std::size_t) override {}
  void allreduceSum(std::int64_t*, std::size_t) override {}
  void allreduceMin(std::int64_t*, std::size_t) override {}
  void allreduceMax(std::int64_t*, std::size_t) override {}
  void broadcast(void*, std::size_t, int) override {}
  // One rank: the reduction of a single contribution is the contribution itself.
  void allreduce(const torch::Tensor& tensor, ReduceOp) override {
    MS_REQUIRE(tensor.defined(), core::CommError, "allreduce: undefined tensor");
  }
  void broadcast(const torch::Tensor& tensor, int) override {
    MS_REQUIRE(tensor.defined(), core::CommError, "broadcast: undefined tensor");
  }
  [[noreturn]] void abort(int code) override {
    std::fflush(nullptr);
    std::_Exit(code);
  }
};

}  // namespace

std::unique_ptr<Communicator> makeSerialCommunicator() {
  return std::make_unique<SerialCommunicator>();
}

}  // namespace metasemi::comm
