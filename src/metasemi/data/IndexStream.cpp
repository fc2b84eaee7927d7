#include "metasemi/data/IndexStream.h"

#include "metasemi/core/Error.h"
#include "metasemi/core/Random.h"

namespace metasemi::data {

std::array<std::int64_t, 5> StreamState::toInts() const {
  return {pass, position, step, size, static_cast<std::int64_t>(seed)};
}

StreamState StreamState::fromInts(const std::array<std::int64_t, 5>& v) {
  StreamState s;
  s.pass = v[0];
  s.position = v[1];
  s.step = v[2];
  s.size = v[3];
  s.seed = static_cast<std::uint64_t>(v[4]);
  return s;
}

nlohmann::json StreamState::toJson() const {
  return {{"pass", pass}, {"position", position}, {"step", step}, {"size", size}, {"seed", seed}};
}

StreamState StreamState::fromJson(const nlohmann::json& j) {
  StreamState s;
  auto get = [&j](const char* key, auto& out) {
    MS_REQUIRE(j.is_object() && j.contains(key), core::ConfigError,
               "data stream state: missing key '{}' in {}", key, j.dump());
    try {
      j.at(key).get_to(out);
    } catch (const nlohmann::json::exception&) {
      MS_THROW(core::ConfigError, "data stream state: key '{}' must be an integer, found {}", key,
               j.at(key).dump());
    }
  };
  get("pass", s.pass);
  get("position", s.position);
  get("step", s.step);
  get("size", s.size);
  get("seed", s.seed);
  return s;
}

IndexStream::IndexStream(std::vector<std::int64_t> indices, std::uint64_t seed, StreamId stream)
    : indices_(std::move(indices)),
      streamSeed_(core::deriveSeed(seed, {static_cast<std::uint64_t>(stream)})) {
  MS_REQUIRE(!indices_.empty(), core::ConfigError,
             "data stream {}: the index set is empty (no samples to draw from)",
             static_cast<std::uint64_t>(stream));
}

std::vector<std::int64_t> IndexStream::passOrder(std::int64_t pass) const {
  std::vector<std::int64_t> order = indices_;
  core::Rng rng(core::deriveSeed(streamSeed_, {static_cast<std::uint64_t>(pass)}));
  core::shuffle(order, rng);
  return order;
}

void IndexStream::loadPass(std::int64_t pass) {
  if (orderPass_ == pass) return;
  order_ = passOrder(pass);
  orderPass_ = pass;
}

std::vector<std::int64_t> IndexStream::nextBatch(std::int64_t count) {
  MS_CHECK(count > 0, "batch size {}", count);
  std::vector<std::int64_t> out;
  out.reserve(static_cast<std::size_t>(count));
  while (static_cast<std::int64_t>(out.size()) < count) {
    loadPass(pass_);
    const std::int64_t take =
        std::min(count - static_cast<std::int64_t>(out.size()), size() - position_);
    out.insert(out.end(), order_.begin() + position_, order_.begin() + position_ + take);
    position_ += take;
    if (position_ == size()) {
      ++pass_;
      position_ = 0;
    }
  }
  ++step_;
  return out;
}

StreamState IndexStream::state() const {
  StreamState s;
  s.pass = pass_;
  s.position = position_;
  s.step = step_;
  s.size = size();
  s.seed = streamSeed_;
  return s;
}

void IndexStream::restore(const StreamState& s) {
  MS_REQUIRE(s.size == size(), core::ConfigError,
             "data stream state: saved for {} samples but this stream has {} (different data "
             "or label split)",
             s.size, size());
  MS_REQUIRE(s.seed == streamSeed_, core::ConfigError,
             "data stream state: saved with another seed (stream seed {:#x}, expected {:#x})",
             s.seed, streamSeed_);
  MS_REQUIRE(s.pass >= 0 && s.position >= 0 && s.position < size() && s.step >= 0,
             core::ConfigError,
             "data stream state: pass {} position {} step {} out of range for {} samples", s.pass,
             s.position, s.step, size());
  pass_ = s.pass;
  position_ = s.position;
  step_ = s.step;
}

std::pair<std::int64_t, std::int64_t> rankSlice(std::int64_t globalBatch, int rank, int worldSize) {
  MS_REQUIRE(worldSize > 0 && globalBatch % worldSize == 0, core::ConfigError,
             "global batch {} is not divisible by the number of ranks {}", globalBatch, worldSize);
  MS_CHECK(rank >= 0 && rank < worldSize, "rank {} of {}", rank, worldSize);
  const std::int64_t b = globalBatch / worldSize;
  return {rank * b, (rank + 1) * b};
}

}  // namespace metasemi::data
