#include "metasemi/train/TrainConfig.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "metasemi/core/Error.h"

namespace metasemi::train {
namespace {
const std::vector<std::string> kDatasets = {"cifar10",       "cifar100", "svhn",
                                            "fashion-mnist", "mnist",    "imagenet"};
const std::vector<std::string> kArchitectures = {"convlarge", "resnet18"};

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}
std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}
}  // namespace

void TrainConfig::validate() const {
  MS_REQUIRE(contains(kDatasets, dataset), core::ConfigError,
             "--dataset: unknown dataset '{}' (expected one of {})", dataset, join(kDatasets));
  MS_REQUIRE(architecture != "shakeshake", core::ConfigError,
             "--architecture: 'shakeshake' is not provided (the reference's README uses convlarge "
             "and resnet18 only)");
  MS_REQUIRE(contains(kArchitectures, architecture), core::ConfigError,
             "--architecture: unknown architecture '{}' (expected one of {})", architecture,
             join(kArchitectures));
  MS_REQUIRE(numLabel > 0, core::ConfigError, "--num-label must be positive, got {}", numLabel);
  MS_REQUIRE(alpha > 0 && std::isfinite(alpha), core::ConfigError,
             "--alpha must be a positive number, got {}", alpha);
  MS_REQUIRE(weight >= 0 && std::isfinite(weight), core::ConfigError,
             "--weight must be >= 0, got {}", weight);
  MS_REQUIRE(totalSteps > 0, core::ConfigError, "--total-steps must be positive, got {}",
             totalSteps);
  MS_REQUIRE(startStep >= 0 && startStep < totalSteps, core::ConfigError,
             "--start-step must be in [0, --total-steps), got {}", startStep);
  MS_REQUIRE(batchSize > 0, core::ConfigError, "--batch-size must be positive, got {}", batchSize);
  MS_REQUIRE(epsilon > 0 && std::isfinite(epsilon), core::ConfigError,
             "--epsilon must be positive, got {}", epsilon);
  MS_REQUIRE(lr >= 0 && std::isfinite(lr), core::ConfigError, "--lr must be >= 0, got {}", lr);
  MS_REQUIRE(warmup >= 0, core::ConfigError, "--warmup must be >= 0, got {}", warmup);
  MS_REQUIRE(gamma > 0 && std::isfinite(gamma), core::ConfigError,
             "--gamma must be positive, got {}", gamma);
  MS_REQUIRE(std::is_sorted(milestones.begin(), milestones.end()), core::ConfigError,
             "--milestones must be increasing");
  for (auto m : milestones) {
    MS_REQUIRE(m >= 0, core::ConfigError, "--milestones must be non-negative, got {}", m);
  }
  MS_REQUIRE(weightDecay >= 0 && std::isfinite(weightDecay), core::ConfigError,
             "--weight-decay must be >= 0, got {}", weightDecay);
  MS_REQUIRE(momentum >= 0 && momentum < 1, core::ConfigError,
             "--momentum must be in [0, 1), got {}", momentum);
  MS_REQUIRE(numWorkers >= 0, core::ConfigError, "--num-workers must be >= 0, got {}", numWorkers);
  MS_REQUIRE(printFreq > 0, core::ConfigError, "--print-freq must be positive, got {}", printFreq);
  MS_REQUIRE(testFreq > 0, core::ConfigError, "--test-freq must be positive, got {}", testFreq);
  MS_REQUIRE(collectiveTimeout >= 0 && std::isfinite(collectiveTimeout), core::ConfigError,
             "--collective-timeout must be >= 0 seconds, got {}", collectiveTimeout);
  MS_REQUIRE(!savePath.empty(), core::ConfigError, "--save-path must not be empty");
  MS_REQUIRE(startEpoch >= 0, core::ConfigError, "--start-epoch must be >= 0, got {}", startEpoch);
  MS_REQUIRE(numClasses >= 2, core::ConfigError, "--num-classes must be >= 2, got {}", numClasses);
  MS_REQUIRE(epochs > 0, core::ConfigError, "--epochs must be positive, got {}", epochs);
  MS_REQUIRE(imcrop > 0 && imsize >= imcrop, core::ConfigError,
             "--imsize ({}) must be >= --imcrop ({}) > 0", imsize, imcrop);
  MS_REQUIRE(widthFactor > 0 && widthFactor <= 8, core::ConfigError,
             "--width must be in (0, 8], got {}", widthFactor);
  MS_REQUIRE(dropout >= 0 && dropout < 1, core::ConfigError, "--dropout must be in [0, 1), got {}",
             dropout);
  MS_REQUIRE(evalBatchSize > 0, core::ConfigError, "--eval-batch-size must be positive, got {}",
             evalBatchSize);
  MS_REQUIRE(threads >= 0, core::ConfigError, "--threads must be >= 0, got {}", threads);
  MS_REQUIRE(!(architecture == "resnet18" && widthFactor != 1.0), core::ConfigError,
             "--width applies to convlarge only");
}

std::string toString(Method m) { return m == Method::kMeta ? "meta" : "baseline"; }
std::string toString(LrSchedule s) { return s == LrSchedule::kCosine ? "cosine" : "step"; }
std::string toString(Overlap o) {
  return o == Overlap::kOn ? "on" : o == Overlap::kOff ? "off" : "auto";
}

std::vector<std::int64_t> parseMilestones(const std::string& text) {
  std::string s = text;
  for (char& c : s) {
    if (c == '[' || c == ']' || c == ',' || c == '(' || c == ')') c = ' ';
  }
  std::istringstream in(s);
  std::vector<std::int64_t> out;
  std::string tok;
  while (in >> tok) {
    std::size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(tok, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    MS_REQUIRE(used == tok.size(), core::ConfigError,
               "--milestones: '{}' is not a list of step numbers like \"[300000, 350000]\"", text);
    out.push_back(v);
  }
  return out;
}

}  // namespace metasemi::train
