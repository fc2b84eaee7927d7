#include "metasemi/train/ConfigText.h"

#include <boost/program_options.hpp>

#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>

#include "metasemi/core/Error.h"

namespace po = boost::program_options;

namespace metasemi::train {

using core::ConfigError;
namespace {

using Setter = std::function<void(TrainConfig&, const std::string&, const std::string&)>;
using Getter = std::function<std::string(const TrainConfig&)>;

// One flag: long name, optional alias long name, optional one-letter name; how to set and print.
struct Flag {
  std::string name;
  std::string alias;
  char shortName = 0;
  bool isSwitch = false;
  Setter set;
  Getter get;
  std::string help;
};

template <typename T>
T parseNumber(const std::string& flag, const std::string& text) {
  std::istringstream in(text);
  T v{};
  in >> v;
  const bool ok = !in.fail() && (in >> std::ws).eof();
  if constexpr (std::is_integral_v<T>) {
    MS_REQUIRE(ok, ConfigError, "{}: expected an integer, got '{}'", flag, text);
  } else {
    MS_REQUIRE(ok, ConfigError, "{}: expected a number, got '{}'", flag, text);
  }
  return v;
}

bool parseBool(const std::string& flag, const std::string& text) {
  if (text == "true" || text == "1" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "0" || text == "no" || text == "off") return false;
  MS_THROW(ConfigError, "{}: expected true or false, got '{}'", flag, text);
}

std::string fmtDouble(double v) { return fmt::format("{}", v); }

template <typename T>
Flag number(std::string name, T TrainConfig::*field, std::string help, std::string alias = {},
            char shortName = 0) {
  Flag f;
  f.name = std::move(name);
  f.alias = std::move(alias);
  f.shortName = shortName;
  f.set = [field](TrainConfig& c, const std::string& flag, const std::string& v) {
    c.*field = parseNumber<T>(flag, v);
  };
  f.get = [field](const TrainConfig& c) {
    if constexpr (std::is_floating_point_v<T>)
      return fmtDouble(c.*field);
    else
      return std::to_string(c.*field);
  };
  f.help = std::move(help);
  return f;
}

Flag text(std::string name, std::string TrainConfig::*field, std::string help,
          std::string alias = {}, char shortName = 0) {
  Flag f;
  f.name = std::move(name);
  f.alias = std::move(alias);
  f.shortName = shortName;
  f.set = [field](TrainConfig& c, const std::string&, const std::string& v) { c.*field = v; };
  f.get = [field](const TrainConfig& c) { return c.*field; };
  f.help = std::move(help);
  return f;
}

Flag toggle(std::string name, bool TrainConfig::*field, std::string help) {
  Flag f;
  f.name = std::move(name);
  f.isSwitch = true;
  f.set = [field](TrainConfig& c, const std::string& flag, const std::string& v) {
    c.*field = parseBool(flag, v);
  };
  f.get = [field](const TrainConfig& c) { return std::string(c.*field ? "true" : "false"); };
  f.help = std::move(help);
  return f;
}

template <typename E>
Flag choice(std::string name, E TrainConfig::*field, std::map<std::string, E> values,
            std::string help) {
  Flag f;
  f.name = std::move(name);
  f.set = [field, values](TrainConfig& c, const std::string& flag, const std::string& v) {
    auto it = values.find(v);
    if (it == values.end()) {
      std::string expected;
      for (const auto& [k, e] : values) expected += (expected.empty() ? "" : ", ") + k;
      MS_THROW(ConfigError, "{}: unknown value '{}' (expected one of {})", flag, v, expected);
    }
    c.*field = it->second;
  };
  f.get = [field](const TrainConfig& c) {
    using comm::toString;
    using meta::toString;
    using train::toString;
    return toString(c.*field);
  };
  f.help = std::move(help);
  return f;
}

const std::vector<Flag>& flags() {
  static const std::vector<Flag> kFlags = [] {
    using C = TrainConfig;
    std::vector<Flag> v;
    // Reference: train_meta.py / train_baseline.py.
    v.push_back(text("dataset", &C::dataset,
                     "cifar10, cifar100, svhn, fashion-mnist, mnist or imagenet (imagenet selects "
                     "the ImageNet recipe's defaults)"));
    v.push_back(text("data-path", &C::dataPath, "folder of the dataset's HDF5 shards", "data"));
    v.push_back(number("num-label", &C::numLabel, "number of labeled training images"));
    v.push_back(text("architecture", &C::architecture, "convlarge or resnet18", "arch", 'a'));
    v.push_back(
        toggle("mix-up", &C::mixUp, "mix labeled and unlabeled images (MetaSemi + mix-up)"));
    v.push_back(number("alpha", &C::alpha, "Beta(alpha, alpha) of the per-sample mix-up weight"));
    v.push_back(number("weight", &C::weight, "weight of the unlabeled consistency loss"));
    v.push_back(number("total-steps", &C::totalSteps, "number of training steps"));
    v.push_back(number("start-step", &C::startStep, "first step (normally set by resume)"));
    v.push_back(
        number("batch-size", &C::batchSize, "labeled and unlabeled images per step and per rank"));
    v.push_back(number("epsilon", &C::epsilon, "finite-difference step: eps = epsilon / ||g||"));
    v.push_back(number("lr", &C::lr, "peak learning rate (also the pseudo-label step size)",
                       "learning-rate"));
    v.push_back(number("warmup", &C::warmup,
                       "linear warm-up length: steps (ImageNet: epochs); also the weight ramp"));
    v.push_back(number("gamma", &C::gamma, "learning-rate factor at each milestone"));
    Flag ms;
    ms.name = "milestones";
    ms.set = [](C& c, const std::string&, const std::string& val) {
      c.milestones = parseMilestones(val);
    };
    ms.get = [](const C& c) {
      std::string s = "[";
      for (std::size_t i = 0; i < c.milestones.size(); ++i) {
        s += (i ? ", " : "") + std::to_string(c.milestones[i]);
      }
      return s + "]";
    };
    ms.help = "steps after which the learning rate is multiplied by gamma";
    v.push_back(ms);
    v.push_back(number("weight-decay", &C::weightDecay, "L2 weight decay on all parameters", "wd"));
    v.push_back(number("momentum", &C::momentum, "SGD momentum"));
    v.push_back(
        number("num-workers", &C::numWorkers,
               "data decoding threads per rank, shared by its streams (0: on the training thread)",
               "workers", 'j'));
    v.push_back(text("resume", &C::resume, "checkpoint to continue from"));
    v.push_back(number("seed", &C::seed, "random seed (split, streams, init, mix-up)"));
    v.push_back(number("print-freq", &C::printFreq, "steps between log lines"));
    v.push_back(number("test-freq", &C::testFreq, "steps between evaluations and checkpoints"));
    v.push_back(text("save-path", &C::savePath, "output folder (checkpoints, logs, metrics)"));
    v.push_back(toggle("gpu", &C::gpu,
                       "train on this rank's GPU (by node-local rank), averaging with NCCL"));
    // Reference: train_meta_imagenet.py / train_imagenet.py.
    v.push_back(number("start-epoch", &C::startEpoch, "first epoch (ImageNet)"));
    v.push_back(number("num-classes", &C::numClasses, "number of classes (ImageNet)"));
    v.push_back(number("epochs", &C::epochs, "epochs over the unlabeled set (ImageNet)"));
    v.push_back(number("imsize", &C::imsize, "evaluation resize of the shorter side (ImageNet)"));
    v.push_back(number("imcrop", &C::imcrop, "crop size (ImageNet)"));
    v.push_back(
        number("local_rank", &C::localRank, "accepted for compatibility; ranks come from MPI"));
    v.push_back(toggle("dali-cpu", &C::daliCpu, "accepted for compatibility; decoding is on CPU"));
    // This project.
    v.push_back(choice("method", &C::method,
                       {{"meta", Method::kMeta}, {"baseline", Method::kBaseline}},
                       "meta (train_meta.py) or baseline (train_baseline.py: labeled-only, or "
                       "mix-up-only with --mix-up)"));
    v.push_back(
        choice("meta-grad", &C::metaGrad,
               {{"fd", meta::MetaGrad::kFiniteDifference}, {"exact", meta::MetaGrad::kExact}},
               "pseudo-label direction: fd (the reference's finite difference) or exact "
               "(forward-mode J·g by autograd)"));
    v.push_back(choice("lr-schedule", &C::lrSchedule,
                       {{"step", LrSchedule::kStep}, {"cosine", LrSchedule::kCosine}},
                       "step (warm-up + milestones) or cosine (warm-up + cosine)"));
    v.push_back(choice("dist-backend", &C::distBackend,
                       {{"auto", comm::Backend::kAuto},
                        {"mpi", comm::Backend::kMpi},
                        {"nccl", comm::Backend::kNccl}},
                       "gradient averaging: auto (nccl with --gpu, else mpi), mpi or nccl"));
    v.push_back(number("width", &C::widthFactor, "ConvLarge width factor (1.0 = 128/256/512)"));
    v.push_back(number("dropout", &C::dropout, "Dropout2d probability after the max-pools"));
    v.push_back(toggle("weight-ramp", &C::weightRamp,
                       "ramp the consistency weight linearly over --warmup steps"));
    v.push_back(toggle("sync-bn", &C::syncBn, "synchronise BatchNorm statistics across ranks"));
    v.push_back(toggle("deterministic", &C::deterministic,
                       "GPU: deterministic cuDNN and CUDA algorithms and no cuDNN benchmark mode, "
                       "so that a resumed run is bit-identical (default: cuDNN benchmark, as the "
                       "reference)"));
    v.push_back(toggle("local-meta-grad", &C::localMetaGrad,
                       "keep the labeled gradient g rank-local (reference ImageNet behaviour)"));
    v.push_back(choice("overlap-averaging", &C::overlapAveraging,
                       {{"auto", Overlap::kAuto}, {"on", Overlap::kOn}, {"off", Overlap::kOff}},
                       "average each gradient bucket while backward runs: auto (on CPUs when a "
                       "core per rank is free for it), on or off"));
    v.push_back(number("eval-batch-size", &C::evalBatchSize, "test batch size per rank"));
    v.push_back(number("collective-timeout", &C::collectiveTimeout,
                       "seconds a rank waits in a collective for a stuck peer before the job "
                       "ends with exit code 4 (0 = wait forever)"));
    v.push_back(number("threads", &C::threads, "LibTorch threads per rank (0 = automatic)"));
    v.push_back(text("log-level", &C::logLevel, "trace, debug, info, warn or error"));
    return v;
  }();
  return kFlags;
}

// Defaults of the ImageNet scripts where they differ from train_meta.py.
void applyImagenetDefaults(TrainConfig& c) {
  c.architecture = "resnet18";
  c.batchSize = 64;
  c.warmup = 5;
  c.printFreq = 50;
  c.savePath = "results/tmp";
  c.lrSchedule = LrSchedule::kCosine;
  c.mixUp = true;
  c.weightRamp = false;
  c.evalBatchSize = 50;
  c.numClasses = 1000;
  c.syncBn = true;
}

po::options_description describe(bool forConfigFile) {
  po::options_description d;
  for (const Flag& f : flags()) {
    auto addOne = [&](const std::string& name, char shortName) {
      std::string spec = name;
      if (shortName && !forConfigFile) spec += std::string(",") + shortName;
      if (f.isSwitch && !forConfigFile) {
        d.add_options()(spec.c_str(), po::value<std::string>()->implicit_value("true"),
                        f.help.c_str());
      } else {
        d.add_options()(spec.c_str(), po::value<std::string>(), f.help.c_str());
      }
    };
    addOne(f.name, f.shortName);
    if (!f.alias.empty()) addOne(f.alias, 0);
  }
  return d;
}

// Applies the values found in `vm` for every flag; `where` names the source in messages.
void applyValues(const po::variables_map& vm, TrainConfig& c, const std::string& prefix) {
  for (const Flag& f : flags()) {
    const bool hasName = vm.count(f.name) > 0;
    const bool hasAlias = !f.alias.empty() && vm.count(f.alias) > 0;
    MS_REQUIRE(!(hasName && hasAlias), ConfigError, "{}{} and {}{} are the same setting: give one",
               prefix, f.name, prefix, f.alias);
    if (!hasName && !hasAlias) continue;
    const std::string& key = hasName ? f.name : f.alias;
    f.set(c, prefix + key, vm[key].as<std::string>());
  }
}

std::string datasetOf(const po::variables_map& vm) {
  if (vm.count("dataset")) return vm["dataset"].as<std::string>();
  return {};
}

}  // namespace

TrainConfig parseConfigText(const std::string& text, const std::string& origin) {
  po::variables_map file;
  std::istringstream in(text);
  try {
    po::store(po::parse_config_file(in, describe(true), /*allow_unregistered=*/false), file);
  } catch (const po::error& e) {
    MS_THROW(ConfigError, "{}: {}", origin, e.what());
  }
  TrainConfig c;
  if (datasetOf(file) == "imagenet") applyImagenetDefaults(c);
  applyValues(file, c, origin + ": ");
  c.validate();
  return c;
}

std::string describeSettings() {
  std::string out;
  const TrainConfig defaults;
  for (const Flag& f : flags()) {
    std::string names = "--" + f.name;
    if (!f.alias.empty()) names += ", --" + f.alias;
    if (f.shortName) names += std::string(", -") + f.shortName;
    if (!f.isSwitch) names += " ARG";
    out += fmt::format("  {:<34} {} [default: {}]\n", names, f.help, f.get(defaults));
  }
  return out;
}

po::options_description settingsOptions(bool forConfigFile) { return describe(forConfigFile); }

void applySettings(const po::variables_map& values, TrainConfig& config,
                   const std::string& prefix) {
  applyValues(values, config, prefix);
}

std::string datasetSetting(const po::variables_map& values) { return datasetOf(values); }

void applyDatasetDefaults(const std::string& dataset, TrainConfig& config) {
  if (dataset == "imagenet") applyImagenetDefaults(config);
}

std::string formatConfig(const TrainConfig& config) {
  std::string out;
  for (const Flag& f : flags()) out += fmt::format("{} = {}\n", f.name, f.get(config));
  return out;
}

}  // namespace metasemi::train
