// A minimal fork-join helper for the postprocessing code: the work is a few coarse loops per
// t-SNE iteration, so spawning threads per call costs microseconds against milliseconds of work
// and keeps the code free of a pool's shutdown and exception plumbing.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <thread>
#include <vector>

namespace metasemi::post {

/// Number of worker threads to use: `requested` when positive, else the hardware's count.
inline int resolveThreads(int requested) {
  if (requested > 0) return requested;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

/// Calls `fn(begin, end, worker)` on `threads` contiguous chunks of [0, n) in parallel and
/// rethrows the first exception a worker raised. The chunks are deterministic for a given
/// (n, threads), so per-worker partial sums reduce in a fixed order.
template <typename Fn>
void parallelFor(std::size_t n, int threads, Fn&& fn) {
  const std::size_t workers = std::max<std::size_t>(
      1, std::min<std::size_t>(static_cast<std::size_t>(std::max(threads, 1)), n));
  if (workers == 1) {
    fn(std::size_t{0}, n, 0);
    return;
  }
  std::vector<std::exception_ptr> errors(workers);
  std::vector<std::thread> pool;
  pool.reserve(workers - 1);
  auto run = [&](std::size_t w) {
    const std::size_t begin = n * w / workers;
    const std::size_t end = n * (w + 1) / workers;
    try {
      fn(begin, end, static_cast<int>(w));
    } catch (...) {
      errors[w] = std::current_exception();
    }
  };
  for (std::size_t w = 1; w < workers; ++w) pool.emplace_back(run, w);
  run(0);
  for (auto& t : pool) t.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

/// Calls `fn(begin, end, worker)` on blocks of `grain` indices of [0, n) handed out to
/// `threads` workers on demand, for loops whose cost per index varies (tree walks). Each index is
/// processed exactly once; which worker runs it is not deterministic, so `fn` must write only
/// per-index results.
template <typename Fn>
void parallelForDynamic(std::size_t n, std::size_t grain, int threads, Fn&& fn) {
  grain = std::max<std::size_t>(grain, 1);
  const std::size_t blocks = (n + grain - 1) / grain;
  std::atomic<std::size_t> next{0};
  parallelFor(std::min<std::size_t>(blocks, static_cast<std::size_t>(std::max(threads, 1))),
              threads, [&](std::size_t, std::size_t, int worker) {
                for (std::size_t b = next++; b < blocks; b = next++) {
                  fn(b * grain, std::min(n, (b + 1) * grain), worker);
                }
              });
}

}  // namespace metasemi::post
