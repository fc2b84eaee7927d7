// The trainer on two ranks, in process: after every step both ranks hold bit-identical
// parameters and buffers, for the MetaSemi step and the baselines.
#include "metasemi/core/TrainConfig.h"
#include "metasemi/train/Trainer.h"
#include "support/TestSupport.h"
#include "support/TinyShards.h"

using metasemi::test::comm;

namespace {

metasemi::core::TrainConfig tinyConfig(const std::filesystem::path& data,
                                       const std::filesystem::path& save) {
  metasemi::core::TrainConfig c;
  c.dataset = "mnist";
  c.dataPath = data.string();
  c.numLabel = 50;
  c.seed = 1;
  c.widthFactor = 0.125;
  c.batchSize = 8;
  c.totalSteps = 5;
  c.warmup = 2;
  c.testFreq = 3;
  c.printFreq = 2;
  c.milestones = {4};
  c.threads = 1;
  c.numWorkers = 1;
  c.savePath = save.string();
  return c;
}

// Hash of every parameter and buffer after each step, compared across ranks.
void checkRanksAgree(metasemi::core::TrainConfig c, const std::string& name) {
  c.savePath += "-" + name;
  std::vector<std::int64_t> stepsSeen;
  bool allSame = true;
  metasemi::train::TrainObserver observer;
  observer.afterStep = [&](std::int64_t stepsDone, const metasemi::models::Network& net) {
    stepsSeen.push_back(stepsDone);
    for (const auto& t : net.parameters()) {
      const auto x = t.detach().contiguous();
      allSame &= metasemi::test::sameOnAllRanks(x.data_ptr(), x.numel() * x.element_size());
    }
    for (const auto& t : net.buffers()) {
      const auto x = t.detach().contiguous();
      allSame &= metasemi::test::sameOnAllRanks(x.data_ptr(), x.numel() * x.element_size());
    }
  };
  const int code = metasemi::train::runTraining(c, comm(), observer);
  BOOST_TEST(code == 0, name);
  BOOST_TEST(stepsSeen.size() == 5u, name);
  MS_COLLECTIVE_CHECK(allSame);
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_step_leaves_identical_state_on_all_ranks) {
  BOOST_TEST_REQUIRE(comm().size() == 2);
  const auto dir = metasemi::test::freshDir("mpi_trainer");
  if (comm().isRoot()) metasemi::test::writeTinyShards(dir / "data");
  comm().barrier();
  auto c = tinyConfig(dir / "data", dir / "run");
  c.mixUp = true;
  checkRanksAgree(c, "meta-mixup");
  c.mixUp = false;
  checkRanksAgree(c, "meta");
  c.method = metasemi::core::Method::kBaseline;
  checkRanksAgree(c, "labeled-only");
  c.mixUp = true;
  checkRanksAgree(c, "mixup-only");
}
