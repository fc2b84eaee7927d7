#include "metasemi/core/Random.h"

namespace metasemi::core {

std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::uint64_t deriveSeed(std::uint64_t base, std::initializer_list<std::uint64_t> tags) noexcept {
  std::uint64_t h = splitmix64(base);
  for (std::uint64_t t : tags) h = splitmix64(h ^ splitmix64(t + 0x632be59bd9b4e019ULL));
  return h;
}

Rng::result_type Rng::operator()() noexcept {
  state_ += 0x9e3779b97f4a7c15ULL;
  std::uint64_t z = state_;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t Rng::below(std::uint64_t n) noexcept {
  // Lemire's nearly-divisionless bounded integer.
  unsigned __int128 m = static_cast<unsigned __int128>((*this)()) * n;
  auto low = static_cast<std::uint64_t>(m);
  if (low < n) {
    const std::uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      m = static_cast<unsigned __int128>((*this)()) * n;
      low = static_cast<std::uint64_t>(m);
    }
  }
  return static_cast<std::uint64_t>(m >> 64);
}

double Rng::uniform() noexcept { return static_cast<double>((*this)() >> 11) * 0x1.0p-53; }

}  // namespace metasemi::core
