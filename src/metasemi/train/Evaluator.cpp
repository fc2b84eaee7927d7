#include "metasemi/train/Evaluator.h"

#include <algorithm>

#include "metasemi/core/Error.h"

namespace metasemi::train {

Evaluator::Evaluator(std::shared_ptr<const data::SampleSource> split, data::AugmentConfig augment,
                     torch::Device device, EvaluatorOptions options)
    : split_(std::move(split)), augment_(std::move(augment)), device_(device), options_(options) {}

EvalCounts Evaluator::run(models::Network& net, comm::Communicator& comm) const {
  torch::NoGradGuard noGrad;
  net.eval();
  const std::int64_t classes = net.numClasses();
  EvalCounts counts(classes, options_.topK);
  const std::int64_t k = std::min(options_.topK, classes);
  // The counts stay on the device until the pass ends: no synchronisation per batch.
  const auto longs = torch::dtype(torch::kInt64).device(device_);
  torch::Tensor confusion = torch::zeros({classes * classes}, longs);
  torch::Tensor topKHits = torch::zeros({}, longs);
  data::EvalIterator it(split_, augment_, options_.batchSize, comm.rank(), comm.size(),
                        options_.loader);
  while (auto batch = it.next()) {
    torch::Tensor x = batch->images.to(device_);
    if (options_.channelsLast) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
    const torch::Tensor labels = batch->labels.to(device_);
    const torch::Tensor top = std::get<1>(net.forward(x).topk(k, 1));
    const torch::Tensor hit = top.eq(labels.unsqueeze(1));
    const torch::Tensor bins =
        torch::bincount(labels * classes + top.select(1, 0), {}, classes * classes);
    MS_REQUIRE(bins.size(0) == classes * classes, core::IoError,
               "{}: a label is outside [0, {}), the classes of the network", split_->describe(),
               classes);
    confusion.add_(bins);
    topKHits.add_(hit.sum());
  }
  const torch::Tensor host = torch::cat({confusion, topKHits.reshape({1})}).to(torch::kCPU);
  std::vector<std::int64_t>& raw = counts.raw();
  std::copy(host.data_ptr<std::int64_t>(), host.data_ptr<std::int64_t>() + host.numel(),
            raw.begin());
  comm.allreduceSum(raw.data(), raw.size());
  return counts;
}

}  // namespace metasemi::train
