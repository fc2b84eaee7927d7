// train::Recipe: the run every config in jobs/configs/ describes (step kind, network, schedule,
// ImageNet's epochs in iterations), and meta::StepRandom's draws across rank counts.
#include <torch/torch.h>

#include <cmath>
#include <filesystem>

#include "metasemi/app/TrainOptions.h"
#include "metasemi/meta/StepRandom.h"
#include "metasemi/train/Recipe.h"
#include "support/TestSupport.h"

namespace fs = std::filesystem;
using namespace metasemi;

namespace {

train::TrainConfig configFile(const fs::path& path) {
  return app::parseTrainOptions({"--config", path.string()}).config;
}

train::DataSummary summaryFor(const train::TrainConfig& c) {
  train::DataSummary d;
  d.dataset = c.dataset;
  d.numClasses = c.isImagenet() ? 1000 : c.dataset == "cifar100" ? 100 : 10;
  d.channels = c.dataset == "fashion-mnist" || c.dataset == "mnist" ? 1 : 3;
  d.labeled = c.isImagenet() ? 128116 : c.numLabel;
  d.unlabeled = c.isImagenet() ? 1153051 : 50000 - c.numLabel;
  return d;
}

}  // namespace

BOOST_AUTO_TEST_CASE(recipe_of_every_job_config) {
  int seen = 0;
  for (const auto& entry : fs::directory_iterator(test::sourcePath("jobs/configs"))) {
    if (entry.path().extension() != ".cfg") continue;
    ++seen;
    const std::string name = entry.path().filename().string();
    BOOST_TEST_CONTEXT(name) {
      const train::TrainConfig c = configFile(entry.path());
      const train::DataSummary data = summaryFor(c);
      const int ranks = 4;
      const train::Recipe r = train::Recipe::plan(c, data, ranks);

      // The step kind: the method and mix-up flags, as the reference's two scripts.
      const bool meta = c.method == train::Method::kMeta;
      BOOST_TEST(meta::usesMetaPhase(r.kind()) == meta);
      BOOST_TEST(r.usesMixUp() == c.mixUp);
      BOOST_TEST(r.usesUnlabeled() == (meta || c.mixUp));
      // The experiment configs name their variant: <experiment>[-baseline|-mixup|-meta-only].
      if (name != "fashion-mnist-demo.cfg") {
        meta::StepKind expected = meta::StepKind::kMetaMixUp;
        if (name.find("-baseline") != std::string::npos) expected = meta::StepKind::kLabeledOnly;
        if (name.find("-mixup") != std::string::npos) expected = meta::StepKind::kMixUpOnly;
        if (name.find("-meta-only") != std::string::npos) expected = meta::StepKind::kMeta;
        BOOST_TEST(meta::toString(r.kind()) == meta::toString(expected));
      }

      // The network.
      BOOST_TEST(r.network().architecture == c.architecture);
      BOOST_TEST(r.network().numClasses == data.numClasses);
      BOOST_TEST(r.network().inputChannels == data.channels);
      BOOST_TEST(r.network().widthFactor == c.widthFactor);
      BOOST_TEST(r.network().dropout == c.dropout);
      BOOST_TEST(r.globalBatch() == std::int64_t{c.batchSize} * ranks);
      BOOST_TEST(r.device() == torch::Device(torch::kCPU));

      // The schedule.
      if (c.isImagenet()) {
        // One epoch is one pass of the reference's loader over the set that drives it.
        const std::int64_t images = r.usesUnlabeled() ? data.unlabeled : data.labeled;
        const std::int64_t perEpoch = (images + r.globalBatch() - 1) / r.globalBatch();
        BOOST_TEST(r.totalSteps() == perEpoch * c.epochs);
        BOOST_TEST(r.warmupSteps() == perEpoch * c.warmup);
        // Linear warm-up to the peak at the last warm-up step, then cosine down to 0.
        BOOST_TEST(std::abs(r.lr(0) - c.lr / static_cast<double>(r.warmupSteps())) < 1e-12);
        BOOST_TEST(std::abs(r.lr(r.warmupSteps() - 1) - c.lr) < 1e-12);
        BOOST_TEST(r.lr(r.totalSteps() - 1) < 1e-6 * c.lr);
      } else {
        BOOST_TEST(r.totalSteps() == c.totalSteps);
        BOOST_TEST(r.lr(0) == 0.0);
        BOOST_TEST(std::abs(r.lr(c.warmup) - c.lr) < 1e-12);
        if (!c.milestones.empty()) {
          const double after = r.lr(c.milestones.front() + 1);
          BOOST_TEST(std::abs(after - c.lr * c.gamma) < 1e-12 * c.lr);
        }
      }
      const meta::StepSettings s = r.settings(c.warmup / 2);
      BOOST_TEST((s.kind == r.kind()));
      BOOST_TEST(s.epsilon == c.epsilon);
      BOOST_TEST(s.alpha == c.alpha);
      BOOST_TEST(s.lr == r.lr(c.warmup / 2));
      BOOST_TEST(s.weight == (c.weightRamp ? r.weight(c.warmup / 2) : c.weight));
      if (c.weightRamp && c.warmup > 1) BOOST_TEST(r.weight(0) < c.weight);
      BOOST_TEST(r.weight(c.warmup + 1) == c.weight);
    }
  }
  BOOST_TEST(seen >= 16);
}

BOOST_AUTO_TEST_CASE(recipe_refuses_gpu_without_cuda) {
  train::TrainConfig c;
  c.gpu = true;
  if (torch::cuda::is_available()) return;  // a CUDA machine: nothing to refuse
  const auto msg = test::errorOf<core::ConfigError>([&] { train::deviceOf(c, 0); });
  BOOST_TEST(msg.find("--gpu") != std::string::npos, msg);
  c.gpu = false;
  BOOST_TEST(train::deviceOf(c, 3) == torch::Device(torch::kCPU));
}

BOOST_AUTO_TEST_CASE(recipe_makes_the_network_from_the_seed) {
  train::TrainConfig c;
  c.dataset = "fashion-mnist";
  c.widthFactor = 0.125;
  c.seed = 77;
  train::DataSummary d;
  d.dataset = c.dataset;
  d.channels = 1;
  d.labeled = 100;
  d.unlabeled = 1000;
  const train::Recipe r = train::Recipe::plan(c, d, 1);
  const auto a = r.makeNetwork(), b = r.makeNetwork();
  const auto pa = a->parameters(), pb = b->parameters();
  BOOST_REQUIRE(pa.size() == pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) BOOST_TEST(torch::equal(pa[i], pb[i]));
  BOOST_TEST(pa[0].is_contiguous(torch::MemoryFormat::ChannelsLast));
  BOOST_TEST(a->numClasses() == 10);
}

BOOST_AUTO_TEST_CASE(step_random_lambda_is_the_global_batch_split_by_rank) {
  const std::uint64_t seed = 1234;
  const meta::StepRandom one(seed, 0, 1, 8);
  for (std::int64_t step : {0, 1, 999}) {
    const torch::Tensor all = one.lambda(step, 0.75);
    BOOST_TEST(all.size(0) == 8);
    BOOST_TEST(all.scalar_type() == torch::kFloat32);
    BOOST_TEST((all.ge(0).all().item<bool>() && all.le(1).all().item<bool>()));
    const torch::Tensor r0 = meta::StepRandom(seed, 0, 2, 4).lambda(step, 0.75);
    const torch::Tensor r1 = meta::StepRandom(seed, 1, 2, 4).lambda(step, 0.75);
    BOOST_TEST(torch::equal(torch::cat({r0, r1}), all));
  }
  BOOST_TEST(!torch::equal(one.lambda(0, 0.75), one.lambda(1, 0.75)));
  BOOST_TEST(
      !torch::equal(one.lambda(0, 0.75), meta::StepRandom(seed + 1, 0, 1, 8).lambda(0, 0.75)));
}

BOOST_AUTO_TEST_CASE(step_random_dropout_seed_depends_on_step_and_rank) {
  auto draw = [](const meta::StepRandom& r, std::int64_t step) {
    r.seedDropout(step);
    return torch::rand({16});
  };
  const meta::StepRandom a(5, 0, 2, 4), b(5, 1, 2, 4);
  BOOST_TEST(torch::equal(draw(a, 3), draw(a, 3)));
  BOOST_TEST(!torch::equal(draw(a, 3), draw(a, 4)));
  BOOST_TEST(!torch::equal(draw(a, 3), draw(b, 3)));
}
