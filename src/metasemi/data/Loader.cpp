#include "metasemi/data/Loader.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <mutex>

#include "metasemi/core/Error.h"
#include "metasemi/core/Random.h"

namespace metasemi::data {

/// Work for one batch: which samples, with which seeds, and the stream state after it.
struct Job {
  std::int64_t step = 0;
  std::vector<std::int64_t> indices;
  std::vector<std::uint64_t> seeds;
  StreamState stateAfter;
};

namespace {

// An uninitialised batch for `n` samples of `source` after `augment`; its images in `reuse`
// when that has the right shape.
Batch allocateBatch(const SampleSource& source, const AugmentConfig& augment, std::int64_t n,
                    bool pin, const torch::Tensor& reuse = {}) {
  const ImageShape out = augment.outputShape(source.imageShape());
  const std::vector<std::int64_t> shape{n, out.channels, out.height, out.width};
  Batch batch;
  batch.images =
      reuse.defined() && reuse.sizes() == torch::IntArrayRef(shape)
          ? reuse
          : torch::empty(shape, torch::TensorOptions(torch::kFloat32).pinned_memory(pin));
  batch.labels = torch::empty({n}, torch::TensorOptions(torch::kInt64).pinned_memory(pin));
  batch.indices = torch::empty({n}, torch::kInt64);
  return batch;
}

// Prepares samples [begin, end) of `job` into `batch` (made by allocateBatch for the job).
void fillBatch(const SampleSource& source, const AugmentConfig& augment, const Job& job,
               Batch& batch, std::int64_t begin, std::int64_t end) {
  const ImageShape out = augment.outputShape(source.imageShape());
  float* images = batch.images.data_ptr<float>();
  auto* labels = batch.labels.data_ptr<std::int64_t>();
  auto* ids = batch.indices.data_ptr<std::int64_t>();
  thread_local std::vector<std::uint8_t> bytes;
  for (std::int64_t k = begin; k < end; ++k) {
    const std::int64_t i = job.indices[static_cast<std::size_t>(k)];
    core::Rng rng(job.seeds.empty() ? 0 : job.seeds[static_cast<std::size_t>(k)]);
    float* chw = images + k * out.numel();
    if (source.isEncoded()) {
      source.encoded(i, bytes);
      augmentEncoded(bytes.data(), bytes.size(), out.channels,
                     fmt::format("{}: image {}", source.describe(), i), augment, rng, chw);
    } else {
      augmentFixed(source.pixels(i), source.imageShape(), augment, rng, chw);
    }
    labels[k] = source.label(i);
    ids[k] = i;
  }
}

}  // namespace

/// Plans jobs in order on the consumer's thread (`plan`), has a worker pool prepare them
/// (`allocate` on the consumer's thread, then `fill` over parts of the batch on the workers),
/// and delivers the batches in plan order, at most `prefetch` of them in flight.
class Prefetcher {
 public:
  using Plan = std::function<bool(Job&)>;  // false when there is no further job
  // `reuse`: an images tensor of an earlier batch nobody holds any more, or undefined.
  using Allocate = std::function<Batch(const Job&, const torch::Tensor& reuse)>;
  using Fill = std::function<void(const Job&, Batch&, std::int64_t, std::int64_t)>;

  struct Result {
    Batch batch;
    StreamState stateAfter;
  };

  Prefetcher(Plan plan, Allocate allocate, Fill fill, const LoaderOptions& options)
      : plan_(std::move(plan)),
        allocate_(std::move(allocate)),
        fill_(std::move(fill)),
        pool_(options.pool ? options.pool : WorkerPool::make(options.threads)),
        prefetch_(std::max(1, options.prefetch)),
        pinned_(options.pinMemory) {
    topUp();
  }

  ~Prefetcher() {
    // Parts still queued skip their work; the ones running finish. Either way they touch this
    // object until running_ is 0.
    cancelled_ = true;
    std::unique_lock<std::mutex> lock(mutex_);
    partDone_.wait(lock, [this] { return running_ == 0; });
  }

  std::optional<Result> next() {
    const auto t0 = std::chrono::steady_clock::now();
    if (!pool_) {
      Job job;
      if (!plan_(job)) return std::nullopt;
      Result out{allocate_(job, spare()), job.stateAfter};
      fill_(job, out.batch, 0, static_cast<std::int64_t>(job.indices.size()));
      out.batch.waitSeconds = secondsSince(t0);
      keepForReuse(out.batch);
      return out;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    partDone_.wait(lock, [this] {
      const auto it = slots_.find(delivered_);
      return (it != slots_.end() && it->second.remaining == 0) ||
             (planDone_ && delivered_ >= issued_);
    });
    const auto it = slots_.find(delivered_);
    if (it == slots_.end()) return std::nullopt;
    const double waited = secondsSince(t0);
    Slot slot = std::move(it->second);
    slots_.erase(it);
    ++delivered_;
    lock.unlock();
    keepForReuse(slot.batch);
    topUp();
    if (slot.error) std::rethrow_exception(slot.error);
    slot.batch.waitSeconds = waited;
    return Result{std::move(slot.batch), slot.job.stateAfter};
  }

 private:
  struct Slot {
    Job job;
    Batch batch;
    int remaining = 0;  // parts not yet done
    std::exception_ptr error;
  };

  static double secondsSince(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }

  // Plans and queues jobs until `prefetch_` are in flight. Consumer's thread only: the plan
  // advances the caller's stream, and the counters are written here alone.
  void topUp() {
    if (!pool_) return;  // next() plans and prepares each batch itself
    while (!planDone_ && issued_ < delivered_ + prefetch_) {
      Slot slot;
      try {
        if (!plan_(slot.job)) {
          planDone_ = true;
          return;
        }
        slot.batch = allocate_(slot.job, spare());
      } catch (...) {
        slot.error = std::current_exception();  // delivered in its turn
        planDone_ = true;
      }
      const auto n = static_cast<std::int64_t>(slot.job.indices.size());
      const int parts =
          slot.error ? 0 : static_cast<int>(std::min<std::int64_t>(n, pool_->threads()));
      slot.remaining = parts;
      Slot* s = nullptr;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        s = &(slots_[issued_++] = std::move(slot));
        running_ += parts;
      }
      for (int p = 0; p < parts; ++p) {
        const std::int64_t begin = n * p / parts, end = n * (p + 1) / parts;
        pool_->submit([this, s, begin, end] { runPart(*s, begin, end); });
      }
    }
  }

  // An images tensor handed out earlier that the consumer no longer holds (nor any view of
  // it): reusing it spares the fresh pages (and their zeroing by the kernel) of a new
  // allocation, which cost about a fifth of the decode time at batch 64. Never pinned memory:
  // an asynchronous copy to the GPU may still read it after the consumer let go.
  // Remembers the images of a batch handed out, to reuse once the consumer lets go (the last
  // two: a trainer holds the batch of the current step only).
  void keepForReuse(const Batch& b) {
    if (pinned_ || !b.images.defined()) return;
    handedOut_.push_back(b.images);
    if (handedOut_.size() > 2) handedOut_.pop_front();
  }

  torch::Tensor spare() {
    for (auto it = handedOut_.begin(); it != handedOut_.end(); ++it) {
      if (it->use_count() == 1 && it->storage().use_count() == 1) {
        torch::Tensor t = std::move(*it);
        handedOut_.erase(it);
        return t;
      }
    }
    return {};
  }

  void runPart(Slot& s, std::int64_t begin, std::int64_t end) {
    std::exception_ptr error;
    if (!cancelled_) {
      try {
        fill_(s.job, s.batch, begin, end);
      } catch (...) {
        error = std::current_exception();
      }
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (error && !s.error) s.error = error;
    --s.remaining;
    --running_;
    // Under the lock: the destructor may return as soon as running_ is 0.
    partDone_.notify_all();
  }

  Plan plan_;
  Allocate allocate_;
  Fill fill_;
  std::shared_ptr<WorkerPool> pool_;
  std::int64_t prefetch_;
  bool pinned_;
  std::deque<torch::Tensor> handedOut_;  // consumer's thread only
  std::mutex mutex_;
  std::condition_variable partDone_;
  std::map<std::int64_t, Slot> slots_;  // by job number; a slot never moves while parts run
  std::int64_t issued_ = 0, delivered_ = 0, running_ = 0;
  bool planDone_ = false;
  std::atomic<bool> cancelled_{false};
};

Batch makeBatch(const SampleSource& source, const AugmentConfig& augment,
                const std::vector<std::int64_t>& indices, const std::vector<std::uint64_t>& seeds) {
  MS_CHECK(seeds.empty() || seeds.size() == indices.size(), "{} seeds for {} samples", seeds.size(),
           indices.size());
  const Job job{0, indices, seeds, {}};
  const auto n = static_cast<std::int64_t>(indices.size());
  Batch batch = allocateBatch(source, augment, n, false);
  fillBatch(source, augment, job, batch, 0, n);
  return batch;
}

namespace {

Prefetcher::Allocate batchAllocator(const SampleSource& source, const AugmentConfig& augment,
                                    const LoaderOptions& options) {
  return [&source, &augment, pin = options.pinMemory](const Job& job, const torch::Tensor& reuse) {
    Batch b =
        allocateBatch(source, augment, static_cast<std::int64_t>(job.indices.size()), pin, reuse);
    b.step = job.step;
    return b;
  };
}

Prefetcher::Fill batchFiller(const SampleSource& source, const AugmentConfig& augment) {
  return [&source, &augment](const Job& job, Batch& b, std::int64_t begin, std::int64_t end) {
    fillBatch(source, augment, job, b, begin, end);
  };
}

}  // namespace

TrainStream::TrainStream(std::shared_ptr<const SampleSource> source,
                         std::vector<std::int64_t> indices, StreamId id, std::uint64_t seed,
                         AugmentConfig augment, std::int64_t localBatch, int rank, int worldSize,
                         LoaderOptions options, std::optional<StreamState> resumeFrom)
    : source_(std::move(source)),
      stream_(std::move(indices), seed, id),
      augment_(std::move(augment)),
      localBatch_(localBatch),
      rank_(rank),
      worldSize_(worldSize),
      options_(options) {
  MS_CHECK(source_ != nullptr, "no source");
  MS_REQUIRE(localBatch_ > 0, core::ConfigError, "{}: batch size must be positive, found {}",
             source_->describe(), localBatch_);
  MS_REQUIRE(worldSize_ > 0 && rank_ >= 0 && rank_ < worldSize_, core::ConfigError,
             "rank {} of {} ranks is invalid", rank_, worldSize_);
  for (std::int64_t i : stream_.passOrder(0)) {
    MS_REQUIRE(i >= 0 && i < source_->size(), core::ConfigError,
               "{}: stream index {} outside the {} samples", source_->describe(), i,
               source_->size());
  }
  if (resumeFrom) stream_.restore(*resumeFrom);
  consumed_ = stream_.state();
  start();
}

TrainStream::~TrainStream() = default;

void TrainStream::start() {
  const std::int64_t global = localBatch_ * worldSize_;
  const auto [first, last] = rankSlice(global, rank_, worldSize_);
  auto plan = [this, global, first = first, last = last](Job& job) {
    job.step = stream_.state().step;
    const std::vector<std::int64_t> all = stream_.nextBatch(global);
    job.indices.assign(all.begin() + first, all.begin() + last);
    job.seeds.clear();
    for (std::int64_t k = first; k < last; ++k) {
      job.seeds.push_back(
          core::deriveSeed(stream_.streamSeed(),
                           {static_cast<std::uint64_t>(job.step), static_cast<std::uint64_t>(k)}));
    }
    job.stateAfter = stream_.state();
    return true;
  };
  prefetcher_ = std::make_unique<Prefetcher>(plan, batchAllocator(*source_, augment_, options_),
                                             batchFiller(*source_, augment_), options_);
}

Batch TrainStream::next() {
  auto result = prefetcher_->next();
  MS_CHECK(result.has_value(), "an endless stream ended");
  consumed_ = result->stateAfter;
  totalWait_ += result->batch.waitSeconds;
  return std::move(result->batch);
}

void TrainStream::restore(const StreamState& s) {
  prefetcher_.reset();  // joins the workers before the stream moves
  const StreamState previous = consumed_;
  try {
    stream_.restore(s);
  } catch (...) {
    // A refused state leaves the stream where the consumer was, still usable.
    stream_.restore(previous);
    start();
    throw;
  }
  consumed_ = stream_.state();
  start();
}

ImageShape TrainStream::outputShape() const { return augment_.outputShape(source_->imageShape()); }

EvalIterator::EvalIterator(std::shared_ptr<const SampleSource> source, AugmentConfig augment,
                           std::int64_t localBatch, int rank, int worldSize, LoaderOptions options)
    : source_(std::move(source)),
      augment_(std::move(augment)),
      localBatch_(localBatch),
      worldSize_(worldSize) {
  MS_CHECK(source_ != nullptr, "no source");
  MS_REQUIRE(localBatch_ > 0, core::ConfigError,
             "{}: evaluation batch size must be positive, found {}", source_->describe(),
             localBatch_);
  MS_REQUIRE(worldSize > 0 && rank >= 0 && rank < worldSize, core::ConfigError,
             "rank {} of {} ranks is invalid", rank, worldSize);
  MS_REQUIRE(!augment_.isRandom(), core::ConfigError,
             "{}: the test set is never augmented (random transform given)", source_->describe());
  const std::int64_t n = source_->size();
  begin_ = n * rank / worldSize;
  end_ = n * (rank + 1) / worldSize;
  nextBegin_ = begin_;
  auto plan = [this](Job& job) {
    if (nextBegin_ >= end_) return false;
    const std::int64_t stop = std::min(end_, nextBegin_ + localBatch_);
    job.step = batchNumber_++;
    job.indices.clear();
    for (std::int64_t i = nextBegin_; i < stop; ++i) job.indices.push_back(i);
    job.seeds.clear();
    nextBegin_ = stop;
    return true;
  };
  prefetcher_ = std::make_unique<Prefetcher>(plan, batchAllocator(*source_, augment_, options),
                                             batchFiller(*source_, augment_), options);
}

EvalIterator::~EvalIterator() = default;

std::optional<Batch> EvalIterator::next() {
  auto result = prefetcher_->next();
  if (!result) return std::nullopt;
  return std::move(result->batch);
}

std::int64_t EvalIterator::numBatches() const {
  return (end_ - begin_ + localBatch_ - 1) / localBatch_;
}

std::int64_t EvalIterator::maxBatchesPerRank() const {
  const std::int64_t n = source_->size();
  const std::int64_t largest = (n + worldSize_ - 1) / worldSize_;  // ⌈N/R⌉ samples at most
  return (largest + localBatch_ - 1) / localBatch_;
}

}  // namespace metasemi::data
