// Gradient averaging cost: the bucketed average of ConvLarge's 29 gradient tensors (3.12 M
// float32) against a bare allreduce of the same number of bytes in one buffer, and against one
// allreduce per tensor. The variants run in turn within each round, so that a busy machine slows
// them alike. Run with 2 ranks:
//   mpirun -np 2 build/bin/metasemi-bench-allreduce [rounds]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "BenchSupport.h"
#include "metasemi/comm/Communicator.h"
#include "metasemi/comm/GradientBucketer.h"
#include "metasemi/core/Error.h"

namespace md = metasemi::comm;

namespace {

std::vector<torch::Tensor> convLargeGradients() {
  const std::vector<std::vector<std::int64_t>> convs = {
      {128, 3, 3, 3},   {128, 128, 3, 3}, {128, 128, 3, 3}, {256, 128, 3, 3}, {256, 256, 3, 3},
      {256, 256, 3, 3}, {512, 256, 3, 3}, {256, 512, 1, 1}, {128, 256, 1, 1}};
  std::vector<torch::Tensor> ts;
  for (const auto& c : convs) {
    ts.push_back(torch::randn(c));
    ts.push_back(torch::randn({c[0]}));
    ts.push_back(torch::randn({c[0]}));
  }
  ts.push_back(torch::randn({10, 128}));
  ts.push_back(torch::randn({10}));
  return ts;
}

struct Variant {
  std::string label;
  std::function<void()> run;
  std::vector<double> ms;  // per round, the slowest rank's time
};

// One timed call started together on all ranks; returns the slowest rank's milliseconds.
double timeOnce(md::Communicator& comm, const std::function<void()>& f) {
  comm.barrier();
  const auto t0 = std::chrono::steady_clock::now();
  f();
  const double dt =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::vector<double> all(static_cast<std::size_t>(comm.size()), 0.0);
  all[static_cast<std::size_t>(comm.rank())] = dt;
  comm.allreduceSum(all.data(), all.size());
  return *std::max_element(all.begin(), all.end());
}

}  // namespace

int main(int argc, char** argv) {
  metasemi::bench::answerHelp(
      argc, argv,
      "Usage: mpirun -np 2 metasemi-bench-allreduce [rounds (50)]\n"
      "Bucketed gradient averaging of ConvLarge against one bare allreduce of the "
      "same bytes\nand one allreduce per tensor.\n");
  md::Environment env(argc, argv);
  auto comm = md::makeHostCommunicator(env);
  try {
    const int rounds = argc > 1 ? std::stoi(argv[1]) : 50;
    torch::set_num_threads(1);
    torch::manual_seed(comm->rank());
    auto grads = convLargeGradients();
    std::int64_t numel = 0;
    for (const auto& g : grads) numel += g.numel();
    // Averaged buffers keep their magnitude; a repeated bare sum would double it every round.
    auto flat = torch::randn({numel});
    const auto half = 1.0 / comm->size();

    md::GradientBucketer viewBucketer;
    auto views = viewBucketer.bucketViews(grads);
    for (std::size_t i = 0; i < views.size(); ++i) views[i].copy_(grads[i]);
    md::GradientBucketer b25(25u << 20);
    md::GradientBucketer b4(4u << 20);
    md::GradientBucketer b1(1u << 20);

    std::vector<Variant> variants;
    variants.push_back(
        {"bare allreduce (one buffer)",
         [&] { comm->allreduceSum(flat.data_ptr<float>(), static_cast<std::size_t>(numel)); }});
    variants.push_back({"bare allreduce + division", [&] {
                          comm->allreduceSum(flat.data_ptr<float>(),
                                             static_cast<std::size_t>(numel));
                          flat.mul_(half);
                        }});
    variants.push_back({"allreduce per tensor (29 msgs)", [&] {
                          for (const auto& g : grads) comm->allreduce(g, md::ReduceOp::kSum);
                        }});
    variants.push_back(
        {"bucketed average, gradient views", [&] { viewBucketer.allreduce(*comm, views); }});
    variants.push_back({"bucketed average, 25 MiB", [&] { b25.allreduce(*comm, grads); }});
    variants.push_back({"bucketed average, 4 MiB", [&] { b4.allreduce(*comm, grads); }});
    variants.push_back({"bucketed average, 1 MiB", [&] { b1.allreduce(*comm, grads); }});

    for (int round = -3; round < rounds; ++round) {  // 3 warm-up rounds
      for (auto& v : variants) {
        const double ms = timeOnce(*comm, v.run);
        if (round >= 0) v.ms.push_back(ms);
      }
    }
    if (comm->isRoot()) {
      std::printf("ranks %d, %zu tensors, %lld float32 (%.2f MB), %d rounds, 1 thread\n",
                  comm->size(), grads.size(), static_cast<long long>(numel), numel * 4 / 1e6,
                  rounds);
      std::printf("%-34s %10s %10s %12s %12s\n", "", "median ms", "min ms", "median/bare",
                  "min/bare");
      auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
      };
      const double bareMedian = median(variants[0].ms);
      const double bareMin = *std::min_element(variants[0].ms.begin(), variants[0].ms.end());
      for (const auto& v : variants) {
        const double m = median(v.ms);
        const double lo = *std::min_element(v.ms.begin(), v.ms.end());
        std::printf("%-34s %10.3f %10.3f %+11.1f%% %+11.1f%%\n", v.label.c_str(), m, lo,
                    100 * (m / bareMedian - 1), 100 * (lo / bareMin - 1));
      }
      std::printf("buckets: 25 MiB -> %zu, 4 MiB -> %zu, 1 MiB -> %zu\n", b25.numBuckets(),
                  b4.numBuckets(), b1.numBuckets());
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[rank %d] metasemi-bench-allreduce: %s\n", comm->rank(), e.what());
    comm->abort(metasemi::core::exitCodeFor(e));
  }
}
