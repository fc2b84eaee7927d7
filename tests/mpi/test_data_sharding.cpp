// Two real ranks: each rank's slice of a step is exactly its part of the one-rank global batch
// (indices and pixels), and the evaluation pass splits the test set without gaps or repeats.
#include <numeric>

#include "metasemi/data/Loader.h"
#include "support/TestSupport.h"

namespace md = metasemi::data;
using metasemi::test::comm;

namespace {

std::shared_ptr<md::MemoryImageSource> toySource(std::int64_t n) {
  metasemi::core::Rng rng(5);
  const md::ImageShape shape{6, 6, 3};
  std::vector<std::uint8_t> px(static_cast<std::size_t>(n * shape.numel()));
  for (auto& p : px) p = static_cast<std::uint8_t>(rng.below(256));
  std::vector<std::int64_t> labels(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) labels[i] = i % 10;
  return std::make_shared<md::MemoryImageSource>(std::move(px), shape, std::move(labels), 10);
}

}  // namespace

BOOST_AUTO_TEST_CASE(rank_slices_form_the_single_rank_global_batch) {
  const int rank = comm().rank(), ranks = comm().size();
  auto source = toySource(90);
  std::vector<std::int64_t> all(90);
  std::iota(all.begin(), all.end(), 0);
  const auto aug =
      md::trainAugment("cifar10", false, md::datasetNormalization("cifar10", {}, {}, 3));
  const std::int64_t b = 4;
  md::TrainStream mine(source, all, md::StreamId::kLabeled, 31, aug, b, rank, ranks, {2, 2});
  md::TrainStream global(source, all, md::StreamId::kLabeled, 31, aug, b * ranks, 0, 1, {1, 2});
  bool ok = true;
  for (int t = 0; t < 50; ++t) {
    const auto part = mine.next();
    const auto whole = global.next();
    ok = ok && torch::equal(part.indices, whole.indices.narrow(0, rank * b, b)) &&
         torch::equal(part.images, whole.images.narrow(0, rank * b, b));
    // Every rank computes the same global batch.
    ok = ok && metasemi::test::sameOnAllRanks(whole.indices.data_ptr<std::int64_t>(),
                                              sizeof(std::int64_t) * b * ranks);
  }
  MS_COLLECTIVE_CHECK(ok);
  MS_COLLECTIVE_CHECK(mine.state().step == 50);
}

BOOST_AUTO_TEST_CASE(evaluation_splits_the_test_set_across_ranks) {
  const int rank = comm().rank(), ranks = comm().size();
  auto source = toySource(97);
  md::EvalIterator it(source,
                      md::evalAugment(false, md::datasetNormalization("cifar10", {}, {}, 3)), 8,
                      rank, ranks, {1, 2});
  std::vector<std::int64_t> seen(97, 0);
  while (auto batch = it.next())
    for (int k = 0; k < batch->indices.size(0); ++k) ++seen[batch->indices[k].item<std::int64_t>()];
  comm().allreduceSum(seen.data(), seen.size());
  bool once = true;
  for (auto s : seen) once = once && s == 1;
  MS_COLLECTIVE_CHECK(once);
  std::int64_t maxBatches = it.maxBatchesPerRank();
  comm().allreduceMin(&maxBatches, 1);
  MS_COLLECTIVE_CHECK(maxBatches == it.maxBatchesPerRank());
}
