// train::Evaluator against a confusion matrix counted by hand: a network whose predictions are a
// table looked up by image, over batch sizes that do and do not divide the split, and over ranks
// (each rank's share counted on its own, then summed as the communicator would).
#include <torch/torch.h>

#include <algorithm>
#include <numeric>

#include "metasemi/comm/Communicator.h"
#include "metasemi/data/SampleSource.h"
#include "metasemi/train/Evaluator.h"
#include "support/TestSupport.h"

using namespace metasemi;

namespace {

constexpr std::int64_t kImages = 37, kClasses = 4;

// Image i is one pixel of value i; the network reads i back and returns row i of a score table.
class TableNet : public models::Network {
 public:
  explicit TableNet(torch::Tensor scores) : scores_(std::move(scores)) {}
  torch::Tensor forward(torch::Tensor x) override {
    const auto i = x.reshape({x.size(0)}).mul(255.0).round().to(torch::kInt64);
    return scores_.index_select(0, i);
  }
  torch::Tensor features(torch::Tensor x) override { return forward(x); }
  std::int64_t numClasses() const override { return scores_.size(1); }

 private:
  torch::Tensor scores_;
};

// A rank of a job whose collectives do nothing: the test sums the ranks' counts itself.
class LoneRank : public comm::Communicator {
 public:
  LoneRank(int rank, int size) : rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int localRank() const override { return rank_; }
  int localSize() const override { return size_; }
  std::string name() const override { return "lone"; }
  void barrier() override {}
  void allreduceSum(double*, std::size_t) override {}
  void allreduceSum(float*, std::size_t) override {}
  void allreduceSum(std::int64_t*, std::size_t) override { ++reductions; }
  void allreduceMin(std::int64_t*, std::size_t) override {}
  void allreduceMax(std::int64_t*, std::size_t) override {}
  void broadcast(void*, std::size_t, int) override {}
  void allreduce(const torch::Tensor&, comm::ReduceOp) override {}
  void broadcast(const torch::Tensor&, int) override {}
  [[noreturn]] void abort(int code) override { std::exit(code); }
  int reductions = 0;

 private:
  int rank_, size_;
};

struct Fixture {
  std::vector<std::int64_t> labels;
  torch::Tensor scores;  // [kImages, kClasses], distinct values per row (no ties)
  std::shared_ptr<data::MemoryImageSource> source;
  data::AugmentConfig augment;

  Fixture() {
    auto g = at::detail::createCPUGenerator(11);
    scores = at::randperm(kImages * kClasses, g, torch::kInt64)
                 .to(torch::kFloat32)
                 .reshape({kImages, kClasses});
    std::vector<std::uint8_t> pixels(kImages);
    for (std::int64_t i = 0; i < kImages; ++i) {
      pixels[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i);
      labels.push_back((i * 7 + 3) % kClasses);
    }
    source = std::make_shared<data::MemoryImageSource>(pixels, data::ImageShape{1, 1, 1}, labels,
                                                       kClasses);
    augment.kind = data::AugmentKind::kNormalizeOnly;
    augment.norm = {{0.0f}, {1.0f}};
  }

  // The counts by hand: the prediction is the highest score, top-k the k highest.
  train::EvalCounts byHand(std::int64_t k) const {
    train::EvalCounts counts(kClasses, k);
    for (std::int64_t i = 0; i < kImages; ++i) {
      std::vector<std::int64_t> order(kClasses);
      std::iota(order.begin(), order.end(), 0);
      std::sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
        return scores[i][a].item<float>() > scores[i][b].item<float>();
      });
      const std::int64_t y = labels[static_cast<std::size_t>(i)];
      const bool inTopK = std::find(order.begin(), order.begin() + std::min(k, kClasses), y) !=
                          order.begin() + std::min(k, kClasses);
      counts.add(y, order[0], inTopK);
    }
    return counts;
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(counts_equal_the_hand_count_for_every_batch_and_rank_count) {
  const Fixture f;
  TableNet net(f.scores);
  for (std::int64_t k : {1, 2, 5}) {
    const train::EvalCounts expected = f.byHand(k);
    BOOST_TEST(expected.images() == kImages);
    BOOST_TEST(expected.correct() > 0);
    BOOST_TEST(expected.correct() < kImages);
    for (std::int64_t batch : {1, 5, 37, 100}) {
      for (int ranks : {1, 2, 3}) {
        BOOST_TEST_CONTEXT("k " << k << ", batch " << batch << ", ranks " << ranks) {
          std::vector<std::int64_t> sum(static_cast<std::size_t>(kClasses * kClasses + 1), 0);
          for (int r = 0; r < ranks; ++r) {
            LoneRank comm(r, ranks);
            const train::Evaluator e(f.source, f.augment, torch::kCPU,
                                     {batch, k, {r % 2, 2}, r % 2 == 0});
            const train::EvalCounts c = e.run(net, comm);
            BOOST_TEST(comm.reductions == 1);
            for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += c.raw()[i];
          }
          BOOST_TEST(sum == expected.raw(), boost::test_tools::per_element());
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(rates_follow_the_trainer_formula) {
  train::EvalCounts c(3, 2);
  c.add(0, 0, true);
  c.add(1, 2, true);
  c.add(2, 2, true);
  c.add(2, 0, false);
  BOOST_TEST(c.images() == 4);
  BOOST_TEST(c.correct() == 2);
  BOOST_TEST(c.top1Error() == 50.0);
  BOOST_TEST(c.topKError() == 25.0);
  BOOST_TEST(c.confusion(2, 0) == 1);
  BOOST_TEST(std::isnan(train::EvalCounts(3, 1).top1Error()));
}

BOOST_AUTO_TEST_CASE(a_label_outside_the_network_classes_is_refused) {
  const Fixture f;
  TableNet narrow(f.scores.narrow(1, 0, 2));  // 2 classes; the labels go up to 3
  LoneRank comm(0, 1);
  const train::Evaluator e(f.source, f.augment, torch::kCPU, {8, 1, {0, 1}, false});
  const auto msg = test::errorOf([&] { e.run(narrow, comm); });
  BOOST_TEST(msg.find("outside [0, 2)") != std::string::npos, msg);
}
