#include "metasemi/data/Loader.h"

#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "metasemi/core/Error.h"
#include "metasemi/core/Random.h"
#include "metasemi/data/Image.h"

namespace metasemi::data {

/// Work for one batch: which samples, with which seeds, and the stream state after it.
struct Job {
  std::int64_t step = 0;
  std::vector<std::int64_t> indices;
  std::vector<std::uint64_t> seeds;
  StreamState stateAfter;
};

/// Runs `plan` (which hands out jobs in order, always under the lock) and `work` (which turns a
/// job into a batch, in parallel) on background threads, and delivers the batches in plan
/// order. Workers stay at most `prefetch` batches ahead of the consumer.
class Prefetcher {
 public:
  using Plan = std::function<bool(Job&)>;  // false when there is no further job
  using Work = std::function<Batch(const Job&)>;

  struct Result {
    Batch batch;
    StreamState stateAfter;
  };

  Prefetcher(Plan plan, Work work, const LoaderOptions& options)
      : plan_(std::move(plan)),
        work_(std::move(work)),
        threads_(std::max(0, options.threads)),
        prefetch_(std::max({1, options.prefetch, options.threads})) {
    for (int t = 0; t < threads_; ++t) workers_.emplace_back([this] { workerLoop(); });
  }

  ~Prefetcher() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    workAvailable_.notify_all();
    for (auto& w : workers_) w.join();
  }

  std::optional<Result> next() {
    const auto t0 = std::chrono::steady_clock::now();
    std::optional<Result> out;
    if (threads_ == 0) {
      Job job;
      if (!plan_(job)) return std::nullopt;
      out = Result{work_(job), job.stateAfter};
    } else {
      std::unique_lock<std::mutex> lock(mutex_);
      batchReady_.wait(lock, [this] {
        return ready_.count(delivered_) > 0 || (planDone_ && delivered_ >= issued_);
      });
      auto it = ready_.find(delivered_);
      if (it == ready_.end()) return std::nullopt;
      // Timed before waking a worker: on a busy machine the woken thread may take this core,
      // which is CPU contention, not waiting for data.
      const auto t1 = std::chrono::steady_clock::now();
      Slot slot = std::move(it->second);
      ready_.erase(it);
      ++delivered_;
      lock.unlock();
      workAvailable_.notify_all();
      if (slot.error) std::rethrow_exception(slot.error);
      out = std::move(slot.result);
      out->batch.waitSeconds = std::chrono::duration<double>(t1 - t0).count();
      return out;
    }
    out->batch.waitSeconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return out;
  }

 private:
  struct Slot {
    Result result;
    std::exception_ptr error;
  };

  void workerLoop() {
    for (;;) {
      Job job;
      std::int64_t ticket = 0;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        workAvailable_.wait(
            lock, [this] { return stop_ || planDone_ || issued_ < delivered_ + prefetch_; });
        if (stop_ || planDone_) return;
        ticket = issued_;
        bool more = false;
        try {
          more = plan_(job);
        } catch (...) {
          ready_[ticket].error = std::current_exception();
          ++issued_;
          planDone_ = true;
          batchReady_.notify_all();
          return;
        }
        if (!more) {
          planDone_ = true;
          batchReady_.notify_all();
          workAvailable_.notify_all();
          return;
        }
        ++issued_;
      }
      Slot slot;
      try {
        slot.result = Result{work_(job), job.stateAfter};
      } catch (...) {
        slot.error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        ready_.emplace(ticket, std::move(slot));
      }
      batchReady_.notify_all();
    }
  }

  Plan plan_;
  Work work_;
  int threads_;
  std::int64_t prefetch_;
  std::mutex mutex_;
  std::condition_variable workAvailable_, batchReady_;
  std::map<std::int64_t, Slot> ready_;
  std::int64_t issued_ = 0, delivered_ = 0;
  bool planDone_ = false, stop_ = false;
  std::vector<std::thread> workers_;
};

Batch makeBatch(const SampleSource& source, const AugmentConfig& augment,
                const std::vector<std::int64_t>& indices, const std::vector<std::uint64_t>& seeds) {
  MS_CHECK(seeds.empty() || seeds.size() == indices.size(), "{} seeds for {} samples", seeds.size(),
           indices.size());
  const auto n = static_cast<std::int64_t>(indices.size());
  const ImageShape out = augment.outputShape(source.imageShape());
  Batch batch;
  batch.images = torch::empty({n, out.channels, out.height, out.width}, torch::kFloat32);
  batch.labels = torch::empty({n}, torch::kInt64);
  batch.indices = torch::empty({n}, torch::kInt64);
  float* images = batch.images.data_ptr<float>();
  auto* labels = batch.labels.data_ptr<std::int64_t>();
  auto* ids = batch.indices.data_ptr<std::int64_t>();
  std::vector<std::uint8_t> bytes;
  for (std::int64_t k = 0; k < n; ++k) {
    const std::int64_t i = indices[static_cast<std::size_t>(k)];
    core::Rng rng(seeds.empty() ? 0 : seeds[static_cast<std::size_t>(k)]);
    float* chw = images + k * out.numel();
    if (source.isEncoded()) {
      source.encoded(i, bytes);
      const Image image = decodeImage(bytes.data(), bytes.size(), out.channels,
                                      fmt::format("{}: image {}", source.describe(), i));
      augmentDecoded(image, augment, rng, chw);
    } else {
      augmentFixed(source.pixels(i), source.imageShape(), augment, rng, chw);
    }
    labels[k] = source.label(i);
    ids[k] = i;
  }
  return batch;
}

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
  auto work = [this](const Job& job) {
    Batch b = makeBatch(*source_, augment_, job.indices, job.seeds);
    b.step = job.step;
    return b;
  };
  prefetcher_ = std::make_unique<Prefetcher>(plan, work, options_);
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
  auto work = [this](const Job& job) {
    Batch b = makeBatch(*source_, augment_, job.indices, job.seeds);
    b.step = job.step;
    return b;
  };
  prefetcher_ = std::make_unique<Prefetcher>(plan, work, options);
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
