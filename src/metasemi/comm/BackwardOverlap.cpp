#include "metasemi/comm/BackwardOverlap.h"

#include <mpi.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <chrono>
#include <functional>

#include "metasemi/core/Error.h"

namespace metasemi::comm {
namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Runs `f` after the AccumulateGrad node it is attached to has added its gradient.
class AfterAccumulation final : public torch::autograd::FunctionPostHook {
 public:
  explicit AfterAccumulation(std::function<void()> f) : f_(std::move(f)) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list&) override {
    f_();
    return outputs;
  }

 private:
  std::function<void()> f_;
};

}  // namespace

bool collectivesFromAnotherThread(const Communicator& comm) {
  if (comm.name() != "mpi") return true;  // serial; NCCL reduces device buffers on its stream
  int level = MPI_THREAD_SINGLE;
  if (MPI_Query_thread(&level) != MPI_SUCCESS) return false;
  return level >= MPI_THREAD_SERIALIZED;
}

BackwardOverlap::BackwardOverlap(GradientBucketer& bucketer, Communicator& comm,
                                 const std::vector<torch::Tensor>& params, bool average)
    : bucketer_(bucketer), comm_(comm), average_(average) {
  const std::size_t n = bucketer.numBuckets();
  MS_CHECK(n > 0, "BackwardOverlap: the bucketer has no layout (call bucketViews first)");
  std::vector<std::size_t> bucketOf(params.size(), n);  // per parameter
  for (std::size_t b = 0; b < n; ++b) {
    for (std::size_t m : bucketer.bucketMembers(b)) {
      MS_CHECK(m < params.size(), "BackwardOverlap: bucket {} holds tensor {} of {}", b, m,
               params.size());
      bucketOf[m] = b;
    }
  }
  members_.assign(n, 0);
  accumulators_.resize(params.size());
  hookKeys_.resize(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    MS_CHECK(bucketOf[i] < n, "BackwardOverlap: parameter {} is in no bucket", i);
    if (!params[i].requires_grad()) continue;
    ++members_[bucketOf[i]];
    // The node is kept alive here: autograd holds it only while a graph refers to it.
    accumulators_[i] = torch::autograd::impl::grad_accumulator(params[i]);
    MS_CHECK(static_cast<bool>(accumulators_[i]), "BackwardOverlap: parameter {} is not a leaf", i);
    const std::size_t b = bucketOf[i];
    hookKeys_[i] = accumulators_[i]->add_post_hook(
        std::make_unique<AfterAccumulation>([this, b] { ready(b); }));
  }
  remaining_ = members_;
  full_.assign(n, false);
  thread_ = std::thread([this] { worker(); });
}

BackwardOverlap::~BackwardOverlap() {
  for (std::size_t i = 0; i < accumulators_.size(); ++i) {
    if (accumulators_[i]) accumulators_[i]->del_post_hook(hookKeys_[i]);
  }
  {
    std::lock_guard<std::mutex> lock(m_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void BackwardOverlap::arm() {
  std::lock_guard<std::mutex> lock(m_);
  MS_CHECK(!armed_, "BackwardOverlap::arm() twice without finish()");
  remaining_ = members_;
  for (std::size_t b = 0; b < full_.size(); ++b) full_[b] = members_[b] == 0;
  reduced_ = 0;
  reduce_ = exposed_ = 0.0;
  armed_ = true;
  cv_.notify_all();
}

void BackwardOverlap::ready(std::size_t bucket) {
  std::lock_guard<std::mutex> lock(m_);
  if (!armed_ || full_[bucket]) return;
  if (--remaining_[bucket] == 0) {
    full_[bucket] = true;
    cv_.notify_all();
  }
}

void BackwardOverlap::finish() {
  const auto t0 = Clock::now();
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> lock(m_);
    MS_CHECK(armed_, "BackwardOverlap::finish() without arm()");
    // Backward has returned: every gradient it computes is in place.
    std::fill(full_.begin(), full_.end(), true);
    cv_.notify_all();
    cv_.wait(lock, [this] { return reduced_ == full_.size(); });
    armed_ = false;
    error = error_;
    error_ = nullptr;
  }
  exposed_ = secondsSince(t0);
  if (error) std::rethrow_exception(error);
}

void BackwardOverlap::worker() {
  const std::size_t n = full_.size();
  for (;;) {
    std::size_t bucket = 0;
    bool skip = false;
    {
      std::unique_lock<std::mutex> lock(m_);
      // The fixed order: the last bucket (the last parameters, whose gradients backward
      // computes first) down to the first.
      cv_.wait(lock, [&] { return stop_ || (armed_ && reduced_ < n && full_[n - 1 - reduced_]); });
      if (stop_) return;
      bucket = n - 1 - reduced_;
      // After a failed collective the communicator is unusable: no further calls.
      skip = error_ != nullptr;
    }
    const auto t0 = Clock::now();
    std::exception_ptr error;
    if (!skip) {
      try {
        bucketer_.reduceBucket(comm_, bucket, average_);
      } catch (...) {
        error = std::current_exception();
      }
    }
    const double dt = secondsSince(t0);
    {
      std::lock_guard<std::mutex> lock(m_);
      if (error && !error_) error_ = error;
      reduce_ += dt;
      ++reduced_;
    }
    cv_.notify_all();
  }
}

}  // namespace metasemi::comm
