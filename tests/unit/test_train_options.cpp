// The trainer's command line: reference spellings and defaults, config file, overrides, errors.
#include <fstream>

#include "metasemi/app/TrainOptions.h"
#include "metasemi/core/Error.h"
#include "metasemi/train/ConfigText.h"
#include "support/TestSupport.h"

using metasemi::app::parseTrainOptions;
using metasemi::app::TrainOptions;
using metasemi::core::ConfigError;

namespace {
// Parses and returns the message of the ConfigError it must throw.
std::string configErrorOf(const std::vector<std::string>& args) {
  try {
    parseTrainOptions(args);
  } catch (const ConfigError& e) {
    return e.what();
  }
  BOOST_FAIL("expected a ConfigError");
  return {};
}
}  // namespace

BOOST_AUTO_TEST_CASE(reference_defaults_of_train_meta) {
  const auto c = parseTrainOptions({}).config;
  BOOST_TEST(c.dataset == "cifar10");
  BOOST_TEST(c.dataPath == "./data");
  BOOST_TEST(c.numLabel == 4000);
  BOOST_TEST(c.architecture == "convlarge");
  BOOST_TEST(!c.mixUp);
  BOOST_TEST(c.alpha == 1.0);
  BOOST_TEST(c.weight == 1.0);
  BOOST_TEST(c.totalSteps == 400000);
  BOOST_TEST(c.startStep == 0);
  BOOST_TEST(c.batchSize == 128);
  BOOST_TEST(c.epsilon == 1e-2);
  BOOST_TEST(c.lr == 0.1);
  BOOST_TEST(c.warmup == 4000);
  BOOST_TEST(c.gamma == 0.1);
  BOOST_TEST((c.milestones == std::vector<std::int64_t>{300000, 350000}));
  BOOST_TEST(c.weightDecay == 1e-4);
  BOOST_TEST(c.momentum == 0.9);
  BOOST_TEST(c.numWorkers == 4);
  BOOST_TEST(c.resume.empty());
  BOOST_TEST(c.seed == 1234u);
  BOOST_TEST(c.printFreq == 100);
  BOOST_TEST(c.testFreq == 400);
  BOOST_TEST(c.savePath == "./results/tmp");
  BOOST_TEST(!c.gpu);
  BOOST_TEST((c.lrSchedule == metasemi::train::LrSchedule::kStep));
  BOOST_TEST(c.weightRamp);
}

BOOST_AUTO_TEST_CASE(imagenet_defaults_follow_the_imagenet_script) {
  const auto c = parseTrainOptions({"--dataset", "imagenet"}).config;
  BOOST_TEST(c.architecture == "resnet18");
  BOOST_TEST(c.batchSize == 64);
  BOOST_TEST(c.warmup == 5);
  BOOST_TEST(c.printFreq == 50);
  BOOST_TEST(c.epochs == 600);
  BOOST_TEST(c.numClasses == 1000);
  BOOST_TEST(c.imsize == 256);
  BOOST_TEST(c.imcrop == 224);
  BOOST_TEST(c.savePath == "results/tmp");
  BOOST_TEST((c.lrSchedule == metasemi::train::LrSchedule::kCosine));
  BOOST_TEST(c.mixUp);
  BOOST_TEST(!c.weightRamp);
  // An explicit flag still wins over the recipe's default.
  BOOST_TEST(parseTrainOptions({"--dataset", "imagenet", "--batch-size", "32"}).config.batchSize ==
             32);
}

BOOST_AUTO_TEST_CASE(aliases_and_short_names) {
  const auto c =
      parseTrainOptions({"-a", "resnet18", "--wd", "5e-5", "--learning-rate", "0.2", "-j", "2",
                         "--data", "/x", "--mix-up", "--milestones", "[10, 20, 30]"})
          .config;
  BOOST_TEST(c.architecture == "resnet18");
  BOOST_TEST(c.weightDecay == 5e-5);
  BOOST_TEST(c.lr == 0.2);
  BOOST_TEST(c.numWorkers == 2);
  BOOST_TEST(c.dataPath == "/x");
  BOOST_TEST(c.mixUp);
  BOOST_TEST((c.milestones == std::vector<std::int64_t>{10, 20, 30}));
  BOOST_TEST(configErrorOf({"--wd", "1", "--weight-decay", "2"}).find("same setting") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(config_file_is_overridden_by_flags) {
  const auto dir = metasemi::test::freshDir("train_options_config");
  const auto path = (dir / "run.cfg").string();
  {
    std::ofstream out(path);
    out << "# a study\n"
           "dataset = svhn\nnum-label = 1000\nmix-up = true\nalpha = 0.1\n"
           "weight-decay = 5e-5\nseed = 7788\nmilestones = [100, 200]\n";
  }
  const auto c = parseTrainOptions({"--config", path, "--seed", "1"}).config;
  BOOST_TEST(c.dataset == "svhn");
  BOOST_TEST(c.numLabel == 1000);
  BOOST_TEST(c.mixUp);
  BOOST_TEST(c.alpha == 0.1);
  BOOST_TEST(c.weightDecay == 5e-5);
  BOOST_TEST(c.seed == 1u);
  BOOST_TEST((c.milestones == std::vector<std::int64_t>{100, 200}));
}

BOOST_AUTO_TEST_CASE(resolved_config_reads_back_identically) {
  const auto dir = metasemi::test::freshDir("train_options_roundtrip");
  const auto first =
      parseTrainOptions({"--dataset", "cifar100", "--mix-up", "--width", "0.25", "--seed", "8469",
                         "--method", "baseline", "--meta-grad", "exact", "--resume", "a b.h5"})
          .config;
  const auto path = (dir / "resolved.cfg").string();
  {
    std::ofstream out(path);
    out << metasemi::train::formatConfig(first);
  }
  const auto second = parseTrainOptions({"--config", path}).config;
  BOOST_TEST(metasemi::train::formatConfig(second) == metasemi::train::formatConfig(first));
  BOOST_TEST(second.resume == "a b.h5");
}

BOOST_AUTO_TEST_CASE(bad_flags_and_values_name_the_culprit) {
  BOOST_TEST(configErrorOf({"--no-such-flag"}).find("no-such-flag") != std::string::npos);
  BOOST_TEST(configErrorOf({"--batch-size", "abc"}) ==
             "--batch-size: expected an integer, got 'abc'");
  BOOST_TEST(configErrorOf({"--batch-size", "0"}) == "--batch-size must be positive, got 0");
  BOOST_TEST(configErrorOf({"--lr", "0.1x"}) == "--lr: expected a number, got '0.1x'");
  BOOST_TEST(configErrorOf({"--dataset", "cifar11"}).find("unknown dataset 'cifar11'") !=
             std::string::npos);
  BOOST_TEST(configErrorOf({"--milestones", "[1, x]"}).find("--milestones") != std::string::npos);
  BOOST_TEST(configErrorOf({"--milestones", "[20, 10]"}) == "--milestones must be increasing");
  BOOST_TEST(configErrorOf({"--method", "fixmatch"}).find("expected one of baseline, meta") !=
             std::string::npos);
  BOOST_TEST(configErrorOf({"--momentum", "1.0"}) == "--momentum must be in [0, 1), got 1");
  BOOST_TEST(configErrorOf({"--config", "/nonexistent/file.cfg"}) ==
             "--config: cannot read '/nonexistent/file.cfg'");
  // Abbreviations are not guessed: a typo is an error, not another flag.
  BOOST_TEST(configErrorOf({"--mix", "1"}).find("mix") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(config_file_errors_name_the_file) {
  const auto dir = metasemi::test::freshDir("train_options_bad_config");
  const auto path = (dir / "bad.cfg").string();
  {
    std::ofstream out(path);
    out << "batch-size = 12x\n";
  }
  BOOST_TEST(configErrorOf({"--config", path}) ==
             path + ": batch-size: expected an integer, got '12x'");
  {
    std::ofstream out(path);
    out << "unknown-key = 1\n";
  }
  const auto msg = configErrorOf({"--config", path});
  BOOST_TEST(msg.find("--config " + path) == 0u);
  BOOST_TEST(msg.find("unknown-key") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(help_and_version_skip_validation) {
  BOOST_TEST(parseTrainOptions({"--help", "--batch-size", "0"}).help);
  BOOST_TEST(parseTrainOptions({"--version"}).version);
  BOOST_TEST(parseTrainOptions({"--build-info"}).version);
  const std::string usage = metasemi::app::trainUsage();
  for (const char* flag : {"--num-label", "--mix-up", "--epsilon", "--milestones", "--local_rank",
                           "--dali-cpu", "--imsize", "--sync-bn", "--config"}) {
    BOOST_TEST(usage.find(flag) != std::string::npos, flag);
  }
}
