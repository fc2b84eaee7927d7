// Batches for the trainer: two endless training streams (labeled, unlabeled) and a one-pass
// evaluation iterator, prepared by background threads and delivered in a fixed order.
//
// Sharding is by global rank: the global batch of step t holds localBatch·worldSize samples
// drawn from the stream and rank r takes rows [r·localBatch, (r+1)·localBatch) of it, so the
// data of a step does not depend on how many ranks share it. Sample k of the global batch of
// step t is augmented with core::Rng(deriveSeed(streamSeed, {t, k})), so neither the rank count
// nor the thread count changes any output.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "metasemi/data/Augment.h"
#include "metasemi/data/IndexStream.h"
#include "metasemi/data/SampleSource.h"
#include "metasemi/data/WorkerPool.h"

namespace metasemi::data {

/// One batch of this rank.
struct Batch {
  torch::Tensor images;    ///< float32, CPU (pinned with pinMemory), B×C×H×W, NCHW, normalised
  torch::Tensor labels;    ///< int64, CPU, B: classes of the images
  torch::Tensor indices;   ///< int64, CPU, B: sample indices in the source
  std::int64_t step = 0;   ///< training: the global step; evaluation: the batch number
  double waitSeconds = 0;  ///< how long next() blocked until this batch was ready
};

struct LoaderOptions {
  /// Threads of the loader's own pool when `pool` is null; 0 prepares each batch inside next()
  /// on the caller.
  int threads = 2;
  /// Batches prepared ahead of the consumer (at least 1).
  int prefetch = 4;
  /// Threads shared with the rank's other loaders (--num-workers); used instead of `threads`.
  /// Each batch is split into one part per thread, so that all of them work on the batch the
  /// consumer waits for.
  std::shared_ptr<WorkerPool> pool;
  /// Batches in page-locked host memory, ready for a non-blocking copy to a GPU (needs a CUDA
  /// LibTorch and a visible GPU).
  bool pinMemory = false;
};

class Prefetcher;

/// An endless training stream of one index set (labeled or unlabeled) for this rank.
class TrainStream {
 public:
  /// `indices`: the sample indices of `source` this stream draws (e.g. the labeled ones);
  /// `seed` and `id` name the stream's shuffles and augmentations; `localBatch` samples per
  /// rank and step. `resumeFrom` continues a saved state (see state()). Throws
  /// core::ConfigError for an empty index set, an index outside the source, a non-positive
  /// batch, or a state that belongs to another stream.
  TrainStream(std::shared_ptr<const SampleSource> source, std::vector<std::int64_t> indices,
              StreamId id, std::uint64_t seed, AugmentConfig augment, std::int64_t localBatch,
              int rank, int worldSize, LoaderOptions options = {},
              std::optional<StreamState> resumeFrom = std::nullopt);
  ~TrainStream();
  TrainStream(const TrainStream&) = delete;
  TrainStream& operator=(const TrainStream&) = delete;

  /// The next batch of this rank (localBatch samples). Rethrows an error a worker met
  /// (e.g. core::IoError for an undecodable image).
  Batch next();

  /// The state after the last batch next() returned: restoring it (or passing it as
  /// `resumeFrom`) continues with exactly the batches that would have followed. Batches
  /// prepared ahead but not yet taken are not part of it.
  StreamState state() const { return consumed_; }
  /// Drops prepared batches and continues from `s` (core::ConfigError if it is another
  /// stream's state).
  void restore(const StreamState& s);

  /// Sum of Batch::waitSeconds over all batches returned so far.
  double totalWaitSeconds() const { return totalWait_; }
  /// Shape (C, H, W) of one output image.
  ImageShape outputShape() const;

 private:
  void start();

  std::shared_ptr<const SampleSource> source_;
  IndexStream stream_;
  AugmentConfig augment_;
  std::int64_t localBatch_;
  int rank_, worldSize_;
  LoaderOptions options_;
  StreamState consumed_;
  double totalWait_ = 0;
  std::unique_ptr<Prefetcher> prefetcher_;
};

/// One pass over a test set, split across ranks without duplicates or gaps: rank r of R takes
/// the contiguous samples [⌊rN/R⌋, ⌊(r+1)N/R⌋) in order, in batches of localBatch (the last one
/// shorter). Never augmented: `augment` must be an evaluation transform.
class EvalIterator {
 public:
  EvalIterator(std::shared_ptr<const SampleSource> source, AugmentConfig augment,
               std::int64_t localBatch, int rank, int worldSize, LoaderOptions options = {});
  ~EvalIterator();
  EvalIterator(const EvalIterator&) = delete;
  EvalIterator& operator=(const EvalIterator&) = delete;

  /// The next batch of this rank, or nothing after the last one.
  std::optional<Batch> next();

  /// This rank's samples [first, second).
  std::pair<std::int64_t, std::int64_t> range() const { return {begin_, end_}; }
  /// Number of batches this rank delivers (ranks may differ by one).
  std::int64_t numBatches() const;
  /// The largest numBatches() of any rank (the same value on every rank, computed locally),
  /// for callers that run a collective per batch and must pad with empty steps.
  std::int64_t maxBatchesPerRank() const;

 private:
  std::shared_ptr<const SampleSource> source_;
  AugmentConfig augment_;
  std::int64_t localBatch_, worldSize_;
  std::int64_t begin_, end_, nextBegin_;
  std::int64_t batchNumber_ = 0;
  std::unique_ptr<Prefetcher> prefetcher_;
};

/// Prepares the samples `indices` of `source` with `augment`, sample k drawing from
/// core::Rng(seeds[k]) (ignored by deterministic transforms), into a batch, on the caller. What
/// the workers run (in parts); public for tests, benchmarks and single-pass tools.
Batch makeBatch(const SampleSource& source, const AugmentConfig& augment,
                const std::vector<std::int64_t>& indices, const std::vector<std::uint64_t>& seeds);

}  // namespace metasemi::data
