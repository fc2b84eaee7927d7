// Loaders: the same batches (indices and pixels, bit for bit) whatever the thread count, the
// rank count or an interruption, and an evaluation pass without duplicates or gaps.
#include <algorithm>
#include <numeric>
#include <set>

#include "metasemi/core/Error.h"
#include "metasemi/data/Loader.h"
#include "support/TestSupport.h"

namespace md = metasemi::data;
using metasemi::core::ConfigError;
using metasemi::core::IoError;

namespace {

constexpr std::int64_t kN = 203;

std::shared_ptr<md::MemoryImageSource> toySource(std::int64_t n = kN) {
  metasemi::core::Rng rng(99);
  const md::ImageShape shape{8, 8, 3};
  std::vector<std::uint8_t> px(static_cast<std::size_t>(n * shape.numel()));
  for (auto& p : px) p = static_cast<std::uint8_t>(rng.below(256));
  std::vector<std::int64_t> labels(static_cast<std::size_t>(n));
  for (auto& y : labels) y = static_cast<std::int64_t>(rng.below(10));
  return std::make_shared<md::MemoryImageSource>(std::move(px), shape, std::move(labels), 10);
}

std::vector<std::int64_t> evenIndices() {
  std::vector<std::int64_t> v;
  for (std::int64_t i = 0; i < kN; i += 2) v.push_back(i);
  return v;
}

md::AugmentConfig cifarLike() {
  return md::trainAugment("cifar10", false, md::datasetNormalization("cifar10", {}, {}, 3));
}

std::unique_ptr<md::TrainStream> makeStream(std::int64_t localBatch, int rank, int ranks,
                                            md::LoaderOptions opts,
                                            std::optional<md::StreamState> from = {}) {
  return std::make_unique<md::TrainStream>(toySource(), evenIndices(), md::StreamId::kUnlabeled,
                                           2024, cifarLike(), localBatch, rank, ranks, opts, from);
}

bool sameBatch(const md::Batch& a, const md::Batch& b) {
  return a.step == b.step && torch::equal(a.indices, b.indices) &&
         torch::equal(a.labels, b.labels) && torch::equal(a.images, b.images);
}

std::vector<md::Batch> take(md::TrainStream& s, int n) {
  std::vector<md::Batch> out;
  for (int i = 0; i < n; ++i) out.push_back(s.next());
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(batches_carry_the_right_shapes_labels_and_augmentation) {
  auto source = toySource();
  auto s = makeStream(16, 0, 1, {0, 1});
  const md::Batch b = s->next();
  BOOST_TEST((b.images.sizes() == torch::IntArrayRef{16, 3, 8, 8}));
  BOOST_TEST(b.images.dtype() == torch::kFloat32);
  BOOST_TEST(b.images.is_contiguous());
  BOOST_TEST(b.labels.dtype() == torch::kInt64);
  for (int k = 0; k < 16; ++k) {
    const std::int64_t i = b.indices[k].item<std::int64_t>();
    BOOST_TEST(i % 2 == 0);
    BOOST_TEST(b.labels[k].item<std::int64_t>() == source->label(i));
  }
  // Sample k of step 0 is the pad-crop its own seed draws.
  const std::int64_t i0 = b.indices[0].item<std::int64_t>();
  metasemi::core::Rng rng(metasemi::core::deriveSeed(
      metasemi::core::deriveSeed(2024, {static_cast<std::uint64_t>(md::StreamId::kUnlabeled)}),
      {0, 0}));
  std::vector<float> want(3 * 64);
  md::augmentFixed(source->pixels(i0), source->imageShape(), cifarLike(), rng, want.data());
  BOOST_TEST(std::equal(want.begin(), want.end(), b.images[0].data_ptr<float>()));
}

BOOST_AUTO_TEST_CASE(same_batches_for_every_thread_count) {
  auto ref = makeStream(24, 0, 1, {0, 1});
  const auto expected = take(*ref, 12);  // crosses a pass (102 indices) several times
  for (auto opts : {md::LoaderOptions{1, 1}, md::LoaderOptions{2, 2}, md::LoaderOptions{3, 8}}) {
    auto s = makeStream(24, 0, 1, opts);
    const auto got = take(*s, 12);
    for (int i = 0; i < 12; ++i)
      BOOST_TEST(sameBatch(got[i], expected[i]), "threads " << opts.threads << " batch " << i);
  }
}

BOOST_AUTO_TEST_CASE(global_batch_is_the_same_for_one_two_and_three_ranks) {
  // Global batch 6: 1 rank × 6, 2 ranks × 3, 3 ranks × 2 see the same samples and pixels.
  auto single = makeStream(6, 0, 1, {0, 1});
  const auto global = take(*single, 40);
  for (int ranks : {1, 2, 3}) {
    const std::int64_t b = 6 / ranks;
    std::vector<std::unique_ptr<md::TrainStream>> perRank;
    for (int r = 0; r < ranks; ++r) perRank.push_back(makeStream(b, r, ranks, {2, 4}));
    for (int t = 0; t < 40; ++t) {
      std::vector<torch::Tensor> idx, img;
      std::set<std::int64_t> seen;
      for (int r = 0; r < ranks; ++r) {
        const md::Batch part = perRank[r]->next();
        BOOST_REQUIRE(part.step == t);
        idx.push_back(part.indices);
        img.push_back(part.images);
      }
      BOOST_TEST(torch::equal(torch::cat(idx), global[t].indices), "R=" << ranks << " t=" << t);
      BOOST_TEST(torch::equal(torch::cat(img), global[t].images), "R=" << ranks << " t=" << t);
    }
  }
}

BOOST_AUTO_TEST_CASE(resume_mid_pass_reproduces_the_following_batches_bit_for_bit) {
  auto a = makeStream(10, 0, 1, {2, 4});
  take(*a, 7);  // 70 of 102: mid-pass, with batches prepared ahead of the consumer
  const md::StreamState saved = md::StreamState::fromInts(a->state().toInts());
  BOOST_TEST(saved.step == 7);
  BOOST_TEST(saved.pass == 0);
  BOOST_TEST(saved.position == 70);
  const auto expected = take(*a, 9);  // crosses into pass 1

  auto b = makeStream(10, 0, 1, {1, 2}, saved);
  const auto resumed = take(*b, 9);
  for (int i = 0; i < 9; ++i) BOOST_TEST(sameBatch(resumed[i], expected[i]), "batch " << i);

  a->restore(saved);
  const auto again = take(*a, 9);
  for (int i = 0; i < 9; ++i) BOOST_TEST(sameBatch(again[i], expected[i]), "batch " << i);

  // A refused state leaves the stream usable where it was.
  md::StreamState foreign = saved;
  foreign.size = 5;
  BOOST_CHECK_THROW(a->restore(foreign), ConfigError);
  auto c = makeStream(10, 0, 1, {0, 1}, saved);
  take(*c, 9);
  BOOST_TEST(sameBatch(a->next(), c->next()));

  // A state of another stream is refused.
  BOOST_CHECK_THROW(std::make_unique<md::TrainStream>(toySource(), std::vector<std::int64_t>{1, 3},
                                                      md::StreamId::kUnlabeled, 2024, cifarLike(),
                                                      2, 0, 1, md::LoaderOptions{}, saved),
                    ConfigError);
}

BOOST_AUTO_TEST_CASE(wait_times_are_reported_per_batch) {
  auto s = makeStream(8, 0, 1, {1, 2});
  double sum = 0;
  for (int i = 0; i < 5; ++i) {
    const auto b = s->next();
    BOOST_TEST(b.waitSeconds >= 0.0);
    sum += b.waitSeconds;
  }
  BOOST_TEST(s->totalWaitSeconds() == sum);
}

BOOST_AUTO_TEST_CASE(evaluation_covers_every_sample_once_in_order) {
  auto source = toySource(103);
  const auto eval = md::evalAugment(false, md::datasetNormalization("cifar10", {}, {}, 3));
  for (int ranks : {1, 2, 3, 4, 7}) {
    std::vector<std::int64_t> all;
    std::int64_t maxBatches = -1;
    for (int r = 0; r < ranks; ++r) {
      md::EvalIterator it(source, eval, 10, r, ranks, {2, 3});
      if (maxBatches < 0) maxBatches = it.maxBatchesPerRank();
      BOOST_TEST(it.maxBatchesPerRank() == maxBatches);  // same value on every rank
      BOOST_TEST(it.numBatches() <= maxBatches);
      std::int64_t batches = 0;
      while (auto b = it.next()) {
        BOOST_TEST(b->images.size(0) <= 10);
        BOOST_TEST(b->step == batches);
        ++batches;
        for (int k = 0; k < b->indices.size(0); ++k) {
          const std::int64_t i = b->indices[k].item<std::int64_t>();
          all.push_back(i);
          std::vector<float> want(3 * 64);
          md::normalizeToChw(source->pixels(i), source->imageShape(), false, eval.norm,
                             want.data());
          BOOST_REQUIRE(std::equal(want.begin(), want.end(), b->images[k].data_ptr<float>()));
        }
      }
      BOOST_TEST(batches == it.numBatches());
      BOOST_TEST(!it.next().has_value());
    }
    std::vector<std::int64_t> expected(103);
    std::iota(expected.begin(), expected.end(), 0);
    BOOST_TEST((all == expected), "R=" << ranks);  // rank after rank, in order: no gap, no repeat
  }
  BOOST_CHECK_THROW(md::EvalIterator(source, cifarLike(), 10, 0, 1), ConfigError);
}

BOOST_AUTO_TEST_CASE(worker_errors_reach_the_consumer) {
  std::vector<std::vector<std::uint8_t>> files(4, std::vector<std::uint8_t>{0xff, 0xd8, 0x00});
  auto source = std::make_shared<md::MemoryEncodedSource>(
      files, std::vector<std::int64_t>{0, 1, 0, 1}, 2, 3, "broken.h5");
  const auto norm = md::datasetNormalization("imagenet", {}, {}, 3);
  for (int threads : {0, 2}) {
    md::TrainStream s(source, {0, 1, 2, 3}, md::StreamId::kLabeled, 1,
                      md::trainAugment("imagenet", true, norm, 32), 2, 0, 1, {threads, 2});
    try {
      s.next();
      BOOST_ERROR("an undecodable image was accepted");
    } catch (const IoError& e) {
      BOOST_TEST(std::string(e.what()).find("broken.h5: image") != std::string::npos, e.what());
    }
  }
  BOOST_CHECK_THROW(md::MemoryImageSource({1, 2, 3}, {1, 1, 3}, {5}, 3), ConfigError);
  BOOST_CHECK_THROW(md::MemoryImageSource({1, 2}, {1, 1, 3}, {0}, 3), ConfigError);
}

BOOST_AUTO_TEST_CASE(streams_sharing_a_pool_give_their_own_batches) {
  // The labeled and unlabeled streams of a rank and its evaluation share the --num-workers
  // pool: every batch is what the stream gives on its own, in order, at every pool size.
  const auto source = toySource();
  std::vector<std::int64_t> odd;
  for (std::int64_t i = 1; i < kN; i += 2) odd.push_back(i);
  auto pair = [&](md::LoaderOptions opts) {
    md::TrainStream a(source, evenIndices(), md::StreamId::kLabeled, 7, cifarLike(), 9, 0, 1, opts);
    md::TrainStream b(source, odd, md::StreamId::kUnlabeled, 7, cifarLike(), 13, 0, 1, opts);
    std::vector<md::Batch> out;
    for (int t = 0; t < 12; ++t) {
      out.push_back(a.next());
      out.push_back(b.next());
    }
    return out;
  };
  const auto alone = pair({0, 1});
  for (int threads : {1, 2, 3}) {
    const auto pool = md::WorkerPool::make(threads);
    const auto shared = pair({0, 3, pool});
    BOOST_TEST_REQUIRE(shared.size() == alone.size());
    for (std::size_t k = 0; k < alone.size(); ++k)
      BOOST_TEST(sameBatch(shared[k], alone[k]), "threads " << threads << " batch " << k);
    md::EvalIterator eval(source, md::evalAugment(false, cifarLike().norm), 50, 0, 1, {0, 2, pool});
    std::int64_t seen = 0;
    while (auto batch = eval.next()) seen += batch->images.size(0);
    BOOST_TEST(seen == kN);
  }
}

BOOST_AUTO_TEST_CASE(batches_still_held_are_never_overwritten) {
  // The loader reuses the memory of a batch the consumer has let go of; one still held (or a
  // view of it) keeps its values.
  auto s = makeStream(16, 0, 1, {2, 2});
  auto reference = makeStream(16, 0, 1, {0, 1});
  std::vector<md::Batch> held;
  std::vector<torch::Tensor> views;
  for (int t = 0; t < 30; ++t) {
    md::Batch b = s->next();
    BOOST_TEST_REQUIRE(sameBatch(b, reference->next()), "step " << t);
    if (t % 3 == 0) held.push_back(b);
    if (t % 3 == 1) views.push_back(b.images.narrow(0, 2, 3));
  }
  auto again = makeStream(16, 0, 1, {0, 1});
  for (int t = 0; t < 30; ++t) {
    const md::Batch b = again->next();
    if (t % 3 == 0) BOOST_TEST(sameBatch(held[t / 3], b), "held batch of step " << t);
    if (t % 3 == 1) BOOST_TEST(torch::equal(views[t / 3], b.images.narrow(0, 2, 3)));
  }
}
