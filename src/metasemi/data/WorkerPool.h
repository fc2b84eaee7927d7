// The decoding threads of one rank (--num-workers), shared by its loaders: the labeled and
// unlabeled streams and the evaluation pass queue their work on the same threads.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace metasemi::data {

/// A fixed set of threads running submitted tasks in submission order.
class WorkerPool {
 public:
  /// Starts `threads` threads (core::ConfigError unless ≥ 1).
  explicit WorkerPool(int threads);
  /// Runs the tasks already queued, then joins the threads.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  /// A pool of `threads` threads, or null for 0 (work runs on the caller).
  static std::shared_ptr<WorkerPool> make(int threads);

  int threads() const { return static_cast<int>(threads_.size()); }
  /// Queues `task`; tasks start in the order they were submitted. A task must not throw.
  void submit(std::function<void()> task);

 private:
  void loop();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace metasemi::data
