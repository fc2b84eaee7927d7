// Synchronised BatchNorm on two ranks, in double precision: each rank normalises its half of a
// batch, and the outputs, input gradients, summed parameter gradients and running statistics equal
// torch's BatchNorm on the whole batch in one process; the input gradient also matches central
// finite differences of the global loss.
#include <ATen/ATen.h>

#include "metasemi/comm/Communicator.h"
#include "metasemi/models/SyncBatchNorm.h"
#include "support/TestSupport.h"

using metasemi::test::comm;
namespace models = metasemi::models;

namespace {

constexpr std::int64_t kPerRank = 3, kChannels = 4, kHeight = 5, kWidth = 3;

std::shared_ptr<const models::SumAcrossRanks> rankSum() {
  return std::make_shared<const models::SumAcrossRanks>(
      [](torch::Tensor& t) { comm().allreduce(t, metasemi::comm::ReduceOp::kSum); });
}

// The whole batch, the same on every rank (a fixed generator), and this rank's rows of it.
struct Batch {
  torch::Tensor whole, mine, weight, bias, upstream;
};

Batch makeBatch(bool channelsLast) {
  torch::manual_seed(7);
  const auto f64 = torch::TensorOptions().dtype(torch::kDouble);
  Batch b;
  const std::int64_t n = kPerRank * comm().size();
  b.whole = torch::randn({n, kChannels, kHeight, kWidth}, f64) * 3.0 + 1.5;
  b.weight = torch::rand({kChannels}, f64) + 0.5;
  b.bias = torch::randn({kChannels}, f64);
  b.upstream = torch::randn({n, kChannels, kHeight, kWidth}, f64);
  if (channelsLast) b.whole = b.whole.contiguous(torch::MemoryFormat::ChannelsLast);
  b.mine = b.whole.narrow(0, comm().rank() * kPerRank, kPerRank).clone();
  return b;
}

bool close(const torch::Tensor& a, const torch::Tensor& b, double tol = 1e-12) {
  return a.sizes() == b.sizes() && (a - b).abs().max().item<double>() <= tol;
}

void checkAgainstWholeBatch(bool channelsLast) {
  const Batch b = makeBatch(channelsLast);
  const auto rows = [&](const torch::Tensor& t) {
    return t.narrow(0, comm().rank() * kPerRank, kPerRank);
  };

  // Reference: torch's BatchNorm on the whole batch.
  auto xRef = b.whole.clone().requires_grad_(true);
  auto wRef = b.weight.clone().requires_grad_(true);
  auto bRef = b.bias.clone().requires_grad_(true);
  auto meanRef = torch::zeros({kChannels}, torch::kDouble);
  auto varRef = torch::ones({kChannels}, torch::kDouble);
  auto yRef = torch::batch_norm(xRef, wRef, bRef, meanRef, varRef, true, 0.1, 1e-5, false);
  (yRef * b.upstream).sum().backward();

  // Synchronised: this rank's rows only.
  auto x = b.mine.clone().requires_grad_(true);
  auto w = b.weight.clone().requires_grad_(true);
  auto bias = b.bias.clone().requires_grad_(true);
  auto mean = torch::zeros({kChannels}, torch::kDouble);
  auto var = torch::ones({kChannels}, torch::kDouble);
  const auto sum = rankSum();
  auto y = models::syncBatchNorm(x, w, bias, mean, var, 0.1, 1e-5, *sum);
  (y * rows(b.upstream)).sum().backward();
  // Parameter gradients are per rank; their sum is the whole batch's.
  auto gw = w.grad().clone(), gb = bias.grad().clone();
  comm().allreduce(gw, metasemi::comm::ReduceOp::kSum);
  comm().allreduce(gb, metasemi::comm::ReduceOp::kSum);

  bool ok = close(y, rows(yRef));
  ok &= close(x.grad(), rows(xRef.grad()));
  ok &= close(gw, wRef.grad());
  ok &= close(gb, bRef.grad());
  ok &= close(mean, meanRef);
  ok &= close(var, varRef);
  MS_COLLECTIVE_CHECK(ok);
}

}  // namespace

BOOST_AUTO_TEST_CASE(two_halves_equal_the_whole_batch) {
  BOOST_TEST_REQUIRE(comm().size() == 2);
  checkAgainstWholeBatch(false);
}

BOOST_AUTO_TEST_CASE(two_halves_equal_the_whole_batch_channels_last) {
  checkAgainstWholeBatch(true);
}

BOOST_AUTO_TEST_CASE(input_gradient_matches_central_differences_of_the_global_loss) {
  const Batch b = makeBatch(false);
  const auto sum = rankSum();
  const auto upstream = b.upstream.narrow(0, comm().rank() * kPerRank, kPerRank);
  auto mean = torch::zeros({kChannels}, torch::kDouble);
  auto var = torch::ones({kChannels}, torch::kDouble);
  // Global loss: sum over ranks of each rank's <y, upstream>.
  auto loss = [&](const torch::Tensor& x) {
    torch::NoGradGuard noGrad;
    auto m = mean.clone(), v = var.clone();
    const auto y = models::syncBatchNorm(x, b.weight, b.bias, m, v, 0.1, 1e-5, *sum);
    double l = (y * upstream).sum().item<double>();
    comm().allreduceSum(&l, 1);
    return l;
  };
  auto x = b.mine.clone().requires_grad_(true);
  auto y = models::syncBatchNorm(x, b.weight, b.bias, mean, var, 0.1, 1e-5, *sum);
  (y * upstream).sum().backward();
  const auto grad = x.grad().flatten();

  const double h = 1e-6;
  double worst = 0.0;
  for (int owner = 0; owner < comm().size(); ++owner) {
    for (const std::int64_t k : {0L, 7L, 31L, 59L, 178L}) {
      auto plus = b.mine.clone(), minus = b.mine.clone();
      if (comm().rank() == owner) {
        plus.view(-1)[k] += h;
        minus.view(-1)[k] -= h;
      }
      const double fd = (loss(plus) - loss(minus)) / (2 * h);
      double analytic = comm().rank() == owner ? grad[k].item<double>() : 0.0;
      comm().allreduceSum(&analytic, 1);
      worst = std::max(worst, std::abs(fd - analytic) / std::max(1.0, std::abs(analytic)));
    }
  }
  BOOST_TEST(worst < 1e-7, "worst relative difference " << worst);
}

BOOST_AUTO_TEST_CASE(module_is_torch_batchnorm_without_sync_and_in_eval_mode) {
  torch::manual_seed(3);
  models::SyncBatchNorm synced{torch::nn::BatchNormOptions(kChannels)};
  torch::nn::BatchNorm2d plain{torch::nn::BatchNormOptions(kChannels)};
  synced->to(torch::kDouble);
  plain->to(torch::kDouble);
  const auto x = torch::randn({kPerRank, kChannels, kHeight, kWidth}, torch::kDouble);
  // No sync group: the very same computation as torch's module.
  BOOST_TEST(torch::equal(synced->forward(x), plain->forward(x)));
  BOOST_TEST(torch::equal(synced->running_var, plain->running_var));
  // Eval mode uses the running statistics, never a collective.
  BOOST_TEST(models::setBatchNormSync(*synced, rankSum()) == 1);
  synced->eval();
  plain->eval();
  BOOST_TEST(torch::equal(synced->forward(x), plain->forward(x)));
  // Training mode with the group: the statistics of both ranks' batches.
  synced->train();
  synced->forward(x);
  BOOST_TEST(synced->num_batches_tracked.item<std::int64_t>() == 2);
  BOOST_TEST(synced->synced());
}
