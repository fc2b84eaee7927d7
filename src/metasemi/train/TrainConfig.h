// The trainer's settings: every flag of the reference's train_meta.py, train_baseline.py and
// train_meta_imagenet.py (same spellings and defaults), plus this project's own.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "metasemi/comm/Backend.h"
#include "metasemi/meta/StepKind.h"

namespace metasemi::train {

/// Which training loop runs: the MetaSemi step or the baselines of train_baseline.py.
enum class Method { kMeta, kBaseline };

/// Learning-rate schedule: linear warm-up + step decay (CIFAR/SVHN) or warm-up + cosine (ImageNet).
enum class LrSchedule { kStep, kCosine };

/// Whether gradient buckets are averaged while backward runs (comm/BackwardOverlap.h): auto
/// does on CPUs with a core to spare for each rank's communication thread.
enum class Overlap { kAuto, kOn, kOff };

struct TrainConfig {
  // --- reference flags (train_meta.py / train_baseline.py) ---
  std::string dataset = "cifar10";
  std::string dataPath = "./data";
  int numLabel = 4000;
  std::string architecture = "convlarge";
  bool mixUp = false;
  double alpha = 1.0;
  double weight = 1.0;
  std::int64_t totalSteps = 400000;
  std::int64_t startStep = 0;
  int batchSize = 128;
  double epsilon = 1e-2;
  double lr = 0.1;
  std::int64_t warmup = 4000;  // steps (CIFAR/SVHN) or epochs (ImageNet)
  double gamma = 0.1;
  std::vector<std::int64_t> milestones = {300000, 350000};
  double weightDecay = 1e-4;
  double momentum = 0.9;
  int numWorkers = 4;
  std::string resume;
  std::uint64_t seed = 1234;
  int printFreq = 100;
  int testFreq = 400;
  std::string savePath = "./results/tmp";
  bool gpu = false;
  // --- reference flags (train_meta_imagenet.py / train_imagenet.py) ---
  int startEpoch = 0;
  int numClasses = 1000;
  int epochs = 600;
  int imsize = 256;
  int imcrop = 224;
  int localRank = 0;  // accepted for compatibility; ranks come from MPI
  bool daliCpu = false;

  // --- this project ---
  Method method = Method::kMeta;
  meta::MetaGrad metaGrad = meta::MetaGrad::kFiniteDifference;
  LrSchedule lrSchedule = LrSchedule::kStep;
  comm::Backend distBackend = comm::Backend::kAuto;
  double widthFactor = 1.0;    // ConvLarge channel multiplier (1.0 = 128/256/512)
  double dropout = 0.5;        // Dropout2d probability after the two max-pools
  bool weightRamp = true;      // linear ramp of the consistency weight over `warmup` steps
  bool syncBn = false;         // synchronise BatchNorm batch statistics across ranks
  bool deterministic = false;  // GPU: deterministic cuDNN/CUDA algorithms, no cuDNN benchmark
  bool localMetaGrad = false;  // keep g rank-local (as the reference's ImageNet script)
  Overlap overlapAveraging = Overlap::kAuto;
  int evalBatchSize = 100;
  double collectiveTimeout = 0;  // seconds before a stuck collective ends the job; 0 = never
  int threads = 0;               // LibTorch intra-op threads per rank; 0 = cores / local ranks
  std::string logLevel = "info";

  /// True for the ImageNet recipe (`--dataset imagenet`).
  bool isImagenet() const { return dataset == "imagenet"; }

  /// Throws core::ConfigError naming the first flag whose value is out of range or inconsistent.
  void validate() const;
};

std::string toString(Method m);
std::string toString(LrSchedule s);
std::string toString(Overlap o);

/// Parses a milestone list as the reference accepts it: "[300000, 350000]", "300000,350000" or
/// "300000 350000". Throws ConfigError on anything else.
std::vector<std::int64_t> parseMilestones(const std::string& text);

}  // namespace metasemi::train
