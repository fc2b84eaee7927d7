// Two ranks: collectives give cross-rank results and the collective verdict helpers agree.
#include <numeric>

#include "support/TestSupport.h"

using metasemi::test::comm;

BOOST_AUTO_TEST_CASE(runs_on_two_mpi_ranks) {
  BOOST_TEST_REQUIRE(comm().size() == 2, "launch this test with 2 ranks");
  BOOST_TEST(comm().name() == "mpi");
  BOOST_TEST(comm().localSize() == 2);
  BOOST_TEST(comm().localRank() == comm().rank());
}

BOOST_AUTO_TEST_CASE(allreduce_sums_and_minimum) {
  const int r = comm().rank();
  std::vector<double> d = {1.0 + r, 10.0 * r, 0.5};
  comm().allreduceSum(d.data(), d.size());
  MS_COLLECTIVE_CHECK(d[0] == 3.0 && d[1] == 10.0 && d[2] == 1.0);
  std::vector<std::int64_t> i = {r + 1, -r};
  comm().allreduceSum(i.data(), i.size());
  MS_COLLECTIVE_CHECK(i[0] == 3 && i[1] == -1);
  std::int64_t m = 5 - r;
  comm().allreduceMin(&m, 1);
  MS_COLLECTIVE_CHECK(m == 4);
}

BOOST_AUTO_TEST_CASE(broadcast_from_each_root) {
  for (int root = 0; root < comm().size(); ++root) {
    std::vector<int> v(1000);
    std::iota(v.begin(), v.end(), comm().rank() * 7);
    comm().broadcast(v.data(), v.size() * sizeof(int), root);
    MS_COLLECTIVE_CHECK(v[0] == root * 7 && v[999] == root * 7 + 999);
    MS_COLLECTIVE_CHECK(metasemi::test::sameOnAllRanks(v.data(), v.size() * sizeof(int)));
  }
}

BOOST_AUTO_TEST_CASE(collective_verdicts_see_other_ranks) {
  // A failure on rank 1 only is seen by rank 0 too.
  BOOST_TEST(!metasemi::test::allRanks(comm().rank() == 0));
  BOOST_TEST(metasemi::test::allRanks(true));
  const int mine = comm().rank();
  BOOST_TEST(!metasemi::test::sameOnAllRanks(&mine, sizeof(mine)));
}
