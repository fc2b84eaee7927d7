#include "metasemi/train/ProgressLog.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "metasemi/core/Error.h"

namespace metasemi::train {
namespace {

nlohmann::json numberOrNull(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

}  // namespace

std::vector<std::pair<std::string, double>> scalarsOf(const nlohmann::json& row) {
  struct Tag {
    const char* tag;
    const char* key;
  };
  static const Tag kTrain[] = {
      {"train/label-acc", "label_acc"},       {"train/unlabel-acc", "unlabel_acc"},
      {"train/label-loss", "label_loss"},     {"train/unlabel-loss", "unlabel_loss"},
      {"train/interp-loss", "interp_loss"},   {"train/lr", "lr"},
      {"train/consistency-weight", "weight"}, {"train/data-wait", "data_wait_fraction"},
      {"train/data-time", "data_time"},       {"train/step-time", "batch_time"}};
  std::vector<std::pair<std::string, double>> out;
  const std::string kind = row.value("kind", "");
  if (kind == "train") {
    for (const Tag& t : kTrain) {
      const auto it = row.find(t.key);
      if (it != row.end() && it->is_number()) out.emplace_back(t.tag, it->get<double>());
    }
  } else if (kind == "eval") {
    // The reference logs accuracy in percent: 100 - error.
    const auto top1 = row.find("top1_error");
    if (top1 != row.end() && top1->is_number()) {
      out.emplace_back("test/accuracy", 100.0 - top1->get<double>());
    }
    const auto top5 = row.find("top5_error");
    if (top5 != row.end() && top5->is_number()) {
      out.emplace_back("test/top5-accuracy", 100.0 - top5->get<double>());
    }
  }
  return out;
}

ProgressLog::ProgressLog(std::int64_t firstStep, std::int64_t totalSteps)
    : firstStep_(firstStep), totalSteps_(totalSteps) {}

void ProgressLog::accumulate(torch::Tensor& sum, const torch::Tensor& v) {
  if (!v.defined()) return;
  const torch::Tensor x = v.detach().to(torch::kFloat64);
  sum = sum.defined() ? sum + x : x;
}

double ProgressLog::mean(const torch::Tensor& sum) const {
  return sum.defined() && n_ > 0 ? sum.item<double>() / static_cast<double>(n_) : std::nan("");
}

void ProgressLog::add(const meta::StepResult& r, double waitSeconds, double stepSeconds) {
  accumulate(labeledLoss_, r.labeledLoss);
  accumulate(unlabeledLoss_, r.unlabeledLoss);
  accumulate(mixLoss_, r.mixLoss);
  accumulate(labeledAcc_, r.labeledAccuracy);
  accumulate(unlabeledAcc_, r.unlabeledAccuracy);
  dataTime_ += waitSeconds;
  batchTime_ += stepSeconds;
  waitTotal_ += waitSeconds;
  stepTotal_ += stepSeconds;
  ++n_;
}

double ProgressLog::dataWaitFraction() const { return waitTotal_ / std::max(1e-9, stepTotal_); }

std::string ProgressLog::formatDuration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const auto t = static_cast<std::int64_t>(s);
  if (t >= 86400) return fmt::format("{}d{:02}h{:02}m", t / 86400, t / 3600 % 24, t / 60 % 60);
  return fmt::format("{:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60);
}

ProgressLine ProgressLog::print(std::int64_t stepsDone, double lr, double weight,
                                double elapsedSeconds) {
  const double done = static_cast<double>(stepsDone - firstStep_);
  const double eta =
      done > 0 ? elapsedSeconds / done * static_cast<double>(totalSteps_ - stepsDone) : NAN;
  const double lloss = mean(labeledLoss_), uloss = mean(unlabeledLoss_);
  const double lacc = mean(labeledAcc_), uacc = mean(unlabeledAcc_);
  MS_REQUIRE(std::isfinite(lloss), core::NumericalError,
             "step {}: the labeled loss is {}; stopping (the last checkpoint is kept)",
             stepsDone - 1, lloss);
  const double steps = static_cast<double>(std::max<std::int64_t>(1, n_));
  ProgressLine out;
  out.labeledLoss = lloss;
  out.text = fmt::format(
      "Step {:05d}/{} Dtime {:.3f} Btime {:.3f} Lloss {:.4f} Uloss {:.4f} Lacc {:.2f} Uacc "
      "{:.2f} LR {:.5f} data-wait {:.1f}% ETA {}",
      stepsDone, totalSteps_, dataTime_ / steps, batchTime_ / steps, lloss, uloss, lacc, uacc, lr,
      100.0 * dataWaitFraction(), formatDuration(eta));
  out.row = {{"kind", "train"},
             {"step", stepsDone},
             {"lr", lr},
             {"weight", weight},
             {"label_loss", numberOrNull(lloss)},
             {"unlabel_loss", numberOrNull(uloss)},
             {"interp_loss", numberOrNull(mean(mixLoss_))},
             {"label_acc", numberOrNull(lacc)},
             {"unlabel_acc", numberOrNull(uacc)},
             {"data_time", dataTime_ / steps},
             {"batch_time", batchTime_ / steps},
             {"data_wait_fraction", dataWaitFraction()}};
  labeledLoss_ = unlabeledLoss_ = mixLoss_ = labeledAcc_ = unlabeledAcc_ = torch::Tensor();
  n_ = 0;
  dataTime_ = batchTime_ = 0;
  return out;
}

ProgressLine ProgressLog::evaluation(std::int64_t stepsDone, double top1Error, double top5Error,
                                     double bestTop1Error, std::int64_t images, bool showTop5) {
  ProgressLine out;
  out.text = fmt::format(
      "Test step {:05d}: top-1 error {:.2f}%{} (best {:.2f}%) over {} images", stepsDone, top1Error,
      showTop5 ? fmt::format(", top-5 error {:.2f}%", top5Error) : "", bestTop1Error, images);
  out.row = {{"kind", "eval"},
             {"step", stepsDone},
             {"top1_error", top1Error},
             {"top5_error", showTop5 ? nlohmann::json(top5Error) : nlohmann::json(nullptr)},
             {"best_top1_error", bestTop1Error}};
  return out;
}

}  // namespace metasemi::train
