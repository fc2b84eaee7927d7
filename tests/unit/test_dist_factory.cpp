// Backend choice and bucket layout on one process: wrong backend requests are ConfigErrors that
// name the flag; the serial backend leaves tensors as they are.
#include <torch/torch.h>

#include "metasemi/comm/GradientBucketer.h"
#include "metasemi/core/Error.h"
#include "support/TestSupport.h"

namespace md = metasemi::comm;
using metasemi::comm::Backend;
using metasemi::core::ConfigError;

namespace {

using metasemi::test::environment;

std::string configErrorOf(md::Backend backend, bool gpu) {
  try {
    md::makeCommunicator(environment(), backend, gpu);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

BOOST_AUTO_TEST_CASE(cpu_backends_without_launcher_are_serial) {
  BOOST_TEST(!md::Environment::launchedByMpi());
  BOOST_TEST(md::makeCommunicator(environment(), md::Backend::kAuto, false)->name() == "serial");
  BOOST_TEST(md::makeCommunicator(environment(), md::Backend::kMpi, false)->name() == "serial");
}

BOOST_AUTO_TEST_CASE(mpi_with_gpu_is_a_config_error) {
  const auto msg = configErrorOf(md::Backend::kMpi, true);
  BOOST_TEST(msg.find("--dist-backend mpi") != std::string::npos, msg);
}

BOOST_AUTO_TEST_CASE(nccl_without_gpu_flag_is_a_config_error) {
  const auto msg = configErrorOf(md::Backend::kNccl, false);
  BOOST_TEST(msg.find("--dist-backend nccl") != std::string::npos, msg);
}

BOOST_AUTO_TEST_CASE(gpu_request_without_nccl_or_device_is_a_config_error) {
  if (md::ncclAvailable() && md::visibleGpuCount() > 0) return;  // a GPU node: tests/gpu covers it
  for (auto backend : {md::Backend::kNccl, md::Backend::kAuto}) {
    const auto msg = configErrorOf(backend, true);
    BOOST_TEST(!msg.empty());
    BOOST_TEST((msg.find("--gpu") != std::string::npos ||
                msg.find("--dist-backend nccl") != std::string::npos),
               msg);
  }
}

BOOST_AUTO_TEST_CASE(bucket_layout_follows_size_and_dtype) {
  auto serial = md::makeSerialCommunicator();
  // 4 float tensors of 400 bytes with a 1000-byte limit: two per bucket; a double breaks a run.
  std::vector<torch::Tensor> ts;
  for (int i = 0; i < 4; ++i) ts.push_back(torch::full({100}, i + 0.5, torch::kFloat));
  ts.push_back(torch::ones({3}, torch::kDouble));
  ts.push_back(torch::ones({2000}, torch::kFloat));  // larger than the limit: alone
  md::GradientBucketer bucketer(1000);
  const auto before = torch::cat({ts[0], ts[1], ts[2], ts[3]});
  bucketer.allreduce(*serial, ts);
  BOOST_TEST(bucketer.numBuckets() == 4u);
  BOOST_TEST(bucketer.bucketBytes(0) == 800u);
  BOOST_TEST(bucketer.bucketBytes(2) == 24u);
  BOOST_TEST(bucketer.bucketBytes(3) == 8000u);
  BOOST_TEST(torch::equal(torch::cat({ts[0], ts[1], ts[2], ts[3]}), before));
}

BOOST_AUTO_TEST_CASE(non_float_gradients_are_rejected) {
  auto serial = md::makeSerialCommunicator();
  md::GradientBucketer bucketer;
  BOOST_CHECK_THROW(bucketer.allreduce(*serial, {torch::zeros({2}, torch::kLong)}),
                    metasemi::core::Error);
  BOOST_CHECK_THROW(md::GradientBucketer(0), ConfigError);
}
