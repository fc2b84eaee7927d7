// train::RunState: a checkpoint round trip restores the model, the momentum buffers and the run
// state bit for bit; mismatched checkpoints are refused untouched; a checkpoint written by an
// earlier version of the trainer (tests/data) still loads.
#include <torch/torch.h>

#include <cmath>
#include <cstring>

#include "metasemi/io/Checkpoint.h"
#include "metasemi/io/H5File.h"
#include "metasemi/meta/Sgd.h"
#include "metasemi/models/StateDict.h"
#include "metasemi/train/ConfigText.h"
#include "metasemi/train/Recipe.h"
#include "metasemi/train/RunState.h"
#include "support/TestSupport.h"

using namespace metasemi;

namespace {

bool bitEqual(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type()) return false;
  const auto ac = a.contiguous(), bc = b.contiguous();
  return std::memcmp(ac.data_ptr(), bc.data_ptr(), ac.nbytes()) == 0;
}

std::shared_ptr<models::Network> smallNet(std::uint64_t seed, std::int64_t classes = 10) {
  torch::manual_seed(seed);
  models::NetworkSpec spec;
  spec.inputChannels = 1;
  spec.numClasses = classes;
  spec.widthFactor = 0.0625;
  auto net = models::makeNetwork(spec);
  models::toChannelsLast(*net);
  return net;
}

// One SGD step on random data, so that momentum buffers and BatchNorm statistics are set.
void trainOnce(models::Network& net, meta::Sgd& sgd) {
  net.train();
  sgd.zeroGrad();
  const auto x = torch::randn({4, 1, 28, 28}).contiguous(torch::MemoryFormat::ChannelsLast);
  const auto loss =
      torch::nn::functional::cross_entropy(net.forward(x), torch::tensor({0, 1, 2, 3}));
  loss.backward();
  sgd.setLr(0.1);
  sgd.step();
}

train::RunState sampleState() {
  train::RunState s;
  s.nextStep = 1200;
  s.worldSize = 2;
  BOOST_TEST(s.recordEvaluation(41.25, 12.5));
  BOOST_TEST(!s.recordEvaluation(43.0, 10.0));
  data::StreamState lab;
  lab.seed = 99;
  lab.pass = 3;
  lab.position = 17;
  lab.size = 100;
  lab.step = 1200;
  s.labeledStream = lab;
  return s;
}

}  // namespace

BOOST_AUTO_TEST_CASE(record_evaluation_keeps_best_and_last) {
  train::RunState s;
  BOOST_TEST(std::isinf(s.bestTop1Error));
  BOOST_TEST(s.recordEvaluation(50.0, 20.0));   // first: always best
  BOOST_TEST(!s.recordEvaluation(50.0, 10.0));  // equal is not better
  BOOST_TEST(s.bestTop5Error == 20.0);
  BOOST_TEST(s.lastTop5Error == 10.0);
  BOOST_TEST(s.recordEvaluation(49.5, 30.0));
  BOOST_TEST(s.bestTop1Error == 49.5);
  BOOST_TEST(s.bestTop5Error == 30.0);
  BOOST_TEST(s.lastTop1Error == 49.5);
}

BOOST_AUTO_TEST_CASE(round_trip_through_a_checkpoint_file) {
  const auto dir = test::freshDir("run_state_round_trip");
  auto net = smallNet(1);
  meta::Sgd sgd(net->parameters(), 0.9, 1e-4);
  trainOnce(*net, sgd);
  const train::RunState state = sampleState();
  const std::string path = (dir / "checkpoint.h5").string();
  io::writeCheckpoint(path, state.toCheckpoint(*net, sgd, "seed = 5\n"));

  auto other = smallNet(2);
  meta::Sgd otherSgd(other->parameters(), 0.9, 1e-4);
  const io::CheckpointState read = io::readCheckpoint(path);
  BOOST_TEST(read.config == "seed = 5\n");
  const train::RunState back = train::RunState::restore(read, path, *other, otherSgd);
  BOOST_TEST(back.nextStep == 1200);
  BOOST_TEST(back.worldSize == 2);
  BOOST_TEST(back.bestTop1Error == 41.25);
  BOOST_TEST(back.bestTop5Error == 12.5);
  BOOST_TEST(back.lastTop1Error == 43.0);
  BOOST_TEST(back.lastTop5Error == 10.0);
  BOOST_REQUIRE(back.labeledStream.has_value());
  BOOST_TEST(back.labeledStream->toJson() == state.labeledStream->toJson());
  BOOST_TEST(!back.unlabeledStream.has_value());
  const auto a = models::stateDict(*net), b = models::stateDict(*other);
  BOOST_REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    BOOST_TEST(bitEqual(a[i].second, b[i].second), a[i].first);
  const auto ma = sgd.momentumBuffers(), mb = otherSgd.momentumBuffers();
  BOOST_REQUIRE(ma.size() == mb.size());
  for (std::size_t i = 0; i < ma.size(); ++i) BOOST_TEST(bitEqual(ma[i], mb[i]));
}

BOOST_AUTO_TEST_CASE(mismatched_checkpoints_are_refused_untouched) {
  const auto dir = test::freshDir("run_state_mismatch");
  auto net = smallNet(3);
  meta::Sgd sgd(net->parameters(), 0.9, 1e-4);
  trainOnce(*net, sgd);
  io::CheckpointState good = sampleState().toCheckpoint(*net, sgd, "");

  auto target = smallNet(4);
  meta::Sgd targetSgd(target->parameters(), 0.9, 1e-4);
  const auto before = models::stateDict(*target)[0].second.clone();

  io::CheckpointState noState = good;
  noState.dataJson = "{}";
  auto msg = test::errorOf([&] { train::RunState::restore(noState, "a.h5", *target, targetSgd); });
  BOOST_TEST(msg.find("not written by metasemi-train") != std::string::npos, msg);

  io::CheckpointState badMomentum = good;
  badMomentum.momentum[0].second = torch::zeros({3});
  msg = test::errorOf([&] { train::RunState::restore(badMomentum, "b.h5", *target, targetSgd); });
  BOOST_TEST(msg.find("b.h5") != std::string::npos, msg);
  BOOST_TEST(msg.find(badMomentum.momentum[0].first) != std::string::npos, msg);

  auto wide = smallNet(5, 100);
  meta::Sgd wideSgd(wide->parameters(), 0.9, 1e-4);
  msg = test::errorOf([&] { train::RunState::restore(good, "c.h5", *wide, wideSgd); });
  BOOST_TEST(msg.find("classifier") != std::string::npos, msg);

  BOOST_TEST(torch::equal(models::stateDict(*target)[0].second, before));
  for (const auto& m : targetSgd.momentumBuffers()) BOOST_TEST(!m.defined());
}

// A checkpoint that metasemi-train wrote before its parts were separated (a 3-step run on
// Fashion-MNIST, ConvLarge width 0.0625) loads into the network its own config describes.
BOOST_AUTO_TEST_CASE(checkpoint_from_an_earlier_version_loads) {
  const std::string path = test::sourcePath("tests/data/convlarge-w0.0625-fashion-mnist-v0.1.h5");
  const io::CheckpointState stored = io::readCheckpoint(path);
  const train::TrainConfig c = train::parseConfigText(stored.config, path);
  BOOST_TEST(c.widthFactor == 0.0625);
  train::DataSummary d;
  d.dataset = c.dataset;
  d.channels = 1;
  d.labeled = 100;
  d.unlabeled = 59900;
  const train::Recipe recipe = train::Recipe::plan(c, d, 1);
  auto net = recipe.makeNetwork();
  meta::Sgd sgd(net->parameters(), c.momentum, c.weightDecay);
  const train::RunState s = train::RunState::restore(stored, path, *net, sgd);
  BOOST_TEST(s.nextStep == 3);
  BOOST_TEST(s.worldSize == 1);
  BOOST_TEST(s.bestTop1Error == 90.0);
  BOOST_TEST(s.lastTop5Error == 50.0);
  BOOST_REQUIRE(s.labeledStream.has_value());
  BOOST_REQUIRE(s.unlabeledStream.has_value());
  BOOST_TEST(s.labeledStream->position == 24);
  BOOST_TEST(s.unlabeledStream->size == 59900);
  // Every stored value arrived, read independently of the checkpoint reader.
  io::H5File f(path, io::H5File::Mode::kRead);
  const io::NamedTensors raw = io::readNamedTensors(f, "/model");
  const auto live = models::stateDict(*net);
  BOOST_REQUIRE(raw.size() == live.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    BOOST_TEST(raw[i].first == live[i].first);
    BOOST_TEST(bitEqual(raw[i].second, live[i].second.contiguous()), raw[i].first);
  }
  int buffers = 0;
  for (const auto& m : sgd.momentumBuffers()) buffers += m.defined();
  BOOST_TEST(buffers == static_cast<int>(net->parameters().size()));
}
