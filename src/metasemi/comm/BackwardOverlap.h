// Gradient averaging overlapped with backward, as PyTorch DDP does it: each gradient bucket's
// allreduce starts as soon as backward has accumulated the last gradient of the bucket, while
// backward goes on with the layers before it.
//
// The gradients are the bucketer's views (GradientBucketer::bucketViews installed as the
// parameters' gradients), so a bucket is reduced in place. A hook after each parameter's
// gradient accumulation (the AccumulateGrad node) counts down its bucket; a communication thread
// reduces full buckets in one fixed order (from the last parameters' bucket to the first, the
// order backward fills them), the same on every rank, so the collectives match across ranks
// whatever order the hooks fire in. finish() reduces what backward left (buckets of parameters
// it did not reach) and waits for the last bucket.
//
// The thread makes MPI calls while the main thread computes: this needs MPI_THREAD_SERIALIZED
// (the Environment asks for it), and the main thread must make no collective call between arm()
// and finish() (synchronised BatchNorm does, in its backward: do not overlap then).
#pragma once

#include <torch/torch.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "metasemi/comm/Communicator.h"
#include "metasemi/comm/GradientBucketer.h"

namespace metasemi::comm {

/// True when `comm`'s collectives may be called from a thread other than the one that started
/// MPI (MPI_THREAD_SERIALIZED or more; always for the serial backend).
bool collectivesFromAnotherThread(const Communicator& comm);

class BackwardOverlap {
 public:
  /// Averages (or, without `average`, sums) the gradients of `params` over `comm`'s ranks while
  /// backward runs. `bucketer`'s views must be the parameters' gradients (see above); `bucketer`,
  /// `comm` and the parameters outlive this object.
  BackwardOverlap(GradientBucketer& bucketer, Communicator& comm,
                  const std::vector<torch::Tensor>& params, bool average = true);
  ~BackwardOverlap();
  BackwardOverlap(const BackwardOverlap&) = delete;
  BackwardOverlap& operator=(const BackwardOverlap&) = delete;

  /// Before the backward whose gradients are to be averaged. Backward passes outside arm() and
  /// finish() (none in training) leave the buckets alone.
  void arm();
  /// After that backward: reduces the buckets backward did not fill, waits until every bucket
  /// is averaged, and rethrows the first error of a collective.
  void finish();

  /// Seconds of the last step's averaging that finish() waited for (the part not hidden
  /// behind backward), and the seconds its collectives took in all.
  double exposedSeconds() const { return exposed_; }
  double reduceSeconds() const { return reduce_; }

 private:
  void ready(std::size_t bucket);
  void worker();

  GradientBucketer& bucketer_;
  Communicator& comm_;
  bool average_;
  std::vector<int> members_;  // per bucket: parameters with a gradient
  // std::shared_ptr<Node> in LibTorch 1.x, c10::intrusive_ptr<Node> in 2.x.
  using Accumulator =
      decltype(torch::autograd::impl::grad_accumulator(std::declval<const torch::Tensor&>()));
  std::vector<Accumulator> accumulators_;
  std::vector<std::uintptr_t> hookKeys_;

  std::mutex m_;
  std::condition_variable cv_;
  bool armed_ = false, stop_ = false;
  std::vector<int> remaining_;  // per bucket, counted down by the hooks
  std::vector<bool> full_;      // per bucket
  std::size_t reduced_ = 0;     // buckets done this step, in the fixed order
  std::exception_ptr error_;
  double exposed_ = 0.0, reduce_ = 0.0;
  std::thread thread_;
};

}  // namespace metasemi::comm
