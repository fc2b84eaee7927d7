// Time per training step of ConvLarge (MetaSemi with and without mix-up, labeled-only) and the
// rate of one large convolution measured in the same run, so that a busy machine shows as such.
//
//   metasemi-bench-meta-step [--width 1.0] [--batch 128] [--size 32] [--reps 5] [--threads 2]
//                            [--kinds meta-mixup,meta,labeled] [--channels-last 1]
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "BenchSupport.h"
#include "metasemi/app/CommandLine.h"
#include "metasemi/meta/MetaStep.h"
#include "metasemi/meta/Sgd.h"
#include "metasemi/models/Network.h"

namespace {

using namespace metasemi;
using bench::Clock;
using bench::median;
using bench::seconds;

double peakRssGiB() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / (1024.0 * 1024.0);
}

// Multiply-accumulates of one ConvLarge forward on a size×size image (convolutions + linear).
double convLargeMacs(double width, std::int64_t channels, std::int64_t size, std::int64_t classes) {
  auto c = [&](double n) { return std::max<double>(1.0, std::llround(n * width)); };
  const double c1 = c(128), c2 = c(256), c3 = c(512);
  const double s1 = size * size, s2 = (size / 2) * (size / 2);
  const double s7 = (size / 4 - 2) * (size / 4 - 2);
  return 9 * s1 * (channels * c1 + c1 * c1 + c1 * c1) + 9 * s2 * (c1 * c2 + c2 * c2 + c2 * c2) +
         s7 * (9 * c2 * c3 + c3 * c2 + c2 * c1) + c1 * classes;
}

// GFLOP/s of a 128→128 3×3 convolution on a [batch, 128, 32, 32] input (forward only).
double convRate(bool channelsLast) {
  torch::NoGradGuard noGrad;
  const auto fmt =
      channelsLast ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
  const auto x = torch::randn({64, 128, 32, 32}).contiguous(fmt);
  const auto w = torch::randn({128, 128, 3, 3}).contiguous(fmt);
  torch::conv2d(x, w, {}, 1, 1);
  std::vector<double> t;
  for (int i = 0; i < 5; ++i) {
    const auto a = Clock::now();
    const auto y = torch::conv2d(x, w, {}, 1, 1);
    t.push_back(seconds(a, Clock::now()));
  }
  return 2.0 * 64 * 128 * 32 * 32 * 128 * 9 / median(t) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  app::keepLargeAllocationsInHeap();
  auto a = bench::parseFlags(argc, argv, "metasemi-bench-meta-step",
                             {{"width", "1.0"},
                              {"batch", "128"},
                              {"size", "32"},
                              {"reps", "5"},
                              {"threads", "2"},
                              {"warmup", "1"},
                              {"kinds", "meta-mixup,meta,labeled"},
                              {"channels-last", "1"}},
                             "Time per training step of ConvLarge (kinds: meta-mixup, meta, "
                             "labeled) on random batches,\nwith the rate of one large convolution "
                             "measured in the same run.");
  const double width = std::stod(a["width"]);
  const int batch = std::stoi(a["batch"]), size = std::stoi(a["size"]), reps = std::stoi(a["reps"]);
  const bool channelsLast = a["channels-last"] != "0";
  torch::set_num_threads(std::stoi(a["threads"]));

  fmt::print("threads {}, ConvLarge width {}, batch {}+{}, {}x{}x3, channels-last {}\n",
             torch::get_num_threads(), width, batch, batch, size, size, channelsLast);
  const double convBefore = convRate(channelsLast);
  fmt::print("single 3x3 conv 128->128 on [64,128,32,32]: {:.1f} GFLOP/s\n", convBefore);

  const double fwdFlops = 2.0 * convLargeMacs(width, 3, size, 10) * batch;
  // Forward-equivalents per step: a backward costs two forwards (input and weight gradients).
  const std::map<std::string, std::pair<meta::StepKind, double>> kinds{
      {"meta-mixup", {meta::StepKind::kMetaMixUp, 12.0}},
      {"meta", {meta::StepKind::kMeta, 12.0}},
      {"labeled", {meta::StepKind::kLabeledOnly, 3.0}},
      {"mixup-only", {meta::StepKind::kMixUpOnly, 5.0}}};

  fmt::print("{:<12} {:>10} {:>10} {:>10} {:>12} {:>12}\n", "step", "median s", "min s", "max s",
             "GFLOP/s", "peak RSS GiB");
  std::stringstream list(a["kinds"]);
  for (std::string name; std::getline(list, name, ',');) {
    if (!kinds.count(name)) {
      std::cerr << "metasemi-bench-meta-step: unknown kind " << name << "\n";
      return 2;
    }
    torch::manual_seed(1);
    models::NetworkSpec spec;
    spec.widthFactor = width;
    auto net = models::makeNetwork(spec);
    if (channelsLast) models::toChannelsLast(*net);
    meta::Sgd sgd(net->parameters(), 0.9, 1e-4);
    meta::MetaStep step(net, sgd, channelsLast);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
    meta::StepSettings s;
    s.kind = kinds.at(name).first;
    s.lr = 0.05;
    meta::StepBatch b;
    b.labeledImages = torch::randn({batch, 3, size, size});
    b.labels = torch::randint(10, {batch}, torch::kLong);
    b.unlabeledImages = torch::randn({batch, 3, size, size});
    std::vector<double> times;
    for (int i = 0; i < std::stoi(a["warmup"]) + reps; ++i) {
      const auto t0 = Clock::now();
      const auto r = step.run(b, s, gen);
      r.loss.item<double>();  // the step's work is done when its loss can be read
      if (i >= std::stoi(a["warmup"])) times.push_back(seconds(t0, Clock::now()));
    }
    const double med = median(times);
    fmt::print("{:<12} {:>10.3f} {:>10.3f} {:>10.3f} {:>12.1f} {:>12.2f}\n", name, med,
               *std::min_element(times.begin(), times.end()),
               *std::max_element(times.begin(), times.end()),
               kinds.at(name).second * fwdFlops / med / 1e9, peakRssGiB());
  }
  fmt::print("single 3x3 conv again: {:.1f} GFLOP/s\n", convRate(channelsLast));
  return 0;
}
