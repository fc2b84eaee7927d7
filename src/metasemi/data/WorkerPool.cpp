#include "metasemi/data/WorkerPool.h"

#include "metasemi/core/Error.h"

namespace metasemi::data {

WorkerPool::WorkerPool(int threads) {
  MS_REQUIRE(threads >= 1, core::ConfigError, "a worker pool needs at least 1 thread, got {}",
             threads);
  for (int t = 0; t < threads; ++t) threads_.emplace_back([this] { loop(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

std::shared_ptr<WorkerPool> WorkerPool::make(int threads) {
  return threads > 0 ? std::make_shared<WorkerPool>(threads) : nullptr;
}

void WorkerPool::submit(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(task));
  }
  wake_.notify_one();
}

void WorkerPool::loop() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

}  // namespace metasemi::data
