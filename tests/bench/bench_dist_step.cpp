// Time of one distributed MetaSemi training step as the trainer runs it (gradients living in the
// communication buckets, the labeled gradient g averaged for the pseudo-labels, BatchNorm buffers
// broadcast from rank 0), on random data so that only compute and communication count. Prints the
// median step time, the part spent averaging gradients, and a bare MPI_Allreduce of the same
// number of bytes measured in the same run. On several ranks, rounds alternate between averaging
// the parameter gradients after backward and overlapping it with backward (comm/BackwardOverlap.h,
// buckets of --bucket-kib), and it prints how much of the averaging the overlap hides.
// Run with the same per-rank batch at 1 and 2 ranks:
//   mpirun -np 1 build/bin/metasemi-bench-dist-step [--width 1.0] [--batch 32] [--size 32]
//   mpirun -np 2 build/bin/metasemi-bench-dist-step ...        [--reps 10] [--threads 1]
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <string>
#include <vector>

#include "BenchSupport.h"
#include "metasemi/app/CommandLine.h"
#include "metasemi/comm/BackwardOverlap.h"
#include "metasemi/comm/Communicator.h"
#include "metasemi/comm/GradientBucketer.h"
#include "metasemi/meta/MetaStep.h"
#include "metasemi/meta/Sgd.h"
#include "metasemi/models/Network.h"

namespace {

using namespace metasemi;
using bench::Clock;
using bench::median;
using bench::seconds;

// The slowest rank's value: a step is as slow as its slowest rank.
double slowest(comm::Communicator& comm, double v) {
  std::vector<double> all(static_cast<std::size_t>(comm.size()), 0.0);
  all[static_cast<std::size_t>(comm.rank())] = v;
  comm.allreduceSum(all.data(), all.size());
  return *std::max_element(all.begin(), all.end());
}

}  // namespace

int main(int argc, char** argv) {
  app::keepLargeAllocationsInHeap();
  comm::Environment env(argc, argv);
  auto comm = comm::makeHostCommunicator(env);
  auto a = bench::parseFlags(argc, argv, "metasemi-bench-dist-step",
                             {{"width", "1.0"},
                              {"batch", "32"},
                              {"size", "32"},
                              {"reps", "10"},
                              {"threads", "1"},
                              {"warmup", "2"},
                              {"bucket-kib", "4096"}},
                             "Time of one distributed MetaSemi step on random data (run under "
                             "mpirun at 1 and 2 ranks):\nmedian step time, the part spent "
                             "averaging, and a bare MPI_Allreduce of the same bytes.");
  const int batch = std::stoi(a["batch"]), size = std::stoi(a["size"]);
  const int reps = std::stoi(a["reps"]), warmup = std::stoi(a["warmup"]);
  torch::set_num_threads(std::stoi(a["threads"]));

  torch::manual_seed(1);
  models::NetworkSpec spec;
  spec.widthFactor = std::stod(a["width"]);
  auto net = models::makeNetwork(spec);
  models::toChannelsLast(*net);
  comm::broadcastModule(*comm, *net);
  meta::Sgd sgd(net->parameters(), 0.9, 1e-4);
  meta::MetaStep step(net, sgd, true);
  comm::GradientBucketer gradBuckets(std::stoull(a["bucket-kib"]) << 10), metaBuckets,
      bufferBuckets;
  std::unique_ptr<comm::BackwardOverlap> overlap;
  // Rounds alternate: the parameter gradients averaged after backward, then overlapped with it.
  bool overlapped = false;
  double reduceSeconds = 0.0;
  // Per step: the averages of the parameter gradients, of g and the buffer broadcast; the wait.
  double paramSeconds = 0.0, labeledSeconds = 0.0, bufferSeconds = 0.0, waitSeconds = 0.0;
  if (comm->size() > 1) {
    sgd.setGradientStorage(gradBuckets.bucketViews(net->parameters()));
    // Averages through `buckets`, timing the wait for the slower rank (load imbalance, not
    // communication) apart from the average itself.
    auto timedAverage = [&](comm::GradientBucketer& buckets, double& total) {
      return [&, bucketer = &buckets, sum = &total](std::vector<torch::Tensor>& g) {
        const auto tw = Clock::now();
        comm->barrier();
        const auto t0 = Clock::now();
        waitSeconds += seconds(tw, t0);
        bucketer->allreduce(*comm, g, true);
        *sum += seconds(t0, Clock::now());
      };
    };
    auto after = timedAverage(gradBuckets, paramSeconds);
    if (comm::collectivesFromAnotherThread(*comm)) {
      overlap = std::make_unique<comm::BackwardOverlap>(gradBuckets, *comm, net->parameters());
    }
    step.setBeforeBackwardHook([&] {
      if (overlapped) overlap->arm();
    });
    step.setParameterGradientHook([&, after](std::vector<torch::Tensor>& g) {
      if (!overlapped) return after(g);
      overlap->finish();
      paramSeconds += overlap->exposedSeconds();
      reduceSeconds += overlap->reduceSeconds();
    });
    step.setLabeledGradientHook(timedAverage(metaBuckets, labeledSeconds));
  }
  std::vector<torch::Tensor> buffers = net->buffers();
  std::int64_t numel = 0;
  for (const auto& p : net->parameters()) numel += p.numel();

  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  meta::StepSettings s;
  s.kind = meta::StepKind::kMetaMixUp;
  s.lr = 0.05;
  torch::manual_seed(100 + comm->rank());
  meta::StepBatch b;
  b.labeledImages = torch::randn({batch, 3, size, size});
  b.labels = torch::randint(10, {batch}, torch::kLong);
  b.unlabeledImages = torch::randn({batch, 3, size, size});
  b.lambda = torch::rand({batch});

  std::vector<double> stepTimes, paramTimes, labeledTimes, bufferTimes, waitTimes;
  std::vector<double> overlapStepTimes, exposedTimes, overlapReduceTimes;
  std::vector<double> bareColdTimes, bareHotTimes;
  auto flat = torch::randn({numel});
  const int rounds = overlap ? 2 * (warmup + reps) : warmup + reps;
  for (int round = 0; round < rounds; ++round) {
    const int i = overlap ? round / 2 : round;
    overlapped = overlap && round % 2 == 1;
    comm->barrier();
    paramSeconds = labeledSeconds = bufferSeconds = waitSeconds = reduceSeconds = 0.0;
    const auto t0 = Clock::now();
    const auto r = step.run(b, s, gen);
    r.loss.item<double>();
    if (comm->size() > 1) {
      const auto t1 = Clock::now();
      bufferBuckets.broadcast(*comm, buffers, 0);
      bufferSeconds += seconds(t1, Clock::now());
    }
    const double stepTime = slowest(*comm, seconds(t0, Clock::now()));
    const double paramTime = slowest(*comm, paramSeconds);
    const double labeledTime = slowest(*comm, labeledSeconds);
    const double bufferTime = slowest(*comm, bufferSeconds);
    const double waitTime = slowest(*comm, waitSeconds);
    // The same bytes as each gradient average of the step, in bare MPI_Allreduce calls: the
    // first on memory last touched a step ago (as the gradients' averages), the second on the
    // same memory again, hot in the caches.
    comm->barrier();
    double bareCold = 0.0, bareHot = 0.0;
    if (comm->size() > 1) {
      const auto t2 = Clock::now();
      comm->allreduce(flat, comm::ReduceOp::kSum);
      const auto t3 = Clock::now();
      comm->allreduce(flat, comm::ReduceOp::kSum);
      bareHot = slowest(*comm, seconds(t3, Clock::now()));
      bareCold = slowest(*comm, seconds(t2, t3));
      flat.mul_(0.25);
    }
    if (i >= warmup && overlapped) {
      overlapStepTimes.push_back(stepTime);
      exposedTimes.push_back(paramTime);
      overlapReduceTimes.push_back(slowest(*comm, reduceSeconds));
    } else if (i >= warmup) {
      stepTimes.push_back(stepTime);
      paramTimes.push_back(paramTime);
      labeledTimes.push_back(labeledTime);
      bufferTimes.push_back(bufferTime);
      waitTimes.push_back(waitTime);
      bareColdTimes.push_back(bareCold);
      bareHotTimes.push_back(bareHot);
    }
  }
  if (comm->isRoot()) {
    fmt::print(
        "ranks {}, threads per rank {}, ConvLarge width {} ({} parameters), per-rank batch {}+{}, "
        "{}x{}x3, MetaSemi + mix-up step\n",
        comm->size(), torch::get_num_threads(), spec.widthFactor, numel, batch, batch, size, size);
    fmt::print("median step time        {:.4f} s (min {:.4f}, max {:.4f})\n", median(stepTimes),
               *std::min_element(stepTimes.begin(), stepTimes.end()),
               *std::max_element(stepTimes.begin(), stepTimes.end()));
    fmt::print(
        "  of which averaging    {:.2f} ms: parameter gradients {:.2f}, g {:.2f}, "
        "BatchNorm buffer broadcast {:.2f}\n",
        1e3 * (median(paramTimes) + median(labeledTimes) + median(bufferTimes)),
        1e3 * median(paramTimes), 1e3 * median(labeledTimes), 1e3 * median(bufferTimes));
    fmt::print("  waiting for a slower rank {:.2f} ms (before the averages)\n",
               1e3 * median(waitTimes));
    fmt::print(
        "bare MPI_Allreduce of {} float32: {:.2f} ms on memory untouched since the last "
        "step, {:.2f} ms hot\n",
        numel, 1e3 * median(bareColdTimes), 1e3 * median(bareHotTimes));
    fmt::print("images per second       {:.1f} (labeled + unlabeled, all ranks)\n",
               2.0 * batch * comm->size() / median(stepTimes));
    if (!overlapStepTimes.empty()) {
      const double plainAvg = median(paramTimes), exposed = median(exposedTimes);
      const double gain = median(stepTimes) - median(overlapStepTimes);
      fmt::print(
          "overlapped with backward ({} buckets of at most {} KiB): median step {:.4f} s; the "
          "buckets' allreduces took {:.2f} ms, of which {:.2f} ms not hidden behind backward\n",
          gradBuckets.numBuckets(), a["bucket-kib"], median(overlapStepTimes),
          1e3 * median(overlapReduceTimes), 1e3 * exposed);
      fmt::print(
          "  parameter-gradient averaging hidden: {:.0f}% by the exposed wait ({:.2f} ms after "
          "backward against {:.2f} ms averaged after it); step {:.2f} ms shorter\n",
          100.0 * (1.0 - exposed / std::max(1e-12, plainAvg)), 1e3 * exposed, 1e3 * plainAvg,
          1e3 * gain);
    }
  }
  return 0;
}
