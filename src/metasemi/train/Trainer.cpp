#include "metasemi/train/Trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "metasemi/core/Error.h"
#include "metasemi/core/Log.h"
#include "metasemi/core/Random.h"
#include "metasemi/core/TrainOptions.h"
#include "metasemi/data/Augment.h"
#include "metasemi/data/Loader.h"
#include "metasemi/data/ShardSource.h"
#include "metasemi/dist/GradientBucketer.h"
#include "metasemi/io/Checkpoint.h"
#include "metasemi/io/H5File.h"
#include "metasemi/io/ShardSet.h"
#include "metasemi/meta/Losses.h"
#include "metasemi/meta/MetaStep.h"
#include "metasemi/meta/Schedule.h"
#include "metasemi/meta/Sgd.h"
#include "metasemi/models/Network.h"
#include "metasemi/models/StateDict.h"
#include "metasemi/models/SyncBatchNorm.h"
#include "metasemi/train/Preemption.h"

namespace metasemi::train {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Tags that give every random stream of the trainer its own seed (core::deriveSeed).
constexpr std::uint64_t kDropoutTag = 0x64726f70;  // per rank and step
constexpr std::uint64_t kMixUpTag = 0x6d697875;    // per step, the same on every rank

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// ---------------------------------------------------------------------------------------------
// Data

struct TrainData {
  std::shared_ptr<const data::SampleSource> labeled, unlabeled, test;
  std::vector<std::int64_t> labeledIndices, unlabeledIndices;
  io::ShardSetInfo info;  // of the training images
  data::AugmentConfig trainAugment, evalAugment;
};

std::vector<std::int64_t> allIndices(std::int64_t n) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
  return v;
}

// ImageNet-style runs: the labeled and unlabeled images are separate splits (made from the
// reference's lists by metasemi-prep), evaluated on "val".
TrainData openImagenetData(const core::TrainConfig& c) {
  const fs::path dir = c.dataPath;
  auto labeled = std::make_shared<data::ShardSource>(io::ShardSet::open(dir, "train_labeled"));
  auto unlabeled = std::make_shared<data::ShardSource>(io::ShardSet::open(dir, "train_unlabeled"));
  auto val = std::make_shared<data::ShardSource>(io::ShardSet::open(dir, "val"));
  for (const auto* other : {&unlabeled->info(), &val->info()}) {
    MS_REQUIRE(other->numClasses == labeled->info().numClasses, core::IoError,
               "'{}': split '{}' has {} classes but 'train_labeled' has {}", c.dataPath,
               other->split, other->numClasses, labeled->info().numClasses);
  }
  TrainData d;
  d.info = labeled->info();
  d.labeledIndices = allIndices(labeled->size());
  d.unlabeledIndices = allIndices(unlabeled->size());
  const data::Normalization norm = data::shardNormalization(d.info);
  d.trainAugment = data::trainAugment(c.dataset, true, norm, c.imcrop);
  d.evalAugment = data::evalAugment(true, norm, c.imsize, c.imcrop);
  d.labeled = labeled;
  d.unlabeled = unlabeled;
  d.test = val;
  return d;
}

TrainData openData(const core::TrainConfig& c) {
  MS_REQUIRE(fs::is_directory(c.dataPath), core::IoError,
             "--data-path '{}': no such folder (make shards with metasemi-prep)", c.dataPath);
  TrainData d;
  if (c.isImagenet()) {
    d = openImagenetData(c);
  } else {
    data::RunDataSpec spec;
    spec.dir = c.dataPath;
    spec.labelSplit = io::labelSplitName(c.numLabel, c.seed);
    spec.crop = c.imcrop;
    spec.resize = c.imsize;
    const data::RunData run(spec);
    d.info = run.trainInfo();
    d.labeledIndices = run.labelSplit().labeled;
    d.unlabeledIndices = run.labelSplit().unlabeled;
    d.trainAugment = run.trainAugment();
    d.evalAugment = run.evalAugment();
    d.labeled = run.trainSource();
    d.unlabeled = d.labeled;
    d.test = run.testSource();
  }
  MS_REQUIRE(d.info.dataset == c.dataset, core::ConfigError,
             "--dataset is '{}' but the shards in '{}' hold '{}'", c.dataset, c.dataPath,
             d.info.dataset);
  return d;
}

// ---------------------------------------------------------------------------------------------
// Files in --save-path (rank 0 only)

class RunFiles {
 public:
  RunFiles(const core::TrainConfig& c, bool root) : dir_(c.savePath), root_(root) {}

  // Creates the folder and checks that it is writable, before anything is written.
  void prepare() const {
    if (!root_) return;
    std::error_code ec;
    fs::create_directories(dir_, ec);
    MS_REQUIRE(!ec, core::IoError, "--save-path '{}': cannot create: {}", dir_.string(),
               ec.message());
    const fs::path probe = dir_ / fmt::format(".write-test.{}", ::getpid());
    { std::ofstream(probe) << "x"; }
    const bool ok = fs::exists(probe);
    fs::remove(probe, ec);
    MS_REQUIRE(ok, core::IoError, "--save-path '{}': not writable", dir_.string());
  }

  void writeText(const std::string& name, const std::string& text) const {
    if (!root_) return;
    io::AtomicOutput out((dir_ / name).string());
    {
      std::ofstream f(out.tempPath());
      f << text;
      MS_REQUIRE(f.good(), core::IoError, "cannot write '{}'", out.tempPath());
    }
    out.commit();
  }

  void appendMetrics(const nlohmann::json& row) const {
    if (!root_) return;
    std::ofstream f(dir_ / "metrics.jsonl", std::ios::app);
    f << row.dump() << '\n';
  }

  fs::path path(const std::string& name) const { return dir_ / name; }

 private:
  fs::path dir_;
  bool root_;
};

std::string indexLines(const std::vector<std::int64_t>& v) {
  std::string s;
  for (auto i : v) s += std::to_string(i) + '\n';
  return s;
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

// Where a run stands between steps. With the random numbers named by (seed, step), this and the
// model and optimizer state are all an exact resume needs.
struct Progress {
  std::int64_t nextStep = 0;
  double bestTop1Error = std::numeric_limits<double>::infinity();
  double bestTop5Error = std::numeric_limits<double>::infinity();
  double lastTop1Error = std::nan("");
  double lastTop5Error = std::nan("");
  int worldSize = 1;
  std::optional<data::StreamState> labeledStream, unlabeledStream;
};

io::CheckpointState makeCheckpoint(models::Network& net, const meta::Sgd& sgd, const Progress& p,
                                   const std::string& config) {
  io::CheckpointState s;
  s.step = p.nextStep;
  s.bestAcc1 = 100.0 - p.bestTop1Error;
  s.bestAcc5 = 100.0 - p.bestTop5Error;
  s.lastAcc1 = 100.0 - p.lastTop1Error;
  s.lastAcc5 = 100.0 - p.lastTop5Error;
  s.model = models::stateDict(net);
  const auto named = net.named_parameters();
  const auto buffers = sgd.momentumBuffers();
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    if (buffers[i].defined()) s.momentum.emplace_back(named[i].key(), buffers[i]);
  }
  // Errors are kept exactly in the JSON (the accuracies above are for other readers).
  nlohmann::json j = {{"world_size", p.worldSize},
                      {"best_top1_error", p.bestTop1Error},
                      {"best_top5_error", p.bestTop5Error},
                      {"last_top1_error", p.lastTop1Error},
                      {"last_top5_error", p.lastTop5Error}};
  if (p.labeledStream) j["labeled_stream"] = p.labeledStream->toJson();
  if (p.unlabeledStream) j["unlabeled_stream"] = p.unlabeledStream->toJson();
  s.dataJson = j.dump();
  s.config = config;
  return s;
}

double jsonNumber(const nlohmann::json& j, const char* key) {
  // nlohmann writes NaN and infinity as null.
  return j.contains(key) && j[key].is_number() ? j[key].get<double>()
                                               : std::numeric_limits<double>::infinity();
}

Progress restoreCheckpoint(const std::string& path, models::Network& net, meta::Sgd& sgd) {
  const io::CheckpointState s = io::readCheckpoint(path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(s.dataJson);
  } catch (const nlohmann::json::exception& e) {
    MS_THROW(core::IoError, "checkpoint '{}': unreadable run state: {}", path, e.what());
  }
  MS_REQUIRE(j.contains("world_size"), core::IoError,
             "checkpoint '{}' was not written by metasemi-train (no run state)", path);
  // Momentum buffers by parameter name, in the optimizer's order.
  const auto named = net.named_parameters();
  std::vector<torch::Tensor> buffers(named.size());
  for (const auto& [name, t] : s.momentum) {
    std::size_t i = 0;
    while (i < named.size() && named[i].key() != name) ++i;
    MS_REQUIRE(i < named.size(), core::IoError,
               "checkpoint '{}' does not match the model: unknown momentum buffer '{}'", path,
               name);
    buffers[i] = t;
  }
  io::restoreNamed(s.model, models::stateDict(net), path, "model");
  sgd.setMomentumBuffers(buffers);
  Progress p;
  p.nextStep = s.step;
  p.worldSize = j["world_size"].get<int>();
  p.bestTop1Error = jsonNumber(j, "best_top1_error");
  p.bestTop5Error = jsonNumber(j, "best_top5_error");
  p.lastTop1Error = jsonNumber(j, "last_top1_error");
  p.lastTop5Error = jsonNumber(j, "last_top5_error");
  if (j.contains("labeled_stream"))
    p.labeledStream = data::StreamState::fromJson(j["labeled_stream"]);
  if (j.contains("unlabeled_stream")) {
    p.unlabeledStream = data::StreamState::fromJson(j["unlabeled_stream"]);
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// Evaluation

struct EvalResult {
  double top1Error = 0, top5Error = 0;
  std::int64_t count = 0;
};

EvalResult evaluate(models::Network& net, const std::shared_ptr<const data::SampleSource>& test,
                    const data::AugmentConfig& augment, const core::TrainConfig& c,
                    dist::Communicator& comm, bool channelsLast) {
  torch::NoGradGuard noGrad;
  net.eval();
  data::EvalIterator it(test, augment, c.evalBatchSize, comm.rank(), comm.size(),
                        {std::max(1, c.numWorkers), 4});
  const std::int64_t k = std::min<std::int64_t>(5, net.numClasses());
  std::int64_t counts[3] = {0, 0, 0};  // top-1 correct, top-k correct, images
  while (auto batch = it.next()) {
    torch::Tensor x = batch->images;
    if (channelsLast) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
    const torch::Tensor logits = net.forward(x);
    const torch::Tensor top = std::get<1>(logits.topk(k, 1));
    const torch::Tensor hit = top.eq(batch->labels.unsqueeze(1));
    counts[0] += hit.narrow(1, 0, 1).sum().item<std::int64_t>();
    counts[1] += hit.sum().item<std::int64_t>();
    counts[2] += batch->labels.size(0);
  }
  comm.allreduceSum(counts, 3);
  EvalResult r;
  r.count = counts[2];
  MS_CHECK(r.count > 0, "empty test set");
  r.top1Error = 100.0 - 100.0 * static_cast<double>(counts[0]) / static_cast<double>(r.count);
  r.top5Error = 100.0 - 100.0 * static_cast<double>(counts[1]) / static_cast<double>(r.count);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Logging helpers

// Running means of the logged quantities since the last print; sums stay tensors so that a step
// does not wait for the device.
struct Meters {
  torch::Tensor labeledLoss, unlabeledLoss, labeledAcc, unlabeledAcc;
  std::int64_t n = 0;
  double dataTime = 0, batchTime = 0;

  static void add(torch::Tensor& sum, const torch::Tensor& v) {
    if (!v.defined()) return;
    sum = sum.defined() ? sum + v.detach().to(torch::kFloat64) : v.detach().to(torch::kFloat64);
  }
  void add(const meta::StepResult& r, double dt, double bt) {
    add(labeledLoss, r.labeledLoss);
    add(unlabeledLoss, r.unlabeledLoss);
    add(labeledAcc, r.labeledAccuracy);
    add(unlabeledAcc, r.unlabeledAccuracy);
    dataTime += dt;
    batchTime += bt;
    ++n;
  }
  double mean(const torch::Tensor& sum) const {
    return sum.defined() && n > 0 ? sum.item<double>() / static_cast<double>(n) : std::nan("");
  }
  void reset() { *this = Meters(); }
};

std::string formatDuration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const auto t = static_cast<std::int64_t>(s);
  if (t >= 86400) return fmt::format("{}d{:02}h{:02}m", t / 86400, t / 3600 % 24, t / 60 % 60);
  return fmt::format("{:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60);
}

nlohmann::json numberOrNull(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

meta::StepKind stepKind(const core::TrainConfig& c) {
  if (c.method == core::Method::kMeta) {
    return c.mixUp ? meta::StepKind::kMetaMixUp : meta::StepKind::kMeta;
  }
  return c.mixUp ? meta::StepKind::kMixUpOnly : meta::StepKind::kLabeledOnly;
}

// METASEMI_FAULT=<kind>:<rank>:<step> makes one rank fail at the start of a step, so that a
// site can check how its jobs end when a rank fails: `throw` (an exception), `hang` (the rank
// stops answering; the others' --collective-timeout ends the job) or `exit` (the process vanishes
// with code 9).
struct FaultInjection {
  std::string kind;
  int rank = -1;
  std::int64_t step = -1;

  void trigger() const {
    spdlog::error("METASEMI_FAULT: injecting '{}' at step {}", kind, step);
    if (kind == "throw") {
      throw std::runtime_error(fmt::format("fault injected by METASEMI_FAULT at step {}", step));
    }
    if (kind == "exit") std::_Exit(9);
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
};

FaultInjection faultFromEnvironment() {
  FaultInjection f;
  const char* spec = std::getenv("METASEMI_FAULT");
  if (!spec || !*spec) return f;
  const std::string s(spec);
  const auto a = s.find(':'), b = s.rfind(':');
  std::size_t used = 0;
  try {
    if (a == std::string::npos || b == a) throw std::invalid_argument(s);
    f.kind = s.substr(0, a);
    f.rank = std::stoi(s.substr(a + 1, b - a - 1));
    f.step = std::stoll(s.substr(b + 1), &used);
  } catch (const std::exception&) {
    used = 0;
  }
  MS_REQUIRE(used > 0 && used == s.size() - b - 1 &&
                 (f.kind == "throw" || f.kind == "hang" || f.kind == "exit"),
             core::ConfigError,
             "METASEMI_FAULT: expected <throw|hang|exit>:<rank>:<step>, got '{}'", s);
  return f;
}

int defaultThreads(const dist::Communicator& comm) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, comm.localSize()));
}

}  // namespace

int runTraining(const core::TrainConfig& c, dist::Communicator& comm,
                const TrainObserver& observer) {
  MS_REQUIRE(!c.gpu, core::ConfigError,
             "--gpu: this build's LibTorch has no CUDA (build with the cluster-gpu preset)");
  const bool root = comm.isRoot();
  comm.setCollectiveTimeout(c.collectiveTimeout);
  const FaultInjection fault = faultFromEnvironment();
  const int threads = c.threads > 0 ? c.threads : defaultThreads(comm);
  at::set_num_threads(threads);
  PreemptionHandler preemption;
  const std::string configText = core::formatConfig(c);

  // Everything that can fail on bad input happens before the first file is written.
  const TrainData d = openData(c);
  const std::int64_t channels = d.info.decodedChannels;

  torch::manual_seed(c.seed);
  models::NetworkSpec spec;
  spec.architecture = c.architecture;
  spec.inputChannels = channels;
  spec.numClasses = d.info.numClasses;
  spec.widthFactor = c.widthFactor;
  spec.dropout = c.dropout;
  std::shared_ptr<models::Network> net = models::makeNetwork(spec);
  const bool channelsLast = true;
  models::toChannelsLast(*net);
  if (c.syncBn && comm.size() > 1) {
    models::setBatchNormSync(
        *net, std::make_shared<const models::SumAcrossRanks>(
                  [&comm](torch::Tensor& t) { comm.allreduce(t, dist::ReduceOp::kSum); }));
  }
  meta::Sgd sgd(net->parameters(), c.momentum, c.weightDecay);

  const meta::StepKind kind = stepKind(c);
  const bool usesUnlabeled = kind != meta::StepKind::kLabeledOnly;
  const bool usesMixUp = kind == meta::StepKind::kMetaMixUp || kind == meta::StepKind::kMixUpOnly;
  const std::int64_t globalBatch = static_cast<std::int64_t>(c.batchSize) * comm.size();

  // Length and learning-rate schedule.
  std::int64_t totalSteps = c.totalSteps;
  std::function<double(std::int64_t)> lrAt;
  if (c.lrSchedule == core::LrSchedule::kCosine) {
    meta::CosineLrSchedule s;
    s.lrMax = c.lr;
    if (c.isImagenet()) {
      // One epoch is one pass over the set that drives the reference's loader: the unlabeled
      // set for MetaSemi, the labeled set for the labeled-only baseline (train_imagenet.py).
      // Both round up (the baseline script's scheduler rounds down but its loop runs the
      // rounded-up count; the meta script's ceil is used for both).
      const std::int64_t epochImages = static_cast<std::int64_t>(
          usesUnlabeled ? d.unlabeledIndices.size() : d.labeledIndices.size());
      const std::int64_t loaderLen = (epochImages + globalBatch - 1) / globalBatch;
      s.warmupIters = loaderLen * c.warmup;
      s.maxIters = loaderLen * c.epochs;
      totalSteps = s.maxIters;
    } else {
      s.warmupIters = c.warmup;
      s.maxIters = c.totalSteps;
    }
    lrAt = [s](std::int64_t step) { return s.lr(step); };
  } else {
    meta::StepLrSchedule s{c.lr, c.warmup, c.milestones, c.gamma};
    lrAt = [s](std::int64_t step) { return s.lr(step); };
  }

  // Resume: --resume, or the checkpoint already in --save-path.
  RunFiles files(c, root);
  std::string resumePath = c.resume;
  if (resumePath.empty() && fs::exists(files.path("checkpoint.h5"))) {
    resumePath = files.path("checkpoint.h5").string();
  }
  Progress state;
  state.nextStep = c.startStep;
  state.worldSize = comm.size();
  if (!resumePath.empty()) {
    state = restoreCheckpoint(resumePath, *net, sgd);
    if (state.worldSize != comm.size()) {
      core::rootLog().warn(
          "resuming a {}-rank run on {} ranks: same data, but not bit-identical to an "
          "uninterrupted run",
          state.worldSize, comm.size());
    }
  } else {
    // Every rank starts from rank 0's initial parameters.
    dist::broadcastModule(comm, *net);
  }
  MS_REQUIRE(state.nextStep <= totalSteps, core::ConfigError,
             "'{}' is at step {}, past --total-steps {}", resumePath, state.nextStep, totalSteps);

  const data::LoaderOptions loader{std::max(0, c.numWorkers), 4};
  auto labeledStream = std::make_unique<data::TrainStream>(
      d.labeled, d.labeledIndices, data::StreamId::kLabeled, c.seed, d.trainAugment, c.batchSize,
      comm.rank(), comm.size(), loader, state.labeledStream);
  std::unique_ptr<data::TrainStream> unlabeledStream;
  if (usesUnlabeled) {
    unlabeledStream = std::make_unique<data::TrainStream>(
        d.unlabeled, d.unlabeledIndices, data::StreamId::kUnlabeled, c.seed, d.trainAugment,
        c.batchSize, comm.rank(), comm.size(), loader, state.unlabeledStream);
  }

  files.prepare();
  if (root) {
    core::addLogFile(files.path("log.txt").string());
    files.writeText("config.cfg", configText);
    files.writeText("label_indices.txt", indexLines(d.labeledIndices));
  }
  comm.barrier();

  meta::MetaStep stepper(net, sgd, channelsLast);
  dist::GradientBucketer gradBuckets, metaBuckets, bufferBuckets;
  if (comm.size() > 1) {
    // The gradients live in the communication buckets: backward accumulates into them and the
    // average is reduced in place, with no copy in or out.
    sgd.setGradientStorage(gradBuckets.bucketViews(net->parameters()));
    stepper.setParameterGradientHook(
        [&](std::vector<torch::Tensor>& g) { gradBuckets.allreduce(comm, g, true); });
    if (!c.localMetaGrad) {
      stepper.setLabeledGradientHook(
          [&](std::vector<torch::Tensor>& g) { metaBuckets.allreduce(comm, g, true); });
    }
  }
  std::vector<torch::Tensor> buffers = net->buffers();

  core::rootLog().info(
      "{} on '{}' ({}, {} classes): {} labeled / {} unlabeled / {} test images; {} ranks x "
      "batch {} = global batch {}; {} threads per rank; steps {} -> {}",
      toString(c.method) + (c.mixUp ? "+mix-up" : ""), c.dataPath, d.info.dataset,
      d.info.numClasses, d.labeledIndices.size(), d.unlabeledIndices.size(), d.test->size(),
      comm.size(), c.batchSize, globalBatch, threads, state.nextStep, totalSteps);

  // Collective: rank 0 writes, every rank waits, so a checkpoint is complete before any rank
  // moves on (or exits after preemption).
  auto checkpoint = [&](std::int64_t nextStep, bool best) {
    state.nextStep = nextStep;
    state.worldSize = comm.size();
    state.labeledStream = labeledStream->state();
    if (usesUnlabeled) state.unlabeledStream = unlabeledStream->state();
    if (root) {
      io::writeCheckpointFiles(c.savePath, makeCheckpoint(*net, sgd, state, configText), best);
    }
    comm.barrier();
  };

  Meters meters;
  double waitTotal = 0, stepTotal = 0;
  const auto runStart = Clock::now();
  const std::int64_t firstStep = state.nextStep;
  for (std::int64_t step = state.nextStep; step < totalSteps; ++step) {
    const auto t0 = Clock::now();
    if (fault.step == step && fault.rank == comm.rank()) fault.trigger();
    meta::StepSettings settings;
    settings.kind = kind;
    settings.metaGrad = c.metaGrad;
    settings.lr = lrAt(step);
    settings.epsilon = c.epsilon;
    settings.weight = c.weightRamp ? meta::rampWeight(c.weight, step, c.warmup) : c.weight;
    settings.alpha = c.alpha;

    data::Batch lab = labeledStream->next();
    double wait = lab.waitSeconds;
    meta::StepBatch batch;
    batch.labeledImages = lab.images;
    batch.labels = lab.labels;
    if (usesUnlabeled) {
      data::Batch unl = unlabeledStream->next();
      wait += unl.waitSeconds;
      batch.unlabeledImages = unl.images;
      batch.unlabeledLabels = unl.labels;
    }
    // Random numbers are named by (seed, step[, rank]): nothing to save for an exact resume,
    // and λ of the global batch is the same whatever the number of ranks.
    at::Generator mixGen = at::detail::createCPUGenerator(
        core::deriveSeed(c.seed, {kMixUpTag, static_cast<std::uint64_t>(step)}));
    if (usesMixUp) {
      batch.lambda = meta::sampleBeta(c.alpha, globalBatch, mixGen)
                         .narrow(0, comm.rank() * c.batchSize, c.batchSize)
                         .to(torch::kFloat32);
    }
    torch::manual_seed(core::deriveSeed(c.seed, {kDropoutTag, static_cast<std::uint64_t>(step),
                                                 static_cast<std::uint64_t>(comm.rank())}));

    const meta::StepResult r = stepper.run(batch, settings, mixGen);
    // BatchNorm running statistics follow rank 0's, as DDP's default broadcast_buffers: every
    // rank then holds the state that rank 0 checkpoints.
    if (comm.size() > 1) bufferBuckets.broadcast(comm, buffers, 0);
    if (!c.gpu) {
      const double loss = r.loss.item<double>();
      MS_REQUIRE(std::isfinite(loss), core::NumericalError,
                 "step {}: the loss is {}; stopping (the last checkpoint is kept)", step, loss);
    }

    if (observer.afterStep) observer.afterStep(step + 1, *net);
    const double bt = seconds(Clock::now() - t0);
    meters.add(r, wait, bt);
    waitTotal += wait;
    stepTotal += bt;

    const bool last = step + 1 == totalSteps;
    if ((step + 1) % c.printFreq == 0 || last) {
      const double done = static_cast<double>(step + 1 - firstStep);
      const double eta =
          seconds(Clock::now() - runStart) / done * static_cast<double>(totalSteps - step - 1);
      const double lloss = meters.mean(meters.labeledLoss),
                   uloss = meters.mean(meters.unlabeledLoss);
      const double lacc = meters.mean(meters.labeledAcc), uacc = meters.mean(meters.unlabeledAcc);
      MS_REQUIRE(std::isfinite(lloss), core::NumericalError,
                 "step {}: the labeled loss is {}; stopping (the last checkpoint is kept)", step,
                 lloss);
      core::rootLog().info(
          "Step {:05d}/{} Dtime {:.3f} Btime {:.3f} Lloss {:.4f} Uloss {:.4f} Lacc {:.2f} Uacc "
          "{:.2f} LR {:.5f} data-wait {:.1f}% ETA {}",
          step + 1, totalSteps, meters.dataTime / meters.n, meters.batchTime / meters.n, lloss,
          uloss, lacc, uacc, settings.lr, 100.0 * waitTotal / std::max(1e-9, stepTotal),
          formatDuration(eta));
      files.appendMetrics({{"kind", "train"},
                           {"step", step + 1},
                           {"lr", settings.lr},
                           {"weight", settings.weight},
                           {"label_loss", numberOrNull(lloss)},
                           {"unlabel_loss", numberOrNull(uloss)},
                           {"label_acc", numberOrNull(lacc)},
                           {"unlabel_acc", numberOrNull(uacc)},
                           {"data_time", meters.dataTime / meters.n},
                           {"batch_time", meters.batchTime / meters.n},
                           {"data_wait_fraction", waitTotal / std::max(1e-9, stepTotal)}});
      meters.reset();
    }

    const bool evalNow = (step + 1) % c.testFreq == 0 || last;
    const bool stop = shouldStop(comm);
    if (evalNow) {
      const EvalResult e = evaluate(*net, d.test, d.evalAugment, c, comm, channelsLast);
      const bool best = !(state.bestTop1Error <= e.top1Error);  // strict, NaN-safe first time
      if (best) {
        state.bestTop1Error = e.top1Error;
        state.bestTop5Error = e.top5Error;
      }
      state.lastTop1Error = e.top1Error;
      state.lastTop5Error = e.top5Error;
      core::rootLog().info(
          "Test step {:05d}: top-1 error {:.2f}%{} (best {:.2f}%) over {} images", step + 1,
          e.top1Error,
          d.info.numClasses >= 100 ? fmt::format(", top-5 error {:.2f}%", e.top5Error) : "",
          state.bestTop1Error, e.count);
      files.appendMetrics({{"kind", "eval"},
                           {"step", step + 1},
                           {"top1_error", e.top1Error},
                           {"top5_error", d.info.numClasses >= 100 ? nlohmann::json(e.top5Error)
                                                                   : nlohmann::json(nullptr)},
                           {"best_top1_error", state.bestTop1Error}});
      checkpoint(step + 1, best);
    } else if (stop) {
      checkpoint(step + 1, false);
    }
    if (stop && !last) {
      core::rootLog().warn(
          "signal {} received: checkpoint written at step {}; exiting with {} "
          "so the job can be requeued",
          preemptionSignal(), step + 1, static_cast<int>(core::kExitPreempted));
      return core::kExitPreempted;
    }
  }
  core::rootLog().info(
      "done: best top-1 error {:.2f}%, last {:.2f}%; data wait {:.2f}% of step time",
      state.bestTop1Error, state.lastTop1Error, 100.0 * waitTotal / std::max(1e-9, stepTotal));
  return core::kExitOk;
}

}  // namespace metasemi::train
