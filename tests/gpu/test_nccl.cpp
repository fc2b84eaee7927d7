// The NCCL backend on a real GPU: the factory builds it, and allreduce/broadcast of device
// tensors give the expected values; CPU tensors take the host path. Needs a CUDA device.
#include <cuda_runtime.h>
#include <torch/torch.h>

#include <vector>

#include "metasemi/comm/Communicator.h"
#include "support/TestSupport.h"

namespace md = metasemi::comm;

namespace {

using metasemi::test::environment;

// A float32 tensor of `n` elements in device memory of `device`, filled from `values`.
torch::Tensor deviceTensor(const std::vector<float>& values, int device) {
  void* p = nullptr;
  BOOST_TEST_REQUIRE(cudaSetDevice(device) == cudaSuccess);
  BOOST_TEST_REQUIRE(cudaMalloc(&p, values.size() * sizeof(float)) == cudaSuccess);
  BOOST_TEST_REQUIRE(cudaMemcpy(p, values.data(), values.size() * sizeof(float),
                                cudaMemcpyHostToDevice) == cudaSuccess);
  return torch::from_blob(
      p, {static_cast<std::int64_t>(values.size())}, [](void* q) { cudaFree(q); },
      torch::TensorOptions().dtype(torch::kFloat).device(torch::Device(torch::kCUDA, device)));
}

std::vector<float> hostValues(const torch::Tensor& t) {
  std::vector<float> v(static_cast<std::size_t>(t.numel()));
  BOOST_TEST_REQUIRE(cudaMemcpy(v.data(), t.data_ptr(), v.size() * sizeof(float),
                                cudaMemcpyDeviceToHost) == cudaSuccess);
  return v;
}

}  // namespace

BOOST_AUTO_TEST_CASE(nccl_allreduce_and_broadcast_on_the_gpu) {
  BOOST_TEST_REQUIRE(md::visibleGpuCount() > 0, "no CUDA device visible");
  auto comm = md::makeCommunicator(environment(), metasemi::comm::Backend::kNccl, true);
  BOOST_TEST(comm->name() == "nccl");
  const int device = comm->localRank() % md::visibleGpuCount();
  const float r = static_cast<float>(comm->rank());
  const float n = static_cast<float>(comm->size());

  auto t = deviceTensor({1.0f + r, 2.0f, -3.0f * r, 0.5f}, device);
  comm->allreduce(t, md::ReduceOp::kSum);
  const auto sum = hostValues(t);
  BOOST_TEST(sum[0] == n + n * (n - 1) / 2);
  BOOST_TEST(sum[1] == 2.0f * n);
  BOOST_TEST(sum[3] == 0.5f * n);

  auto m = deviceTensor({r, -r}, device);
  comm->allreduce(m, md::ReduceOp::kMax);
  const auto mx = hostValues(m);
  BOOST_TEST(mx[0] == n - 1);
  BOOST_TEST(mx[1] == 0.0f);

  auto b = deviceTensor({10.0f + r, 20.0f + r}, device);
  comm->broadcast(b, 0);
  const auto bc = hostValues(b);
  BOOST_TEST(bc[0] == 10.0f);
  BOOST_TEST(bc[1] == 20.0f);

  // CPU tensors go through the host communicator.
  auto c = torch::full({3}, 1.0f);
  comm->allreduce(c, md::ReduceOp::kSum);
  BOOST_TEST(c[0].item<float>() == n);

  // With the watchdog on, collectives still complete.
  comm->setCollectiveTimeout(60.0);
  auto w = deviceTensor({1.0f}, device);
  comm->allreduce(w, md::ReduceOp::kSum);
  BOOST_TEST(hostValues(w)[0] == n);
}
