// The labeled/unlabeled split: CPython's generator replayed bit for bit, the reference's
// class-balanced scan, and label split files.
#include <fstream>
#include <map>
#include <sstream>

#include "metasemi/core/Error.h"
#include "metasemi/core/Random.h"
#include "metasemi/io/ShardSplit.h"
#include "support/TestSupport.h"

namespace io = metasemi::io;
using metasemi::core::ConfigError;

BOOST_AUTO_TEST_CASE(python_random_known_answers) {
  // Values printed by CPython 3.11: random.seed(s); random.getrandbits(...).
  io::PythonRandom a(1234);
  BOOST_TEST(a.getrandbits(32) == 4150886329u);
  BOOST_TEST(a.getrandbits(32) == 3342196574u);
  BOOST_TEST(a.getrandbits(32) == 1892932127u);
  io::PythonRandom b(0);
  BOOST_TEST(b.getrandbits(32) == 3626764237u);
  BOOST_TEST(b.getrandbits(32) == 1654615998u);
  io::PythonRandom c((std::uint64_t{1} << 40) + 5);  // a seed of two 32-bit words
  BOOST_TEST(c.getrandbits(32) == 2166296868u);
  BOOST_TEST(c.getrandbits(32) == 2220160828u);
  BOOST_TEST(c.getrandbits(64) == 12244916861145399977ull);
  BOOST_TEST(c.getrandbits(7) == 118u);
  // random.seed(8469); x = list(range(20)); random.shuffle(x)
  std::vector<int> x(20);
  for (int i = 0; i < 20; ++i) x[i] = i;
  io::PythonRandom d(8469);
  d.shuffle(x);
  const std::vector<int> want{5, 0, 13, 6, 17, 2, 8, 4, 3, 16, 12, 18, 1, 19, 15, 7, 9, 10, 11, 14};
  BOOST_TEST(x == want, boost::test_tools::per_element());
}

namespace {

std::vector<std::int64_t> randomLabels(std::size_t n, std::int64_t classes, std::uint64_t seed) {
  metasemi::core::Rng rng(seed);
  std::vector<std::int64_t> y(n);
  for (auto& v : y) v = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(classes)));
  return y;
}

}  // namespace

BOOST_AUTO_TEST_CASE(class_balanced_split_is_balanced_and_a_partition) {
  const auto labels = randomLabels(5000, 10, 3);
  const auto s = io::classBalancedSplit(labels, 10, 400, 8469);
  BOOST_TEST(s.name == "labels-400-seed8469");
  BOOST_TEST(s.labeled.size() == 400u);
  BOOST_TEST(s.unlabeled.size() == 4600u);
  std::map<std::int64_t, int> perClass;
  std::vector<int> seen(labels.size(), 0);
  for (auto i : s.labeled) {
    ++perClass[labels[i]];
    ++seen[i];
  }
  for (auto i : s.unlabeled) ++seen[i];
  for (const auto& [cls, n] : perClass) BOOST_TEST(n == 40, "class " << cls);
  BOOST_TEST(perClass.size() == 10u);
  BOOST_TEST(std::all_of(seen.begin(), seen.end(), [](int v) { return v == 1; }));
  // Same seed, same split; another seed, another one.
  BOOST_TEST(io::classBalancedSplit(labels, 10, 400, 8469).labeled == s.labeled);
  BOOST_TEST(io::classBalancedSplit(labels, 10, 400, 8470).labeled != s.labeled);
}

BOOST_AUTO_TEST_CASE(class_balanced_split_equals_the_python_reference) {
  // The reference's get_class_balanced_labels run by CPython on the same labels. Skipped where
  // no python3 is installed (it is a cross-check, not a dependency).
  if (!std::filesystem::exists("/usr/bin/python3")) {
    BOOST_TEST_MESSAGE("no /usr/bin/python3: cross-check skipped");
    return;
  }
  const auto labels = randomLabels(3000, 10, 11);
  const auto dir = metasemi::test::freshDir("shard_split_python");
  {
    std::ofstream out(dir / "labels.txt");
    for (auto y : labels) out << y << '\n';
  }
  {
    std::ofstream py(dir / "split.py");
    py << "import random, sys\n"
          "targets = [int(l) for l in open(sys.argv[1])]\n"
          "random.seed(int(sys.argv[2]))\n"
          "per = int(sys.argv[3]) // 10\n"
          "idx = list(range(len(targets)))\n"
          "random.shuffle(idx)\n"
          "count = [0] * 10\n"
          "lab, unl = [], []\n"
          "for i in idx:\n"
          "    if count[targets[i]] < per:\n"
          "        lab.append(i); count[targets[i]] += 1\n"
          "    else:\n"
          "        unl.append(i)\n"
          "print(' '.join(map(str, lab)))\n"
          "print(' '.join(map(str, unl)))\n";
  }
  const auto r = metasemi::test::runCommand("/usr/bin/python3 " + (dir / "split.py").string() +
                                            " " + (dir / "labels.txt").string() + " 7788 250");
  BOOST_REQUIRE(r.exitCode == 0);
  std::istringstream in(r.output);
  std::string line;
  std::vector<std::vector<std::int64_t>> lists;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    lists.emplace_back(std::istream_iterator<std::int64_t>(ls),
                       std::istream_iterator<std::int64_t>());
  }
  BOOST_REQUIRE(lists.size() == 2u);
  const auto s = io::classBalancedSplit(labels, 10, 250, 7788);
  BOOST_TEST(s.labeled == lists[0], boost::test_tools::per_element());
  BOOST_TEST(s.unlabeled == lists[1], boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(impossible_label_counts_are_config_errors) {
  const auto labels = randomLabels(200, 4, 5);
  auto message = [&](std::int64_t n) {
    try {
      io::classBalancedSplit(labels, 4, n, 1);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  BOOST_TEST(message(10) ==
             "the number of labels (10) must be a multiple of the number of classes (4)");
  BOOST_TEST(message(0) == "the number of labels must be positive, got 0");
  BOOST_TEST(message(400).find("need 100 images of each class, but class") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(label_split_file_round_trip) {
  const auto dir = metasemi::test::freshDir("shard_split_file");
  const auto labels = randomLabels(100, 5, 9);
  const auto s = io::classBalancedSplit(labels, 5, 20, 42);
  io::writeLabelSplit(dir, s);
  const auto back = io::readLabelSplitFile(dir, s.name);
  BOOST_TEST(back.labeled == s.labeled);
  BOOST_TEST(back.unlabeled == s.unlabeled);
  BOOST_TEST(back.seed == 42u);
  BOOST_TEST(back.split == "train");
  BOOST_TEST(back.method == "class-balanced-python-random");
  std::ifstream txt(dir / "splits" / (s.name + ".label_indices.txt"));
  std::vector<std::int64_t> fromText{std::istream_iterator<std::int64_t>(txt),
                                     std::istream_iterator<std::int64_t>()};
  BOOST_TEST(fromText == s.labeled);
  for (const auto& e : std::filesystem::directory_iterator(dir / "splits")) {
    BOOST_TEST(e.path().string().find(".tmp") == std::string::npos, e.path());
  }
  BOOST_CHECK_THROW(io::readLabelSplitFile(dir, "nope"), metasemi::core::IoError);
}
