// The main loop, as the reference's train_meta.py reads: per step the labeled and unlabeled
// batches, the step, the print every --print-freq and the evaluation with a checkpoint every
// --test-freq; around it resume, preemption and the averaging across ranks. The decisions are
// the parts': Recipe (what runs), RunState (checkpoints), Evaluator, ProgressLog, RunDir.
#include "metasemi/train/Trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>

#include "metasemi/comm/BackwardOverlap.h"
#include "metasemi/comm/GradientBucketer.h"
#include "metasemi/core/Error.h"
#include "metasemi/core/Log.h"
#include "metasemi/io/Checkpoint.h"
#include "metasemi/io/EventFile.h"
#include "metasemi/io/RunDir.h"
#include "metasemi/meta/StepRandom.h"
#include "metasemi/models/SyncBatchNorm.h"
#include "metasemi/train/ConfigText.h"
#include "metasemi/train/Evaluator.h"
#include "metasemi/train/FaultInjection.h"
#include "metasemi/train/Preemption.h"
#include "metasemi/train/ProgressLog.h"
#include "metasemi/train/Recipe.h"
#include "metasemi/train/RunState.h"

namespace metasemi::train {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
// Gradient bucket size: small enough that several buckets overlap backward, large enough that
// each allreduce runs at full bandwidth.
constexpr std::size_t kOverlapBucketBytes = std::size_t{4} << 20;

double secondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

class Trainer {
 public:
  Trainer(const Recipe& recipe, comm::Communicator& comm, const TrainObserver& observer,
          FaultInjection fault)
      : r_(recipe),
        c_(recipe.config()),
        comm_(comm),
        observer_(observer),
        dir_(c_.savePath),
        configText_(formatConfig(c_)),
        net_(recipe.makeNetwork()),
        sgd_(net_->parameters(), c_.momentum, c_.weightDecay),
        stepper_(net_, sgd_, /*channelsLast=*/true),
        random_(c_.seed, comm.rank(), comm.size(), c_.batchSize),
        workers_(data::WorkerPool::make(c_.numWorkers)),
        evaluator_(recipe.inputs()->test, recipe.inputs()->evalAugment, recipe.device(),
                   {c_.evalBatchSize,
                    5,
                    {std::max(1, c_.numWorkers), 4, workers_, recipe.device().is_cuda()},
                    true}),
        progress_(0, recipe.totalSteps()),
        fault_(std::move(fault)) {}

  int run() {
    const RunInputs& in = *r_.inputs();
    resume();
    labeled_ = r_.trainStream(data::StreamId::kLabeled, comm_.rank(), comm_.size(), workers_,
                              state_.labeledStream);
    if (r_.usesUnlabeled()) {
      unlabeled_ = r_.trainStream(data::StreamId::kUnlabeled, comm_.rank(), comm_.size(), workers_,
                                  state_.unlabeledStream);
    }
    writeRunFiles();
    wireAveraging();
    core::rootLog().info(
        "{} on '{}' ({}, {} classes): {} labeled / {} unlabeled / {} test images; {} ranks x "
        "batch {} = global batch {}; {}, {} threads per rank; steps {} -> {}",
        toString(c_.method) + (c_.mixUp ? "+mix-up" : ""), c_.dataPath, in.info.dataset,
        in.info.numClasses, in.labeledIndices.size(), in.unlabeledIndices.size(), in.test->size(),
        comm_.size(), c_.batchSize, r_.globalBatch(), r_.device().str(), at::get_num_threads(),
        state_.nextStep, r_.totalSteps());

    progress_ = ProgressLog(state_.nextStep, r_.totalSteps());
    const auto start = Clock::now();
    for (std::int64_t step = state_.nextStep; step < r_.totalSteps(); ++step) {
      const auto t0 = Clock::now();
      fault_.atStep(comm_.rank(), step);
      const meta::StepSettings settings = r_.settings(step);
      double wait = 0;
      const meta::StepResult result = runStep(step, settings, wait);
      if (observer_.afterStep) observer_.afterStep(step + 1, *net_);
      progress_.add(result, wait, secondsSince(t0));

      const std::int64_t done = step + 1;
      const bool last = done == r_.totalSteps();
      if (done % c_.printFreq == 0 || last) {
        requireFiniteLosses(done);
        const ProgressLine line =
            progress_.print(done, settings.lr, settings.weight, secondsSince(start));
        core::rootLog().info("{}", line.text);
        record(line.row);
      }
      const bool stop = shouldStop(comm_);
      if (done % c_.testFreq == 0 || last) {
        checkpoint(done, evaluate(done));
      } else if (stop) {
        checkpoint(done, false);
      }
      if (stop && !last) {
        core::rootLog().warn(
            "signal {} received: checkpoint written at step {}; exiting with {} so the job can "
            "be requeued",
            preemptionSignal(), done, static_cast<int>(core::kExitPreempted));
        return core::kExitPreempted;
      }
    }
    core::rootLog().info(
        "done: best top-1 error {:.2f}%, last {:.2f}%; data wait {:.2f}% of step time",
        state_.bestTop1Error, state_.lastTop1Error, 100.0 * progress_.dataWaitFraction());
    return core::kExitOk;
  }

 private:
  // Resume: --resume, or the checkpoint already in --save-path; otherwise every rank starts
  // from rank 0's initial parameters.
  void resume() {
    std::string path = c_.resume;
    const fs::path own = dir_.path(io::RunDir::kCheckpoint);
    if (path.empty() && fs::exists(own)) path = own.string();
    state_.nextStep = c_.startStep;
    state_.worldSize = comm_.size();
    if (path.empty()) {
      comm::broadcastModule(comm_, *net_);
    } else {
      state_ = RunState::restore(io::readCheckpoint(path), path, *net_, sgd_);
      if (state_.worldSize != comm_.size()) {
        core::rootLog().warn(
            "resuming a {}-rank run on {} ranks: same data, but not bit-identical to an "
            "uninterrupted run",
            state_.worldSize, comm_.size());
      }
    }
    MS_REQUIRE(state_.nextStep <= r_.totalSteps(), core::ConfigError,
               "'{}' is at step {}, past --total-steps {}", path, state_.nextStep, r_.totalSteps());
  }

  void writeRunFiles() {
    if (comm_.isRoot()) {
      dir_.prepare();
      core::addLogFile(dir_.path(io::RunDir::kLog).string());
      dir_.writeConfig(configText_);
      dir_.writeLabelIndices(r_.inputs()->labeledIndices);
      // TensorBoard's files: records after the resumed step (an interrupted run's last
      // prints) go first, so every step appears once.
      events_ = std::make_unique<io::EventWriter>(dir_.dir(), state_.nextStep);
    }
    comm_.barrier();
  }

  // Rank 0: one metrics row into metrics.jsonl and its scalars into the TensorBoard file.
  void record(const nlohmann::json& row) {
    if (!comm_.isRoot()) return;
    dir_.appendMetrics(row);
    if (events_) events_->write(row.at("step").get<std::int64_t>(), scalarsOf(row));
  }

  // On several ranks the gradients live in the communication buckets: backward accumulates
  // into them and the average is reduced in place, with no copy in or out.
  void wireAveraging() {
    if (comm_.size() == 1) return;
    if (c_.syncBn) {
      models::setBatchNormSync(
          *net_, std::make_shared<const models::SumAcrossRanks>(
                     [this](torch::Tensor& t) { comm_.allreduce(t, comm::ReduceOp::kSum); }));
    }
    sgd_.setGradientStorage(gradBuckets_.bucketViews(net_->parameters()));
    // Each bucket's average starts while backward computes the earlier layers' gradients;
    // synchronised BatchNorm makes collectives inside backward, so it averages afterwards.
    if (overlapsAveraging()) {
      overlap_ = std::make_unique<comm::BackwardOverlap>(gradBuckets_, comm_, net_->parameters());
      stepper_.setBeforeBackwardHook([this] { overlap_->arm(); });
      stepper_.setParameterGradientHook(
          [this](std::vector<torch::Tensor>&) { overlap_->finish(); });
    } else {
      stepper_.setParameterGradientHook(
          [this](std::vector<torch::Tensor>& g) { gradBuckets_.allreduce(comm_, g, true); });
    }
    if (!c_.localMetaGrad) {
      stepper_.setLabeledGradientHook(
          [this](std::vector<torch::Tensor>& g) { metaBuckets_.allreduce(comm_, g, true); });
    }
  }

  // Overlap needs a communication thread that may call the collectives, and no collective
  // inside backward (synchronised BatchNorm makes some). Its thread competes with the step's
  // own threads, so auto overlaps only on CPUs where a core per rank is free for it.
  bool overlapsAveraging() const {
    if (c_.overlapAveraging == Overlap::kOff) return false;
    const bool possible = !c_.syncBn && comm::collectivesFromAnotherThread(comm_);
    if (c_.overlapAveraging == Overlap::kOn) {
      if (!possible) {
        core::rootLog().warn("--overlap-averaging on: {}; averaging after backward instead",
                             c_.syncBn ? "synchronised BatchNorm communicates inside backward"
                                       : "this MPI allows collectives from one thread only");
      }
      return possible;
    }
    // GPUs: the NCCL stream is a blocking one, which the default stream's later kernels wait
    // for, so backward would not go on during the average; auto leaves it after backward.
    if (!possible || !r_.device().is_cpu()) return false;
    const int cores = static_cast<int>(std::thread::hardware_concurrency());
    return comm_.localSize() * (at::get_num_threads() + 1) <= cores;
  }

  meta::StepResult runStep(std::int64_t step, const meta::StepSettings& settings, double& wait) {
    const torch::Device device = r_.device();
    data::Batch lab = labeled_->next();
    wait = lab.waitSeconds;
    meta::StepBatch batch;
    // On a GPU the batches are in pinned memory: the copies are queued without waiting.
    const auto onDevice = [&](const torch::Tensor& t) {
      return t.to(t.options().device(device), /*non_blocking=*/true);
    };
    batch.labeledImages = onDevice(lab.images);
    batch.labels = onDevice(lab.labels);
    if (unlabeled_) {
      data::Batch unl = unlabeled_->next();
      wait += unl.waitSeconds;
      batch.unlabeledImages = onDevice(unl.images);
      batch.unlabeledLabels = onDevice(unl.labels);
    }
    at::Generator mixGen = random_.mixUpGenerator(step);
    if (r_.usesMixUp()) batch.lambda = random_.lambda(step, c_.alpha, device);
    random_.seedDropout(step);
    const meta::StepResult result = stepper_.run(batch, settings, mixGen);
    // BatchNorm running statistics follow rank 0's, as DDP's default broadcast_buffers: every
    // rank then holds the state that rank 0 checkpoints.
    if (comm_.size() > 1) bufferBuckets_.broadcast(comm_, buffers_, 0);
    if (device.is_cpu()) {
      const double loss = result.loss.item<double>();
      MS_REQUIRE(std::isfinite(loss), core::NumericalError,
                 "step {}: the loss is {}; stopping (the last checkpoint is kept)", step, loss);
    } else {
      // No synchronisation inside the step: a device-side flag, read at prints and checkpoints.
      const torch::Tensor bad = torch::isfinite(result.loss).logical_not();
      nonFinite_ = nonFinite_.defined() ? nonFinite_.logical_or(bad) : bad;
    }
    return result;
  }

  // Returns true when the evaluation is the best so far.
  bool evaluate(std::int64_t done) {
    const EvalCounts counts = evaluator_.run(*net_, comm_);
    MS_CHECK(counts.images() > 0, "empty test set");
    const bool best = state_.recordEvaluation(counts.top1Error(), counts.topKError());
    const ProgressLine line =
        ProgressLog::evaluation(done, counts.top1Error(), counts.topKError(), state_.bestTop1Error,
                                counts.images(), net_->numClasses() >= 100);
    core::rootLog().info("{}", line.text);
    record(line.row);
    return best;
  }

  // Collective: rank 0 writes, every rank waits, so a checkpoint is complete before any rank
  // moves on (or exits after preemption).
  // Throws when a loss since the last check was not finite (device runs check here only).
  void requireFiniteLosses(std::int64_t done) {
    if (!nonFinite_.defined()) return;
    MS_REQUIRE(!nonFinite_.item<bool>(), core::NumericalError,
               "a loss of the steps before step {} is not finite; stopping (the last checkpoint is "
               "kept)",
               done);
  }

  void checkpoint(std::int64_t done, bool best) {
    requireFiniteLosses(done);
    state_.nextStep = done;
    state_.worldSize = comm_.size();
    state_.labeledStream = labeled_->state();
    if (unlabeled_) state_.unlabeledStream = unlabeled_->state();
    if (comm_.isRoot()) {
      io::writeCheckpointFiles(c_.savePath, state_.toCheckpoint(*net_, sgd_, configText_), best);
    }
    comm_.barrier();
  }

  const Recipe& r_;
  const TrainConfig& c_;
  comm::Communicator& comm_;
  const TrainObserver& observer_;
  io::RunDir dir_;
  std::string configText_;
  std::shared_ptr<models::Network> net_;
  meta::Sgd sgd_;
  meta::MetaStep stepper_;
  meta::StepRandom random_;
  std::shared_ptr<data::WorkerPool> workers_;  // the rank's --num-workers decoding threads
  Evaluator evaluator_;
  ProgressLog progress_;
  std::unique_ptr<io::EventWriter> events_;  // rank 0
  FaultInjection fault_;
  torch::Tensor nonFinite_;  // device runs: any loss not finite since the start
  RunState state_;
  std::unique_ptr<data::TrainStream> labeled_, unlabeled_;
  // Buckets small enough that several overlap backward (ConvLarge: 12.5 MB of gradients).
  comm::GradientBucketer gradBuckets_{kOverlapBucketBytes}, metaBuckets_, bufferBuckets_;
  std::unique_ptr<comm::BackwardOverlap> overlap_;  // declared after what it uses
  std::vector<torch::Tensor> buffers_ = net_->buffers();
};

}  // namespace

int runTraining(const TrainConfig& c, comm::Communicator& comm, const TrainObserver& observer) {
  const torch::Device device = deviceOf(c, comm.localRank());
  configureDevice(device, c.deterministic);
  comm.setCollectiveTimeout(c.collectiveTimeout);
  FaultInjection fault = FaultInjection::fromEnvironment();
  at::set_num_threads(threadsPerRank(c.threads, comm.localSize()));
  PreemptionHandler preemption;
  // Everything that can fail on bad input happens before the first file is written.
  const Recipe recipe = Recipe::open(c, comm.size(), device);
  try {
    return Trainer(recipe, comm, observer, std::move(fault)).run();
  } catch (const c10::Error& e) {
    // The device's memory is the one limit a user meets by choosing the batch size.
    const std::string what = e.what_without_backtrace();
    MS_REQUIRE(what.find("out of memory") == std::string::npos, core::Error,
               "{}: out of memory at --batch-size {} (x2 images per step, --eval-batch-size {}); "
               "the last checkpoint is kept. Reduce the batch size or use more ranks",
               device.str(), c.batchSize, c.evalBatchSize);
    throw;
  }
}

}  // namespace metasemi::train
