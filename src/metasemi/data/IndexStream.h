// Endless streams of sample indices as the reference consumes them (reference-spec §5): an
// index set reshuffled on every pass and read in order, batch after batch, with batches running
// across pass boundaries. Passes are generated lazily from a seed derived from (seed, stream,
// pass), so the whole position of a stream is three integers.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <vector>

namespace metasemi::data {

/// Where a stream stands: everything needed to continue the exact same sequence of batches and
/// augmentations. `size` and `seed` identify the stream so that restoring a state into a
/// different stream is an error instead of a silent change of data.
struct StreamState {
  std::int64_t pass = 0;      ///< current pass over the index set (0-based)
  std::int64_t position = 0;  ///< next position within that pass, in [0, size)
  std::int64_t step = 0;      ///< number of global batches drawn so far
  std::int64_t size = 0;      ///< number of indices in the stream
  std::uint64_t seed = 0;     ///< seed derived for this stream (see IndexStream)

  /// The state as five int64 values (pass, position, step, size, seed bits), for checkpoints.
  std::array<std::int64_t, 5> toInts() const;
  /// Inverse of toInts().
  static StreamState fromInts(const std::array<std::int64_t, 5>& v);
  /// {"pass":..,"position":..,"step":..,"size":..,"seed":..}
  nlohmann::json toJson() const;
  /// Inverse of toJson(); throws core::ConfigError naming a missing or mistyped key.
  static StreamState fromJson(const nlohmann::json& j);

  bool operator==(const StreamState& o) const {
    return pass == o.pass && position == o.position && step == o.step && size == o.size &&
           seed == o.seed;
  }
  bool operator!=(const StreamState& o) const { return !(*this == o); }
};

/// Tags of the two training streams (and the evaluation pass) used to derive their seeds.
enum class StreamId : std::uint64_t { kLabeled = 1, kUnlabeled = 2, kEval = 3 };

/// A lazily reshuffled endless stream over a fixed set of sample indices. The order of pass p
/// is a Fisher-Yates shuffle of the index set with core::Rng(deriveSeed(seed, {stream, p})),
/// so it depends only on (seed, stream, p). Only the current pass's permutation is held.
class IndexStream {
 public:
  /// `indices`: the sample indices of this stream (e.g. the labeled indices), non-empty.
  IndexStream(std::vector<std::int64_t> indices, std::uint64_t seed, StreamId stream);

  /// Number of indices in one pass.
  std::int64_t size() const { return static_cast<std::int64_t>(indices_.size()); }
  /// The seed this stream derives its passes and per-sample randomness from.
  std::uint64_t streamSeed() const { return streamSeed_; }

  /// The next global batch: `count` indices in stream order, crossing into the next pass when
  /// the current one ends. Advances the position and the step counter by one.
  std::vector<std::int64_t> nextBatch(std::int64_t count);

  /// The order of pass `pass` (a permutation of the index set). Does not move the stream.
  std::vector<std::int64_t> passOrder(std::int64_t pass) const;

  StreamState state() const;
  /// Continues from `s`. Throws core::ConfigError when `s` belongs to a stream of another size
  /// or seed, or its position is out of range.
  void restore(const StreamState& s);

 private:
  void loadPass(std::int64_t pass);

  std::vector<std::int64_t> indices_;
  std::uint64_t streamSeed_;
  std::vector<std::int64_t> order_;  // permutation of the current pass
  std::int64_t orderPass_ = -1;
  std::int64_t pass_ = 0;
  std::int64_t position_ = 0;
  std::int64_t step_ = 0;
};

/// The rows of a global batch of `globalBatch` samples that rank `rank` of `worldSize` takes:
/// the contiguous slice [rank·b, (rank+1)·b) with b = globalBatch / worldSize. Throws
/// core::ConfigError when globalBatch is not divisible by worldSize.
std::pair<std::int64_t, std::int64_t> rankSlice(std::int64_t globalBatch, int rank, int worldSize);

}  // namespace metasemi::data
