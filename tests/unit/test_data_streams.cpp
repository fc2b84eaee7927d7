// Index streams: every index once per pass, lazily reshuffled passes, global-rank slices and
// exact resume from a saved state.
#include <algorithm>
#include <numeric>
#include <set>

#include "metasemi/core/Error.h"
#include "metasemi/data/IndexStream.h"
#include "support/TestSupport.h"

using metasemi::core::ConfigError;
using metasemi::data::IndexStream;
using metasemi::data::rankSlice;
using metasemi::data::StreamId;
using metasemi::data::StreamState;

namespace {

// A non-contiguous index set, as a labeled subset is.
std::vector<std::int64_t> someIndices(std::int64_t n) {
  std::vector<std::int64_t> v;
  for (std::int64_t i = 0; i < n; ++i) v.push_back(3 * i + 7);
  return v;
}

std::vector<std::int64_t> draw(IndexStream& s, int batches, std::int64_t batch) {
  std::vector<std::int64_t> out;
  for (int b = 0; b < batches; ++b) {
    const auto v = s.nextBatch(batch);
    BOOST_REQUIRE_EQUAL(v.size(), static_cast<std::size_t>(batch));
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_index_exactly_once_per_pass) {
  const std::int64_t n = 37;  // batches of 5 straddle pass boundaries
  const auto set = someIndices(n);
  IndexStream s(set, 1234, StreamId::kLabeled);
  const auto seq = draw(s, 5 * 8, 5);  // 200 indices = 5 whole passes + 15
  const std::multiset<std::int64_t> expected(set.begin(), set.end());
  std::vector<std::vector<std::int64_t>> passes;
  for (std::size_t p = 0; (p + 1) * n <= seq.size(); ++p) {
    passes.emplace_back(seq.begin() + p * n, seq.begin() + (p + 1) * n);
    BOOST_TEST(
        (std::multiset<std::int64_t>(passes.back().begin(), passes.back().end()) == expected),
        "pass " << p << " is not a permutation of the index set");
    BOOST_TEST((passes.back() == s.passOrder(static_cast<std::int64_t>(p))));
  }
  // Reshuffled on every pass: no two passes in the same order, none in the input order.
  for (std::size_t a = 0; a < passes.size(); ++a) {
    BOOST_TEST((passes[a] != set));
    for (std::size_t b = a + 1; b < passes.size(); ++b) BOOST_TEST((passes[a] != passes[b]));
  }
  BOOST_TEST(s.state().pass == 5);
  BOOST_TEST(s.state().position == 200 - 5 * n);
  BOOST_TEST(s.state().step == 40);
}

BOOST_AUTO_TEST_CASE(streams_and_seeds_give_independent_orders) {
  const auto set = someIndices(100);
  IndexStream lab(set, 1, StreamId::kLabeled), unl(set, 1, StreamId::kUnlabeled),
      other(set, 2, StreamId::kLabeled), again(set, 1, StreamId::kLabeled);
  BOOST_TEST((lab.passOrder(0) != unl.passOrder(0)));
  BOOST_TEST((lab.passOrder(0) != other.passOrder(0)));
  BOOST_TEST((lab.passOrder(3) == again.passOrder(3)));
  BOOST_TEST(lab.streamSeed() != unl.streamSeed());
}

BOOST_AUTO_TEST_CASE(large_streams_hold_one_pass_only) {
  // 1.2 M indices, drawn across a pass boundary: memory is one permutation, not passes × size.
  std::vector<std::int64_t> set(1200000);
  std::iota(set.begin(), set.end(), 0);
  IndexStream s(set, 9, StreamId::kUnlabeled);
  s.restore({0, 1200000 - 10, 0, 1200000, s.streamSeed()});
  const auto b = s.nextBatch(64);
  const auto p0 = s.passOrder(0), p1 = s.passOrder(1);
  BOOST_TEST((std::vector<std::int64_t>(b.begin(), b.begin() + 10) ==
              std::vector<std::int64_t>(p0.end() - 10, p0.end())));
  BOOST_TEST((std::vector<std::int64_t>(b.begin() + 10, b.end()) ==
              std::vector<std::int64_t>(p1.begin(), p1.begin() + 54)));
}

BOOST_AUTO_TEST_CASE(rank_slices_are_disjoint_and_cover_the_global_batch) {
  for (int ranks : {1, 2, 3}) {
    const std::int64_t global = 12;
    std::vector<int> covered(global, 0);
    std::int64_t expectedFirst = 0;
    for (int r = 0; r < ranks; ++r) {
      const auto [first, last] = rankSlice(global, r, ranks);
      BOOST_TEST(first == expectedFirst);  // contiguous, in rank order
      BOOST_TEST(last - first == global / ranks);
      for (std::int64_t k = first; k < last; ++k) ++covered[k];
      expectedFirst = last;
    }
    for (std::int64_t k = 0; k < global; ++k) BOOST_TEST(covered[k] == 1, "R=" << ranks);
  }
  BOOST_CHECK_THROW(rankSlice(10, 0, 3), ConfigError);
}

BOOST_AUTO_TEST_CASE(restore_mid_pass_continues_the_same_batches) {
  const auto set = someIndices(50);
  IndexStream a(set, 77, StreamId::kUnlabeled);
  draw(a, 7, 6);  // mid-pass (42 of 50)
  const StreamState saved = a.state();
  const auto expected = draw(a, 20, 6);

  IndexStream b(set, 77, StreamId::kUnlabeled);
  b.restore(StreamState::fromInts(saved.toInts()));
  BOOST_TEST((draw(b, 20, 6) == expected));

  IndexStream c(set, 77, StreamId::kUnlabeled);
  c.restore(StreamState::fromJson(nlohmann::json::parse(saved.toJson().dump())));
  BOOST_TEST((c.state() == saved));
  BOOST_TEST((draw(c, 20, 6) == expected));
}

BOOST_AUTO_TEST_CASE(foreign_or_corrupt_states_are_rejected) {
  const auto set = someIndices(50);
  IndexStream a(set, 77, StreamId::kLabeled);
  draw(a, 3, 4);
  const StreamState saved = a.state();
  IndexStream smaller(someIndices(49), 77, StreamId::kLabeled);
  BOOST_CHECK_THROW(smaller.restore(saved), ConfigError);
  IndexStream otherSeed(set, 78, StreamId::kLabeled);
  BOOST_CHECK_THROW(otherSeed.restore(saved), ConfigError);
  StreamState bad = saved;
  bad.position = 50;
  IndexStream same(set, 77, StreamId::kLabeled);
  BOOST_CHECK_THROW(same.restore(bad), ConfigError);
  BOOST_CHECK_THROW(StreamState::fromJson(nlohmann::json{{"pass", 1}}), ConfigError);
  BOOST_CHECK_THROW(StreamState::fromJson(nlohmann::json::parse(
                        R"({"pass":"x","position":0,"step":0,"size":1,"seed":0})")),
                    ConfigError);
  BOOST_CHECK_THROW(IndexStream({}, 1, StreamId::kLabeled), ConfigError);
}
