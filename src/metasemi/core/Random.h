// Reproducible randomness that does not depend on the standard library's implementation:
// seeds are derived by hashing (SplitMix64), so any (seed, stream, pass, step, index) tuple
// names its own random numbers and nothing depends on thread counts or call order.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

namespace metasemi::core {

/// One SplitMix64 output for `x` (a bijective 64-bit mixer).
std::uint64_t splitmix64(std::uint64_t x) noexcept;

/// A seed derived from `base` and any number of tags (stream id, pass, step, sample index...).
std::uint64_t deriveSeed(std::uint64_t base, std::initializer_list<std::uint64_t> tags) noexcept;

/// Small counter-based generator: its whole state is one 64-bit word, so it is trivially saved
/// in checkpoints. Satisfies UniformRandomBitGenerator.
class Rng {
 public:
  using result_type = std::uint64_t;
  explicit Rng(std::uint64_t seed = 0) noexcept : state_(seed) {}
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return ~result_type{0}; }
  result_type operator()() noexcept;
  /// Uniform integer in [0, n) without modulo bias (Lemire's method). n > 0.
  std::uint64_t below(std::uint64_t n) noexcept;
  /// Uniform double in [0, 1) with 53 random bits.
  double uniform() noexcept;
  std::uint64_t state() const noexcept { return state_; }
  void setState(std::uint64_t s) noexcept { state_ = s; }

 private:
  std::uint64_t state_;
};

/// Fisher-Yates shuffle of `v` driven by `rng` (same result on every platform).
template <typename T>
void shuffle(std::vector<T>& v, Rng& rng) {
  for (std::size_t i = v.size(); i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(rng.below(i));
    std::swap(v[i - 1], v[j]);
  }
}

}  // namespace metasemi::core
